"""Gradient-flow dynamics at and near sampled critical points (issue 15).

:func:`gradient_flow` follows ``dW/dt = -grad L(W)`` from given weights with the adaptive
integrator of :mod:`mcland._kernels.flow`.  :func:`point_records` runs one point's
experiment of a ``[dynamics]`` section (``escape``: perturb the sampled critical point and
time the escape; ``small_init``: train the point's architecture on its data from a small
initialisation and find the plateaus), one row per delta or eps, in the layout of
:func:`record_schema`; :func:`escape` is its convenience wrapper for one point
(docs/dynamics.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import ValidationError

from mcland._kernels import fields
from mcland._kernels.batch import draw_point
from mcland._kernels.bundles import FlowControl, FlowProblem
from mcland._kernels.flow import STATUS_NAMES, integrate_dense, loss_and_gradient
from mcland._kernels.rosenbrock import integrate_stiff
from mcland._kernels.whiten import smallest_relative_gap
from mcland.config import Config, Dynamics, config_from_dict, format_validation_error
from mcland.dynamics_schema import record_schema
from mcland.errors import MclandError
from mcland.plateaus import plateau_runs
from mcland.point import PointReport, _check_weights, _report, analyze_flat, split_layers
from mcland.problem import Problem, as_matrix
from mcland.tolerances import Tolerances

if TYPE_CHECKING:
    from mcland.pipeline import Plan

__all__ = ["FlowResult", "escape", "gradient_flow", "point_records", "record_schema"]

DEFAULT_DELTAS = tuple(Dynamics().deltas)


@dataclass(frozen=True)
class FlowResult:
    """One gradient-flow run (:func:`gradient_flow`).

    Attributes
    ----------
    weights : list of ndarray
        Final ``[W_1, ..., W_H]``, ``W_h`` of shape ``(d_h, d_{h-1})``.
    status : str
        ``settled``, ``loss_reached``, ``budget_evals``, ``budget_time`` or ``failed``.
    t_end : float
        Flow time reached.
    t_mark : float
        First flow time at which ``L <= loss_mark`` (NaN if never).
    loss_start, loss_end, grad_start, grad_end : float
        Loss and gradient norm at the start and the end.
    n_evals, n_steps, n_rejected : int
        Gradient evaluations (the cost unit), accepted and rejected steps.
    t_record, loss_record : ndarray (K,)
        Recording times and the loss there (NaN after ``t_end``).
    w_record : ndarray (K, N) or None
        The flat weights at ``t_record`` (NaN after ``t_end``) when asked for.
    n_hessians : int
        Hessian assemblies (``integrator = "rosenbrock"`` only).
    """

    weights: list[np.ndarray]
    status: str
    t_end: float
    t_mark: float
    loss_start: float
    loss_end: float
    grad_start: float
    grad_end: float
    n_evals: int
    n_steps: int
    n_rejected: int
    t_record: np.ndarray
    loss_record: np.ndarray
    w_record: np.ndarray | None = None
    n_hessians: int = 0


def _flow_problem(dims: np.ndarray, X: np.ndarray, Y: np.ndarray) -> FlowProblem:
    X = np.ascontiguousarray(X, np.float64)
    Y = np.ascontiguousarray(Y, np.float64)
    return FlowProblem(
        np.ascontiguousarray(dims, np.int64),
        np.ascontiguousarray(X @ X.T),
        np.ascontiguousarray(Y @ X.T),
        float(np.sum(Y * Y)),
    )


def _gradient_flow(
    dims: np.ndarray, w: np.ndarray, problem: FlowProblem, *,
    t_max: float, t_record: np.ndarray | None = None, rtol: float = 1e-6, atol: float = 0.0,
    w_ref: np.ndarray, h0: float | None = None, h_max: float = math.inf,
    grad_stop: float = 0.0, settle_after_mark: bool = False, loss_mark: float = -math.inf,
    loss_stop: float = -math.inf, max_evals: int = 1_000_000, record_weights: bool = False,
    integrator: str = "explicit",
) -> FlowResult:  # fmt: skip
    """:func:`gradient_flow` on a flat start ``w`` (N,) (copied) and a built problem."""
    w = np.array(w, np.float64)
    ref = np.ascontiguousarray(w_ref, np.float64)
    if h0 is None:
        g = np.empty_like(w)
        loss_and_gradient(problem, w.copy(), g)
        gn = float(np.linalg.norm(g))
        h0 = 1e-3 * max(float(np.linalg.norm(w - ref)), 1e-300) / gn if gn > 0 else t_max
        h0 = min(h0, t_max)
    control = FlowControl(
        float(rtol), float(atol), float(h0), float(h_max), 5.0, 0.2, float(grad_stop),
        float(bool(settle_after_mark)), float(loss_mark), float(loss_stop),
        float(max_evals), float(t_max), ref,
    )  # fmt: skip
    times = np.zeros(0) if t_record is None else np.ascontiguousarray(t_record, np.float64)
    record = np.empty(times.size)
    w_rec = np.empty((times.size if record_weights else 0, w.size))
    if integrator == "explicit":
        out = integrate_dense(problem, control, w, times, record, w_rec)
    elif integrator == "rosenbrock":
        out = integrate_stiff(problem, control, w, times, record, w_rec)
    else:
        raise MclandError(f"integrator must be 'explicit' or 'rosenbrock', got {integrator!r}")
    return FlowResult(
        weights=[W.copy() for W in split_layers(w, dims)],
        status=STATUS_NAMES[int(out[0])],
        t_end=float(out[1]),
        t_mark=float(out[7]),
        loss_start=float(out[8]),
        loss_end=float(out[5]),
        grad_start=float(out[9]),
        grad_end=float(out[6]),
        n_evals=int(out[2]),
        n_steps=int(out[3]),
        n_rejected=int(out[4]),
        t_record=times,
        loss_record=record,
        w_record=w_rec if record_weights else None,
        n_hessians=int(out[10]) if out.size > 10 else 0,
    )


def gradient_flow(
    weights: Sequence[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    t_max: float,
    t_record: np.ndarray | None = None,
    rtol: float = 1e-6,
    atol: float = 0.0,
    w_ref: Sequence[np.ndarray] | None = None,
    h0: float | None = None,
    h_max: float = math.inf,
    grad_stop: float = 0.0,
    settle_after_mark: bool = False,
    loss_mark: float = -math.inf,
    loss_stop: float = -math.inf,
    max_evals: int = 1_000_000,
    record_weights: bool = False,
    integrator: str = "explicit",
) -> FlowResult:
    """Follow the gradient flow ``dW/dt = -grad L(W)`` of ``L = ||W_H ... W_1 X - Y||_F^2``.

    Parameters
    ----------
    weights : sequence of ndarray
        Start ``[W_1, ..., W_H]``, ``W_h`` of shape ``(d_h, d_{h-1})``.
    X : ndarray (d_x, m)
    Y : ndarray (d_y, m)
    t_max : float
        Budget in flow time.
    t_record : ndarray (K,), optional
        Ascending times at which to record the loss (default: none).
    rtol, atol : float
        Error control: a step's local error estimate must not exceed ``atol + rtol *
        ||W - w_ref||`` (norm-wise, see :mod:`mcland._kernels.flow`).
    w_ref : sequence of ndarray, optional
        Reference point of the relative tolerance (default: zero, i.e. ``||W||``).
    h0 : float, optional
        First step (default ``1e-3 / ||grad||`` scaled by ``||W||``, at least tiny).
    h_max : float
        Largest step.
    grad_stop : float
        Stop (``settled``) once ``||grad L||_F <= grad_stop``.
    settle_after_mark : bool
        Only settle after the loss crossed ``loss_mark``.
    loss_mark : float
        Loss level whose first crossing time is returned as ``t_mark``.
    loss_stop : float
        Stop (``loss_reached``) once ``L <= loss_stop``.
    max_evals : int
        Budget in gradient evaluations.
    record_weights : bool
        Also record the weights at ``t_record`` (``FlowResult.w_record``, flat rows).
    integrator : str
        ``"explicit"``: the Bogacki-Shampine pair (:mod:`mcland._kernels.flow`);
        ``"rosenbrock"``: the linearly implicit ROS2 (:mod:`mcland._kernels.rosenbrock`),
        for stiff stretches.

    Returns
    -------
    FlowResult
    """
    Xm, Ym = as_matrix(X, "X"), as_matrix(Y, "Y")
    dims, w = _check_weights(weights, Xm.shape[0], Ym.shape[0])
    ref = np.zeros_like(w) if w_ref is None else _check_weights(w_ref, dims[0], dims[-1])[1]
    return _gradient_flow(
        dims, w, _flow_problem(dims, Xm, Ym), t_max=t_max, t_record=t_record, rtol=rtol,
        atol=atol, w_ref=ref, h0=h0, h_max=h_max, grad_stop=grad_stop,
        settle_after_mark=settle_after_mark, loss_mark=loss_mark, loss_stop=loss_stop,
        max_evals=max_evals, record_weights=record_weights, integrator=integrator,
    )  # fmt: skip


# ---------------------------------------------------------------------- one point's facts


@dataclass(frozen=True)
class _Point:
    """What both experiments need about one point ``W*`` and its data.

    ``values`` are the enumerated critical values (ascending, ``|S| <= r``); ``a`` the
    per-layer scale ``(||Syx||_F / ||Sxx||_F)^(1/H)`` of a balanced network with the data's
    gain; ``eta_data = 1 / (2 H ||Sxx||_2 a^(2(H-1)))`` the data's time unit.
    """

    dims: np.ndarray
    w_star: np.ndarray
    problem: Problem
    flow: FlowProblem
    tol: Tolerances
    report: PointReport
    loss_tol: float
    values: np.ndarray
    a: float
    eta_data: float


def _analyze(dims: np.ndarray, w: np.ndarray, problem: Problem, tol: Tolerances):
    """``(PointReport, loss_tol)`` of the flat point ``w`` (spectra in both coordinates)."""
    outputs = analyze_flat(dims, w, problem, tol)
    return _report(dims, problem, *outputs), float(outputs[0][fields.F_LOSS_TOL])


def _make_point(dims: np.ndarray, w_star: np.ndarray, problem: Problem, tol: Tolerances) -> _Point:
    H = dims.size - 1
    report, loss_tol = _analyze(dims, w_star, problem, tol)
    a = float((np.linalg.norm(problem.Syx) / np.linalg.norm(problem.Sxx)) ** (1.0 / H))
    eta_data = 1.0 / (2.0 * H * float(problem.mu[-1]) * a ** (2 * (H - 1)))
    # the loss followed is that of the problem's moments (the sampler's own for a drawn point)
    flow = FlowProblem(
        np.ascontiguousarray(dims, np.int64), np.ascontiguousarray(problem.Sxx, np.float64),
        np.ascontiguousarray(problem.Syx, np.float64), float(problem.tr_syy),
    )  # fmt: skip
    return _Point(
        dims, w_star, problem, flow, tol, report, loss_tol,
        problem.critical_values(report.r), a, eta_data,
    )  # fmt: skip


def _seed_stream(seed: int, sample_id: int, tag: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(sample_id), tag]))


def _end_columns(pt: _Point, res: FlowResult, eta: float, t_curve: np.ndarray) -> dict:
    """The columns shared by both experiments (``_RUN`` of :mod:`mcland.dynamics_schema`)."""
    w_end = np.concatenate([W.ravel() for W in res.weights])
    end, _ = _analyze(pt.dims, w_end, pt.problem, pt.tol)
    same = max(pt.loss_tol, 1e-12 * abs(end.global_min_value))
    return {
        "eta": eta,
        "t_end": res.t_end,
        "n_evals": res.n_evals,
        "n_steps": res.n_steps,
        "n_rejected": res.n_rejected,
        "loss_end": res.loss_end,
        "grad_end": res.grad_end,
        "settled_value": end.critical_value,
        "settled_index": int(np.argmin(np.abs(pt.values - end.critical_value))),
        "settled_S": list(end.S),
        "settled_type": end.numeric_type,
        "reached_global": bool(abs(end.critical_value - end.global_min_value) <= same),
        "t_curve": t_curve.tolist(),
        "loss_curve": res.loss_record.tolist(),
    }


# ---------------------------------------------------------------------- escape


def _escape_rows(pt: _Point, settings: Dynamics, seed: int, sample_id: int) -> list[dict]:
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
    w_scale = float(np.linalg.norm(w_star))
    if w_scale == 0.0:  # W* = 0: the size of a balanced network with the data's gain
        w_scale = math.sqrt(H) * pt.a
    V = _seed_stream(seed, sample_id, 15).standard_normal(w_star.size)
    V /= np.linalg.norm(V)
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
            stop = 1e-3 * float(np.linalg.norm(g))
        res = _flow(
            pt, w0, t_max=t_max, t_record=t_curve, rtol=settings.rtol, w_ref=w_star,
            h0=0.01 * eta, grad_stop=stop, settle_after_mark=not is_min, loss_mark=loss_escape,
            max_evals=settings.max_evals, integrator=settings.integrator,
        )  # fmt: skip
        end = _end_columns(pt, res, eta, t_curve)
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


# ---------------------------------------------------------------------- small initialisation


def _plateau_records(pt: _Point, res: FlowResult, settings: Dynamics, scale: float) -> list[dict]:
    """The plateaus of a run whose weights were recorded on a log grid (:mod:`mcland.plateaus`)."""
    t, W = res.t_record, res.w_record
    grad = np.full(t.size, np.nan)
    loss = np.full(t.size, np.nan)
    g = np.empty(W.shape[1])
    for k in range(t.size):
        if np.isfinite(W[k, 0]):
            loss[k] = loss_and_gradient(pt.flow, W[k].copy(), g)
            grad[k] = float(np.linalg.norm(g))
    runs = plateau_runs(
        t, t * grad * grad, loss, res.loss_end, settings.plateau_threshold * scale,
        settings.plateau_min_ratio,
    )  # fmt: skip
    out = []
    for a, b in runs:
        k = a + int(np.argmin(grad[a : b + 1]))
        rep, loss_tol = _analyze(pt.dims, W[k].copy(), pt.problem, pt.tol)
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


def _small_init_rows(pt: _Point, settings: Dynamics, seed: int, sample_id: int) -> list[dict]:
    dims = pt.dims
    H = dims.size - 1
    rng = _seed_stream(seed, sample_id, 16)
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
        res = _flow(
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
        end = _end_columns(pt, curve, eta, t_curve)
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
                "init_norm": float(np.linalg.norm(w0)),
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


# ---------------------------------------------------------------------- per-point API


def _flow(pt: _Point, w0: np.ndarray, **kwargs) -> FlowResult:
    return _gradient_flow(pt.dims, w0, pt.flow, **kwargs)


def _records(
    dims: np.ndarray, w_star: np.ndarray, X: np.ndarray, Y: np.ndarray, settings: Dynamics,
    *, seed: int, sample_id: int, problem: Problem | None = None,
    tolerances: Tolerances | None = None,
) -> list[dict]:  # fmt: skip
    """The rows of :func:`point_records` for a given point (tests call it on chosen points)."""
    problem = problem if problem is not None else Problem.from_data(X, Y)
    w_star = np.ascontiguousarray(w_star, np.float64)
    pt = _make_point(dims, w_star, problem, tolerances or Tolerances())
    if settings.experiment == "escape":
        rows = _escape_rows(pt, settings, seed, sample_id)
    else:
        rows = _small_init_rows(pt, settings, seed, sample_id)
    names = record_schema(settings.experiment).names
    return [{k: row[k] for k in names} for row in rows]


def point_records(plan: Plan, settings: Dynamics, sample_id: int) -> list[dict]:
    """The dynamics rows of point ``sample_id`` of the run ``plan``.

    The point is drawn as the sampler draws it (:func:`mcland._kernels.batch.draw_point`,
    from ``plan.sampler``) and classified with ``plan.config.classify``'s tolerances; random
    directions come from ``numpy.random.SeedSequence([plan.seed, sample_id, tag])`` (tag 15:
    the escape direction ``V``; 16: the initial ``G``).  Safe to call concurrently from
    threads (the kernels release the GIL); the same arguments give the same rows bit for bit.

    Parameters
    ----------
    plan : mcland.pipeline.Plan
        The run.
    settings : mcland.config.Dynamics
        The ``[dynamics]`` section (``settings.experiment`` selects the experiment).
    sample_id : int
        The point.

    Returns
    -------
    list of dict
        One dict per ``delta`` (escape) or ``eps`` (small_init), in the order of
        ``settings``, keyed exactly by ``record_schema(settings.experiment).names``
        (lists for the list columns, ``None`` for nulls).
    """
    point = draw_point(plan.sampler, int(sample_id))
    c = plan.config.classify
    tol = Tolerances(grad_rtol=c.grad_rtol, c_zero=c.c_zero, c_neg=c.c_neg)
    m = point.moments
    problem = Problem(
        m.Sxx, m.Syx, float(m.tr_syy), m.mu, m.K, m.K_inv, m.lam, m.U, m.Vt,
        float(smallest_relative_gap(m.lam)), float(m.mu[0] / m.mu[-1]),
    )  # fmt: skip
    return _records(
        np.array(point.dims), np.array(point.w), np.array(point.X), np.array(point.Y),
        settings, seed=plan.seed, sample_id=int(sample_id), problem=problem, tolerances=tol,
    )  # fmt: skip


def escape(
    config: Config | dict | str | Path,
    sample_id: int,
    deltas: Sequence[float] = DEFAULT_DELTAS,
    *,
    f: float = 0.5,
    budget: int = 200_000,
    t_max_steps: float = 1e9,
    n_record: int = 64,
    rtol: float = 1e-6,
    grad_tol: float = 1e-4,
    integrator: str = "explicit",
    seed: int | None = None,
    tolerances: Tolerances | None = None,
) -> pd.DataFrame:
    """Escape of gradient flow from point ``sample_id`` of ``config``, one row per delta:
    the point's sampler record joined with :func:`point_records` (``experiment =
    "escape"``; columns in docs/dynamics.md).

    Parameters
    ----------
    config : Config, dict or path to a TOML file
        The sampling configuration (its ``[dynamics]`` section is not used: the
        arguments below are the settings).
    sample_id : int
        Which point.
    deltas : sequence of float
        Relative perturbation sizes, in (0, 1].
    f, budget, t_max_steps, n_record, rtol, grad_tol, integrator
        ``escape_fraction``, ``max_evals``, ``t_max_steps``, ``n_record``, ``rtol``,
        ``grad_tol``, ``integrator`` of the ``[dynamics]`` section.
    seed : int, optional
        Overrides the configuration's seed.
    tolerances : Tolerances, optional
        Classification tolerances (override the configuration's ``[classify]`` factors,
        for the record and the dynamics alike).

    Returns
    -------
    pandas.DataFrame
    """
    from mcland.pipeline import _as_config, compute, make_plan

    try:
        settings = Dynamics(
            experiment="escape", deltas=[float(d) for d in deltas], escape_fraction=float(f),
            max_evals=int(budget), t_max_steps=float(t_max_steps), n_record=int(n_record),
            rtol=float(rtol), grad_tol=float(grad_tol), integrator=integrator,
        )  # fmt: skip
    except ValidationError as exc:
        raise MclandError(format_validation_error(exc, "escape")) from None
    if tolerances is not None:
        cfg = _as_config(config)
        classify = {
            **cfg.resolved()["classify"], "grad_rtol": tolerances.grad_rtol,
            "c_zero": tolerances.c_zero, "c_neg": tolerances.c_neg,
        }  # fmt: skip
        config = config_from_dict(
            {**cfg.resolved(), "classify": classify}, source="tolerances", base_dir=cfg.base_dir
        )
    plan = make_plan(config, None, seed)
    record = compute(plan, np.array([int(sample_id)], np.int64)).to_pandas()
    rows = pa.Table.from_pylist(
        point_records(plan, settings, int(sample_id)), schema=record_schema("escape")
    ).to_pandas()
    return rows.merge(record, on="sample_id", how="left")
