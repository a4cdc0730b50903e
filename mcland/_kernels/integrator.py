"""Gradient flow ``dW/dt = -grad L(W)`` with explicit, linearly implicit or automatically
switched steps: the one integrator kernel of ``mcland dynamics`` (docs/dynamics.md).

:func:`integrate_flow` drives the run: error control, dense output, stopping rules and
the double-double time of :mod:`.flow`; the step is

* ``method = EXPLICIT``: the Bogacki-Shampine 3(2) pair (:func:`.flow.bs3_attempt`), three
  gradient evaluations per attempt;
* ``method = ROSENBROCK``: the linearly implicit ROS34PW2 pair
  (:func:`.rosenbrock.ros34_attempt`), order 3(2) and L-stable: four gradient
  evaluations, one Hessian assembly per accepted point and one factorisation of ``I +
  gamma h Hess`` per attempt;
* ``method = AUTO`` (the default of ``[dynamics]``): explicit steps while they are bounded
  by accuracy, linearly implicit ones while an explicit step would be bounded by
  stability, switching at run time (below).

**Switching** (``AUTO``).  An explicit step is stable on a mode of curvature ``lambda``
while ``h lambda <= 2.51`` (:mod:`.stiffness`).  Every ``patience`` accepted explicit
steps (:data:`CHECK_EVERY` at first) the largest curvature is estimated by the power
method on Hessian-vector products (:func:`.stiffness.dominant_hvp`, :data:`ITERS` gradient
evaluations, :data:`ITERS_FIRST` the first time, warm-started afterwards); when the last
accepted step had ``h rho >= ENTER`` with a positive dominant curvature, the explicit step
is held by stability and the run switches to linearly implicit steps.  These are damped on
every stable mode (L-stability), so their step follows accuracy alone; at each Hessian
assembly the same estimate is refreshed on the assembled matrix
(:func:`.stiffness.dominant_dense`, no gradient evaluation), and after :data:`LEAVE_COUNT`
consecutive accepted steps with ``h rho < LEAVE`` (the implicit step no longer gets much
beyond what an explicit one could take stably: its larger cost per step, a Hessian and a
factorisation, is no longer worth it) the run switches back.  A stretch of implicit steps
that never reached ``h rho >= PRODUCTIVE`` doubles the patience, so a run at the border
does not alternate every few steps.  Matrix-free implicit steps (:func:`integrate_flow_krylov`)
count their Hessian-vector products among the evaluations, tens per step; there the run
leaves a stretch once ``h rho`` falls below ``max(LEAVE, (BOUNDARY / 3) c)`` for ``c`` the
evaluations per accepted implicit step so far in the stretch (rejections and factor builds
included), the ``h rho`` at which an implicit step costs what the explicit steps covering
``h`` would (``3 h rho / BOUNDARY`` at best), and ``PRODUCTIVE`` scales with it.  Which
steps are taken changes only the cost: every
step of either kind passes the same error test, so the accuracy of the result does not
depend on the switching (tests/test_dynamics_reference.py checks both against an
independent stiff solver).

**Visits** (``monitor`` with rows): the index set ``S`` read at every accepted step and
located inside the step where it changed (:mod:`.visits`).

Determinism: one run is one thread of sequential arithmetic; the same inputs give the
same bits, whatever else runs beside it.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels.bundles import StiffDense, StiffKrylov
from mcland._kernels.flow import (
    FAILED,
    _norm,
    advance_time,
    bs3_attempt,
    clip_step,
    loss_and_gradient,
    record_step,
    start_records,
    step_factor,
    stop_status,
)
from mcland._kernels.hvp import hvp_factors, work_size
from mcland._kernels.jit import jit, jit_inline
from mcland._kernels.krylov import HVP, ITERATIONS, krylov_attempt, krylov_refresh
from mcland._kernels.rosenbrock import dense_attempt, dense_refresh
from mcland._kernels.stiffness import dominant_hvp, start_vector
from mcland._kernels.visits import (
    T_LEAVE,
    locate_changes,
    note_point,
    open_visit,
    read_mask,
)

EXPLICIT = 0
ROSENBROCK = 1
AUTO = 2
METHODS = {"explicit": EXPLICIT, "rosenbrock": ROSENBROCK, "auto": AUTO}

BOUNDARY = 2.5127  # the Bogacki-Shampine stability interval on the negative axis: (0, 2.51]
CHECK_EVERY = 32  # accepted explicit steps between two stiffness estimates (at first)
ITERS_FIRST = 8  # power iterations of the first estimate of a run
ITERS = 3  # ... of the later ones (warm-started)
ITERS_DENSE = 2  # ... on each assembled Hessian, in the implicit steps
ENTER = 1.5  # h lambda_max at which an explicit step counts as held by stability
LEAVE = 4.0  # implicit steps with h lambda_max below this are not worth their cost ...
LEAVE_COUNT = 3  # ... for this many accepted steps in a row: back to explicit steps
PRODUCTIVE = 10.0  # an implicit stretch that never reaches h lambda_max >= this doubles patience

# the entries of integrate_flow's result
OUT_STATUS = 0
OUT_T_END = 1
OUT_EVALS = 2
OUT_ACCEPTED = 3
OUT_REJECTED = 4
OUT_LOSS_END = 5
OUT_GRAD_END = 6
OUT_T_MARK = 7
OUT_LOSS_START = 8
OUT_GRAD_START = 9
OUT_HESSIANS = 10
OUT_STIFF_STEPS = 11
OUT_SWITCHES = 12
OUT_VISITS = 13
OUT_UNRESOLVED = 14
OUT_OVERFLOW = 15
OUT_ESTIMATE_EVALS = 16
OUT_HVPS = 17
OUT_KRYLOV_ITERS = 18
OUT_SIZE = 19


@jit
def integrate_flow(problem, control, w, t_record, loss_record, w_record, monitor):
    """Follow gradient flow from ``w`` (N,), overwritten with the final weights.

    Parameters
    ----------
    problem : FlowProblem
        Architecture and data moments.
    control : FlowControl
        Tolerances, step bounds, stopping rules, budgets and ``method`` (float64 fields;
        ``w_ref`` (N,)).
    w : ndarray (N,)
        Start point; on return the last accepted point.
    t_record : ndarray (K,)
        Ascending flow times at which the loss is recorded.
    loss_record : ndarray (K,)
        Output: the loss at ``t_record`` (dense output), NaN past the end of the run.
    w_record : ndarray (K, N) or (0, N)
        Output when it has K rows: the weights at ``t_record`` (cubic Hermite dense output
        with the exact velocities at both ends of the step), NaN past the end of the run.
    monitor : FlowMonitor
        The visited index sets (:mod:`.visits`); with 0 rows, off.

    Returns
    -------
    out : ndarray (OUT_SIZE,)
        Indexed by the ``OUT_*`` constants: status, flow time reached, gradient
        evaluations (all of them: steps, rejected steps, stiffness estimates and the
        visits' entry points), accepted and rejected steps, loss and gradient norm at the
        end, ``t_mark`` (first time with ``L <= loss_mark``, NaN if never), loss and
        gradient norm at the start, Hessian assemblies, accepted linearly implicit steps,
        switches between the two kinds, visits, unresolved visit changes, whether the
        visits overflowed their rows, the evaluations spent on stiffness estimates, and
        the Hessian-vector products and conjugate-gradient iterations (0 here: dense
        linear algebra; :func:`integrate_flow_krylov`).
    """
    ns = 0 if int(control.method) == EXPLICIT else w.size  # the implicit steps' arrays
    S = StiffDense(np.empty((ns, ns)), np.empty(ns, np.int64), np.empty(ns),
                   np.zeros(2, np.int64))  # fmt: skip
    return _integrate(problem, control, w, t_record, loss_record, w_record, monitor,
                      np.empty((ns, ns)), S, dense_refresh, dense_attempt, 0.0)  # fmt: skip


@jit
def integrate_flow_krylov(problem, control, w, t_record, loss_record, w_record, monitor,
                          fraction, max_iter):  # fmt: skip
    """:func:`integrate_flow` with matrix-free linearly implicit steps (:mod:`.krylov`):
    Hessian-vector products and conjugate gradients, ``O(N d)`` memory, for ``method =
    ROSENBROCK`` or ``AUTO`` on networks too wide for the dense Hessian.  ``fraction``
    (float64) the solve tolerance over the step's error tolerance, ``max_iter`` (int64)
    the conjugate-gradient iterations per solve; ``n_hessians`` counts the factor builds
    (:func:`.hvp.hvp_factors`), and the evaluations include the Hessian-vector products
    (:data:`.krylov.HVP_EVALS` each; also returned apart: ``OUT_HVPS``,
    ``OUT_KRYLOV_ITERS``)."""
    N = w.size
    S = StiffKrylov(np.empty(N), np.empty(N), np.empty(N), np.empty(N),
                    np.empty(work_size(problem.dims)), np.zeros(2, np.int64), np.zeros(2),
                    fraction, max_iter)  # fmt: skip
    op = hvp_factors(problem.dims, w, problem.Sxx, problem.Syx)  # replaced before first use
    return _integrate(problem, control, w, t_record, loss_record, w_record, monitor, op, S,
                      krylov_refresh, krylov_attempt, BOUNDARY / 3.0)  # fmt: skip


@jit_inline
def _integrate(problem, control, w, t_record, loss_record, w_record, monitor, op, S, refresh,
               attempt, leave_per_eval):  # fmt: skip
    """The body of :func:`integrate_flow` and :func:`integrate_flow_krylov`: ``op`` the
    Hessian operator (refreshed in place or replaced by ``refresh`` at each accepted point
    where an implicit step is tried), ``S`` the linear algebra's storage, ``attempt`` the
    implicit step (:func:`.rosenbrock.dense_attempt` or :func:`.krylov.krylov_attempt`).

    ``leave_per_eval``: 0 when an implicit step's linear algebra is not counted in the
    evaluations (dense: the thresholds :data:`LEAVE` and :data:`PRODUCTIVE`); else the
    break-even ``h rho`` per evaluation an implicit step costs (matrix-free steps:
    ``BOUNDARY / 3``, since explicit steps cover ``h`` in ``3 h rho / BOUNDARY``
    evaluations at best), so that an implicit stretch is left once its steps, at the
    evaluations they cost on average, no longer beat explicit ones (module docstring)."""
    N = w.size
    method = int(control.method)
    dims = problem.dims
    f0 = np.empty(N)
    f_new = np.empty(N)
    k2 = np.empty(N)
    k3 = np.empty(N)
    y = np.empty(N)
    y_new = np.empty(N)
    ns = 0 if method == EXPLICIT else N  # the implicit steps' arrays: none when explicit only
    k1 = np.empty(ns)
    k4 = np.empty(ns)
    u = np.empty(ns)
    rhs = np.empty(ns)
    v = np.empty(N if method == AUTO else 0)
    if method == AUTO:
        start_vector(v)
    L = loss_and_gradient(problem, w, f0)
    for i in range(N):
        f0[i] = -f0[i]
    evals = 1
    g = _norm(f0)
    out = np.full(OUT_SIZE, np.nan)
    out[OUT_LOSS_START] = L
    out[OUT_GRAD_START] = g
    t = 0.0
    t_lo = 0.0  # the low part of a double-double time (mcland._kernels.flow)
    exact = False
    rec = start_records(L, w, t_record, loss_record, w_record)
    t_mark = np.nan
    if control.loss_mark >= L:
        t_mark = 0.0
    # the visited index sets
    J = monitor.mask.size
    n_vis = 0
    unresolved = 0
    overflow = False
    d_big = 0
    for d in dims:
        d_big = max(d_big, d)
    P = np.empty(dims[dims.size - 1] * dims[0] if J > 0 else 0)
    tmp = np.empty(d_big * dims[0] if J > 0 else 0)
    buf = np.empty(N if J > 0 else 0)
    gbuf = np.empty(N if J > 0 else 0)
    thr = monitor.rate_threshold
    if J > 0:
        open_visit(monitor, 0, read_mask(w, dims, monitor.read, monitor.K, P, tmp))
        note_point(monitor, 0, 0.0, L, g, 0.0, w, thr, False)
        n_vis = 1
    h = min(control.h0, control.h_max)
    accepted = 0
    rejected = 0
    last_rejected = False
    status = -1
    stiff = method == ROSENBROCK
    have_hess = False
    n_hess = 0
    n_stiff = 0
    n_switch = 0
    est_evals = 0
    since_check = 0
    patience = CHECK_EVERY
    first_estimate = True
    rho = 0.0
    leave_run = 0
    stretch_best = 0.0
    stretch_start = 0  # evaluations at the start of the implicit stretch
    stretch_steps = 0  # its accepted steps
    while True:
        status = stop_status(L, g, t, t_mark, evals, 4 if stiff else 3, control)
        if status >= 0:
            break
        h, exact = clip_step(h, t, t_lo, exact, control)
        if h == 0.0:
            status = FAILED
            break
        if stiff:
            if not have_hess:
                op, rho_new, spent = refresh(problem, w, op, S, v, rhs,
                                             ITERS_DENSE if method == AUTO else 0)  # fmt: skip
                evals += spent
                n_hess += 1
                have_hess = True
                if method == AUTO:
                    rho = rho_new
            L_new, err, spent = attempt(problem, control, w, f0, h, op, S, k1, k2, k3, k4, u,
                                        rhs, y, y_new, f_new)  # fmt: skip
            evals += spent
        else:
            L_new, err = bs3_attempt(problem, control, w, f0, h, k2, k3, y, y_new, f_new)
            evals += 3
        if not (err <= 1.0) or not np.isfinite(L_new):
            rejected += 1
            last_rejected = True
            h *= step_factor(err, -1.0 / 3.0, control, True, True)
            continue
        # accepted: dense output over [t, t + h], then the visited sets
        g_new = _norm(f_new)
        t_new, t_new_lo = advance_time(t, t_lo, h, exact)
        rec, t_mark = record_step(L, -g * g, L_new, -g_new * g_new, t, t_lo, h, t_new,
                                  t_new_lo, w, f0, y_new, f_new, t_record, loss_record,
                                  w_record, rec, t_mark, control.loss_mark)  # fmt: skip
        if J > 0:
            m_new = read_mask(y_new, dims, monitor.read, monitor.K, P, tmp)
            if m_new != monitor.mask[n_vis - 1]:
                n_vis, spent, bad, full = locate_changes(problem, t, t_lo, h, w, f0, y_new,
                                                         f_new, m_new, monitor, n_vis, buf,
                                                         gbuf, P, tmp)  # fmt: skip
                evals += spent
                unresolved += bad
                overflow = overflow or full
            note_point(monitor, n_vis - 1, t_new, L_new, g_new, t_new * g_new * g_new, y_new,
                       thr, True)  # fmt: skip
        h_acc = h
        for i in range(N):
            w[i] = y_new[i]
            f0[i] = f_new[i]
        have_hess = False
        t = t_new
        t_lo = t_new_lo
        L = L_new
        g = g_new
        accepted += 1
        fac = step_factor(err, -1.0 / 3.0, control, False, last_rejected)
        last_rejected = False
        h = min(h * fac, control.h_max)
        if stiff:
            n_stiff += 1
        if method != AUTO:
            continue
        # switching (module docstring)
        if stiff:
            stretch_best = max(stretch_best, h_acc * rho)
            leave = LEAVE
            productive = PRODUCTIVE
            if leave_per_eval > 0.0:  # counted linear algebra: break even on its cost
                stretch_steps += 1
                leave = max(LEAVE, leave_per_eval * (evals - stretch_start) / stretch_steps)
                productive = leave * (PRODUCTIVE / LEAVE)
            leave_run = leave_run + 1 if h * rho < leave else 0
            if leave_run >= LEAVE_COUNT:
                stiff = False
                n_switch += 1
                since_check = 0
                if stretch_best < productive:
                    patience *= 2
        else:
            since_check += 1
            iters = ITERS_FIRST if first_estimate else ITERS
            if since_check >= patience and evals + iters + 3 <= control.max_evals:
                since_check = 0
                first_estimate = False
                rho, q = dominant_hvp(problem, w, f0, v, y, k2, iters)
                evals += iters
                est_evals += iters
                if q > 0.0 and h_acc * rho >= ENTER:
                    stiff = True
                    n_switch += 1
                    leave_run = 0
                    stretch_best = 0.0
                    stretch_start = evals
                    stretch_steps = 0
    if J > 0:
        monitor.info[n_vis - 1, T_LEAVE] = t
    out[OUT_STATUS] = status
    out[OUT_T_END] = t
    out[OUT_EVALS] = evals
    out[OUT_ACCEPTED] = accepted
    out[OUT_REJECTED] = rejected
    out[OUT_LOSS_END] = L
    out[OUT_GRAD_END] = g
    out[OUT_T_MARK] = t_mark
    out[OUT_HESSIANS] = n_hess
    out[OUT_STIFF_STEPS] = n_stiff
    out[OUT_SWITCHES] = n_switch
    out[OUT_VISITS] = n_vis
    out[OUT_UNRESOLVED] = unresolved
    out[OUT_OVERFLOW] = 1.0 if overflow else 0.0
    out[OUT_ESTIMATE_EVALS] = est_evals
    out[OUT_HVPS] = S.counts[HVP]
    out[OUT_KRYLOV_ITERS] = S.counts[ITERATIONS]
    return out
