"""Two questions about a classified point, answered separately (docs/certify.md).

**What are these floats, exactly?** (:func:`exact_certificate`)  The type of the point *as
given*: the stored float64 weights and data are rationals, and the loss
``L(W) = ||W_H ... W_1 X - Y||_F^2`` is a polynomial in them, so its gradient and Hessian
at the stored floats are exact rationals.  They are evaluated here exactly, in pure-Python
integer arithmetic on *dyadic* matrices (an integer matrix times one power of two; every
float is one), in the original coordinates (whitening is not exact):

* the exact gradient decides criticality (``||grad||_F <= grad_rtol * g_scale``, the
  criterion of :mod:`mcland.tolerances`, on the exact norm);
* the curvature is evaluated at the *balanced* point (:func:`layer_balance`: layers
  rescaled by powers of two to comparable norms, a symmetry of ``L``: same type, congruent
  Hessian, same relative perturbations);
* a negative direction is looked for along the eigenvectors of the exact Hessian rounded to
  floats, plain and after a power-of-two diagonal balancing (a congruence); each
  candidate ``v`` (itself a vector of floats, so exact rationals) is checked by the exact
  sign of ``v^T (Hessian) v``: a negative value *proves* the point strict
  (``decided_by = "exact"``);
* otherwise, for ``N <= EXACT_MAX_N`` parameters, a fraction-free (Bareiss) symmetric
  elimination of the exact integer Hessian decides positive semidefiniteness exactly
  (``decided_by = "exact_inertia"``, with the exact rank);
* otherwise the answer is ``undecided``: never a guess.

Whether a PSD point is a global minimizer or a non-strict saddle is read from its loss, as
in the numeric type (``|L - L*| <= loss_tol``; ``L*`` is a sum of eigenvalues of
``Sigma``, not a rational of the floats).

**Is that verdict stable?** (:func:`stability`)  Whether a componentwise relative
perturbation of size ``rel`` of the weights and of the data (``|dW| <= rel |W|``,
``|dX| <= rel |X|``, ``|dY| <= rel |Y|``), plus, for a point that is only nearly critical,
the distance to the critical set, can change the type, and to what.  The answer is a
*bound* (a proof, not a randomised test): the Hessian, gradient and loss are multilinear
in the layers and the moments, so their change is bounded by majorants built from products
of Frobenius norms (``n_h = ||W_h||_F``, ``eps_h = rel n_h + dist`` per layer), and by
Weyl's inequality every eigenvalue of the Hessian moves by at most that bound ``beta``.  A
strict verdict whose deciding curvature ``|lambda_min|`` exceeds ``beta`` is ``stable``; a
positive semidefinite verdict with zero eigenvalues (every degenerate critical point) is
stable only when ``beta = 0`` (e.g. ``W = 0``: a relative perturbation keeps zeros zero),
otherwise ``strict_saddle`` is possible.  A bound can only show stability; an ``unstable``
answer says the bound cannot exclude the listed types, not that a flip was observed.  The
distance to the critical set is the refinement distance when known, else the first-order
estimate ``||grad|| / sigma_+`` (``sigma_+`` the smallest eigenvalue above ``tol_zero``),
which is an estimate, not a bound (``stability_method`` says which).  The same question is
answered for a *normwise* perturbation (every layer moves by ``rel ||w||``, tiny and zero
layers too: "within rounding of the weights").

:func:`certify_rows` is what :func:`mcland.classify` calls: the bound for every critical
row (one compiled kernel over all rows, :mod:`mcland._kernels.stability`), the exact
evaluation only for the rows that need it (see there); :func:`certify_point` answers both questions for one point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from mcland._blas import one_blas_thread
from mcland._kernels import fields as f
from mcland._kernels import stability as ks
from mcland._kernels.bundles import CertifyData, CertifyOutput, CertifyPoints
from mcland._kernels.stability import NEAR_EXACT, PSD_VACUOUS, WEAK_PSD
from mcland.point import split_layers
from mcland.problem import Problem
from mcland.ragged import Ragged
from mcland.tolerances import EPS, GRAD_RTOL

DEFAULT_REL = 4 * 2.0**-52  # default perturbation: a few eps, the rounding of the stored floats
EXACT_MAX_N = 120  # exact PSD proof (Bareiss, O(N^3) big integers) only up to this N
CANDIDATES = 4  # eigenvectors tried as negative directions (of the plain and balanced Hessian)
# the triage's constants live beside the kernel (mcland/_kernels/stability.py):
# a PSD verdict is weak when float64's smallest eigenvalue is below -WEAK_PSD * floor: the
# sampler's minimizers and non-strict saddles stay above -0.34 floor (docs/numerics.md)
# ... or when the floor is not small against the Hessian itself (then no eigenvalue is
# resolved, above PSD_VACUOUS = 1e-3): sampler's PSD points have floor / ||Hess_w||_F <=
# 1.5e-13, LM endpoints on tiny layers 0.57 ... 49 (docs/certify.md); grad_rel up to NEAR_EXACT is
# rounding (exact points reach ~1e-15): no distance
CRITICAL_TYPES = ("global_minimizer", "strict_saddle", "non_strict_saddle")

# ---------------------------------------------------------------- dyadic arithmetic


@dataclass(frozen=True)
class Dyadic:
    """An exact matrix ``M * 2**e``: ``M`` an integer (Python ``int``, object dtype) array."""

    M: np.ndarray
    e: int

    @staticmethod
    def of(a: np.ndarray) -> Dyadic:
        """The exact value of the float array ``a`` (finite)."""
        a = np.asarray(a, dtype=np.float64)
        m, ex = np.frexp(a)
        mant = (m * 2.0**53).astype(np.int64)  # exact: |m| < 1 has 53 bits
        ex = ex.astype(np.int64) - 53
        nz = mant != 0
        e0 = int(ex[nz].min()) if nz.any() else 0
        M = np.empty(a.shape, dtype=object)
        flat = M.reshape(-1)
        for i, (mi, ei) in enumerate(zip(mant.ravel().tolist(), ex.ravel().tolist(), strict=True)):
            flat[i] = mi << (ei - e0) if mi else 0
        return Dyadic(M, e0)

    @staticmethod
    def eye(n: int) -> Dyadic:
        M = np.zeros((n, n), dtype=object)
        for i in range(n):
            M[i, i] = 1
        return Dyadic(M, 0)

    def __matmul__(self, other: Dyadic) -> Dyadic:
        return Dyadic(_ints(self.M.dot(other.M)), self.e + other.e)

    def align(self, e: int) -> np.ndarray:
        """``M`` at the exponent ``e <= self.e``."""
        s = self.e - e
        return self.M if s == 0 else _ints(np.vectorize(lambda x: x << s, otypes=[object])(self.M))

    def __add__(self, other: Dyadic) -> Dyadic:
        e = min(self.e, other.e)
        return Dyadic(_ints(self.align(e) + other.align(e)), e)

    def __sub__(self, other: Dyadic) -> Dyadic:
        e = min(self.e, other.e)
        return Dyadic(_ints(self.align(e) - other.align(e)), e)

    @property
    def T(self) -> Dyadic:
        return Dyadic(self.M.T, self.e)

    def times2(self, k: int) -> Dyadic:
        """``self * 2**k``."""
        return Dyadic(self.M, self.e + k)

    def to_float(self) -> np.ndarray:
        return _floats(self.M, self.e)


def _ints(M: np.ndarray) -> np.ndarray:
    """``M`` as an object array of Python ints (NumPy may hand back an int64 zero)."""
    M = np.asarray(M, dtype=object)
    return M


def _ldexp(n: int, e: int) -> float:
    """``float(n * 2**e)`` (rounded toward zero beyond 64 bits: relative error < 2**-63)."""
    n = int(n)
    if n == 0:
        return 0.0
    sh = n.bit_length() - 64 if n > 0 else (-n).bit_length() - 64
    if sh > 0:
        n = n >> sh if n > 0 else -((-n) >> sh)
        e += sh
    try:
        return math.ldexp(float(n), e)
    except OverflowError:
        return math.copysign(math.inf, n)


def _floats(M: np.ndarray, e: int | np.ndarray) -> np.ndarray:
    """:func:`_ldexp` elementwise: ``float(M * 2**e)`` for the object array of ints ``M``
    and integer exponents ``e`` (broadcast to ``M.shape``).  Through int64 when every entry
    fits (then ``float(n)`` is the same conversion and ``np.ldexp`` the same C ``ldexp``:
    identical results), else entry by entry."""
    ee = np.broadcast_to(np.asarray(e, np.int64), M.shape)
    try:
        ints = np.array(M.ravel().tolist(), dtype=np.int64).reshape(M.shape)
    except OverflowError:
        return _floats_wide(np.asarray(M, object), ee)
    with np.errstate(over="ignore"):
        return np.ldexp(ints.astype(np.float64), ee)


_bit_length = np.frompyfunc(int.bit_length, 1, 1)


def _floats_wide(M: np.ndarray, ee: np.ndarray) -> np.ndarray:
    """:func:`_ldexp` elementwise for ints beyond int64, with NumPy's object loops instead
    of a Python call per entry: each magnitude cut to its 64 leading bits (toward zero),
    converted exactly to uint64, rounded once to float64 (as ``float(n)`` rounds), scaled
    by ``np.ldexp`` (the same C ``ldexp``; overflow gives ``inf``)."""
    mag = np.abs(M)
    shift = np.maximum(_bit_length(mag).astype(np.int64) - 64, 0)
    top = (mag >> shift.astype(object)).astype(np.uint64)  # < 2**64: exact
    with np.errstate(over="ignore"):
        out = np.ldexp(top.astype(np.float64), ee + shift)
    return np.where(M < 0, -out, out).astype(np.float64)


def _dot_int(a: np.ndarray, b: np.ndarray) -> int:
    return int(sum(x * y for x, y in zip(a.ravel().tolist(), b.ravel().tolist(), strict=True)))


# ---------------------------------------------------------------- exact evaluation


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

    Same polynomials as :func:`mcland.classify.gradient` / :func:`mcland.classify.hessian`
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
            blk = Dyadic(_ints(np.kron(A.M, B.M)), A.e + B.e + 1)
            if k > h:
                M = Dyadic.eye(dims[h])
                for j in range(h + 1, k):
                    M = Ws[j - 1] @ M
                G = L[k].T @ R @ Q[h].T  # (d_k, d_{h-1})
                T = np.multiply.outer(M.M.T, G.M.T)  # [a, d, b, c] = M[d, a] G[c, b]
                T = T.transpose(0, 2, 3, 1).reshape(dims[h] * dims[h - 1], dims[k] * dims[k - 1])
                blk = blk + Dyadic(_ints(T), M.e + G.e + 1)
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


def layer_figures(dims: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per layer of ``m`` points of one architecture (flat weights ``W`` (m, N)):
    Frobenius norms, largest and smallest nonzero absolute entries (each (m, H)), and
    the end-to-end products ``W_{H:1}`` (m, d_H, d_0)."""
    dims = [int(d) for d in dims]
    H = len(dims) - 1
    m = W.shape[0]
    norms, big, small = np.empty((m, H)), np.empty((m, H)), np.empty((m, H))
    start = 0
    P = None
    for h in range(1, H + 1):
        size = dims[h] * dims[h - 1]
        L = W[:, start : start + size].reshape(m, dims[h], dims[h - 1])
        start += size
        A = np.abs(L).reshape(m, -1)
        norms[:, h - 1] = np.sqrt((A * A).sum(axis=1))
        big[:, h - 1] = A.max(axis=1)
        small[:, h - 1] = np.where(A > 0, A, np.inf).min(axis=1)
        P = L if P is None else np.matmul(L, P)
    return norms, big, small, P


def balance_rows(norms: np.ndarray, big: np.ndarray, small: np.ndarray) -> np.ndarray:
    """:func:`layer_balance` for ``m`` points at once, from :func:`layer_figures`:
    ``k`` (m, H) int64."""
    m, H = norms.shape
    nz = norms > 0
    with np.errstate(divide="ignore"):
        logs = np.where(nz, np.log2(np.where(nz, norms, 1.0)), 0.0)
    all_nz = nz.all(axis=1)
    count = np.maximum(nz.sum(axis=1), 1)
    target = np.where(all_nz, logs.sum(axis=1) / count, 0.0)
    k = np.where(nz, np.round(logs - target[:, None]), 0.0).astype(np.int64)
    rest = -k.sum(axis=1)
    # rounding left sum(k) != 0: the largest layer takes it up; else the first zero layer
    col = np.where(all_nz, np.argmax(norms, axis=1), np.argmin(nz, axis=1))
    k[np.arange(m), col] += rest
    if H < 2:
        k[:] = 0
    # exact in floats: no overflow of the largest entry, no subnormal smallest entry
    scale = np.ldexp(1.0, -k)
    with np.errstate(over="ignore", invalid="ignore"):
        ok = np.all(big * scale < 2.0**1023, axis=1) & np.all(
            (small == np.inf) | (small * scale >= 2.0**-1022), axis=1
        )
    k[~ok] = 0
    return k


def layer_balance(dims: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Power-of-two layer scales ``k`` (H,) with ``sum k = 0`` that bring the layers'
    Frobenius norms together: ``W'_h = 2**-k_h W_h`` has norm within a factor 2 of the
    geometric mean of the nonzero norms (a zero layer takes up the remainder of the sum).
    ``W -> W'`` is a symmetry of ``L`` (the product is unchanged), exact in floats; zeros
    when it would not be (overflow or underflow)."""
    norms, big, small, _ = layer_figures(dims, np.asarray(w, np.float64)[None, :])
    return balance_rows(norms, big, small)[0]


def _balance(hess: Dyadic, Hf: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A power-of-two diagonal ``D = 2**-k`` equilibrating the exact Hessian (``k`` (N,)
    integers) and ``D H D`` rounded to floats (N, N), entrywise as ``_ldexp``.  With
    ``Hf = hess.to_float()``: its normal (hence unrounded-by-ldexp) entries are rescaled by
    ``np.ldexp``, which rounds the same real value once as ``_ldexp`` does (same floats),
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
        return k, _floats(M, hess.e + shift)
    with np.errstate(over="ignore"):
        B = np.ldexp(Hf, shift)
    redo = ~(np.isfinite(Hf) & ((np.abs(Hf) >= 2.0**-1022) | (Hf == 0)))
    for i, j in zip(*np.nonzero(redo), strict=True):
        B[i, j] = _ldexp(M[i, j], hess.e + int(shift[i, j]))
    zero = Hf == 0  # 0.0 from a nonzero integer would be an underflow: never (no subnormal)
    if zero.any():
        B[zero] = _floats(M[zero], hess.e + shift[zero])
    return k, B


def _quad(hess: Dyadic, v: np.ndarray, exact: bool = False) -> tuple[int, object, object]:
    """Exact ``q = v^T H v`` for the float vector ``v``: (sign of q, q, q/||v||^2), the
    last two as floats, or as Fractions with ``exact``."""
    vd = Dyadic.of(v)
    qi = _dot_int(vd.M, hess.M.dot(vd.M))
    e = hess.e + 2 * vd.e
    vv = _dot_int(vd.M, vd.M)
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
    """``sum_h 2 prod_{k != h} n_k (prod_k n_k ||Sxx|| + ||Syx||)`` (:mod:`mcland.tolerances`)."""
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
        Flat layers, layout of :func:`mcland.classify.gradient`.
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
        g_sq += _ldexp(_dot_int(part, part), 2 * (ex.grad.e - int(k_bal[h])))
    g_norm = math.sqrt(g_sq)
    norms = np.array([np.linalg.norm(W) for W in split_layers(w, dims)])
    scale = g_scale(norms, np.linalg.norm(problem.Sxx), np.linalg.norm(problem.Syx))
    grad_rel = g_norm / scale if scale > 0 else (0.0 if g_norm == 0 else math.inf)
    Hf = ex.hess.to_float()
    h_norm = float(np.linalg.norm(Hf))
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
        ev, U = np.linalg.eigh(A)
        for i in range(min(CANDIDATES, ev.size)):
            v = np.ldexp(U[:, i], -shift)  # exact: D u, D a power of two
            sign, q, ray = _quad(ex.hess, v, exact=True)
            if sign < 0 and (best is None or ray < best[0]):
                best = (ray, v, q)
    if best is not None:
        best = (float(best[0]), best[1], best[2])
        v = np.ldexp(best[1], per)  # the direction in the coordinates of w
        vd = Dyadic.of(v)
        ray_w = best[2] / Fraction(_dot_int(vd.M, vd.M)) / Fraction(2) ** (2 * vd.e)
        return Certificate("strict_saddle", "exact", grad_rel, best[0], h_norm, -1, v, float(ray_w))
    if ex.hess.M.shape[0] <= max_n:
        psd, rank = psd_rank(ex.hess)
        if psd:
            return Certificate(psd_type, "exact_inertia", grad_rel, math.nan, h_norm, rank)
        return Certificate("strict_saddle", "exact_inertia", grad_rel, math.nan, h_norm, -1)
    return Certificate(None, "undecided", grad_rel, math.nan, h_norm, -1)


# ---------------------------------------------------------------- stability bound


@dataclass
class Stability:
    """Answer to "is that verdict stable?" (module docstring).

    Attributes
    ----------
    stability : str
        ``stable`` (proven by the bound), ``unstable`` (the bound cannot exclude
        ``possible_types``), ``undecided`` (no verdict to perturb).
    possible_types : tuple of str
        Types other than the verdict that the perturbation may reach (empty when stable).
    scale : float
        The curvature that decided the verdict: ``|lambda_min|`` (a lower bound on it) of a
        strict point, 0 for a PSD verdict (its zero eigenvalues).
    beta : float
        Bound on how far any Hessian eigenvalue can move (original coordinates).
    dgrad : float
        Bound on how far the gradient can move (Frobenius norm).
    """

    stability: str
    possible_types: tuple[str, ...]
    scale: float
    beta: float
    dgrad: float


def perturbation_bounds(
    norms: np.ndarray,
    r_norm: float,
    sxx_2: float,
    x_norm: float,
    y_norm: float,
    rel: float,
    dist: float = 0.0,
    data_rel: float | None = None,
) -> tuple[float, float, float]:
    """Bounds ``(beta, dgrad, dloss)`` on the change of the Hessian's eigenvalues
    (spectral norm of its change), of the gradient (Frobenius) and of the loss when every
    layer ``W_h`` moves by ``eps_h = rel * n_h + dist`` in Frobenius norm and ``X``, ``Y``
    entrywise by ``rel`` relative.

    Each quantity is multilinear in the layers and the moments; replacing every factor by
    its norm (submultiplicativity) gives a majorant with nonnegative coefficients, and the
    change is at most the majorant at ``n + eps`` minus the majorant at ``n``.  With
    ``v`` a unit direction split by layer: ``||P1(v)|| <= ||a||_2`` with
    ``a_h = prod_{k != h} n_k``; ``||P2(v, v)|| <= ||B||_F / 2`` with
    ``B_{hk} = prod_{j != h, k} n_j``; ``v^T Hess v = 2 ||P1 X||^2 + 4 <P2, R>``.

    Parameters
    ----------
    norms : ndarray (H,)
        ``||W_h||_F``.
    r_norm : float
        ``||R||_F`` (residual ``W_{H:1} Sxx - Syx``), an upper bound of it.
    sxx_2 : float
        ``||Sxx||_2`` (the largest eigenvalue of ``X X^T``).
    x_norm, y_norm : float
        ``||X||_F``, ``||Y||_F``.
    rel : float
        Componentwise relative perturbation of weights and data.
    dist : float
        Extra normwise move of every layer (the distance to the critical set, or a
        normwise perturbation).
    data_rel : float, optional
        Relative perturbation of the data (default ``rel``).
    """
    b, g, dl = bounds_rows(
        np.asarray(norms, np.float64)[None, :], np.array([r_norm]), sxx_2, x_norm, y_norm, rel,
        np.array([dist]), data_rel,
    )  # fmt: skip
    return float(b[0]), float(g[0]), float(dl[0])


def _others(n: np.ndarray, skip: tuple[int, ...]) -> np.ndarray:
    """Row-wise product of the columns of ``n`` (m, H) other than ``skip``."""
    out = np.ones(n.shape[0])
    for j in range(n.shape[1]):
        if j not in skip:
            out = out * n[:, j]
    return out


def _tele(n: np.ndarray, n2: np.ndarray, e: np.ndarray, skip: tuple[int, ...]) -> np.ndarray:
    """Row-wise ``_others(n2, skip) - _others(n, skip)`` without cancellation:
    ``sum_h (prod_{j<h} n2_j) e_h (prod_{j>h} n_j)``, ``e = n2 - n >= 0`` (m, H)."""
    out = np.zeros(n.shape[0])
    for h in range(n.shape[1]):
        if h in skip:
            continue
        term = e[:, h]
        for j in range(n.shape[1]):
            if j not in skip and j != h:
                term = term * (n2[:, j] if j < h else n[:, j])
        out = out + term
    return out


def bounds_rows(
    norms: np.ndarray,
    r_norm: np.ndarray,
    sxx_2: float,
    x_norm: float,
    y_norm: float,
    rel: float,
    dist: np.ndarray,
    data_rel: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`perturbation_bounds` for ``m`` points of one depth at once: ``norms``
    (m, H), ``r_norm`` and ``dist`` (m,); returns ``(beta, dgrad, dloss)``, each (m,).

    Every "majorant at ``n + eps`` minus majorant at ``n``" is evaluated as a sum of
    nonnegative terms (:func:`_tele`, ``p1b^2 - p1^2 = sum_h (a2_h - a_h)(a2_h + a_h)``,
    ``p2b - p2 = (B2 - B) / (2 (sqrt(B2) + sqrt(B)))``), never as a difference of two
    large numbers: the float evaluation is then accurate to a few ``(H + 4)^2`` eps
    relative, and the result is rounded up by that factor."""
    n = np.asarray(norms, dtype=np.float64)
    H = n.shape[1]
    e = rel * n + dist[:, None]
    n2 = n + e
    dr = rel if data_rel is None else data_rel
    c2 = 2.0 * dr + dr * dr  # |d(X X^T)| <= c2 |X| |X|^T
    sxx, syx = sxx_2, x_norm * y_norm  # ||A Sxx||_F <= ||A||_F ||Sxx||_2
    dsxx, dsyx = c2 * x_norm**2, syx * c2  # || |X| |X|^T ||_2 <= ||X||_F^2
    sxx2, syx2 = sxx + dsxx, syx * (1 + c2)
    P, P2n = _others(n, ()), _others(n2, ())
    dP = _tele(n, n2, e, ())
    dR = dP * sxx2 + P * dsxx + dsyx
    s1 = np.zeros(n.shape[0])
    ds1 = np.zeros(n.shape[0])
    sd = np.zeros(n.shape[0])
    for h in range(H):
        a, a2 = _others(n, (h,)), _others(n2, (h,))
        da = _tele(n, n2, e, (h,))
        s1 = s1 + a * a
        ds1 = ds1 + da * (a2 + a)
        g = da * r_norm + a2 * dR
        sd = sd + g * g
    B = np.zeros(n.shape[0])  # ||B||_F^2 counts (h, k) and (k, h)
    B2 = np.zeros(n.shape[0])
    dB = np.zeros(n.shape[0])
    for h in range(H):
        for k in range(h + 1, H):
            o, o2 = _others(n, (h, k)), _others(n2, (h, k))
            B = B + 2.0 * o**2
            B2 = B2 + 2.0 * o2**2
            dB = dB + 2.0 * _tele(n, n2, e, (h, k)) * (o2 + o)
    p1 = np.sqrt(s1)
    p2 = np.sqrt(B) / 2
    den = 2.0 * (np.sqrt(B2) + np.sqrt(B))
    with np.errstate(divide="ignore", invalid="ignore"):
        dp2 = np.where(den > 0, dB / np.where(den > 0, den, 1.0), 0.0)
    beta = 2.0 * (ds1 * sxx2 + p1**2 * dsxx) + 4.0 * (dp2 * (r_norm + dR) + p2 * dR)
    dgrad = 2.0 * np.sqrt(sd)
    dloss = y_norm**2 * c2 + 2.0 * (dP * syx2 + P * dsyx) + (dP * (P2n + P) * sxx2 + P**2 * dsxx)
    inflate = 1.0 + 4.0 * (H + 4) ** 2 * EPS  # the bound's own float evaluation, rounded up
    return beta * inflate, dgrad * inflate, dloss * inflate


def stability(
    verdict: str,
    gap: float,
    grad_norm: float,
    grad_limit: float,
    psd: frozenset[str],
    beta: float,
    dgrad: float,
) -> Stability:
    """Possible types under the perturbation bounded by ``(beta, dgrad)``.

    Parameters
    ----------
    verdict : str
        The type to perturb (certified or float64).
    gap : float
        A lower bound on ``|lambda_min|`` of a strict verdict (original coordinates).
    grad_norm, grad_limit : float
        ``||grad||`` and ``grad_rtol * g_scale``.
    psd : frozenset of str
        The types a PSD Hessian may be read as after the perturbation
        (``global_minimizer`` when the loss may reach the global value, ``non_strict_saddle``
        when it may reach another critical value; see :func:`certify_rows`).
    beta, dgrad : float
        :func:`perturbation_bounds`.
    """
    if verdict not in CRITICAL_TYPES:
        return Stability("undecided", (), math.nan, beta, dgrad)
    possible = set()
    if grad_norm + dgrad > grad_limit:
        possible.add("not_critical")
    psd = set(psd)
    if verdict == "strict_saddle":
        scale = gap
        if not beta < gap:
            possible |= psd
    else:
        scale = 0.0
        if beta > 0:
            possible.add("strict_saddle")
        possible |= psd
    possible.discard(verdict)
    order = [t for t in (*CRITICAL_TYPES, "not_critical") if t in possible]
    return Stability("stable" if not order else "unstable", tuple(order), scale, beta, dgrad)


# ---------------------------------------------------------------- table level

COLUMNS = (
    "decided_by",
    "exact_type",
    "exact_curvature",
    "exact_grad_rel",
    "exact_hess_norm",
    "stability",
    "possible_types",
    "stability_scale",
    "stability_bound",
    "stability_rel",
    "stability_method",
    "normwise_stability",
    "normwise_possible_types",
)


def certify_rows(
    dims_list: list[np.ndarray],
    w_list: list[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    problem: Problem,
    row_float: np.ndarray,
    row_int: np.ndarray,
    spectrum_w: np.ndarray | None = None,
    rel: float = DEFAULT_REL,
    dist: np.ndarray | None = None,
    grad_rtol: float = GRAD_RTOL,
    everything: bool = False,
    reference: bool = False,
) -> dict[str, list]:
    """Both answers for a batch of analysed points (rows of :class:`mcland.storage.BatchOutput`).

    The bound runs for every critical row; the exact evaluation only for rows that need it
    (``everything=True``: every critical row, for studies):

    * float64 undecided: numeric type ``ambiguous``, or theory and numeric types disagree;
    * a strict verdict the bound does not prove stable (the exact Rayleigh quotient is a
      sharper gap than the float64 eigenvalue minus its floor);
    * a PSD verdict on weak evidence (``eig_min_w < -WEAK_PSD * floor``, or a vacuous
      floor: ``floor > PSD_VACUOUS * ||Hess_w||_F``, no eigenvalue resolved) that leaves room
      for a negative eigenvalue larger than the perturbation bound:
      ``max(1, ||Sxx||_2) (tol_zero + floor) > beta`` (the float64 bracket maps to
      original coordinates by Ostrowski's theorem).  Otherwise a negative eigenvalue
      hidden in the floor is at most ``beta`` and the answer is the same either way: PSD
      up to a perturbation (``unstable``, ``strict_saddle`` possible).  The weak-evidence
      triage is empirical, not a proof (docs/certify.md).

    The float64 part (bounds, triage, verdicts of the rows kept at float64) is one kernel
    over all rows (:func:`mcland._kernels.stability.certify_bounds`); ``reference=True``
    computes it with the NumPy reference :func:`certify_figures_reference` instead (for
    the tests; the two agree to rounding).

    Returns the :data:`COLUMNS` as (n,) object arrays (None where not applicable), in row
    order.
    """
    n = len(w_list)
    cols: dict[str, np.ndarray] = {c: np.full(n, None, object) for c in COLUMNS}
    if n == 0:
        return cols
    fig_of = certify_figures_reference if reference else certify_figures
    k_all, fig, code = fig_of(
        dims_list, w_list, X, Y, problem, row_float, row_int, spectrum_w, rel, dist,
        grad_rtol, everything,
    )  # fmt: skip
    crit = np.flatnonzero(code[:, ks.C_CRITICAL] == 1)
    need = code[:, ks.C_NEED] == 1
    fast = crit[~need[crit]]
    _fill_float64(cols, fast, fig, code, rel)
    exact_rows = crit[need[crit]].tolist()
    if exact_rows:
        # small eigenproblems: LAPACK's threads only contend (0.12 ... 0.33 s per call of
        # classify on a loaded 2-core machine, for 4 ... 5 rows of N <= 82)
        with one_blas_thread():
            _exact_rows(cols, exact_rows, dims_list, w_list, X, Y, problem, row_float, k_all,
                        fig, code, rel, grad_rtol)  # fmt: skip
    return cols


def _exact_rows(cols, rows, dims_list, w_list, X, Y, problem, row_float, k_all, fig, code, rel,
                grad_rtol) -> None:  # fmt: skip
    """The exact evaluation and the stability of its type for the ``rows`` that need it
    (:func:`certify_rows`), into ``cols``."""
    moments = None
    for t in rows:
        row, g = row_float[t], fig[t]
        dims = np.asarray(dims_list[t], np.int64)
        k_bal = k_all[t, : dims.size - 1].copy()
        beta, dgrad, beta_n = g[ks.G_BETA], g[ks.G_DGRAD], g[ks.G_BETA_N]
        gap, gap_n = g[ks.G_GAP], g[ks.G_GAP_N]
        psd = frozenset(ks.TYPES[i] for i in range(4) if code[t, ks.C_PSD] >> i & 1)
        args = (g[ks.G_GRAD_NORM], g[ks.G_GRAD_LIMIT], psd, beta, g[ks.G_DGRAD_W])
        at_global = abs(row[f.F_LOSS] - row[f.F_GLOBAL_MIN_VALUE]) <= row[f.F_LOSS_TOL]
        if moments is None:
            moments = exact_moments(X, Y)
        cert = exact_certificate(
            dims, w_list[t], problem, moments, bool(at_global), grad_rtol, k_bal=k_bal
        )
        cols["exact_type"][t] = cert.exact_type
        cols["decided_by"][t] = cert.decided_by
        cols["exact_curvature"][t] = cert.exact_curvature
        cols["exact_grad_rel"][t] = cert.exact_grad_rel
        cols["exact_hess_norm"][t] = cert.hess_norm
        verdict = cert.exact_type
        if cert.exact_type == "strict_saddle" and np.isfinite(cert.exact_curvature):
            gap, gap_n = -cert.exact_curvature, -cert.curvature_original
        elif cert.exact_type == "strict_saddle":
            gap = gap_n = 0.0  # proven strict by inertia, no curvature figure
        st = stability(verdict, gap, *args) if verdict in CRITICAL_TYPES else None
        if st is None:
            st = Stability("undecided", (), math.nan, beta, dgrad)
        args_n = (g[ks.G_GRAD_NORM], g[ks.G_GRAD_LIMIT], psd, beta_n, g[ks.G_DGRAD_NW])
        st_n = stability(verdict, gap_n, *args_n) if verdict in CRITICAL_TYPES else None
        cols["normwise_stability"][t] = st_n.stability if st_n else "undecided"
        cols["normwise_possible_types"][t] = list(st_n.possible_types) if st_n else []
        cols["stability"][t] = st.stability
        cols["possible_types"][t] = list(st.possible_types)
        cols["stability_scale"][t] = st.scale
        cols["stability_bound"][t] = st.beta
        cols["stability_rel"][t] = rel
        cols["stability_method"][t] = ks.METHODS[code[t, ks.C_METHOD]]


def _objects(values: list) -> np.ndarray:
    """``values`` as a 1-D object array (lists stay elements, not rows)."""
    out = np.empty(len(values), object)
    for i, v in enumerate(values):
        out[i] = v
    return out


_MASK_TYPES = _objects(
    [[ks.TYPES[i] for i in range(4) if m >> i & 1] for m in range(16)]
)  # possible types of a bit mask, in the order of ks.TYPES (read-only, shared by rows)
_TYPES, _STABILITIES, _METHODS = (
    _objects(list(names)) for names in (ks.TYPES, ks.STABILITIES, ks.METHODS)
)


def _fill_float64(cols: dict, rows: np.ndarray, fig: np.ndarray, code: np.ndarray, rel: float):
    """The columns of the critical ``rows`` whose float64 verdict is kept, from the
    kernel's figures and codes (by table lookups, all rows at once)."""
    if rows.size == 0:
        return
    c = code[rows]
    verdict = c[:, ks.C_VERDICT]
    cols["exact_type"][rows] = _TYPES[verdict]
    cols["decided_by"][rows] = "float64"
    cols["stability"][rows] = _STABILITIES[c[:, ks.C_STAB]]
    cols["possible_types"][rows] = _MASK_TYPES[c[:, ks.C_POSSIBLE]]
    cols["stability_scale"][rows] = np.where(verdict == ks.T_STRICT, fig[rows, ks.G_GAP], 0.0)
    cols["stability_bound"][rows] = fig[rows, ks.G_BETA]
    cols["stability_rel"][rows] = rel
    cols["stability_method"][rows] = _METHODS[c[:, ks.C_METHOD]]
    cols["normwise_stability"][rows] = _STABILITIES[c[:, ks.C_STAB_N]]
    cols["normwise_possible_types"][rows] = _MASK_TYPES[c[:, ks.C_POSSIBLE_N]]


def _values_table(problem: Problem, ranks: set[int]) -> np.ndarray:
    """Critical values for each rank in ``ranks`` (row ``min(r, d_y)``, NaN-padded),
    (d_y+1, 2**d_y)."""
    d_y = problem.d_y
    out = np.full((d_y + 1, 1 << d_y), np.nan)
    for r in {min(r, d_y) for r in ranks}:
        v = problem.critical_values(r)
        out[r, : v.size] = v
    return out


def certify_figures(
    dims_list,
    w_list,
    X,
    Y,
    problem,
    row_float,
    row_int,
    spectrum_w,
    rel,
    dist,
    grad_rtol,
    everything,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The float64 part of :func:`certify_rows` (same arguments) by the kernel
    :func:`mcland._kernels.stability.certify_bounds`: ``(k, fig, code)``, ``k`` (n, H_max)
    int64 the balancing exponents, ``fig`` (n, len(FIG_NAMES)) float64, ``code``
    (n, len(CODE_NAMES)) int64 (indexed by the constants of :mod:`mcland._kernels.stability`;
    rows with ``code[:, C_CRITICAL] = 0`` are not filled)."""
    dims, w = Ragged.from_arrays(dims_list, np.int64), Ragged.from_arrays(w_list)
    n = len(dims)
    row_int = np.ascontiguousarray(row_int, np.int64)
    crit = row_int[:, f.I_IS_CRITICAL] == 1
    r_all = np.minimum.reduceat(dims.flat, dims.off[:-1]) if n else dims.off[:0]
    ranks = {int(r) for r in np.unique(r_all[crit])}
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    spec = np.zeros((n, 0)) if spectrum_w is None else np.ascontiguousarray(spectrum_w, np.float64)
    pts = CertifyPoints(
        dims.flat, dims.off, w.flat, w.off, np.ascontiguousarray(row_float, np.float64), row_int,
        spec, np.full(n, np.nan) if dist is None else np.asarray(dist, np.float64),
    )  # fmt: skip
    data = CertifyData(
        np.ascontiguousarray(problem.Sxx, np.float64), np.ascontiguousarray(problem.Syx, np.float64),
        _values_table(problem, ranks), float(problem.mu[-1]), float(np.linalg.norm(X)),
        float(np.linalg.norm(Y)), float(problem.mu[0]), float(rel), float(grad_rtol),
        bool(everything),
    )  # fmt: skip
    h_max = int(dims.lengths.max()) - 1
    out = CertifyOutput(
        np.zeros((n, h_max), np.int64), np.zeros((n, len(ks.FIG_NAMES))),
        np.zeros((n, len(ks.CODE_NAMES)), np.int64),
    )  # fmt: skip
    ks.certify_bounds(pts, data, out)
    return out.k, out.fig, out.code


def certify_figures_reference(
    dims_list,
    w_list,
    X,
    Y,
    problem,
    row_float,
    row_int,
    spectrum_w,
    rel,
    dist,
    grad_rtol,
    everything,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NumPy reference of :func:`certify_figures` (vectorised per architecture and per
    depth with :func:`layer_figures`, :func:`balance_rows`, :func:`bounds_rows`, then
    :func:`stability` row by row): the same ``(k, fig, code)``."""
    n = len(w_list)
    x_norm, y_norm = float(np.linalg.norm(X)), float(np.linalg.norm(Y))
    mu0 = float(problem.mu[0])
    ostrowski = min(1.0, mu0)  # lambda_orig <= ostrowski * lambda_w for lambda_w < 0
    names = f.TYPE_NAMES
    values: dict[int, np.ndarray] = {}
    sxx_2 = float(problem.mu[-1])
    h_max = max(len(d) - 1 for d in dims_list)
    k_out = np.zeros((n, h_max), np.int64)
    fig = np.zeros((n, len(ks.FIG_NAMES)))
    code = np.zeros((n, len(ks.CODE_NAMES)), np.int64)
    crit = [t for t in range(n) if row_int[t, f.I_IS_CRITICAL] == 1]
    # per architecture, vectorised: layer norms, balancing, residual norms
    groups: dict[tuple[int, ...], list[int]] = {}
    for t in crit:
        groups.setdefault(tuple(int(d) for d in dims_list[t]), []).append(t)
    norms_of: dict[int, np.ndarray] = {}
    k_of: dict[int, np.ndarray] = {}
    r_of: dict[int, float] = {}
    wn_of: dict[int, float] = {}
    for key, idx in groups.items():
        Wm = np.stack([w_list[t] for t in idx])
        norms, big, small, P = layer_figures(np.array(key), Wm)
        k = balance_rows(norms, big, small)
        R = np.matmul(P, problem.Sxx) - problem.Syx
        r_err = 4.0 * EPS * max(key) * (norms.prod(axis=1) * x_norm**2 + x_norm * y_norm)
        r_norm = np.sqrt((R * R).sum(axis=(1, 2))) + r_err
        w_norm = np.sqrt((Wm * Wm).sum(axis=1))
        for i, t in enumerate(idx):
            norms_of[t], k_of[t], r_of[t], wn_of[t] = norms[i], k[i], r_norm[i], w_norm[i]
    # per depth: the bounds (vectorised)
    by_depth: dict[int, list[int]] = {}
    for t in crit:
        by_depth.setdefault(len(dims_list[t]) - 1, []).append(t)
    for idx in by_depth.values():
        norms = np.stack([norms_of[t] for t in idx])
        k = np.stack([k_of[t] for t in idx])
        c = np.ldexp(1.0, k)
        r_norm = np.array([r_of[t] for t in idx])
        w_norm = np.array([wn_of[t] for t in idx])
        d = np.empty(len(idx))
        for i, t in enumerate(idx):
            row = row_float[t]
            if dist is not None and np.isfinite(dist[t]):
                d[i] = float(dist[t])
                code[t, ks.C_METHOD] = 1
            elif row[f.F_GRAD_REL] <= NEAR_EXACT:
                d[i] = 0.0  # critical to rounding: the distance is of the order of rel itself
            else:
                spec = spectrum_w[t] if spectrum_w is not None else None
                d[i] = _distance_estimate(row, spec, mu0)
                code[t, ks.C_METHOD] = 2 if d[i] > 0 else 0
        _, dgrad, dloss = bounds_rows(norms, r_norm, sxx_2, x_norm, y_norm, rel, d)
        # balanced coordinates w' = D^{-1} w: distances grow by at most 1 / min c
        beta = bounds_rows(norms / c, r_norm, sxx_2, x_norm, y_norm, rel, d / c.min(axis=1))[0]
        # normwise: every layer moves by rel * ||w|| (zero and tiny layers too), original coords
        beta_n, dgrad_n, _ = bounds_rows(
            norms, r_norm, sxx_2, x_norm, y_norm, 0.0, d + rel * w_norm, data_rel=rel
        )
        for i, t in enumerate(idx):
            k_out[t, : k.shape[1]] = k[i]
            g = fig[t]
            g[ks.G_C_MIN2], g[ks.G_C_MAX2] = c[i].min() ** 2, c[i].max() ** 2
            g[ks.G_BETA], g[ks.G_DGRAD], g[ks.G_DLOSS] = beta[i], dgrad[i], dloss[i]
            g[ks.G_BETA_N], g[ks.G_DGRAD_N], g[ks.G_DIST] = beta_n[i], dgrad_n[i], d[i]
    code_of = {name: i for i, name in enumerate(ks.TYPES)}
    for t in crit:
        row, ri, g = row_float[t], row_int[t], fig[t]
        code[t, ks.C_CRITICAL] = 1
        numeric, theory = names[ri[f.I_NUMERIC_TYPE]], names[ri[f.I_THEORY_TYPE]]
        floor = row[f.F_NOISE_FLOOR]
        eig = row[f.F_EIG_MIN_W]
        beta, c_min2, c_max2 = g[ks.G_BETA], g[ks.G_C_MIN2], g[ks.G_C_MAX2]
        at_global = abs(row[f.F_LOSS] - row[f.F_GLOBAL_MIN_VALUE]) <= row[f.F_LOSS_TOL]
        decided = numeric != "ambiguous" and numeric == theory
        verdict = numeric if decided else None
        # curvature and its bound in balanced coordinates w' = D^{-1} w (layer_balance):
        # same type, same relative perturbations, Hessian D H D (Ostrowski: sigma(D)^2)
        gap = ostrowski * c_min2 * max(abs(eig) - floor, 0.0) if numeric == "strict_saddle" else 0.0
        gap_n = ostrowski * max(abs(eig) - floor, 0.0) if numeric == "strict_saddle" else 0.0
        grad_norm = row[f.F_GRAD_NORM]
        grad_limit = grad_rtol * grad_norm / row[f.F_GRAD_REL] if row[f.F_GRAD_REL] > 0 else np.inf
        # the criticality test runs in whitened coordinates: dgrad mapped by ||K^{-1}||
        dgrad_w = g[ks.G_DGRAD] * max(1.0, mu0**-0.5)
        dgrad_nw = g[ks.G_DGRAD_N] * max(1.0, mu0**-0.5)
        # which critical values the loss may reach: each within dloss of the loss, and
        # the critical values themselves move by at most about dloss (first order)
        r = int(min(dims_list[t]))
        if r not in values:
            values[r] = problem.critical_values(r)
        reach = 2.0 * g[ks.G_DLOSS] + row[f.F_LOSS_TOL]
        near = np.abs(values[r] - row[f.F_LOSS]) <= reach
        psd = {"global_minimizer"} if near[0] else set()
        if near[1:].any():
            psd.add("non_strict_saddle")
        if not psd:
            psd = {"global_minimizer" if at_global else "non_strict_saddle"}
        if not decided or everything:
            need = True
        elif verdict == "strict_saddle":  # a sharper gap may prove the curvature stable
            need = not beta < gap
        else:  # PSD up to the floor: a negative eigenvalue of size <= `hidden` may hide in it
            hidden = max(1.0, sxx_2) * c_max2 * (row[f.F_TOL_ZERO] + floor)  # Ostrowski
            # only then can the exact type be a *stable* strict saddle; and only weak evidence
            vacuous = floor > PSD_VACUOUS * row[f.F_HESS_NORM_W]
            need = hidden > beta and (vacuous or eig < -WEAK_PSD * floor)
        mask = sum(1 << code_of[p] for p in psd)
        args = (grad_norm, grad_limit, frozenset(psd))
        st = stability(verdict, gap, *args, beta, dgrad_w) if verdict else None
        st_n = stability(verdict, gap_n, *args, g[ks.G_BETA_N], dgrad_nw) if verdict else None
        g[ks.G_GAP], g[ks.G_GAP_N], g[ks.G_GRAD_NORM] = gap, gap_n, grad_norm
        g[ks.G_GRAD_LIMIT], g[ks.G_DGRAD_W], g[ks.G_DGRAD_NW] = grad_limit, dgrad_w, dgrad_nw
        c = code[t]
        c[ks.C_NEED], c[ks.C_PSD] = need, mask
        c[ks.C_VERDICT] = code_of[verdict] if verdict else -1
        for col_s, col_p, s in (
            (ks.C_STAB, ks.C_POSSIBLE, st),
            (ks.C_STAB_N, ks.C_POSSIBLE_N, st_n),
        ):
            c[col_s] = ks.STABILITIES.index(s.stability) if s else 2
            c[col_p] = sum(1 << code_of[p] for p in s.possible_types) if s else 0
    return k_out, fig, code


def _distance_estimate(row: np.ndarray, spectrum_w: np.ndarray | None, mu0: float) -> float:
    """First-order distance to the critical set, ``||grad|| / sigma_+`` (an estimate):
    in whitened coordinates (``sigma_+`` the smallest whitened eigenvalue above
    ``tol_zero``), mapped to original ones by ``||K^{-1}|| <= max(1, mu_min^{-1/2})``.
    0 without a spectrum or a gradient."""
    g = row[f.F_GRAD_NORM]
    if spectrum_w is None or not g > 0:
        return 0.0
    ev = spectrum_w[np.isfinite(spectrum_w)]
    pos = ev[ev > row[f.F_TOL_ZERO]]
    if pos.size == 0:
        return 0.0
    return float(g / pos.min() * max(1.0, mu0**-0.5))


def certify_point(
    weights: list[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    rel: float = DEFAULT_REL,
    tolerances: object | None = None,
) -> dict[str, object]:
    """Both answers for one point, the exact evaluation always run (docs/certify.md).

    Parameters
    ----------
    weights : sequence of ndarray
        ``[W_1, ..., W_H]``, ``W_h`` of shape ``(d_h, d_{h-1})``.
    X : ndarray (d_x, m)
    Y : ndarray (d_y, m)
    rel : float
        Componentwise relative perturbation for the stability answer.
    tolerances : Tolerances, optional

    Returns
    -------
    dict
        The float64 ``numeric_type`` and ``theory_type``, then :data:`COLUMNS`.
    """
    from mcland.classify import analyze_points, read_points
    from mcland.tolerances import Tolerances

    tol = tolerances or Tolerances()
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    problem = Problem.from_data(X, Y)
    given = read_points([list(weights)], problem)
    out = analyze_points(given.dims, given.w, problem, tol, 1)
    cols = certify_rows(
        given.dims, given.w, X, Y, problem, out.row_float, out.row_int, out.spectrum_w,
        rel, None, tol.grad_rtol, everything=True,
    )  # fmt: skip
    ri = out.row_int[0]
    res: dict[str, object] = {
        "numeric_type": f.TYPE_NAMES[ri[f.I_NUMERIC_TYPE]],
        "theory_type": f.TYPE_NAMES[ri[f.I_THEORY_TYPE]],
        "eig_min_w": float(out.row_float[0, f.F_EIG_MIN_W]),
        "noise_floor": float(out.row_float[0, f.F_NOISE_FLOOR]),
    }
    res.update({c: list(v[0]) if isinstance(v[0], list) else v[0] for c, v in cols.items()})
    return res
