"""Matrix-free linearly implicit (ROS34PW2) steps: Hessian-vector products and conjugate
gradients instead of the assembled Hessian and its LU factors, for networks whose ``N x
N`` Hessian is too large to assemble or factorise (docs/dynamics.md, "Matrix-free
implicit steps").

The step is :func:`.rosenbrock.ros34_attempt` with the operations below: ``op`` the
factors of the Hessian's action at ``W_n`` (:func:`.hvp.hvp_factors`, ``O(H^2 d^2 d_x)``,
once per accepted point where an implicit step is tried; counted as ``n_hessians``), each
product :func:`.hvp.hvp_into` (``O(N d)``), and each stage equation ``(I + c Hess) x = b``
(``c = gamma h``) solved by conjugate gradients from ``x = 0``:

* ``I + c Hess`` is symmetric, and positive definite while ``c |lambda_min| < 1``; on an
  unstable mode the error control keeps ``h |lambda_min|`` small.  A direction with
  ``p^T (I + c Hess) p <= 0`` (or not finite) is a breakdown: the solve fails, the attempt
  is rejected and the step shrinks (by the rejection factor, at least 5 times), which
  restores positive definiteness.
* The Hessian of a deep linear network has rank far below ``N``: ``I + c Hess`` has the
  eigenvalue 1 on the null space, and conjugate gradients from ``x = 0`` end in at most
  (number of distinct nonzero eigenvalues + 1) iterations in exact arithmetic.
* Stopping: ``||r|| <= max(fraction (atol + rtol ||W_n - W_ref||), 1e-14 ||b||)`` with
  ``fraction`` = :data:`SOLVE_FRACTION` (derivation in docs/dynamics.md): a solve error
  a small fraction of the step's error tolerance, so that the error control sees the
  method's error, not the solver's.  More than ``max_iter`` iterations: the solve fails.

Counters (``S.counts``): Hessian-vector products (conjugate gradients, the stage
right-hand sides and the stiffness estimates) and conjugate-gradient iterations.  The
products are returned among the evaluations spent, :data:`HVP_EVALS` each (one product
from the factors costs about two gradient evaluations: measured 1.9 at hidden width 32,
2.2 at 256, depth 3), so that ``n_evals`` stays the cost unit and ``max_evals`` bounds
the work.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels.flow import _dist
from mcland._kernels.hvp import hvp_factors, hvp_into
from mcland._kernels.jit import jit_inline
from mcland._kernels.rosenbrock import ros34_attempt
from mcland._kernels.stiffness import dominant_factors

SOLVE_FRACTION = 1e-3  # the solve's residual tolerance over the step's error tolerance
SOLVE_FLOOR = 1e-14  # ... at least this times ||b|| (what float64 can resolve)
MAX_ITER = 500  # conjugate-gradient iterations after which a solve counts as failed
HVP_EVALS = 2  # gradient evaluations counted per Hessian-vector product
HVP = 0  # S.counts: Hessian-vector products
ITERATIONS = 1  # S.counts: conjugate-gradient iterations


@jit_inline
def cg_solve(f, c, b, x, S, tol):
    """Conjugate gradients for ``(I + c Hess) x = b`` from ``x = 0``, ``Hess`` applied by
    :func:`.hvp.hvp_into` from the factors ``f``; ``b``, ``x`` (N,); ``S`` a
    :class:`~.bundles.StiffKrylov` (vectors, counters, ``max_iter``).  Stops when the
    recursive residual ``||r|| <= max(tol, SOLVE_FLOOR ||b||)``.  Returns False on a
    breakdown (``p^T (I + c Hess) p <= 0`` or not finite) or after ``S.max_iter``
    iterations without convergence."""
    N = b.size
    r = S.r
    p = S.p
    ap = S.ap
    rr = 0.0
    for i in range(N):
        x[i] = 0.0
        r[i] = b[i]
        p[i] = b[i]
        rr += b[i] * b[i]
    tol = max(tol, SOLVE_FLOOR * np.sqrt(rr))
    if np.sqrt(rr) <= tol:
        return np.isfinite(rr)
    for _ in range(S.max_iter):
        hvp_into(f, p, ap, S.work)
        S.counts[HVP] += 1
        S.counts[ITERATIONS] += 1
        pap = 0.0
        for i in range(N):
            ap[i] = p[i] + c * ap[i]
            pap += p[i] * ap[i]
        if not (pap > 0.0) or not np.isfinite(pap):
            return False
        alpha = rr / pap
        rr_new = 0.0
        for i in range(N):
            x[i] += alpha * p[i]
            r[i] -= alpha * ap[i]
            rr_new += r[i] * r[i]
        if np.sqrt(rr_new) <= tol:
            return True
        beta = rr_new / rr
        rr = rr_new
        for i in range(N):
            p[i] = r[i] + beta * p[i]
    return False


@jit_inline
def krylov_refresh(problem, w, op, S, v, scratch, iters):
    """The factors of the Hessian's action at ``w`` (``op`` the previous ones, replaced);
    with ``iters > 0`` also ``iters`` power iterations from ``v``
    (:func:`.stiffness.dominant_factors`, ``scratch`` (N,)).  Returns ``(op, rho,
    evals)``: the factors, the curvature estimate (0 when ``iters = 0``) and the products
    spent (:data:`HVP_EVALS` per product)."""
    f = hvp_factors(problem.dims, w, problem.Sxx, problem.Syx)
    rho = 0.0
    if iters > 0:
        rho, _ = dominant_factors(f, v, scratch, S.work, iters)
        S.counts[HVP] += iters
    return f, rho, HVP_EVALS * iters


@jit_inline
def krylov_factor(op, S, c, w, control):
    """Nothing to factorise: keep ``c`` and the attempt's residual tolerance ``S.fraction
    (atol + rtol ||w - w_ref||)`` in ``S.state``; True."""
    S.state[0] = S.fraction * (control.atol + control.rtol * _dist(w, control.w_ref))
    S.state[1] = c
    return True


@jit_inline
def krylov_solve(op, S, b, x):
    """``x = (I + c Hess)^{-1} b`` by :func:`cg_solve`; False when it failed."""
    return cg_solve(op, S.state[1], b, x, S, S.state[0])


@jit_inline
def krylov_product(op, S, u, out):
    """``out = Hess u`` by one Hessian-vector product."""
    hvp_into(op, u, out, S.work)
    S.counts[HVP] += 1


@jit_inline
def krylov_attempt(problem, control, w, f0, h, op, S, k1, k2, k3, k4, u, rhs, y, y_new,
                   f_new):  # fmt: skip
    """:func:`.rosenbrock.ros34_attempt` with the matrix-free linear algebra; the
    evaluations spent include the Hessian-vector products (:data:`HVP_EVALS` each)."""
    before = S.counts[HVP]
    L_new, err, spent = ros34_attempt(problem, control, w, f0, h, op, S, k1, k2, k3, k4, u,
                                      rhs, y, y_new, f_new, krylov_factor, krylov_solve,
                                      krylov_product)  # fmt: skip
    return L_new, err, spent + HVP_EVALS * (S.counts[HVP] - before)
