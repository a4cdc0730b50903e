"""Data moments and the whitened problem of docs/theory.md §1 and §5."""

from __future__ import annotations

import numpy as np

from mcland._kernels.bundles import Moments
from mcland._kernels.dense import matmul, matmul_nt
from mcland._kernels.jit import jit, jit_inline
from mcland._kernels.lapack import eigh, svd


@jit
def moments(X, Y):
    """``Sxx = X X^T`` (d_x, d_x), ``Syx = Y X^T`` (d_y, d_x), ``tr(Syy)`` for X (d_x, m), Y (d_y, m)."""
    Sxx = matmul_nt(X, X)
    Syx = matmul_nt(Y, X)
    tr_syy = 0.0
    for v in Y.ravel():
        tr_syy += v * v
    return Sxx, Syx, tr_syy


@jit
def whiten(Sxx, Syx):
    """Spectral data of the problem.

    Returns ``(mu, K, Kinv, lam, U, Vt)``: ``mu`` the ascending eigenvalues of Sxx,
    ``K = Sxx^{1/2}`` and its inverse (d_x, d_x), ``lam`` the decreasing eigenvalues of
    ``Sigma = Syx Sxx^{-1} Sxy`` (d_y,), ``U`` its eigenvectors (d_y, d_y, columns), and
    ``Vt`` (d_x, d_x) whose first d_y rows are ``v_i^T`` with ``Syx K^{-1} = U diag(sqrt(lam)) V^T``
    and whose remaining rows span the complement ``V_0``.  Assumes ``mu > 0``; callers check.
    """
    mu, Q = eigh(Sxx)  # mcland's LAPACK instance (lapack_library), C order
    n = mu.size
    Qs = np.empty_like(Q)
    Qi = np.empty_like(Q)
    for i in range(n):
        for j in range(n):
            root = np.sqrt(max(mu[j], 0.0))
            Qs[i, j] = Q[i, j] * root
            Qi[i, j] = Q[i, j] / root
    K = matmul_nt(Qs, Q)
    Kinv = matmul_nt(Qi, Q)
    M = matmul(Syx, Kinv)
    U, sig, Vt = svd(M)
    lam = sig * sig
    return mu, K, Kinv, lam, U, Vt


@jit_inline
def problem(X, Y):
    """Everything the kernels need about the data X (d_x, m), Y (d_y, m), computed once:
    a :class:`.bundles.Moments` (see :func:`moments`, :func:`whiten`)."""
    Sxx, Syx, tr_syy = moments(X, Y)
    mu, K, K_inv, lam, U, Vt = whiten(Sxx, Syx)
    return Moments(Sxx, Syx, tr_syy, mu, K, K_inv, lam, U, Vt)


@jit
def smallest_relative_gap(lam):
    """``min(min_i (lam_i - lam_{i+1}), lam_{d_y}) / lam_1`` for decreasing ``lam``."""
    if lam.size == 0 or lam[0] <= 0.0:
        return 0.0
    gap = lam[lam.size - 1]
    for i in range(lam.size - 1):
        gap = min(gap, lam[i] - lam[i + 1])
    return gap / lam[0]


@jit
def n_critical_values(d_y, r):
    """``sum_{k<=r} C(d_y, k)``: the number of index sets ``S`` with ``|S| <= r``
    (saturated at ``2**62``, far beyond any array the callers allocate)."""
    cap = 1 << 62
    total = 0
    c = 1  # C(d_y, k)
    for k in range(min(r, d_y) + 1):
        total += c
        if total >= cap or c > cap // max(d_y, 1):
            return cap
        c = c * (d_y - k) // (k + 1)
    return total


@jit
def critical_values_into(lam, tr_syy, r, out):
    """All critical values ``tr(Syy) - sum_{i in S} lam_i``, ``|S| <= r`` (docs/theory.md §2),
    ascending, into ``out[:count]``; returns ``count = sum_{k<=r} C(d_y, k)``
    (:func:`n_critical_values`), the entries ``out`` needs.

    Only the index sets of size at most ``r`` are visited: by size ``k = 0 .. r``, each size
    in lexicographic order of the sorted indices.  Each value subtracts its ``lam_i`` in
    increasing ``i``, so every value, hence the sorted array, does not depend on the order
    of the visit (bit for bit the array of the former walk over all ``2**d_y`` masks).
    """
    d_y = lam.size
    r = min(r, d_y)
    idx = np.empty(max(r, 1), np.int64)
    out[0] = tr_syy
    count = 1
    for k in range(1, r + 1):
        for j in range(k):
            idx[j] = j
        while True:
            val = tr_syy
            for j in range(k):
                val -= lam[idx[j]]
            out[count] = val
            count += 1
            j = k - 1
            while j >= 0 and idx[j] == d_y - k + j:
                j -= 1
            if j < 0:
                break
            idx[j] += 1
            for m in range(j + 1, k):
                idx[m] = idx[m - 1] + 1
    out[:count].sort()  # in place: no slice assignment (see dense.copy_into)
    return count
