"""The ``small_init`` experiment: train the point's architecture on its data from a small
initialisation of scale ``eps`` and find the plateaus the flow visits (docs/dynamics.md)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from mcland._kernels.flow import loss_and_gradient
from mcland.core import linalg as la  # norms without the process's BLAS
from mcland.core.config import Dynamics
from mcland.flow.experiment import ExperimentPoint, analyze, end_columns, flow, seed_stream
from mcland.flow.gradient_flow import FlowResult
from mcland.flow.plateaus import plateau_runs


def _plateau_records(
    pt: ExperimentPoint, res: FlowResult, settings: Dynamics, scale: float
) -> list[dict]:
    """The plateaus of a run whose weights were recorded on a log grid (:mod:`mcland.flow.plateaus`)."""
    t, W = res.t_record, res.w_record
    grad = np.full(t.size, np.nan)
    loss = np.full(t.size, np.nan)
    g = np.empty(W.shape[1])
    for k in range(t.size):
        if np.isfinite(W[k, 0]):
            loss[k] = loss_and_gradient(pt.flow, W[k].copy(), g)
            grad[k] = la.norm(g)
    runs = plateau_runs(
        t, t * grad * grad, loss, res.loss_end, settings.plateau_threshold * scale,
        settings.plateau_min_ratio,
    )  # fmt: skip
    out = []
    for a, b in runs:
        k = a + int(np.argmin(grad[a : b + 1]))
        rep, loss_tol = analyze(pt.dims, W[k].copy(), pt.problem, pt.tol)
        j = int(np.argmin(np.abs(pt.values - rep.loss)))
        out.append(
            {
                "t_start": 0.0 if a == 0 else float(t[a]),
                "t_end": float(t[b]),
                "loss": rep.loss,
                "t_min_grad": float(t[k]),
                "grad_min": float(grad[k]),
                "value_index": j,
                "value": float(pt.values[j]),
                "dist_tol": abs(rep.loss - float(pt.values[j])) / loss_tol,
                "S": list(rep.S),
                "eig_min": rep.eig_min,
                "numeric_type": rep.numeric_type,
            }
        )
    return out


def small_init_rows(
    pt: ExperimentPoint, settings: Dynamics, seed: int, sample_id: int
) -> list[dict]:
    """The small-initialisation rows of the point's architecture and data, one per eps of
    ``settings`` (keys of :func:`mcland.flow.schema.record_schema`)."""
    dims = pt.dims
    H = dims.size - 1
    rng = seed_stream(seed, sample_id, 16)
    G = np.concatenate(
        [rng.standard_normal(dims[h + 1] * dims[h]) / math.sqrt(dims[h]) for h in range(H)]
    )
    lam = pt.problem.lam[: pt.report.r]
    L_min = float(pt.values[0])
    above = pt.values[pt.values > L_min + pt.loss_tol]
    mark = L_min + settings.escape_fraction * (float(above[0]) - L_min) if above.size else -math.inf
    eta = pt.eta_data
    t_max = settings.t_max_steps * eta
    t_curve = np.geomspace(eta / 10.0, t_max, settings.n_record)
    t_grid = np.geomspace(eta / 10.0, t_max, settings.plateau_points)
    grad_stop = settings.grad_tol * math.sqrt(H) * pt.a / eta
    times = np.concatenate([t_curve, t_grid])  # recorded together, in time order
    order = np.argsort(times, kind="stable")
    rows = []
    for eps in settings.eps:
        w0 = eps * pt.a * G
        res = flow(
            pt, w0, t_max=t_max, t_record=times[order], rtol=settings.rtol,
            w_ref=np.zeros_like(w0), h0=0.01 * eta, grad_stop=grad_stop,
            settle_after_mark=True, loss_mark=mark, max_evals=settings.max_evals,
            record_weights=True, integrator=settings.integrator,
        )  # fmt: skip
        loss_rec = np.empty(times.size)
        loss_rec[order] = res.loss_record
        w_rec = np.empty((times.size, w0.size))
        w_rec[order] = res.w_record
        K = t_curve.size
        curve = replace(res, t_record=t_curve, loss_record=loss_rec[:K], w_record=None)
        grid = replace(res, t_record=t_grid, loss_record=loss_rec[K:], w_record=w_rec[K:])
        end = end_columns(pt, curve, eta, t_curve)
        plateaus = _plateau_records(pt, grid, settings, float(lam.min()))
        visited: list[list[int]] = []
        for S in [p["S"] for p in plateaus] + [end["settled_S"]]:
            if not visited or visited[-1] != S:
                visited.append(S)
        if res.status == "failed":
            status = "failed"
        elif res.status == "settled":
            status = "global" if end["reached_global"] else "settled"
        else:
            status = "budget"
        rows.append(
            {
                "sample_id": int(sample_id),
                "eps": float(eps),
                "init_norm": la.norm(w0),
                "loss_start": res.loss_start,
                "t_global": res.t_mark if math.isfinite(res.t_mark) else None,
                "n_plateaus": len(plateaus),
                "plateaus": plateaus,
                "visited_S": visited,
                "status": status,
                **end,
            }
        )
    return rows
