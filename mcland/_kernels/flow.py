"""Gradient flow ``dW/dt = -grad L(W)`` on the original (unwhitened) square loss.

Integrator: the embedded Runge-Kutta pair of Bogacki and Shampine, order 3 with an order-2
error estimate, first-same-as-last (three gradient evaluations per accepted step; one
gradient evaluation, which also yields the loss, is the cost unit and is counted).

Error control (docs/dynamics.md): the local error estimate ``e = y_3 - y_2`` of a step is
accepted when ``||e||_2 <= atol + rtol * max(||y_n - w_ref||, ||y_{n+1} - w_ref||)``.  The
tolerance is norm-wise and *relative to the displacement from a reference point*
``w_ref``: near a saddle ``W*`` (``w_ref = W*``) the displacement is tiny and the flow nearly
linear in it, and a tolerance relative to ``||W||`` would allow errors larger than the
perturbation being followed; with ``w_ref = 0`` it is the usual relative control.  Since the
local error of every mode, stable ones included, is then a fraction ``rtol`` of the
displacement, the control also keeps the step inside the stability region (a step that
lets a stiff mode grow is rejected).  Step update ``h <- h * min(grow, max(shrink, 0.9
err^(-1/3)))`` (no growth right after a rejection), ``h <= h_max``.

Dense output: the loss along a step is the cubic Hermite interpolant of ``L(t_n)``,
``L(t_{n+1})`` and their exact derivatives ``dL/dt = -||grad L||^2`` (free: no extra
gradient).  It gives the loss at the recording times and the first time the loss crosses
``loss_mark`` (bisection on the interpolant).

Flow time: the sum of the accepted steps, in float64 while every step is larger than
``1e-15 t`` (so ``t + h`` still resolves it).  A step at or below that (a fast transient
after a long plateau, e.g. the escape from a non-strict saddle at ``t ~ 1e11 ... 1e13``,
where the accuracy asks for steps of ``1e-4`` and less while ``1e-15 t`` is ``7e-5 ...
4e-2``) switches the run to a double-double time ``t + t_lo`` (:func:`advance_time`, an
exact two-sum) for the rest of the run; the dense output and ``t_mark`` then use it.  The
flow is autonomous, so the time never enters the steps themselves: a run whose steps all
stay above ``1e-15 t`` gives the same numbers, bit for bit, as a float64 clock.

Stopping, with a status (never an error): ``SETTLED`` when ``||grad L|| <= grad_stop``
(only after the loss crossed ``loss_mark`` when ``settle_after_mark``), ``LOSS_REACHED``
when ``L <= loss_stop``, ``BUDGET_EVALS`` / ``BUDGET_TIME`` when the gradient evaluations
or the flow time run out, ``FAILED`` when the loss is not finite or the step underflows
(``h <= max(1e-30 t, 1e-15 h0)``: it would not move even the double-double time).
"""

from __future__ import annotations

import numpy as np

from mcland._kernels.gd import value_and_gradient, workspace_size
from mcland._kernels.jit import jit, jit_inline

SETTLED = 0
LOSS_REACHED = 1
BUDGET_EVALS = 2
BUDGET_TIME = 3
FAILED = 4
STATUS_NAMES = ("settled", "loss_reached", "budget_evals", "budget_time", "failed")

# Bogacki-Shampine 3(2) coefficients
_A21 = 0.5
_A32 = 0.75
_B1 = 2.0 / 9.0
_B2 = 1.0 / 3.0
_B3 = 4.0 / 9.0
_E1 = -5.0 / 72.0  # y_3 - y_2: (2/9 - 7/24, 1/3 - 1/4, 4/9 - 1/3, -1/8)
_E2 = 1.0 / 12.0
_E3 = 1.0 / 9.0
_E4 = -1.0 / 8.0
_SAFETY = 0.9


@jit_inline
def start_records(L, w, t_record, loss_record, w_record):
    """Clear the records to NaN (a run that stops early leaves them so), then record the
    starting loss (and weights) at the recording times ``<= 0``; returns the index of the
    first recording time still ahead."""
    loss_record[:] = np.nan
    if w_record.shape[0] > 0:
        w_record[:, :] = np.nan
    rec = 0
    while rec < t_record.size and t_record[rec] <= 0.0:
        loss_record[rec] = L
        if w_record.shape[0] > 0:
            w_record[rec, :] = w
        rec += 1
    return rec


@jit_inline
def stop_status(L, g, t, t_mark, evals, per_step, control):
    """The status that ends the run before the next step, or -1 to go on: a non-finite
    loss, settled (``||grad|| <= grad_stop``, after the mark if asked), the loss level
    reached, no budget left for a step of ``per_step`` gradient evaluations, or the flow
    time budget spent."""
    if not np.isfinite(L):
        return FAILED
    if g <= control.grad_stop and (control.settle_after_mark == 0.0 or t_mark == t_mark):
        return SETTLED
    if control.loss_stop >= L:
        return LOSS_REACHED
    if evals + per_step > control.max_evals:
        return BUDGET_EVALS
    if t >= control.t_max:
        return BUDGET_TIME
    return -1


@jit_inline
def clip_step(h, t, t_lo, exact, control):
    """The step ``h`` from the time ``t + t_lo`` shortened to end at the time budget, and
    whether the time is to be kept in double-double from now on (``exact``: already so, or
    ``h <= 1e-15 t``, a step float64 would not resolve); ``h`` is 0 when it would not move
    even the double-double time (``h <= max(1e-30 t, 1e-15 h0)``; the run then fails)."""
    if t + h > control.t_max:
        h = (control.t_max - t) - t_lo
    if h <= 1e-15 * max(t, control.h0):
        if h <= max(1e-30 * t, 1e-15 * control.h0):
            return 0.0, exact
        exact = True
    return h, exact


@jit_inline
def advance_time(t, t_lo, h, exact):
    """The time ``t + t_lo`` advanced by the step ``h``: the plain float64 sum ``(t + h,
    0)`` unless ``exact``, then the double-double sum (an exact two-sum of ``t`` and ``h``,
    the low parts added, renormalised so that ``|t_lo| <= ulp(t) / 2``)."""
    if not exact:
        return t + h, 0.0
    s = t + h
    b = s - t
    lo = ((t - (s - b)) + (h - b)) + t_lo
    hi = s + lo
    return hi, lo - (hi - s)


@jit_inline
def record_step(L, D0, L_new, D1, t, t_lo, h, t_new, t_new_lo, w, f_start, w_new, f_end,
                t_record, loss_record, w_record, rec, t_mark, loss_mark):  # fmt: skip
    """Dense output of an accepted step from ``(t + t_lo, w)`` to ``(t_new + t_new_lo,
    w_new)`` (the step ``h``; the low parts are 0 unless the time is double-double,
    :func:`advance_time`): the loss (cubic Hermite from the losses and their slopes ``D0``,
    ``D1``) and, when ``w_record`` has rows, the weights (from the flows ``f_start``,
    ``f_end``) at the recording times in the step, from index ``rec`` on; and the first time
    the loss crosses ``loss_mark`` (bisection on the interpolant) if ``t_mark`` is still
    NaN.  Returns the next recording index and ``t_mark``.  With zero low parts the results
    are those of a float64 time, to the bit (``a - b <= 0`` iff ``a <= b`` for finite
    ``a``, ``b``; ``x - 0.0 == x``; ``0.0 + x == x`` for ``x >= 0``)."""
    while rec < t_record.size and t_record[rec] - t_new <= t_new_lo:
        theta = ((t_record[rec] - t) - t_lo) / h
        loss_record[rec] = _hermite(L, D0, L_new, D1, h, theta)
        if w_record.shape[0] > 0:
            _hermite_weights(w, f_start, w_new, f_end, h, theta, w_record[rec])
        rec += 1
    if t_mark != t_mark and L_new <= loss_mark:
        lo = 0.0
        hi = 1.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if _hermite(L, D0, L_new, D1, h, mid) <= loss_mark:
                hi = mid
            else:
                lo = mid
        t_mark = t + (t_lo + hi * h)
    return rec, t_mark


@jit_inline
def step_factor(err, exponent, control, rejected, last_rejected):
    """The factor of the next step after a step with error ratio ``err`` (``exponent``:
    ``-1 / (order + 1)`` of the error estimate): on a rejection at most 0.9, at least
    ``shrink``; on acceptance between ``shrink`` and ``grow``, at most 1 right after a
    rejection."""
    if rejected:
        fac = control.shrink
        if np.isfinite(err) and err > 0.0:
            fac = max(control.shrink, _SAFETY * err**exponent)
        return min(fac, 0.9)
    fac = control.grow
    if err > 0.0:
        fac = min(control.grow, max(control.shrink, _SAFETY * err**exponent))
    if last_rejected:
        fac = min(fac, 1.0)
    return fac


@jit
def loss_and_gradient(problem, w, g):
    """Loss at the flat point ``w`` (N,); its gradient is written into ``g`` (N,).

    ``problem`` is a :class:`~.bundles.FlowProblem`.  One call is one gradient evaluation:
    :func:`.gd.value_and_gradient` (prefix products forward, ``W_h^T`` products backward,
    ``O(d_x sum_h d_h d_{h-1})``) in one scratch buffer allocated per call.
    """
    return value_and_gradient(problem, w, g, np.empty(workspace_size(problem.dims)))


@jit
def _norm(x):
    s = 0.0
    for i in range(x.size):
        s += x[i] * x[i]
    return np.sqrt(s)


@jit
def _dist(x, y):
    s = 0.0
    for i in range(x.size):
        d = x[i] - y[i]
        s += d * d
    return np.sqrt(s)


@jit
def _hermite(L0, D0, L1, D1, h, theta):
    """Cubic Hermite interpolant on a step of length ``h`` at ``theta`` in [0, 1]."""
    t2 = theta * theta
    t3 = t2 * theta
    return (
        (2.0 * t3 - 3.0 * t2 + 1.0) * L0
        + (t3 - 2.0 * t2 + theta) * h * D0
        + (-2.0 * t3 + 3.0 * t2) * L1
        + (t3 - t2) * h * D1
    )


@jit
def _hermite_weights(w, k1, y_new, k4, h, theta, out):
    """Cubic Hermite interpolant of the weights on an accepted step: ``w`` at its start,
    ``y_new`` at its end, velocities ``k1``, ``k4`` (``-grad L``); into ``out`` (N,)."""
    t2 = theta * theta
    t3 = t2 * theta
    a0 = 2.0 * t3 - 3.0 * t2 + 1.0
    b0 = (t3 - 2.0 * t2 + theta) * h
    a1 = -2.0 * t3 + 3.0 * t2
    b1 = (t3 - t2) * h
    for i in range(w.size):
        out[i] = a0 * w[i] + b0 * k1[i] + a1 * y_new[i] + b1 * k4[i]


@jit_inline
def bs3_attempt(problem, control, w, f0, h, k2, k3, y, y_new, f_new):
    """One attempted Bogacki-Shampine step of length ``h`` from ``w`` (velocity ``f0 =
    -grad L(w)``): ``y_new`` and ``f_new = -grad L(y_new)`` (``k2``, ``k3`` the stages).
    Returns ``(L_new, err)``: the loss at ``y_new`` and the error ratio (``<= 1``: accept);
    three gradient evaluations."""
    N = w.size
    for i in range(N):
        y[i] = w[i] + h * _A21 * f0[i]
    loss_and_gradient(problem, y, k2)
    for i in range(N):
        k2[i] = -k2[i]
        y[i] = w[i] + h * _A32 * k2[i]
    loss_and_gradient(problem, y, k3)
    for i in range(N):
        k3[i] = -k3[i]
        y_new[i] = w[i] + h * (_B1 * f0[i] + _B2 * k2[i] + _B3 * k3[i])
    L_new = loss_and_gradient(problem, y_new, f_new)
    for i in range(N):
        f_new[i] = -f_new[i]
    e = 0.0
    for i in range(N):
        d = h * (_E1 * f0[i] + _E2 * k2[i] + _E3 * k3[i] + _E4 * f_new[i])
        e += d * d
    e = np.sqrt(e)
    scale = control.atol + control.rtol * max(_dist(w, control.w_ref), _dist(y_new, control.w_ref))
    err = e / scale if scale > 0.0 else (0.0 if e == 0.0 else np.inf)
    return L_new, err
