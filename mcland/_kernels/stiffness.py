"""How stiff gradient flow is at a point: the largest curvature ``lambda_max`` of the loss,
against which an explicit step is held by stability.

An explicit Runge-Kutta step of length ``h`` is stable on a mode of curvature ``lambda >
0`` (``dW/dt = -lambda W``) when ``h lambda`` lies in its stability interval, ``(0,
2.51]`` for the Bogacki-Shampine pair (``|1 - z + z^2/2 - z^3/6| <= 1``); its error control
keeps it there, so on a stretch where the accuracy would allow more the step is held at
about ``2.5 / lambda_max``.  The switching integrator (:mod:`.integrator`) compares ``h
lambda_max`` with that interval.

``lambda_max`` is estimated by the power method on the Hessian, warm-started from the
previous estimate's vector (the Hessian changes slowly along a run, so a few iterations
per estimate suffice once the vector has settled):

* :func:`dominant_hvp`, for the explicit steps: Hessian-vector products by a forward
  difference of the gradient, ``Hess v ~ (grad L(w + eps v) - grad L(w)) / eps`` with
  ``eps = 1e-7 max(||w||, tiny)`` (the loss is a polynomial in ``w`` of degree ``2H``: the
  truncation error is ``O(eps)`` relative to the weights' scale and the rounding error
  ``O(1e-16 / 1e-7)``; an estimate to 1e-6 relative is ample for a switching decision);
  one gradient evaluation per iteration, counted in the run's evaluations;
* :func:`dominant_dense`, in the linearly implicit steps, on the Hessian they assemble
  anyway (``N^2`` per iteration, no gradient evaluation);
* :func:`dominant_factors`, in the matrix-free linearly implicit steps (:mod:`.krylov`),
  with exact Hessian-vector products from the factors they build anyway
  (:func:`.hvp.hvp_into`, ``O(N d)`` per iteration, no gradient evaluation).

Both return ``(rho, q)``: ``rho = ||Hess v||`` for the last unit iterate ``v`` (a lower
bound of the largest ``|eigenvalue|`` that converges to it) and the Rayleigh quotient
``q = v^T Hess v`` (positive when the dominant eigenvalue is a curvature, negative when
it is an unstable direction, which an explicit method follows accurately anyway).
"""

from __future__ import annotations

import numpy as np

from mcland._kernels.flow import _norm, loss_and_gradient
from mcland._kernels.hvp import hvp_into
from mcland._kernels.jit import jit, jit_inline


@jit_inline
def start_vector(v):
    """A fixed, generic unit start vector ``v_i ~ sin(i + 1)`` (deterministic: the same
    estimate on every run)."""
    s = 0.0
    for i in range(v.size):
        v[i] = np.sin(i + 1.0)
        s += v[i] * v[i]
    s = 1.0 / np.sqrt(s)
    for i in range(v.size):
        v[i] *= s


@jit_inline
def _power_step(v, hv):
    """One power-method step after the product ``hv = Hess v`` (N,): ``(rho, q)`` with
    ``rho = ||hv||`` and the Rayleigh quotient ``q = v . hv``, and ``v`` replaced by
    ``hv / rho``; ``(0, 0)`` (``v`` left) when ``rho`` is 0 or not finite."""
    q = 0.0
    for i in range(v.size):
        q += v[i] * hv[i]
    rho = _norm(hv)
    if not (rho > 0.0) or not np.isfinite(rho):
        return 0.0, 0.0
    for i in range(v.size):
        v[i] = hv[i] / rho
    return rho, q


@jit
def dominant_hvp(problem, w, f0, v, y, gy, iters):
    """Power method with finite-difference Hessian-vector products at ``w`` (N,), whose
    velocity ``f0 = -grad L(w)`` is known: ``iters`` iterations from the unit ``v``
    (overwritten with the last iterate); ``y``, ``gy`` scratch.  Returns ``(rho, q)``
    (module docstring); ``iters`` gradient evaluations."""
    N = w.size
    eps = 1e-7 * max(_norm(w), 1e-150)
    rho = 0.0
    q = 0.0
    for _ in range(iters):
        for i in range(N):
            y[i] = w[i] + eps * v[i]
        loss_and_gradient(problem, y, gy)
        for i in range(N):
            gy[i] = (gy[i] + f0[i]) / eps  # Hess v
        rho, q = _power_step(v, gy)
        if rho == 0.0:
            return 0.0, 0.0
    return rho, q


@jit
def dominant_dense(hess, v, hv, iters):
    """Power method on the assembled Hessian ``hess`` (N, N): ``iters`` iterations from the
    unit ``v`` (overwritten with the last iterate); ``hv`` scratch.  Returns ``(rho, q)``."""
    N = v.size
    rho = 0.0
    q = 0.0
    for _ in range(iters):
        for i in range(N):
            s = 0.0
            for j in range(N):
                s += hess[i, j] * v[j]
            hv[i] = s
        rho, q = _power_step(v, hv)
        if rho == 0.0:
            return 0.0, 0.0
    return rho, q


@jit_inline
def dominant_factors(f, v, hv, work, iters):
    """Power method with exact Hessian-vector products from the factors ``f``
    (:class:`~.bundles.HVPFactors`, :func:`.hvp.hvp_into`, ``work`` its buffer):
    ``iters`` iterations from the unit ``v`` (N,) (overwritten with the last iterate);
    ``hv`` (N,) scratch.  Returns ``(rho, q)``; ``iters`` products."""
    rho = 0.0
    q = 0.0
    for _ in range(iters):
        hvp_into(f, v, hv, work)
        rho, q = _power_step(v, hv)
        if rho == 0.0:
            return 0.0, 0.0
    return rho, q
