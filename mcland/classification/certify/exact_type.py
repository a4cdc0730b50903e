"""What are these floats, exactly? The type of a point *as given* (:func:`exact_certificate`).

The stored float64 weights and data are rationals and ``L(W) = ||W_H ... W_1 X - Y||_F^2``
is a polynomial in them, so its gradient and Hessian at the stored floats are exact
rationals, evaluated here in integer arithmetic on dyadic matrices (:mod:`.dyadic`), in
the original coordinates (whitening is not exact):

* the exact gradient decides criticality (``||grad||_F <= grad_rtol * g_scale``, the
  criterion of :mod:`mcland.core.tolerances`, on the exact norm);
* the curvature is evaluated at the *balanced* point (:func:`.balance.layer_balance`);
* a negative direction is looked for along the eigenvectors of the exact Hessian rounded to
  floats, plain and after a power-of-two diagonal balancing (a congruence); each candidate
  ``v`` (itself floats, so exact rationals) is checked by the exact sign of
  ``v^T (Hessian) v``: a negative value *proves* the point strict (``decided_by = "exact"``);
* otherwise, for ``N <= EXACT_MAX_N`` parameters, a fraction-free (Bareiss) symmetric
  elimination of the exact integer Hessian decides positive semidefiniteness exactly
  (``decided_by = "exact_inertia"``, with the exact rank);
* otherwise the answer is ``undecided``: never a guess.

Whether a PSD point is a global minimizer or a non-strict saddle is read from its loss, as
in the numeric type (``|L - L*| <= loss_tol``; ``L*`` is a sum of eigenvalues of
``Sigma``, not a rational of the floats).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from mcland.classification.certify.balance import layer_balance
from mcland.classification.certify.dyadic import Dyadic, dot_int, floats, ints, ldexp
from mcland.core import linalg as la  # recorded figures: norms, eigh without the process's BLAS
from mcland.core.problem import Problem
from mcland.core.tolerances import GRAD_RTOL
from mcland.points.inspect import split_layers

EXACT_MAX_N = 120  # exact PSD proof (Bareiss, O(N^3) big integers) only up to this N
CANDIDATES = 4  # eigenvectors tried as negative directions (of the plain and balanced Hessian)


@dataclass
class ExactPoint:
    """Exact gradient and Hessian of ``L`` at the stored floats (original coordinates).

    Attributes
    ----------
    grad : Dyadic (N,)
        Flat gradient (layout of ``w``).
    hess : Dyadic (N, N)
        The Hessian (symmetric).
    """

    grad: Dyadic
    hess: Dyadic


def exact_moments(X: np.ndarray, Y: np.ndarray) -> tuple[Dyadic, Dyadic]:
    """``Sxx = X X^T`` and ``Syx = Y X^T``, exactly, for the float data ``X`` (d_x, m), ``Y`` (d_y, m)."""
    Xd, Yd = Dyadic.of(X), Dyadic.of(Y)
    return Xd @ Xd.T, Yd @ Xd.T


def exact_point(dims: np.ndarray, w: np.ndarray, Sxx: Dyadic, Syx: Dyadic) -> ExactPoint:
    """The exact gradient and Hessian at the flat point ``w`` (N,) of architecture ``dims``.

    Same polynomials as :func:`mcland.classification.refine.gradient` / :func:`mcland.classification.refine.hessian`
    (docs/numerics.md, Hessian layout): ``dL/dW_h = 2 L_h^T R Q_h^T`` with
    ``L_h = W_{H:h+1}``, ``Q_h = W_{h-1:1}``, ``R = W_{H:1} Sxx - Syx``; Hessian block
    ``(h, k)`` is ``2 (L_h^T L_k) ⊗ (Q_h Sxx Q_k^T)`` plus, for ``h < k``, the entries
    ``2 M[d, a] G[c, b]`` at ``((W_h)_{ab}, (W_k)_{cd})``, ``M = W_{k-1:h+1}``,
    ``G = L_k^T R Q_h^T``.
    """
    dims = [int(d) for d in dims]
    H = len(dims) - 1
    Ws = [Dyadic.of(W) for W in split_layers(np.asarray(w, dtype=np.float64), np.array(dims))]
    Q = [None, Dyadic.eye(dims[0])]  # Q[h] = W_{h-1:1}
    for h in range(1, H):
        Q.append(Ws[h - 1] @ Q[h])
    L = [None] * (H + 1)  # L[h] = W_{H:h+1}
    L[H] = Dyadic.eye(dims[H])
    for h in range(H - 1, 0, -1):
        L[h] = L[h + 1] @ Ws[h]
    P = L[1] @ Ws[0]
    R = P @ Sxx - Syx
    grads = [(L[h].T @ R @ Q[h].T).times2(1) for h in range(1, H + 1)]
    e_g = min(g.e for g in grads)
    grad = Dyadic(np.concatenate([g.align(e_g).ravel() for g in grads]), e_g)
    blocks: dict[tuple[int, int], Dyadic] = {}
    for h in range(1, H + 1):
        QS = Q[h] @ Sxx
        for k in range(h, H + 1):
            A = L[h].T @ L[k]
            B = QS @ Q[k].T
            blk = Dyadic(ints(np.kron(A.M, B.M)), A.e + B.e + 1)
            if k > h:
                M = Dyadic.eye(dims[h])
                for j in range(h + 1, k):
                    M = Ws[j - 1] @ M
                G = L[k].T @ R @ Q[h].T  # (d_k, d_{h-1})
                T = np.multiply.outer(M.M.T, G.M.T)  # [a, d, b, c] = M[d, a] G[c, b]
                T = T.transpose(0, 2, 3, 1).reshape(dims[h] * dims[h - 1], dims[k] * dims[k - 1])
                blk = blk + Dyadic(ints(T), M.e + G.e + 1)
            blocks[h, k] = blk
    e_h = min(b.e for b in blocks.values())
    off = np.concatenate([[0], np.cumsum([dims[h] * dims[h - 1] for h in range(1, H + 1)])])
    N = int(off[-1])
    Hm = np.zeros((N, N), dtype=object)
    for (h, k), blk in blocks.items():
        a = blk.align(e_h)
        Hm[off[h - 1] : off[h], off[k - 1] : off[k]] = a
        if k > h:
            Hm[off[k - 1] : off[k], off[h - 1] : off[h]] = a.T
    return ExactPoint(grad, Dyadic(Hm, e_h))


def _balance(hess: Dyadic, Hf: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A power-of-two diagonal ``D = 2**-k`` equilibrating the exact Hessian (``k`` (N,)
    integers) and ``D H D`` rounded to floats (N, N), entrywise as ``ldexp``.  With
    ``Hf = hess.to_float()``: its normal (hence unrounded-by-ldexp) entries are rescaled by
    ``np.ldexp``, which rounds the same real value once as ``ldexp`` does (same floats),
    the others converted again."""
    M = hess.M
    N = M.shape[0]
    k = np.zeros(N, np.int64)
    for i in range(N):
        ref = M[i, i] if M[i, i] != 0 else max(M[i].tolist(), key=abs)
        if ref != 0:
            k[i] = (abs(int(ref)).bit_length() + hess.e) // 2
    shift = -k[:, None] - k[None, :]
    if Hf is None:
        return k, floats(M, hess.e + shift)
    with np.errstate(over="ignore"):
        B = np.ldexp(Hf, shift)
    redo = ~(np.isfinite(Hf) & ((np.abs(Hf) >= 2.0**-1022) | (Hf == 0)))
    for i, j in zip(*np.nonzero(redo), strict=True):
        B[i, j] = ldexp(M[i, j], hess.e + int(shift[i, j]))
    zero = Hf == 0  # 0.0 from a nonzero integer would be an underflow: never (no subnormal)
    if zero.any():
        B[zero] = floats(M[zero], hess.e + shift[zero])
    return k, B


def _quad(hess: Dyadic, v: np.ndarray, exact: bool = False) -> tuple[int, object, object]:
    """Exact ``q = v^T H v`` for the float vector ``v``: (sign of q, q, q/||v||^2), the
    last two as floats, or as Fractions with ``exact``."""
    vd = Dyadic.of(v)
    qi = dot_int(vd.M, hess.M.dot(vd.M))
    e = hess.e + 2 * vd.e
    vv = dot_int(vd.M, vd.M)
    sign = (qi > 0) - (qi < 0)
    q = Fraction(qi) * Fraction(2) ** e
    ray = Fraction(qi, vv) * Fraction(2) ** hess.e if vv else Fraction(0)  # 2**(2 e_v) cancels
    return (sign, q, ray) if exact else (sign, float(q), float(ray))


def psd_rank(hess: Dyadic) -> tuple[bool, int]:
    """Exact test of positive semidefiniteness of the integer symmetric matrix ``hess.M``.

    Fraction-free symmetric Gaussian elimination (Bareiss) with diagonal pivoting on a
    positive diagonal entry: after each step the entries are minors of the original
    matrix, divisions are exact, and the sign of a new diagonal is that of the Schur
    complement's.  A negative diagonal, or a zero diagonal with a nonzero off-diagonal in
    its row, proves an indefinite (not PSD) matrix.  Returns ``(psd, rank)`` (rank only
    meaningful when ``psd``)."""
    A = [list(map(int, row)) for row in hess.M.tolist()]
    active = list(range(len(A)))
    prev = 1
    rank = 0
    while active:
        best = None
        for i in active:
            d = A[i][i]
            if d < 0:
                return False, rank
            if d > 0 and (best is None or d.bit_length() < A[best][best].bit_length()):
                best = i
        if best is None:
            nonzero = any(A[i][j] for i in active for j in active)
            return (not nonzero), rank
        piv = A[best][best]
        active.remove(best)
        col = A[best]
        for ii, i in enumerate(active):
            ai = A[i]
            cpi = col[i]
            for j in active[ii:]:
                v = (piv * ai[j] - cpi * col[j]) // prev
                ai[j] = v
                A[j][i] = v
        prev = piv
        rank += 1
    return True, rank


@dataclass
class Certificate:
    """Answer to "what are these floats, exactly?" for one point (see the module docstring).

    Attributes
    ----------
    exact_type : str or None
        ``global_minimizer``, ``strict_saddle``, ``non_strict_saddle``, ``not_critical``;
        None when undecided.
    decided_by : str
        ``exact`` (exact sign of ``v^T Hess v`` along a float direction), ``exact_inertia``
        (exact PSD test), ``undecided``.
    exact_grad_rel : float
        ``||grad||_F / g_scale`` from the exact gradient (rounded once).
    exact_curvature : float
        Strict: the exact Rayleigh quotient ``v^T H v / ||v||^2 < 0`` of the certificate
        (an upper bound on the smallest eigenvalue, original coordinates); NaN otherwise.
    hess_norm : float
        ``||Hess||_F`` of the exact Hessian, rounded once.
    exact_rank : int
        Rank of the exact Hessian when proven PSD; -1 otherwise.
    direction : ndarray (N,) or None
        The certificate direction ``v`` (floats) of a strict point.
    curvature_original : float
        Its Rayleigh quotient in the coordinates of ``w`` (not balanced); NaN otherwise.
    """

    exact_type: str | None
    decided_by: str
    exact_grad_rel: float
    exact_curvature: float
    hess_norm: float
    exact_rank: int
    direction: np.ndarray | None = None
    curvature_original: float = math.nan


def g_scale(norms: np.ndarray, sxx_n: float, syx_n: float) -> float:
    """``sum_h 2 prod_{k != h} n_k (prod_k n_k ||Sxx|| + ||Syx||)`` (:mod:`mcland.core.tolerances`)."""
    pk = float(np.prod(norms))
    return float(sum(2.0 * np.prod(np.delete(norms, h)) for h in range(norms.size))) * (
        pk * sxx_n + syx_n
    )


def exact_certificate(
    dims: np.ndarray,
    w: np.ndarray,
    problem: Problem,
    moments: tuple[Dyadic, Dyadic],
    at_global: bool,
    grad_rtol: float = GRAD_RTOL,
    max_n: int = EXACT_MAX_N,
    balance: bool = True,
    k_bal: np.ndarray | None = None,
) -> Certificate:
    """The certified type of the float point ``w`` (N,) (module docstring).

    The curvature is evaluated at the *balanced* point ``W'_h = 2**-k_h W_h``
    (:func:`layer_balance`): ``L(W') = L(W)`` as functions (``sum k_h = 0``), the Hessians
    are congruent (same inertia, hence same type) and relative perturbations correspond,
    but the balanced Hessian is not dominated by its largest layers, so its eigenvectors
    make better certificates and its curvature is comparable to a perturbation bound.

    Parameters
    ----------
    dims : ndarray (H+1,) int
    w : ndarray (N,)
        Flat layers, layout of :func:`mcland.classification.refine.gradient`.
    problem : Problem
        The data's moments (``Sxx``, ``Syx`` norms for ``g_scale``).
    moments : (Dyadic, Dyadic)
        :func:`exact_moments` of the data.
    at_global : bool
        ``|L - L*| <= loss_tol`` (the record's figures): a PSD point is then a global
        minimizer, else a non-strict saddle.
    grad_rtol : float
    max_n : int
        Largest ``N`` for the exact PSD test.
    balance : bool
        Work at the balanced point (default); ``exact_curvature`` and ``hess_norm`` then
        refer to balanced coordinates, ``direction`` to those of ``w``.
    k_bal : ndarray (H,) int, optional
        The balancing exponents (default :func:`layer_balance`).
    """
    dims = np.asarray(dims, np.int64)
    if not balance:
        k_bal = np.zeros(dims.size - 1, np.int64)
    elif k_bal is None:
        k_bal = layer_balance(dims, w)
    sizes = dims[1:] * dims[:-1]
    per = np.repeat(k_bal, sizes)
    wb = np.ldexp(w, -per)  # exact (layer_balance checks it)
    ex = exact_point(dims, wb, *moments)
    # the gradient at w is D^{-1} times the gradient at wb (L(D w') = L(w'))
    g_sq = 0.0
    start = 0
    for h, size in enumerate(sizes.tolist()):
        part = ex.grad.M[start : start + size]
        start += size
        g_sq += ldexp(dot_int(part, part), 2 * (ex.grad.e - int(k_bal[h])))
    g_norm = math.sqrt(g_sq)
    norms = np.array([la.norm(W) for W in split_layers(w, dims)])
    scale = g_scale(norms, la.norm(problem.Sxx), la.norm(problem.Syx))
    grad_rel = g_norm / scale if scale > 0 else (0.0 if g_norm == 0 else math.inf)
    Hf = ex.hess.to_float()
    h_norm = la.norm(Hf)
    if grad_rel > grad_rtol:
        return Certificate("not_critical", "exact", grad_rel, math.nan, h_norm, -1)
    psd_type = "global_minimizer" if at_global else "non_strict_saddle"
    if not any(ex.hess.M.ravel().tolist()):
        return Certificate(psd_type, "exact_inertia", grad_rel, math.nan, 0.0, 0)
    best = None
    k, B = _balance(ex.hess, Hf)
    for shift, A in ((np.zeros_like(k), Hf), (k, B)):  # plain, then balanced
        if not np.all(np.isfinite(A)):
            continue
        ev, U = la.eigh(A)
        for i in range(min(CANDIDATES, ev.size)):
            v = np.ldexp(U[:, i], -shift)  # exact: D u, D a power of two
            sign, q, ray = _quad(ex.hess, v, exact=True)
            if sign < 0 and (best is None or ray < best[0]):
                best = (ray, v, q)
    if best is not None:
        best = (float(best[0]), best[1], best[2])
        v = np.ldexp(best[1], per)  # the direction in the coordinates of w
        vd = Dyadic.of(v)
        ray_w = best[2] / Fraction(dot_int(vd.M, vd.M)) / Fraction(2) ** (2 * vd.e)
        return Certificate("strict_saddle", "exact", grad_rel, best[0], h_norm, -1, v, float(ray_w))
    if ex.hess.M.shape[0] <= max_n:
        psd, rank = psd_rank(ex.hess)
        if psd:
            return Certificate(psd_type, "exact_inertia", grad_rel, math.nan, h_norm, rank)
        return Certificate("strict_saddle", "exact_inertia", grad_rel, math.nan, h_norm, -1)
    return Certificate(None, "undecided", grad_rel, math.nan, h_norm, -1)
