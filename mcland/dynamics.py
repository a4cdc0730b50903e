"""Gradient-flow dynamics at and near sampled critical points (first part of issue 15).

:func:`gradient_flow` follows ``dW/dt = -grad L(W)`` from given weights with the adaptive
integrator of :mod:`mcland._kernels.flow`; :func:`escape` perturbs a sampled critical point
and measures how long the flow takes to leave it and where it settles (docs/dynamics.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mcland._kernels import fields
from mcland._kernels.bundles import FlowControl, FlowProblem
from mcland._kernels.flow import STATUS_NAMES, integrate, loss_and_gradient
from mcland.config import Config
from mcland.errors import MclandError
from mcland.point import _check_weights, analyze_flat, inspect_point, split_layers
from mcland.problem import Problem, as_matrix
from mcland.sampling import draw_point
from mcland.tolerances import Tolerances

DEFAULT_DELTAS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)


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


def _flow_problem(dims: np.ndarray, X: np.ndarray, Y: np.ndarray) -> FlowProblem:
    X = np.ascontiguousarray(X, np.float64)
    Y = np.ascontiguousarray(Y, np.float64)
    return FlowProblem(
        np.ascontiguousarray(dims, np.int64),
        np.ascontiguousarray(X @ X.T),
        np.ascontiguousarray(Y @ X.T),
        float(np.sum(Y * Y)),
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

    Returns
    -------
    FlowResult
    """
    Xm, Ym = as_matrix(X, "X"), as_matrix(Y, "Y")
    dims, w = _check_weights(weights, Xm.shape[0], Ym.shape[0])
    problem = _flow_problem(dims, Xm, Ym)
    ref = np.zeros_like(w) if w_ref is None else _check_weights(w_ref, dims[0], dims[-1])[1]
    if h0 is None:
        g = np.empty_like(w)
        loss_and_gradient(problem, w, g)
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
    out = integrate(problem, control, w, times, record)
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
    )


def _fmt_s(S: Sequence[int]) -> str:
    return "{" + ",".join(str(int(i)) for i in S) + "}"


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
    seed: int | None = None,
    tolerances: Tolerances | None = None,
) -> pd.DataFrame:
    """Escape of gradient flow from a sampled critical point, one row per ``delta``.

    Point ``sample_id`` of ``config`` is redrawn as :func:`mcland.sample` draws it
    (``W*``, ``X``, ``Y``) and classified with :func:`mcland.inspect_point`.  A unit
    direction ``V`` (Frobenius norm over all layers) is drawn from a stream seeded by
    ``(seed, sample_id)``, the same ``V`` for every delta, and the flow is followed from
    ``W = W* + delta ||W*||_F V``.

    Parameters
    ----------
    config : Config, dict or path to a TOML file
        The sampling configuration.
    sample_id : int
        Which point.  ``delta`` is relative to ``||W*||_F``; at ``W* = 0`` to
        ``sqrt(H) (||Syx||_F / ||Sxx||_F)^(1/H)``, the size of a balanced network with the
        data's gain (``delta_abs`` records the absolute size).
    deltas : sequence of float
        Relative perturbation sizes (> 0).
    f : float
        Escape fraction: ``t_escape`` is the first time with ``L <= L* - f (L* - c_next)``,
        ``L* = L(W*)``, ``c_next`` the largest enumerated critical value more than
        ``loss_tol`` below ``L*``.
    budget : int
        Gradient evaluations per delta.
    t_max_steps : float
        Flow-time budget in units of the stable GD step ``eta = 1 / lambda_max``.
    n_record : int
        K, the number of log-spaced times (from ``eta / 10`` to the time budget) at which
        the loss is recorded.
    rtol : float
        Relative tolerance of the integrator, on the displacement from ``W*``.
    grad_tol : float
        A saddle's run has settled when, after the escape, ``||grad L|| <= grad_tol *
        lambda_max * ||W*||_F``; a global minimizer's when the gradient norm fell below
        ``1e-3`` of its starting value.
    seed : int, optional
        Seed of the point (overrides the configuration's) and of ``V``.
    tolerances : Tolerances, optional
        Classification tolerances.

    Returns
    -------
    pandas.DataFrame
        One row per delta: ``sample_id, delta, delta_abs, type, numeric_type, S, loss_star,
        loss_tol, c_next, loss_escape, eig_min, eig_max, eta, t_escape, gd_steps,
        t_linear`` (``ln(1/delta) / |eig_min|``, strict saddles only), ``status``
        (``escaped``: crossed the escape level and settled; ``escaped_budget``: crossed it,
        budget hit before settling; ``relaxed``: a global minimizer that relaxed back;
        ``budget``: neither; ``failed``), ``t_end, n_evals, n_steps, n_rejected,
        loss_end, grad_end, settled_value, settled_S, settled_type, reached_global,
        relaxed_back`` and the loss curve ``t_curve``, ``loss_curve`` (lists of K floats).
    """
    deltas = [float(d) for d in deltas]
    if not deltas or not all(math.isfinite(d) and d > 0 for d in deltas):
        raise MclandError("deltas must be a non-empty list of positive numbers")
    if not 0.0 < f < 1.0:
        raise MclandError(f"f must be in (0, 1), got {f}")
    if budget <= 0 or t_max_steps <= 0 or n_record < 1:
        raise MclandError("budget, t_max_steps and n_record must be positive")
    tol = tolerances or Tolerances()
    if seed is None:
        from mcland.pipeline import _as_config

        seed = int(_as_config(config).seed)
    weights, X, Y = draw_point(config, sample_id, seed=seed)
    problem = Problem.from_data(X, Y)
    rep = inspect_point(weights, X, Y, tolerances=tol, problem=problem)
    dims, w_star = _check_weights(weights, X.shape[0], Y.shape[0])
    row_float = analyze_flat(dims, w_star, problem, tol)[0]
    loss_tol = float(row_float[fields.F_LOSS_TOL])
    loss_star = rep.loss
    values = problem.critical_values(rep.r)
    below = values[values < loss_star - loss_tol]
    c_next = float(below.max()) if below.size else math.nan
    is_min = rep.theory_type == "global_minimizer" or not below.size
    loss_escape = loss_star - f * (loss_star - c_next) if not is_min else -math.inf
    eta = 1.0 / rep.eig_max
    norm_star = float(np.linalg.norm(w_star))
    if norm_star == 0.0:  # W* = 0: the size of a balanced network with the data's gain
        H = dims.size - 1
        gain = np.linalg.norm(problem.Syx) / np.linalg.norm(problem.Sxx)
        norm_star = float(math.sqrt(H) * gain ** (1.0 / H))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(sample_id), 15]))
    V = rng.standard_normal(w_star.size)
    V /= np.linalg.norm(V)
    t_max = t_max_steps * eta
    t_curve = np.geomspace(eta / 10.0, t_max, n_record)
    grad_stop = grad_tol * rep.eig_max * norm_star
    strict = rep.theory_type == "strict_saddle"
    rows = []
    for delta in deltas:
        w0 = w_star + delta * norm_star * V
        start = split_layers(w0, dims)
        stop = grad_stop
        if is_min:
            g = np.empty_like(w0)
            loss_and_gradient(_flow_problem(dims, X, Y), w0.copy(), g)
            stop = 1e-3 * float(np.linalg.norm(g))
        res = gradient_flow(
            start, X, Y, t_max=t_max, t_record=t_curve, rtol=rtol,
            w_ref=split_layers(w_star, dims), h0=0.01 * eta, grad_stop=stop,
            settle_after_mark=not is_min, loss_mark=loss_escape, max_evals=budget,
        )  # fmt: skip
        end = inspect_point(res.weights, X, Y, tolerances=tol, problem=problem)
        escaped = math.isfinite(res.t_mark)
        if res.status == "failed":
            status = "failed"
        elif is_min:
            status = "relaxed" if res.status == "settled" else "budget"
        elif escaped:
            status = "escaped" if res.status == "settled" else "escaped_budget"
        else:
            status = "budget"
        same = max(loss_tol, 1e-12 * abs(loss_star))  # critical values: one formula, same lam
        at_global = abs(end.critical_value - rep.global_min_value) <= same
        rows.append(
            {
                "sample_id": int(sample_id),
                "delta": delta,
                "delta_abs": delta * norm_star,
                "type": rep.theory_type,
                "numeric_type": rep.numeric_type,
                "S": _fmt_s(rep.S),
                "loss_star": loss_star,
                "loss_tol": loss_tol,
                "c_next": c_next,
                "loss_escape": loss_escape,
                "eig_min": rep.eig_min,
                "eig_max": rep.eig_max,
                "eta": eta,
                "t_escape": res.t_mark if not is_min else math.nan,
                "gd_steps": res.t_mark / eta if not is_min else math.nan,
                "t_linear": math.log(1.0 / delta) / abs(rep.eig_min) if strict else math.nan,
                "status": status,
                "t_end": res.t_end,
                "n_evals": res.n_evals,
                "n_steps": res.n_steps,
                "n_rejected": res.n_rejected,
                "loss_end": res.loss_end,
                "grad_end": res.grad_end,
                "settled_value": end.critical_value,
                "settled_S": _fmt_s(end.S),
                "settled_type": end.numeric_type,
                "reached_global": bool(at_global),
                "relaxed_back": bool(is_min and abs(end.critical_value - loss_star) <= same),
                "t_curve": t_curve.tolist(),
                "loss_curve": res.loss_record.tolist(),
            }
        )
    return pd.DataFrame(rows)
