"""The ``escape`` experiment: perturb a drawn critical point by ``delta`` and time the
flow's escape from it (docs/dynamics.md)."""

from __future__ import annotations

import math

import numpy as np

from mcland._kernels.flow import loss_and_gradient
from mcland.core import linalg as la  # norms without the process's BLAS
from mcland.core.config import Dynamics
from mcland.flow.experiment import ExperimentPoint, end_columns, flow, seed_stream


def escape_rows(pt: ExperimentPoint, settings: Dynamics, seed: int, sample_id: int) -> list[dict]:
    """The escape rows of the point ``pt``, one per delta of ``settings`` (keys of
    :func:`mcland.flow.schema.record_schema`)."""
    rep, dims, w_star = pt.report, pt.dims, pt.w_star
    H = dims.size - 1
    f = settings.escape_fraction
    loss_star = rep.loss
    below = pt.values[pt.values < loss_star - pt.loss_tol]
    c_next = float(below.max()) if below.size else math.nan
    is_min = rep.theory_type == "global_minimizer" or not below.size
    loss_escape = loss_star - f * (loss_star - c_next) if not is_min else -math.inf
    # the time unit: the stable GD step at W*, unless the Hessian vanishes there
    eta = 1.0 / rep.eig_max if rep.eig_max * pt.eta_data > 1e-8 else pt.eta_data
    w_scale = la.norm(w_star)
    if w_scale == 0.0:  # W* = 0: the size of a balanced network with the data's gain
        w_scale = math.sqrt(H) * pt.a
    V = seed_stream(seed, sample_id, 15).standard_normal(w_star.size)
    V /= la.norm(V)
    t_max = settings.t_max_steps * eta
    t_curve = np.geomspace(eta / 10.0, t_max, settings.n_record)
    grad_stop = settings.grad_tol * w_scale / eta
    strict = rep.theory_type == "strict_saddle"
    same = max(pt.loss_tol, 1e-12 * abs(loss_star))
    rows = []
    for delta in settings.deltas:
        w0 = w_star + delta * w_scale * V
        stop = grad_stop
        if is_min:  # a minimizer has settled once its gradient fell to 1e-3 of its start
            g = np.empty_like(w0)
            loss_and_gradient(pt.flow, w0.copy(), g)
            stop = 1e-3 * la.norm(g)
        res = flow(
            pt, w0, t_max=t_max, t_record=t_curve, rtol=settings.rtol, w_ref=w_star,
            h0=0.01 * eta, grad_stop=stop, settle_after_mark=not is_min, loss_mark=loss_escape,
            max_evals=settings.max_evals, integrator=settings.integrator,
        )  # fmt: skip
        end = end_columns(pt, res, eta, t_curve)
        escaped = math.isfinite(res.t_mark)
        if res.status == "failed":
            status = "failed"
        elif is_min:
            status = "relaxed" if res.status == "settled" else "budget"
        elif escaped:
            status = "escaped" if res.status == "settled" else "escaped_budget"
        else:
            status = "budget"
        t_escape = res.t_mark if not is_min and escaped else None
        rows.append(
            {
                "sample_id": int(sample_id),
                "delta": float(delta),
                "w_scale": w_scale,
                "delta_abs": float(delta) * w_scale,
                "loss_star": loss_star,
                "c_next": None if is_min else c_next,
                "loss_escape": None if is_min else loss_escape,
                "eig_min_star": rep.eig_min,
                "eig_max_star": rep.eig_max,
                "t_escape": t_escape,
                "gd_steps": None if t_escape is None else t_escape / eta,
                "t_linear": math.log(1.0 / delta) / abs(rep.eig_min) if strict else None,
                "relaxed_back": bool(is_min and abs(end["settled_value"] - loss_star) <= same),
                "status": status,
                **end,
            }
        )
    return rows
