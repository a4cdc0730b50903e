"""Linearly implicit (Rosenbrock) steps of gradient flow ``dW/dt = -grad L(W)``, for stiff
stretches: slow escapes and plateaus next to directions of large curvature, where an
explicit step is held by stability to ``2.5 / lambda_max`` (docs/dynamics.md).

Method ROS34PW2 (J. Rang and L. Angermann, BIT 45 (2005) 761-787): four stages, order 3
with an embedded order-2 solution, L-stable and stiffly accurate, with the exact Jacobian
``J = -Hess L(W_n)`` (the Hessian of the original loss, :func:`.hessian.assemble_hessian`)
and ``gamma = 0.4358665215``.  The error estimate is the difference to the embedded
second-order solution, ``O(h^3)``, accepted under the same norm-wise control as
:mod:`.flow` (relative to the displacement from ``w_ref``), with the third-order solution
propagated, as the explicit Bogacki-Shampine pair does: the step grows like
``rtol^(1/3)`` and the result is more accurate than the tolerance.  A stable mode of any
curvature is damped (L-stability, ``R(-inf) = 0``), so the step is bounded by accuracy
alone.  (Up to 0.7: ROS2 of Verwer et al., whose first-order error estimate held its
step to ``rtol^(1/2)``, 10-40 times the evaluations of the explicit pair where nothing
is stiff.)

Cost per attempted step: four gradient evaluations, one LU factorisation of ``I + gamma h
Hess`` (partial pivoting, in place, ``N^3/3``), four solves and three products with the
Hessian; once per accepted point one Hessian assembly (a rejected step reuses it).

The linear algebra is passed to :func:`ros34_attempt` as three functions (``factor``,
``solve``, ``product``) on an operator ``op`` and a bundle of storage ``S``: here the
dense ones (``op`` the assembled Hessian, ``S`` a :class:`~.bundles.StiffDense`: ``N^2``
memory, :func:`dense_refresh`, :func:`dense_factor`, :func:`dense_solve`,
:func:`dense_product`); in :mod:`.krylov` the matrix-free ones (Hessian-vector products
and conjugate gradients, ``O(N d)``).  Numba compiles one specialisation of the step per
set of functions, so a kernel built on the dense ones contains no Krylov code and vice
versa.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels.flow import _dist, loss_and_gradient
from mcland._kernels.hessian import assemble_hessian
from mcland._kernels.jit import jit, jit_inline
from mcland._kernels.stiffness import dominant_dense


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


# ---------------------------------------------------------------------- the linear algebra
# The functions below are the only place where the dense stiff steps touch the Hessian:
# assembling it (N x N), factorising ``I + c Hess``, solving with the factors and products.
# The matrix-free variant (Hessian-vector products and conjugate gradients) is :mod:`.krylov`.


@jit_inline
def stiff_matrix(problem, w, hess):
    """The Hessian of the loss at the flat point ``w`` (N,), both triangles, into ``hess``
    (N, N): :func:`.hessian.assemble_hessian` (``O(N^2)`` memory)."""
    H_up = assemble_hessian(problem.dims, w, problem.Sxx, problem.Syx)
    N = w.size
    for i in range(N):
        for j in range(i, N):
            hess[i, j] = H_up[i, j]
            hess[j, i] = H_up[i, j]


@jit_inline
def stiff_factor(hess, c, M, piv):
    """LU factors of ``I + c Hess`` into ``M``, ``piv``; False when singular."""
    N = hess.shape[0]
    for i in range(N):
        for j in range(N):
            M[i, j] = c * hess[i, j]
        M[i, i] += 1.0
    return lu_factor(M, piv)


@jit_inline
def stiff_solve(M, piv, b, x):
    """``x = (I + c Hess)^{-1} b`` from :func:`stiff_factor`'s factors."""
    lu_solve(M, piv, b, x)


# The dense operations of the step, in the form :func:`ros34_attempt` takes them: ``op``
# the assembled Hessian (N, N), ``S`` a :class:`~.bundles.StiffDense`.


@jit_inline
def dense_refresh(problem, w, op, S, v, scratch, iters):
    """Assemble the Hessian at ``w`` into ``op``; with ``iters > 0`` also ``iters`` power
    iterations on it from ``v`` (:func:`.stiffness.dominant_dense`, ``scratch`` (N,)).
    Returns ``(op, rho, evals)``: the operator, the curvature estimate (0 when ``iters =
    0``) and the evaluations spent (none)."""
    stiff_matrix(problem, w, op)
    rho = 0.0
    if iters > 0:
        rho, _ = dominant_dense(op, v, scratch, iters)
    return op, rho, 0


@jit_inline
def dense_factor(op, S, c, w, control):
    """LU factors of ``I + c Hess`` into ``S.M``, ``S.piv``; False when singular."""
    return stiff_factor(op, c, S.M, S.piv)


@jit_inline
def dense_solve(op, S, b, x):
    """``x = (I + c Hess)^{-1} b`` from :func:`dense_factor`'s factors; always True."""
    stiff_solve(S.M, S.piv, b, x)
    return True


@jit_inline
def dense_product(op, S, u, out):
    """``out = Hess u`` (row by row, ``N^2``)."""
    N = u.size
    for i in range(N):
        s = 0.0
        for j in range(N):
            s += op[i, j] * u[j]
        out[i] = s


# ---------------------------------------------------------------------- the step


# ROS34PW2 (Rang and Angermann 2005): 4 stages, order 3, embedded order 2, L-stable,
# stiffly accurate; standard form (Hairer and Wanner, Solving ODEs II, IV.7)
_G = 4.3586652150845900e-01
_A21 = 8.7173304301691801e-01
_A31 = 8.4457060015369423e-01
_A32 = -1.1299064236484185e-01
_G21 = -8.7173304301691801e-01
_G31 = -9.0338057013044082e-01
_G32 = 5.4180672388095326e-02
_G41 = 2.4212380706095346e-01
_G42 = -1.2232505839045147e00
_G43 = 5.4526025533510214e-01
_B1 = 2.4212380706095346e-01
_B2 = -1.2232505839045147e00
_B3 = 1.5452602553351020e00
_B4 = 4.3586652150845900e-01
_E1 = _B1 - 3.7810903145819369e-01  # b - b_hat (embedded, order 2)
_E2 = _B2 - (-9.6042292212423178e-02)
_E3 = _B3 - 0.5
_E4 = _B4 - 2.1793326075422950e-01


@jit_inline
def _stage_rhs(problem, op, S, h, y, fy, u, rhs, product):
    """``rhs = h f(y) - h Hess u`` with ``f = -grad L``; ``fy`` scratch, ``S.hu`` the
    product.  Returns the loss at ``y``."""
    L = loss_and_gradient(problem, y, fy)
    product(op, S, u, S.hu)
    N = y.size
    for i in range(N):
        rhs[i] = -h * fy[i] - h * S.hu[i]
    return L


@jit_inline
def ros34_attempt(problem, control, w, f0, h, op, S, k1, k2, k3, k4, u, rhs, y, y_new, f_new,
                  factor, solve, product):  # fmt: skip
    """One attempted ROS34PW2 step of length ``h`` from ``w`` (velocity ``f0 = -grad L(w)``,
    Hessian operator ``op`` at ``w``): ``y_new`` and ``f_new = -grad L(y_new)``; ``k1 ..
    k4``, ``u``, ``rhs``, ``y`` scratch (N,), ``S`` the linear algebra's storage, ``factor``,
    ``solve``, ``product`` its operations (module docstring).  In the standard form with
    ``J = -Hess`` (Hairer and Wanner IV.7)::

        (I + gamma h Hess) k_i = h f(w + sum_j a_ij k_j) - h Hess sum_j gamma_ij k_j
        y_new = w + sum_i b_i k_i,   error estimate  sum_i (b_i - b^_i) k_i

    Returns ``(L_new, err, evals)``: the loss at ``y_new``, the error ratio (``<= 1``:
    accept) and the gradient evaluations spent: four (stages 2-4 and ``f(y_new)``), with
    one factorisation, four solves and three products with the Hessian.  When ``factor``
    or a ``solve`` fails (``I + gamma h Hess`` singular, or an iterative solve broke down
    or did not converge) the step is rejected (``err = inf``) with the evaluations spent
    until then."""
    N = w.size
    if not factor(op, S, _G * h, w, control):
        return np.nan, np.inf, 0
    for i in range(N):
        rhs[i] = h * f0[i]
    if not solve(op, S, rhs, k1):
        return np.nan, np.inf, 0
    for i in range(N):
        y[i] = w[i] + _A21 * k1[i]
        u[i] = _G21 * k1[i]
    _stage_rhs(problem, op, S, h, y, f_new, u, rhs, product)
    if not solve(op, S, rhs, k2):
        return np.nan, np.inf, 1
    for i in range(N):
        y[i] = w[i] + _A31 * k1[i] + _A32 * k2[i]
        u[i] = _G31 * k1[i] + _G32 * k2[i]
    _stage_rhs(problem, op, S, h, y, f_new, u, rhs, product)
    if not solve(op, S, rhs, k3):
        return np.nan, np.inf, 2
    for i in range(N):
        y[i] = w[i] + k3[i]
        u[i] = _G41 * k1[i] + _G42 * k2[i] + _G43 * k3[i]
    _stage_rhs(problem, op, S, h, y, f_new, u, rhs, product)
    if not solve(op, S, rhs, k4):
        return np.nan, np.inf, 3
    e = 0.0
    for i in range(N):
        y_new[i] = w[i] + _B1 * k1[i] + _B2 * k2[i] + _B3 * k3[i] + _B4 * k4[i]
        d = _E1 * k1[i] + _E2 * k2[i] + _E3 * k3[i] + _E4 * k4[i]
        e += d * d
    L_new = loss_and_gradient(problem, y_new, f_new)
    for i in range(N):
        f_new[i] = -f_new[i]
    e = np.sqrt(e)
    scale = control.atol + control.rtol * max(_dist(w, control.w_ref), _dist(y_new, control.w_ref))
    err = e / scale if scale > 0.0 else (0.0 if e == 0.0 else np.inf)
    return L_new, err, 4


@jit_inline
def dense_attempt(problem, control, w, f0, h, op, S, k1, k2, k3, k4, u, rhs, y, y_new, f_new):
    """:func:`ros34_attempt` with the dense linear algebra."""
    return ros34_attempt(problem, control, w, f0, h, op, S, k1, k2, k3, k4, u, rhs, y, y_new,
                         f_new, dense_factor, dense_solve, dense_product)  # fmt: skip
