"""Gradient flow ``dW/dt = -grad L(W)`` with a linearly implicit (Rosenbrock) integrator,
for stiff stretches: slow escapes next to directions of large curvature.

Method ROS2 (Verwer, Spee, Blom and Hundsdorfer 1999), order 2, L-stable, with the exact
Jacobian ``J = -Hess L(W_n)`` (the Hessian of the original loss, :func:`.hessian.assemble_hessian`)
and ``gamma = 1 + 1/sqrt(2)``::

    (I + gamma h Hess) k1 = -grad L(W_n)
    (I + gamma h Hess) k2 = -grad L(W_n + h k1) - 2 k1
    W_{n+1} = W_n + 3/2 h k1 + 1/2 h k2

Error estimate: the difference to the embedded first-order solution ``W_n + h k1``, ``e = h
(k1 + k2) / 2``, accepted under the same norm-wise control as :mod:`.flow` (relative to the
displacement from ``w_ref``); step update ``h <- h min(grow, max(shrink, 0.9 err^(-1/2)))``.
A stable mode of any curvature is damped (L-stability), so the step is bounded by accuracy
alone: on a plateau next to stiff directions it grows far beyond ``2 / lambda_max``, where
the explicit pair of :mod:`.flow` is held by stability.

Cost per attempted step: two gradient evaluations (``W_n + h k1`` and ``W_{n+1}``, the
latter reused as the next step's ``k1`` right-hand side), one LU factorisation (partial
pivoting, in place, N^3/3) and, once per accepted point, one Hessian assembly (a rejected
step reuses it).  Dense output, stopping rules and statuses are those of
:func:`.flow.integrate_dense` (cubic Hermite interpolation with the exact velocities).
"""

from __future__ import annotations

import numpy as np

from mcland._kernels.flow import (
    FAILED,
    _dist,
    _norm,
    advance_time,
    clip_step,
    loss_and_gradient,
    record_step,
    start_records,
    step_factor,
    stop_status,
)
from mcland._kernels.hessian import assemble_hessian
from mcland._kernels.jit import jit

GAMMA = 1.0 + 1.0 / np.sqrt(2.0)


@jit
def lu_factor(A, piv):
    """LU factorisation with partial pivoting of the square ``A`` (n, n), in place
    (``L`` unit lower, ``U`` upper); row swaps in ``piv`` (n,).  Returns False when a pivot
    is zero or not finite (the matrix is singular to working precision)."""
    n = A.shape[0]
    for k in range(n):
        p = k
        big = abs(A[k, k])
        for i in range(k + 1, n):
            if abs(A[i, k]) > big:
                big = abs(A[i, k])
                p = i
        if not (big > 0.0) or not np.isfinite(big):
            return False
        piv[k] = p
        if p != k:
            for j in range(n):
                tmp = A[k, j]
                A[k, j] = A[p, j]
                A[p, j] = tmp
        inv = 1.0 / A[k, k]
        for i in range(k + 1, n):
            A[i, k] *= inv
            f = A[i, k]
            if f != 0.0:
                for j in range(k + 1, n):
                    A[i, j] -= f * A[k, j]
    return True


@jit
def lu_solve(LU, piv, b, x):
    """Solve ``A x = b`` from :func:`lu_factor`'s output; ``x`` (n,) may not alias ``b``."""
    n = LU.shape[0]
    for i in range(n):
        x[i] = b[i]
    for k in range(n):
        p = piv[k]
        if p != k:
            tmp = x[k]
            x[k] = x[p]
            x[p] = tmp
    for i in range(n):
        s = x[i]
        for j in range(i):
            s -= LU[i, j] * x[j]
        x[i] = s
    for i in range(n - 1, -1, -1):
        s = x[i]
        for j in range(i + 1, n):
            s -= LU[i, j] * x[j]
        x[i] = s / LU[i, i]


@jit
def integrate_stiff(problem, control, w, t_record, loss_record, w_record):
    """Follow gradient flow from ``w`` (N,) with ROS2, overwriting ``w`` with the final
    weights.  Arguments as :func:`.flow.integrate_dense`.

    Returns
    -------
    out : ndarray (11,)
        As :func:`.flow.integrate_dense`'s ten entries, then the number of Hessian
        assemblies.
    """
    N = w.size
    w_ref = control.w_ref
    f0 = np.empty(N)
    f1 = np.empty(N)
    f_new = np.empty(N)
    k1 = np.empty(N)
    k2 = np.empty(N)
    rhs = np.empty(N)
    y = np.empty(N)
    y_new = np.empty(N)
    hess = np.empty((N, N))
    M = np.empty((N, N))
    piv = np.empty(N, np.int64)
    L = loss_and_gradient(problem, w, f0)
    for i in range(N):
        f0[i] = -f0[i]
    evals = 1
    n_hess = 0
    have_hess = False
    g = _norm(f0)
    out = np.full(11, np.nan)
    out[8] = L
    out[9] = g
    t = 0.0
    t_lo = 0.0  # the low part of a double-double time (mcland._kernels.flow)
    exact = False
    rec = start_records(L, w, t_record, loss_record, w_record)
    t_mark = np.nan
    if control.loss_mark >= L:
        t_mark = 0.0
    h = min(control.h0, control.h_max)
    accepted = 0
    rejected = 0
    last_rejected = False
    status = -1
    while True:
        status = stop_status(L, g, t, t_mark, evals, 2, control)
        if status >= 0:
            break
        h, exact = clip_step(h, t, t_lo, exact, control)
        if h == 0.0:
            status = FAILED
            break
        if not have_hess:
            H_up = assemble_hessian(problem.dims, w, problem.Sxx, problem.Syx)
            for i in range(N):
                for j in range(i, N):
                    hess[i, j] = H_up[i, j]
                    hess[j, i] = H_up[i, j]
            n_hess += 1
            have_hess = True
        c = GAMMA * h
        for i in range(N):
            for j in range(N):
                M[i, j] = c * hess[i, j]
            M[i, i] += 1.0
        ok = lu_factor(M, piv)
        err = np.inf
        L_new = np.nan
        if ok:
            lu_solve(M, piv, f0, k1)
            for i in range(N):
                y[i] = w[i] + h * k1[i]
            loss_and_gradient(problem, y, f1)
            for i in range(N):
                rhs[i] = -f1[i] - 2.0 * k1[i]
            lu_solve(M, piv, rhs, k2)
            for i in range(N):
                y_new[i] = w[i] + h * (1.5 * k1[i] + 0.5 * k2[i])
            L_new = loss_and_gradient(problem, y_new, f_new)
            for i in range(N):
                f_new[i] = -f_new[i]
            evals += 2
            e = 0.0
            for i in range(N):
                d = 0.5 * h * (k1[i] + k2[i])
                e += d * d
            e = np.sqrt(e)
            scale = control.atol + control.rtol * max(_dist(w, w_ref), _dist(y_new, w_ref))
            err = e / scale if scale > 0.0 else (0.0 if e == 0.0 else np.inf)
        if not (err <= 1.0) or not np.isfinite(L_new):
            rejected += 1
            last_rejected = True
            h *= step_factor(err, -0.5, control, True, True)
            continue
        g_new = _norm(f_new)
        t_new, t_new_lo = advance_time(t, t_lo, h, exact)
        rec, t_mark = record_step(L, -g * g, L_new, -g_new * g_new, t, t_lo, h, t_new,
                                  t_new_lo, w, f0, y_new, f_new, t_record, loss_record,
                                  w_record, rec, t_mark, control.loss_mark)  # fmt: skip
        for i in range(N):
            w[i] = y_new[i]
            f0[i] = f_new[i]
        have_hess = False
        t = t_new
        t_lo = t_new_lo
        L = L_new
        g = g_new
        accepted += 1
        fac = step_factor(err, -0.5, control, False, last_rejected)
        last_rejected = False
        h = min(h * fac, control.h_max)
    out[0] = status
    out[1] = t
    out[2] = evals
    out[3] = accepted
    out[4] = rejected
    out[5] = L
    out[6] = g
    out[7] = t_mark
    out[10] = n_hess
    return out
