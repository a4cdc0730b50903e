"""Proven bounds on the Hessian's spectrum from its structure alone (no product with it).

``nabla^2 L = GN + SO`` (docs/matrix_free.md, :mod:`mcland._kernels.hvp`):

* ``GN = 2 J^T (Sxx (x) I) J`` is positive semidefinite, and its nonzero eigenvalues are
  those of ``2 J J^T = sum_h 2 J_h J_h^T`` with ``J_h J_h^T = (A_h A_h^T) (x) (Sxx^{1/2}
  B_h^T B_h Sxx^{1/2})``, whose eigenvalues are the products ``sigma_a(A_h)^2 mu_b(C_hh)``
  (``C_hh = B_h Sxx B_h^T``);
* ``SO = sum_{h<k} S_{hk}``, ``S_{hk}`` the symmetric operator with the off-diagonal blocks
  ``X_{hk}: V_h -> 2 G_{kh} V_h^T W_{k-1:h+1}^T`` and its adjoint; ``X_{hk}`` has the singular
  values ``2 sigma_a(G_{kh}) sigma_b(W_{k-1:h+1})`` (all pairs ``a, b``), so ``S_{hk}`` has the
  eigenvalues ``+-2 sigma_a sigma_b`` and zeros.

Theorems used (every one for exact symmetric matrices):

* Weyl: ``lambda_{i+j-1}(A + B) >= lambda_i(A) + lambda_j(B)``; hence for ``A = sum_p P_p``
  and ``x = sum_p x_p``, ``#{lambda(A) < -x} <= sum_p #{lambda(P_p) < -x_p}`` and likewise
  above ``x``; with ``GN >= 0``, ``lambda_i(H) >= lambda_i(SO)``, so ``#{lambda(H) < -x} <=
  #{lambda(SO) < -x}`` and ``lambda_min(H) >= -sum_{h<k} 2 sigma_1(G_{kh})
  sigma_1(W_{k-1:h+1})``.
* Range: block ``h`` of every product ``H v`` lies in ``range(A_h^T) (x) R^{d_{h-1}} +
  R^{d_h} (x) range(B_h R^T)`` and in ``R^{d_h} (x) range(B_h Sxx) + range(A_h^T R) (x)
  R^{d_{h-1}}`` (issue 21), so ``rank(H)`` is at most the sum over ``h`` of the smaller of
  the two dimensions, bounded with ranks no larger than the matrices' shapes allow
  (:func:`rank_bound`): at least ``N - rank_bound`` eigenvalues are exactly zero.

The counts are for the operator of the computed factors; the caller widens every threshold
by the error of those factors (``op_error``) and by the singular values' rounding
(:attr:`StructuralSpectrum.svd_error`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcland._kernels.bundles import HVPFactors
from mcland._kernels.constants import EPS
from mcland.core.blas import one_blas_thread


@dataclass(frozen=True)
class StructuralSpectrum:
    """The pieces' spectra of one Hessian.

    Attributes
    ----------
    so : list of (ndarray, ndarray)
        For every pair ``h < k``: the singular values of ``G_{kh}`` and of
        ``W_{k-1:h+1}`` (piece eigenvalues ``+-2 s_a t_b``).
    gn : list of (ndarray, ndarray)
        For every ``h``: the squared singular values of ``A_h`` and the eigenvalues of
        ``C_hh`` (piece eigenvalues ``2 s_a t_b``, PSD).
    so_top, gn_top : ndarray
        Each piece's largest eigenvalue (magnitude).
    svd_error : float
        A bound on the rounding of the pieces' computed eigenvalues, summed over pieces:
        LAPACK's singular values are within ``sqrt(d) eps sigma_1`` (probabilistic model of
        docs/numerics.md), so a product ``2 s_a t_b`` within ``2 sqrt(d) eps`` of the piece's
        largest.
    rank : int
        :func:`rank_bound`.
    d_y_d_x : int
        ``d_y d_x``, a bound on ``rank(GN)``.
    N : int
    """

    so: list
    gn: list
    so_top: np.ndarray
    gn_top: np.ndarray
    svd_error: float
    rank: int
    d_y_d_x: int
    N: int

    @property
    def eig_min_lower(self) -> float:
        """``-sum so_top``: ``lambda_min >= `` this (Weyl, ``GN >= 0``), before errors."""
        return -float(np.sum(self.so_top))

    @property
    def eig_max_upper(self) -> float:
        """``sum gn_top + sum so_top`` (Weyl), before errors."""
        return float(np.sum(self.gn_top) + np.sum(self.so_top))


def _count_products_above(s: np.ndarray, t: np.ndarray, x: float) -> int:
    """``#{(a, b): 2 s_a t_b > x}`` for nonnegative ``s``, ``t`` and ``x >= 0``."""
    if s.size == 0 or t.size == 0:
        return 0
    ts = np.sort(t)
    total = 0
    for sa in s:
        if sa <= 0.0:
            continue
        # 2 sa t_b > x  <=>  t_b > x / (2 sa)
        total += ts.size - int(np.searchsorted(ts, x / (2.0 * sa), side="right"))
    return total


def rank_bound(dims) -> int:
    """An upper bound on ``rank(nabla^2 L)`` from the widths alone (exact arithmetic, any
    point and data): see the module docstring.  ``rank(A_h) <= min(d_h..d_H)``,
    ``rank(B_h) <= min(d_0..d_{h-1})``, ``rank(R) <= min(d_y, d_x)``."""
    dims = [int(x) for x in dims]
    H = len(dims) - 1
    r_R = min(dims[0], dims[H])
    total = 0
    for h in range(1, H + 1):
        a = min(dims[h:])
        b = min(dims[:h])
        one = a * dims[h - 1] + dims[h] * min(r_R, b)
        two = dims[h] * b + min(a, r_R) * dims[h - 1]
        total += min(dims[h] * dims[h - 1], one, two)
    return total


def structural_spectrum(f: HVPFactors) -> StructuralSpectrum:
    """The pieces' spectra from the factors of :func:`mcland._kernels.hvp.hvp_factors`
    (LAPACK SVDs of matrices of at most ``max_h d_h`` rows and columns, on one BLAS
    thread: ``O(H^2 d^3)``)."""
    dims = [int(x) for x in f.dims]
    H = len(dims) - 1
    toff = f.table_off

    def prod(a: int, b: int) -> np.ndarray:
        start = int(toff[a, b])
        return f.table[start : start + dims[a] * dims[b - 1]].reshape(dims[a], dims[b - 1])

    so, gn = [], []
    so_top, gn_top = [], []
    err = 0.0
    with one_blas_thread():
        for h in range(1, H + 1):
            for k in range(h + 1, H + 1):
                go = int(f.g_off[k, h])
                G = f.G[go : go + dims[k] * dims[h - 1]].reshape(dims[k], dims[h - 1])
                s = np.linalg.svd(G, compute_uv=False)
                if k == h + 1:
                    t = np.ones(dims[h])
                else:
                    t = np.linalg.svd(prod(k - 1, h + 1), compute_uv=False)
                so.append((s, t))
                top = 2.0 * (s[0] if s.size else 0.0) * (t[0] if t.size else 0.0)
                so_top.append(top)
                err += 2.0 * np.sqrt(max(dims)) * EPS * top
            A = prod(H, h + 1)
            co = int(f.c_off[h, h])
            Chh = f.C[co : co + dims[h - 1] ** 2].reshape(dims[h - 1], dims[h - 1])
            sa = np.linalg.svd(A, compute_uv=False) ** 2
            mu = np.clip(np.linalg.eigvalsh(0.5 * (Chh + Chh.T)), 0.0, None)
            gn.append((sa, mu))
            top = 2.0 * (sa.max() if sa.size else 0.0) * (mu.max() if mu.size else 0.0)
            gn_top.append(top)
            err += 2.0 * np.sqrt(max(dims)) * EPS * top
    N = sum(dims[h] * dims[h - 1] for h in range(1, H + 1))
    return StructuralSpectrum(
        so=so,
        gn=gn,
        so_top=np.array(so_top),
        gn_top=np.array(gn_top),
        svd_error=float(err),
        rank=rank_bound(dims),
        d_y_d_x=dims[0] * dims[H],
        N=N,
    )


def _splits(tops: np.ndarray, x: float) -> list[np.ndarray]:
    """Candidate ways to split the threshold ``x > 0`` between pieces whose largest
    eigenvalues are ``tops`` (every split gives a valid bound; the caller takes the
    smallest): equal shares; shares proportional to ``tops``; and "silence the smallest
    pieces first" (give each piece, smallest first, its largest eigenvalue, so that it
    counts nothing, while the budget lasts; the rest proportional)."""
    P = tops.size
    out = [np.full(P, x / P)]
    total = float(np.sum(tops))
    if total > 0.0:
        out.append(x * tops / total)
        order = np.argsort(tops, kind="stable")
        share = np.zeros(P)
        budget = x
        rest = []
        for p in order:
            need = tops[p] * (1.0 + 1e-12) + 1e-300
            if need <= budget and len(rest) == 0:
                share[p] = need
                budget -= need
            else:
                rest.append(p)
        if rest:
            rt = tops[rest]
            share[rest] = budget * (rt / rt.sum() if rt.sum() > 0 else 1.0 / len(rest))
        else:
            share[order[-1]] += budget
        out.append(share)
    return out


def count_below(spec: StructuralSpectrum, x: float) -> int:
    """An upper bound on ``#{lambda(H) < -x}`` for ``x > 0`` (Weyl on ``SO``; ``GN >= 0``),
    before errors; for ``x == 0``, 0 when every piece of ``SO`` is zero, else ``N``; ``N``
    when ``x < 0``."""
    if not x > 0.0:
        return 0 if x == 0.0 and not np.any(spec.so_top) else spec.N
    if len(spec.so) == 0:
        return 0
    best = spec.N
    for share in _splits(spec.so_top, x):
        c = sum(_count_products_above(s, t, xp) for (s, t), xp in zip(spec.so, share, strict=True))
        best = min(best, c)
    return int(best)


def count_above(spec: StructuralSpectrum, x: float) -> int:
    """An upper bound on ``#{lambda(H) > x}`` for ``x > 0`` (Weyl on ``GN + SO``), before
    errors; for ``x == 0``, 0 when every piece is zero, else ``N``; ``N`` when ``x < 0``."""
    if not x > 0.0:
        zero = not (np.any(spec.so_top) or np.any(spec.gn_top))
        return 0 if x == 0.0 and zero else spec.N
    tops = np.concatenate([spec.gn_top, spec.so_top])
    pieces = list(spec.gn) + list(spec.so)
    n_gn = len(spec.gn)
    best = spec.N
    for share in _splits(tops, x):
        c_gn = sum(
            _count_products_above(s, t, xp)
            for (s, t), xp in zip(pieces[:n_gn], share[:n_gn], strict=True)
        )
        c_so = sum(
            _count_products_above(s, t, xp)
            for (s, t), xp in zip(pieces[n_gn:], share[n_gn:], strict=True)
        )
        best = min(best, min(c_gn, spec.d_y_d_x) + c_so)
    return int(best)
