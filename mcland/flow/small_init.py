"""The ``small_init`` experiment: train the point's architecture on its data from a small
initialisation of scale ``eps`` and find the index sets and plateaus the flow visits, read
at every accepted step (:mod:`mcland._kernels.visits`; docs/dynamics.md)."""

from __future__ import annotations

import math

import numpy as np

from mcland._kernels import visits as kv
from mcland.core import linalg as la  # norms without the process's BLAS
from mcland.core.config import Dynamics
from mcland.flow.experiment import ExperimentPoint, analyze, end_columns, flow, seed_stream
from mcland.flow.gradient_flow import Visits, monitor


def _plateau_records(
    pt: ExperimentPoint, visits: Visits, settings: Dynamics, scale: float
) -> tuple[list[dict], list[dict], list[list[int]]]:
    """The visits of a small-initialisation run (:mod:`mcland._kernels.visits`) as the
    ``visits`` column, those that are plateaus as the ``plateaus`` column, and the sets
    the flow dwelt at as the ``visited_S`` column.

    The flow *dwells* in a visit when some accepted step inside it (or its entry point)
    meets the plateau criterion ``t ||grad L||^2 <= plateau_threshold * scale``
    (:mod:`mcland.flow.plateaus`): it has slowed down near a critical point, the saddle of
    its ``S``.  A visit where it does not is a *transit*: the reading ``S(t)`` passed the
    set during a drop, away from any critical point, where the ``z_i`` need not be
    monotone (docs/dynamics.md, "Dwells and transits").  ``visited_S`` is the ``S`` of each dwelt
    visit, then the final ``S`` (the last visit), consecutive repeats merged: the saddles
    visited, in order.  A dwelt visit is a plateau when the criterion holds over a time
    range ``t_end / t_start >= plateau_min_ratio`` (or from ``t = 0``), and it is not the
    last visit (where the run ended: the final state).  Its point is the accepted step of
    smallest gradient within the visit, read off as the sampler reads a point.
    """
    thr = settings.plateau_threshold * scale
    info = visits.info
    out_visits, out_plateaus, dwelt = [], [], []
    for j, S in enumerate(visits.S):
        row = info[j]
        lo, hi = row[kv.T_ON_FIRST], row[kv.T_ON_LAST]
        dwell = bool(row[kv.RATE_MIN] <= thr)
        plateau = bool(
            j < len(visits.S) - 1 and dwell and np.isfinite(lo)
            and (lo == 0.0 or hi / lo >= settings.plateau_min_ratio)
        )  # fmt: skip
        if (dwell or j == len(visits.S) - 1) and (not dwelt or dwelt[-1] != list(S)):
            dwelt.append(list(S))
        out_visits.append(
            {
                "S": list(S),
                "t_enter": float(row[kv.T_ENTER]),
                "t_leave": float(row[kv.T_LEAVE]),
                "rate_min": float(row[kv.RATE_MIN]) / scale,
                "plateau": plateau,
            }
        )
        if not plateau:
            continue
        rep, loss_tol = analyze(pt.dims, visits.w_min[j].copy(), pt.problem, pt.tol, pt.hessian)
        k = int(np.argmin(np.abs(pt.values - rep.loss)))
        out_plateaus.append(
            {
                "t_start": float(lo),
                "t_end": float(hi),
                "loss": rep.loss,
                "t_min_grad": float(row[kv.T_G_MIN]),
                "grad_min": float(row[kv.G_MIN]),
                "value_index": k,
                "value": float(pt.values[k]),
                "dist_tol": abs(rep.loss - float(pt.values[k])) / loss_tol,
                "S": list(rep.S),
                "eig_min": rep.eig_min,
                "numeric_type": rep.numeric_type,
            }
        )
    return out_visits, out_plateaus, dwelt


MAX_VISITS = 64
"""Rows for the visits of one small-initialisation run (a run that visits more is flagged
``visits_resolved = False``)."""


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
    scale = float(lam.min())
    L_min = float(pt.values[0])
    above = pt.values[pt.values > L_min + pt.loss_tol]
    mark = L_min + settings.escape_fraction * (float(above[0]) - L_min) if above.size else -math.inf
    eta = pt.eta_data
    t_max = settings.t_max_steps * eta
    t_curve = np.geomspace(eta / 10.0, t_max, settings.n_record)
    grad_stop = settings.grad_tol * math.sqrt(H) * pt.a / eta
    rows = []
    for eps in settings.eps:
        w0 = eps * pt.a * G
        mon = monitor(w0.size, pt.problem, settings.plateau_threshold * scale, MAX_VISITS)
        res = flow(
            pt, w0, t_max=t_max, t_record=t_curve, rtol=settings.rtol,
            w_ref=np.zeros_like(w0), h0=0.01 * eta, grad_stop=grad_stop,
            settle_after_mark=True, loss_mark=mark, max_evals=settings.max_evals,
            integrator=settings.integrator, visits=mon,
        )  # fmt: skip
        end = end_columns(pt, res, eta, t_curve)
        visits, plateaus, visited = _plateau_records(pt, res.visits, settings, scale)
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
                "visits": visits,
                "visits_resolved": res.visits.unresolved == 0 and not res.visits.overflow,
                "status": status,
                **end,
            }
        )
    return rows
