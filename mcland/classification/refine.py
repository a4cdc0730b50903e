"""Moving a given point to a critical point nearby (:func:`refine_point`).

The refinement moves a non-critical point to a critical point
nearby by Gauss-Newton on the gradient as residual, with the Hessian as its exact Jacobian.
The critical sets are manifolds, so the Hessian is singular on them and nearly singular
beside them, along their flat directions (the layer symmetries ``W_h -> A W_h``,
``W_{h+1} -> W_{h+1} A^{-1}`` among them).  Minimum-norm steps ``-H^+ g`` with the small
singular values cut (``GN_RCOND``) have no component along those directions, so from a point
at distance ``delta`` of the manifold they move by about ``delta``; Levenberg-Marquardt
(:func:`_lm`, mcland's own) then drives the gradient to rounding level.
Levenberg-Marquardt from the point as given, whose first steps can drift
far along the flat directions, is run too and kept when it is the closer critical point or
the only one (measured in docs/classify.md).

Every iteration runs on the point with its layers rebalanced by powers of two
(:func:`_balancing`: the rescaling of :mod:`.rebalance`, whatever the spread): an exact
symmetry, undone exactly at the end, that keeps a badly scaled point (layer norms 0.05 and
300) from being stopped by its Hessian's conditioning short of rounding level.  All numbers
go through :mod:`mcland.core.linalg` and element-wise NumPy, so the refined point is the
same bits in every process, thread count and heap (up to 0.8.0 the polishing was SciPy's
MINPACK, ``least_squares(method="lm")``, which read memory it had not initialised and so
varied from process to process).  The layout of POINTS files is in docs/classify.md.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels.hessian import assemble_hessian
from mcland.classification.certify.balance import balance_rows

# refinement: products, norms, lstsq without the process's BLAS
from mcland.core import linalg as la
from mcland.core.errors import MclandError
from mcland.core.problem import Problem
from mcland.core.tolerances import EPS
from mcland.points.inspect import check_magnitude, split_layers

REFINE_ABOVE = 1e-12  # refine moves points with grad_rel above this (exact points reach ~1e-15)
# refine_point: the Gauss-Newton steps cut singular values below this times the largest
GN_RCOND = 1e-10
GN_HALVINGS = 30  # refine_point: a Gauss-Newton step is halved at most this often
LM_TAU = 1e-3  # _lm: the damping starts at this times the largest squared singular value
LM_XTOL = 1e-15  # _lm: stops when a step changes x by less than this, relatively


def gradient(dims: np.ndarray, w: np.ndarray, problem: Problem) -> np.ndarray:
    """Flat gradient of ``L(w) = ||W_H ... W_1 X - Y||_F^2`` at the flat point ``w`` (N,):
    ``dL/dW_h = 2 W_{H:h+1}^T (W_{H:1} Sxx - Syx) W_{h-1:1}^T``."""
    return _gradient_of(*_partial_products(dims, w), problem)


def _partial_products(dims: np.ndarray, w: np.ndarray) -> tuple[list, list]:
    """``pre[h] = W_{h:1}`` and ``suf[h] = W_{H:h+1}`` for ``h = 0 ... H`` (identities at
    the ends) at the flat point ``w``."""
    mats = split_layers(w, dims)
    H = len(mats)
    pre = [np.eye(int(dims[0]))]
    for W in mats:
        pre.append(la.matmul(W, pre[-1]))
    suf = [np.eye(int(dims[H]))] * (H + 1)
    for h in range(H - 1, -1, -1):
        suf[h] = la.matmul(suf[h + 1], mats[h])
    return pre, suf


def _gradient_of(pre: list, suf: list, problem: Problem) -> np.ndarray:
    """:func:`gradient` from the partial products (:func:`_partial_products`)."""
    H = len(pre) - 1
    R = la.matmul(pre[H], problem.Sxx) - problem.Syx
    return np.concatenate(
        [(2.0 * la.matmul(la.matmul(suf[h + 1].T, R), pre[h].T)).ravel() for h in range(H)]
    )


def hessian(dims: np.ndarray, w: np.ndarray, problem: Problem) -> np.ndarray:
    """The (symmetric, N x N) Hessian of ``L`` at the flat point ``w``."""
    upper = np.triu(assemble_hessian(dims, w, problem.Sxx, problem.Syx))
    return upper + np.triu(upper, 1).T


def _gradient_and_rel(
    dims: np.ndarray, w: np.ndarray, problem: Problem
) -> tuple[np.ndarray, float]:
    """:func:`gradient` at the flat point ``w`` and ``||g|| / g_scale``: the formula of
    :func:`mcland._kernels.hessian.gradient_scale` with the norms of the partial products
    themselves, in the original coordinates.  It is not the kernel's ``grad_rel`` (which
    differed from it by up to 1e3 on the refinement table's points), so refinement accepts
    only rounding-level values (:data:`REFINE_ABOVE`), far below ``grad_rtol``."""
    pre, suf = _partial_products(dims, w)
    g = _gradient_of(pre, suf, problem)
    H = len(pre) - 1
    base = la.norm(pre[H]) * la.norm(problem.Sxx) + la.norm(problem.Syx)
    scale = sum(2.0 * la.norm(suf[h + 1]) * la.norm(pre[h]) for h in range(H)) * base
    with np.errstate(all="ignore"):
        return g, float(np.float64(la.norm(g)) / scale)


def _gauss_newton(dims: np.ndarray, w: np.ndarray, problem: Problem, max_steps: int) -> np.ndarray:
    """Minimum-norm Gauss-Newton steps ``-H^+ g`` on the gradient from ``w`` (``H^+`` by
    :func:`mcland.core.linalg.lstsq` with ``rcond = GN_RCOND``), each halved until ``||g||``
    decreases; stops when no halving decreases it, at ``||g|| <= EPS * g_scale`` or after
    ``max_steps`` gradient evaluations.  Returns the last accepted iterate."""
    x = w
    g, rel = _gradient_and_rel(dims, x, problem)
    norm = la.norm(g)
    used = 1
    while used < max_steps and np.isfinite(norm) and rel > EPS:
        step = la.lstsq(hessian(dims, x, problem), g, rcond=GN_RCOND)
        t, accepted = 1.0, False
        for _ in range(GN_HALVINGS):
            if used >= max_steps:
                break
            y = x - t * step
            gy, rel_y = _gradient_and_rel(dims, y, problem)
            used += 1
            ny = la.norm(gy)
            if ny < norm:  # (False for NaN)
                x, g, norm, rel, accepted = y, gy, ny, rel_y, True
                break
            t /= 2.0
        if not accepted:
            break
    return x


def _finite_point(dims: np.ndarray, x: np.ndarray, problem: Problem) -> bool:
    """``x`` is finite and its products do not overflow (:func:`mcland.points.inspect.check_magnitude`)."""
    if not np.all(np.isfinite(x)):
        return False
    try:
        check_magnitude(dims, x, problem)
    except MclandError:
        return False
    return True


def refine_point(
    dims: np.ndarray,
    w: np.ndarray,
    problem: Problem,
    max_steps: int = 200,
) -> np.ndarray:
    """A critical point near ``w``: minimum-norm Gauss-Newton, polished by
    Levenberg-Marquardt, or Levenberg-Marquardt alone if closer (module docstring).

    The iterations run on ``w`` with its layers rescaled by powers of two to comparable
    norms (:func:`_balancing`), and their results are scaled back, both exactly.
    Candidate 1: minimum-norm Gauss-Newton steps ``-H^+ g`` (the Hessian ``H`` as
    the gradient's Jacobian, its singular values below ``GN_RCOND`` times the largest cut;
    each step halved until ``||g||`` decreases), then Levenberg-Marquardt (:func:`_lm`) from
    there to drive the gradient to rounding level.  A minimum-norm step has no component
    along the (nearly) flat directions of the critical set, the layer symmetries among
    them, so it does not drift along them.  Candidate 2: Levenberg-Marquardt from the
    rescaled ``w``, whose steps along the nearly flat directions are damped but not cut, so
    it can drift along them.  Candidate 1 is returned when its ``grad_rel`` (the kernel's
    ``g_scale``) is at most :data:`REFINE_ABOVE` and it is no farther from ``w`` than
    candidate 2, or candidate 2 is not that critical; else candidate 2.

    Parameters
    ----------
    dims : ndarray (H+1,) int64
    w : ndarray (N,)
        Flat layers of the starting point.
    problem : Problem
    max_steps : int
        Budget of gradient evaluations of each of the three iterations.

    Returns
    -------
    ndarray (N,)
        The chosen point (the caller judges criticality by ``grad_rtol``); an iteration that
        fails or leaves the finite range gives back its starting point, so ``w`` itself when
        both fail.  The same bits in every process (module docstring).
    """
    with np.errstate(all="ignore"):
        scale = _balancing(dims, w)
        wb = w * scale  # exact: powers of two
        try:
            x = _gauss_newton(dims, wb, problem, max_steps)
        except (ValueError, np.linalg.LinAlgError):
            x = wb
        x = _lm(dims, x, problem, max_steps) / scale
        y = _lm(dims, wb, problem, max_steps) / scale
        if _gradient_and_rel(dims, x, problem)[1] <= REFINE_ABOVE and (
            _gradient_and_rel(dims, y, problem)[1] > REFINE_ABOVE
            or la.norm(x - w) <= la.norm(y - w)
        ):
            return x
        return y


def _balancing(dims: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per weight (N,), the power of two ``2**-k_h`` of its layer that brings the layers'
    norms together (:func:`mcland.classification.certify.balance.balance_rows`, norms by
    :func:`mcland.core.linalg.norm`)."""
    mats = split_layers(w, dims)
    norms = np.array([[la.norm(W) for W in mats]])
    absw = [np.abs(W) for W in mats]
    big = np.array([[float(a.max()) for a in absw]])
    small = np.array([[float(np.where(a > 0, a, np.inf).min()) for a in absw]])
    k = balance_rows(norms, big, small)[0]
    return np.repeat(np.ldexp(1.0, -k), [W.size for W in mats])


def _lm(dims: np.ndarray, w: np.ndarray, problem: Problem, max_steps: int) -> np.ndarray:
    """The last Levenberg-Marquardt iterate from ``w`` (``w`` on failure or overflow).

    Levenberg-Marquardt on the residual ``g(x)`` (the gradient) with its exact Jacobian ``H``
    (the Hessian), scaled as Marquardt's (and MINPACK's ``mode=1``): ``D = diag(d)`` with
    ``d_j`` the largest column norm of ``H`` seen so far.  The step is
    ``-D^{-1} V diag(s / (s^2 + mu)) U^T g`` from the SVD ``H D^{-1} = U diag(s) V^T`` (one
    :func:`mcland.core.linalg.svd` per accepted point), ``mu`` started at ``LM_TAU * s_1^2``
    and updated by Nielsen's rule (gain ratio ``rho`` of the actual to the predicted decrease
    of ``||g||^2``: accepted if ``rho > 0``, then ``mu *= max(1/3, 1 - (2 rho - 1)^3)``;
    rejected, ``mu *= nu``, ``nu *= 2``; Madsen, Nielsen & Tingleff, *Methods for non-linear
    least squares problems*, 2004, section 3.2).  Stops after ``max_steps`` gradient
    evaluations, at ``g = 0``, or when a step that changes ``x`` by at most ``LM_XTOL``
    relative does not decrease ``||g||`` (rejected steps raise ``mu`` until the step is that
    small): as MINPACK with ``xtol = ftol = gtol = 1e-15``, it polishes to rounding level.
    """
    try:
        x = _levenberg_marquardt(dims, w, problem, max_steps)
    except (ValueError, np.linalg.LinAlgError):
        return w
    return x if _finite_point(dims, x, problem) else w


def _levenberg_marquardt(
    dims: np.ndarray, w: np.ndarray, problem: Problem, max_steps: int
) -> np.ndarray:
    """:func:`_lm` without its failure handling."""
    x = w
    g = gradient(dims, x, problem)
    f = la.dot(g, g)
    used, mu, nu = 1, -1.0, 2.0
    d = np.zeros(w.size)  # Marquardt's scaling: the largest column norms of H seen so far
    s = U = Vt = ug = None
    ones = np.ones((1, w.size))
    while used < max_steps and np.isfinite(f) and f > 0:
        if s is None:  # a new point: the SVD of its scaled Hessian H D^{-1}
            Hx = hessian(dims, x, problem)
            d = np.maximum(d, np.sqrt(la.matmul(ones, Hx * Hx).reshape(-1)))
            d[d == 0] = 1.0
            Hx /= d  # in place: the SVD's working copies are the only other N x N arrays
            U, s, Vt = la.svd(Hx)
            del Hx
            ug = la.matmul(U.T, g.reshape(-1, 1)).reshape(-1)
            if mu < 0:
                mu = LM_TAU * float(s[0] * s[0]) if s.size else 0.0
                if not mu > 0:  # H = 0: no step
                    break
        c = -s / (s * s + mu) * ug  # the scaled step in the right singular basis
        step = la.matmul(Vt.T, c.reshape(-1, 1)).reshape(-1) / d
        y = x + step
        tiny = la.norm(step) <= LM_XTOL * (la.norm(x) + LM_XTOL)
        gy = gradient(dims, y, problem)
        used += 1
        fy = la.dot(gy, gy)
        r = ug + s * c
        predicted = la.dot(ug, ug) - la.dot(r, r)  # f - ||g + H step||^2
        rho = (f - fy) / predicted if predicted > 0 else -1.0
        if np.isfinite(fy) and rho > 0:
            x, g, f = y, gy, fy
            mu *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
            nu = 2.0
            s = None
        elif tiny:  # a step at rounding level that does not decrease ||g||: done
            break
        else:
            mu *= nu
            nu *= 2.0
            if not np.isfinite(mu):
                break
    return x
