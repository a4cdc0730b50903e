"""Gradient flow ``dW/dt = -grad L(W)`` from given weights (:func:`gradient_flow`), with the
one adaptive integrator kernel of :mod:`mcland._kernels.integrator`: explicit steps
(:mod:`mcland._kernels.flow`), linearly implicit ones (:mod:`mcland._kernels.rosenbrock`,
for stiff stretches), or both switched automatically (the default); and the index sets
``S`` a run visits (:class:`Visits`, :mod:`mcland._kernels.visits`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mcland._kernels import hvp
from mcland._kernels import integrator as ki
from mcland._kernels import krylov as kk
from mcland._kernels.bundles import FlowControl, FlowMonitor, FlowProblem
from mcland._kernels.flow import STATUS_NAMES, loss_and_gradient
from mcland._kernels.visits import N_INFO
from mcland.core import linalg as la  # products and norms without the process's BLAS
from mcland.core.errors import MclandError
from mcland.core.problem import Problem, as_matrix
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
        Hessian assemblies (linearly implicit steps only); with matrix-free implicit steps
        (``krylov``), builds of the Hessian-vector factors instead.
    n_stiff_steps : int
        Accepted linearly implicit steps (``integrator = "rosenbrock"``: all; ``"auto"``:
        those taken where an explicit step was held by stability).
    n_switches : int
        Switches between explicit and linearly implicit steps (``"auto"``).
    estimate_evals : int
        Gradient evaluations spent on stiffness estimates (``"auto"``; part of
        ``n_evals``).
    visits : Visits or None
        The index sets visited (``monitor`` given).
    krylov : bool
        The implicit steps were matrix-free (``N >`` :data:`DENSE_STIFF_MAX_N`):
        Hessian-vector products and conjugate gradients (docs/dynamics.md).
    n_hvps : int
        Hessian-vector products (``krylov``; part of ``n_evals``, two evaluations each:
        :data:`mcland._kernels.krylov.HVP_EVALS`).
    krylov_iters : int
        Conjugate-gradient iterations (``krylov``).
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
    n_stiff_steps: int = 0
    n_switches: int = 0
    estimate_evals: int = 0
    visits: Visits | None = None
    krylov: bool = False
    n_hvps: int = 0
    krylov_iters: int = 0


INTEGRATORS = tuple(ki.METHODS)
"""Values of ``integrator``: ``explicit``, ``rosenbrock``, ``auto``."""

DENSE_STIFF_MAX_N = 100
"""Largest number of weights ``N`` whose linearly implicit steps (``auto``, ``rosenbrock``)
use the dense Hessian and its LU factors (``2 N^2`` float64, ``N^3 / 3`` per attempted
step); above it they are matrix-free (:mod:`mcland._kernels.krylov`: Hessian-vector
products and conjugate gradients, ``O(N d)``), measured as fast at ``N = 96`` and 5 times
faster at ``N = 144`` (benchmarks/results/krylov-flow.txt; docs/dynamics.md).  Every
network ``mcland dynamics`` draws in the studies of runs/dynamics_*.toml has ``N <= 48``."""


def matrix_free_steps(N: int, integrator: str) -> bool:
    """Whether ``integrator``'s linearly implicit steps on ``N`` weights are matrix-free
    (``N >`` :data:`DENSE_STIFF_MAX_N`; ``explicit`` takes none)."""
    return integrator != "explicit" and N > DENSE_STIFF_MAX_N


STIFF_BYTES_MAX = 1 << 30
"""Largest memory of a run's arrays besides the recorded weights (the matrix-free steps'
vectors and factors) that :func:`integrate` allocates; a larger run is refused."""


def stiff_bytes(dims: np.ndarray, integrator: str) -> int:
    """Bytes of the integrator's arrays for the widths ``dims`` (H+1,): ``2 N^2`` float64
    for the dense linearly implicit steps, else about 20 vectors of ``N`` plus, for the
    matrix-free ones, the Hessian-vector factors (:func:`mcland._kernels.hvp.factor_size`)
    and their work buffer."""
    dims = np.asarray(dims, np.int64)
    N = int(np.sum(dims[1:] * dims[:-1]))
    if integrator == "explicit":
        return 8 * 12 * N
    if not matrix_free_steps(N, integrator):
        return 8 * (2 * N * N + 20 * N)
    table, C, G = hvp.factor_size.py_func(dims)  # plain Python: nothing compiled
    return 8 * (20 * N + table + C + 2 * G + int(hvp.work_size.py_func(dims)))


@dataclass(frozen=True)
class Visits:
    """The index sets ``S`` a run visited, in time order (:mod:`mcland._kernels.visits`).

    Attributes
    ----------
    S : list of list of int
        Each visit's set (1-based indices).
    info : ndarray (n, N_INFO)
        Per visit, the columns named by the ``mcland._kernels.visits`` constants (entry and
        exit time, smallest rate ``t ||grad L||^2``, first and last accepted-step time on
        the plateau criterion, smallest gradient norm, its time and loss, accepted steps).
    w_min : ndarray (n, N)
        The weights at each visit's accepted point of smallest gradient.
    unresolved : int
        Changes of more than one index that could not be ordered (docs/dynamics.md).
    overflow : bool
        More visits than rows: the sequence is incomplete.
    """

    S: list[list[int]]
    info: np.ndarray
    w_min: np.ndarray
    unresolved: int
    overflow: bool


def monitor(N: int, problem: Problem | None = None, rate_threshold: float = 0.0,
            rows: int = 0) -> FlowMonitor:  # fmt: skip
    """The visits' bundle: off (no rows) without ``problem``; else ``rows`` rows reading
    ``S`` with the problem's ``U``, ``lambda`` and ``K = Sxx^(1/2)``."""
    if problem is None or rows == 0:
        return FlowMonitor(np.zeros((0, 0)), np.zeros((0, 0)), 0.0, np.zeros(0, np.int64),
                           np.zeros((0, N_INFO)), np.zeros((0, N)))  # fmt: skip
    read = np.ascontiguousarray(problem.U.T / np.sqrt(problem.lam)[:, None], np.float64)
    return FlowMonitor(
        read, np.ascontiguousarray(problem.K, np.float64), float(rate_threshold),
        np.zeros(rows, np.int64), np.full((rows, N_INFO), np.nan), np.full((rows, N), np.nan),
    )  # fmt: skip


def _visits(mon: FlowMonitor, out: np.ndarray) -> Visits | None:
    if mon.mask.size == 0:
        return None
    n = int(out[ki.OUT_VISITS])
    S = [[i + 1 for i in range(64) if (int(m) >> i) & 1] for m in mon.mask[:n]]
    return Visits(S, mon.info[:n].copy(), mon.w_min[:n].copy(),
                  int(out[ki.OUT_UNRESOLVED]), bool(out[ki.OUT_OVERFLOW]))  # fmt: skip


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
    integrator: str = "auto", visits: FlowMonitor | None = None,
) -> FlowResult:  # fmt: skip
    """:func:`gradient_flow` on a flat start ``w`` (N,) (copied) and a built problem;
    ``visits`` (:func:`monitor`) reads the index sets visited."""
    if integrator not in ki.METHODS:
        raise MclandError(
            f"integrator must be one of {', '.join(map(repr, ki.METHODS))}, got {integrator!r}"
        )
    w = np.array(w, np.float64)
    need = stiff_bytes(dims, integrator)
    if need > STIFF_BYTES_MAX:
        raise MclandError(
            f"integrator {integrator!r} needs {need / 2**20:,.0f} MiB of work arrays for "
            f"N = {w.size:,} weights (limit {STIFF_BYTES_MAX / 2**20:,.0f} MiB)"
        )
    krylov = matrix_free_steps(w.size, integrator)
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
        float(max_evals), float(t_max), float(ki.METHODS[integrator]), ref,
    )  # fmt: skip
    times = np.zeros(0) if t_record is None else np.ascontiguousarray(t_record, np.float64)
    record = np.empty(times.size)
    w_rec = np.empty((times.size if record_weights else 0, w.size))
    mon = visits if visits is not None else monitor(w.size)
    if krylov:
        out = ki.integrate_flow_krylov(problem, control, w, times, record, w_rec, mon,
                                       float(kk.SOLVE_FRACTION), int(kk.MAX_ITER))  # fmt: skip
    else:
        out = ki.integrate_flow(problem, control, w, times, record, w_rec, mon)
    return FlowResult(
        weights=[W.copy() for W in split_layers(w, dims)],
        status=STATUS_NAMES[int(out[ki.OUT_STATUS])],
        t_end=float(out[ki.OUT_T_END]),
        t_mark=float(out[ki.OUT_T_MARK]),
        loss_start=float(out[ki.OUT_LOSS_START]),
        loss_end=float(out[ki.OUT_LOSS_END]),
        grad_start=float(out[ki.OUT_GRAD_START]),
        grad_end=float(out[ki.OUT_GRAD_END]),
        n_evals=int(out[ki.OUT_EVALS]),
        n_steps=int(out[ki.OUT_ACCEPTED]),
        n_rejected=int(out[ki.OUT_REJECTED]),
        t_record=times,
        loss_record=record,
        w_record=w_rec if record_weights else None,
        n_hessians=int(out[ki.OUT_HESSIANS]),
        n_stiff_steps=int(out[ki.OUT_STIFF_STEPS]),
        n_switches=int(out[ki.OUT_SWITCHES]),
        estimate_evals=int(out[ki.OUT_ESTIMATE_EVALS]),
        visits=_visits(mon, out),
        krylov=krylov,
        n_hvps=int(out[ki.OUT_HVPS]),
        krylov_iters=int(out[ki.OUT_KRYLOV_ITERS]),
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
    integrator: str = "auto",
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
        ``"auto"`` (default): explicit steps, switched to linearly implicit ones where an
        explicit step is held by stability (:mod:`mcland._kernels.integrator`);
        ``"explicit"``: the Bogacki-Shampine pair only (:mod:`mcland._kernels.flow`);
        ``"rosenbrock"``: the ROS34PW2 pair (order 3(2), L-stable) with the exact Hessian
        only (:mod:`mcland._kernels.rosenbrock`).  The implicit steps use the dense
        Hessian up to :data:`DENSE_STIFF_MAX_N` weights, Hessian-vector products and
        conjugate gradients above (:mod:`mcland._kernels.krylov`).

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
