"""Gradient flow ``dW/dt = -grad L(W)`` from given weights (:func:`gradient_flow`), with the
adaptive integrators of :mod:`mcland._kernels.flow` (explicit) and
:mod:`mcland._kernels.rosenbrock` (linearly implicit, for stiff stretches)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mcland._kernels.bundles import FlowControl, FlowProblem
from mcland._kernels.flow import STATUS_NAMES, integrate_dense, loss_and_gradient
from mcland._kernels.rosenbrock import integrate_stiff
from mcland.core import linalg as la  # products and norms without the process's BLAS
from mcland.core.errors import MclandError
from mcland.core.problem import as_matrix
from mcland.points.inspect import check_weights, split_layers


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


def flow_problem(dims: np.ndarray, X: np.ndarray, Y: np.ndarray) -> FlowProblem:
    X = np.ascontiguousarray(X, np.float64)
    Y = np.ascontiguousarray(Y, np.float64)
    return FlowProblem(
        np.ascontiguousarray(dims, np.int64),
        la.matmul(X, X.T),
        la.matmul(Y, X.T),
        float(np.sum(Y * Y)),
    )


def integrate(
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
        gn = la.norm(g)
        h0 = 1e-3 * max(la.norm(w - ref), 1e-300) / gn if gn > 0 else t_max
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
    dims, w = check_weights(weights, Xm.shape[0], Ym.shape[0])
    ref = np.zeros_like(w) if w_ref is None else check_weights(w_ref, dims[0], dims[-1])[1]
    return integrate(
        dims, w, flow_problem(dims, Xm, Ym), t_max=t_max, t_record=t_record, rtol=rtol,
        atol=atol, w_ref=ref, h0=h0, h_max=h_max, grad_stop=grad_stop,
        settle_after_mark=settle_after_mark, loss_mark=loss_mark, loss_stop=loss_stop,
        max_evals=max_evals, record_weights=record_weights, integrator=integrator,
    )  # fmt: skip
