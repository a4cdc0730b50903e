"""The Hessian's spectrum without the N x N matrix (docs/structured.md).

Every Hessian-vector product's layer-h block lies in ``T_h = Ra (x) Rb + R^{d_h} (x) Rc +
Rd (x) R^{d_{h-1}}`` (``Ra = range(A_h^T)``, ``Rb = range(B_h)``, ``Rc = range(B_h E^T)``,
``Rd = range(A_h^T E)``; ``A_h = W_{H:h+1}``, ``B_h = W_{h-1:1}``, ``E = W_{H:1} Sxx -
Syx``), so the Hessian is zero outside ``T = T_1 x ... x T_H`` and its spectrum is
``eig(K)`` together with ``N - k`` zeros, ``K`` the Hessian restricted to T (order
``k = dim T``).  Per layer, orthogonal bases ``L_h = [Rd | Ra - Rd | Ra^perp]`` of
``R^{d_h}`` and ``R_h = [Rc | Rb - Rc | Rb^perp]`` of ``R^{d_{h-1}}`` (from SVDs of
``A_h``, ``B_h`` and two small matrices) turn T_h into a fixed set of coordinates of
``X_h = L_h^T V_h R_h``, and K's entries are products of entries of small matrices:

* Gauss-Newton: ``2 (A^_h^T A^_k)[r, t] (B^_h Sxx B^_k^T)[s, u]`` with ``A^_h = A_h L_h``
  (d_y, a_h), ``B^_h = R_h^T B_h`` (b_h, d_x);
* second order, layers ``h < k``: ``2 G^_{kh}[t, s] M^_{kh}[u, r]`` with
  ``G^_{kh} = A^_k^T E B^_h^T`` (dd_k, c_h) and ``M^_{kh} = R_k^T W_{k-1:h+1} L_h``
  (d_{k-1}, d_h).

Nothing of size N is formed: the largest arrays are K (k, k) and the bases and
``M^`` (d_h, d_h) (``O(sum_h d_h^2)``).  The reference implementation is
:mod:`mcland.core.naive_structured`.  Cost: ``O(k^3)`` for the eigenvalues of K, ``O(k^2)``
to assemble it, ``O(sum d_h^3)`` for the bases and ``M^`` (BLAS).  The eigenvalues of K
come from ``dsyevd`` up to order :data:`.band.SMALL` and from the two-stage solver of
:mod:`.band` above (half the time at k = 6,000).
"""

from __future__ import annotations

import numpy as np

from mcland._kernels.band import eigvalsh_large_destroy
from mcland._kernels.bundles import StructuredSpectrum
from mcland._kernels.classify import whitened_problem
from mcland._kernels.constants import EPS
from mcland._kernels.dense import as_matrix, frob, layer, layer_offsets, matmul_into, prod
from mcland._kernels.hessian import assembly_error, frob_upper, product_norms, residual
from mcland._kernels.jit import jit, jit_inline

# The bases come from LAPACK's SVD (times a small orthogonal factor); one of order d is
# orthogonal to ||L^T L - I||_2 <= (PHI_ORTH + sqrt(d)) eps: measured at most 5.0 sqrt(d)
# eps for d <= 16 and about 13 eps for d = 64..1024 (tests/test_structured.py)
PHI_ORTH = 10.0


@jit_inline
def _rank_above(s, tol):
    """Number of the (descending) singular values ``s`` above ``tol``."""
    n = 0
    for v in s:
        if v > tol:
            n += 1
    return n


@jit
def _dot(A, B):
    """``A @ B`` by BLAS for C-ordered ``A``, ``B`` (the products with the large bases);
    callers pass contiguous copies of transposes, so that this compiles once."""
    return np.dot(A, B)


@jit
def left_basis(A, E, tol_a, tol_z, L):
    """Orthogonal basis ``L = [Rd | Ra - Rd | Ra^perp]`` of ``R^{d_h}`` into ``L`` (d_h, d_h)
    for ``A = A_h`` (d_y, d_h) and the residual ``E`` (d_y, d_x); returns ``(a, dd)``.

    ``A = U S V^T`` (full SVD): Ra is spanned by the first ``a`` columns of V (singular
    values above ``tol_a``), its complement by the others.  Inside Ra, ``A^T E`` has the
    coordinates ``Z = S_a U_a^T E`` (a, d_x); ``Z = U_Z S_Z V_Z^T`` and the first ``dd``
    columns of ``V_a U_Z`` (singular values above ``tol_z``) span Rd."""
    d_y, dh = A.shape
    d_x = E.shape[1]
    U, s, Vt = np.linalg.svd(np.ascontiguousarray(A), True)
    a = _rank_above(s, tol_a)
    dd = 0
    if a > 0:
        Z = np.empty((a, d_x))
        for i in range(a):
            for j in range(d_x):
                acc = 0.0
                for y in range(d_y):
                    acc += U[y, i] * E[y, j]
                Z[i, j] = s[i] * acc
        UZ, sZ, _ = np.linalg.svd(Z, True)
        dd = _rank_above(sZ, tol_z)
        La = _dot(np.ascontiguousarray(Vt[:a].T), np.ascontiguousarray(UZ))  # (d_h, a)
        for i in range(dh):
            for j in range(a):
                L[i, j] = La[i, j]
    for i in range(dh):
        for j in range(a, dh):
            L[i, j] = Vt[j, i]
    return a, dd


@jit
def right_basis(B, E, tol_b, tol_z, R):
    """Orthogonal basis ``R = [Rc | Rb - Rc | Rb^perp]`` of ``R^{d_{h-1}}`` into ``R``
    (d_{h-1}, d_{h-1}) for ``B = B_h`` (d_{h-1}, d_x); returns ``(b, c)``: as
    :func:`left_basis` with ``B = U S V^T``, Rb spanned by the first ``b`` columns of U
    and ``Z = S_b V_b^T E^T`` (b, d_y) the coordinates of ``B E^T`` inside it."""
    dh1, d_x = B.shape
    d_y = E.shape[0]
    U, s, Vt = np.linalg.svd(np.ascontiguousarray(B), True)
    b = _rank_above(s, tol_b)
    c = 0
    if b > 0:
        Z = np.empty((b, d_y))
        for i in range(b):
            for y in range(d_y):
                acc = 0.0
                for j in range(d_x):
                    acc += Vt[i, j] * E[y, j]
                Z[i, y] = s[i] * acc
        UZ, sZ, _ = np.linalg.svd(Z, True)
        c = _rank_above(sZ, tol_z)
        Rb = _dot(np.ascontiguousarray(U[:, :b]), np.ascontiguousarray(UZ))  # (d_{h-1}, b)
        for i in range(dh1):
            for j in range(b):
                R[i, j] = Rb[i, j]
    for i in range(dh1):
        for j in range(b, dh1):
            R[i, j] = U[i, j]
    return b, c


@jit
def rank_tolerances(pn, perr, dims, Sxx_n, Syx_n, R_n):
    """Thresholds (H, 4) below which singular values are dropped, per layer h (row h-1):
    ``A_h``, ``Z_A``, ``B_h``, ``Z_B`` (see :func:`left_basis`, :func:`right_basis`), each
    the error bound of the computed matrix plus the SVD's backward error
    ``eps sqrt(max dim) ||X||`` (docs/structured.md §4).  ``pn``, ``perr`` from
    :func:`.hessian.product_norms`; ``R_n = ||E||_F``."""
    H = dims.size - 1
    d_x, d_y = dims[0], dims[H]
    dsum = 0.0
    for h in range(H + 1):
        dsum += dims[h]
    en = pn + perr
    err_e = EPS * np.sqrt(dsum) * (en[H, 1] * Sxx_n + Syx_n) + perr[H, 1] * Sxx_n
    tol = np.empty((H, 4))
    for h in range(1, H + 1):
        dh, dh1 = dims[h], dims[h - 1]
        tol[h - 1, 0] = perr[H, h + 1] + EPS * np.sqrt(max(d_y, dh)) * pn[H, h + 1]
        tol[h - 1, 1] = (
            en[H, h + 1] * err_e
            + (perr[H, h + 1] + EPS * np.sqrt(d_y + d_x + dh) * pn[H, h + 1]) * R_n
        )
        tol[h - 1, 2] = perr[h - 1, 1] + EPS * np.sqrt(max(dh1, d_x)) * pn[h - 1, 1]
        tol[h - 1, 3] = (
            en[h - 1, 1] * err_e
            + (perr[h - 1, 1] + EPS * np.sqrt(d_y + d_x + dh1) * pn[h - 1, 1]) * R_n
        )
    return tol


@jit
def transform_error(pn, perr, dims, Sxx_n, R_n):
    """``E_map``: rounding of the change to the layers' bases, block by block as the
    accumulation term of :func:`.hessian.assembly_error` with ``sqrt(d_h) + sqrt(d_{h-1})
    + sqrt(d_k) + sqrt(d_{k-1})`` (the inner dimensions of the products with the bases)
    in place of ``sqrt(sum_h d_h)`` (docs/structured.md §5)."""
    H = dims.size - 1
    en = pn + perr
    total = 0.0
    for h in range(1, H + 1):
        for k in range(1, h + 1):
            root = np.sqrt(dims[h]) + np.sqrt(dims[h - 1]) + np.sqrt(dims[k]) + np.sqrt(dims[k - 1])
            Ph, Pk, Qh, Qk = en[H, h + 1], en[H, k + 1], en[h - 1, 1], en[k - 1, 1]
            e = 2.0 * Sxx_n * EPS * root * Ph * Pk * Qh * Qk
            if k < h:
                e += 2.0 * EPS * root * en[h - 1, k + 1] * Ph * Qk * R_n
            mult = 2.0 if k < h else 1.0
            total += mult * e * e
    return np.sqrt(total)


@jit
def truncation_error(pn, dims, Sxx_n, tau_a, tau_b, tau_g):
    """``E_trunc``: bound of the Frobenius norm of the Hessian part carried by the dropped
    directions (``tau_a[h-1] = ||A_h L_3||``, ``tau_b[h-1] = ||R_3^T B_h||``,
    ``tau_g[k-1, h-1] = ||G^_{kh}`` outside ``[:dd_k, :c_h]||``, measured), block by block:
    Gauss-Newton ``2 ||Sxx|| [(ta_h P_k + P_h ta_k) Q_h Q_k + P_h P_k (tb_h Q_k + Q_h tb_k)]``,
    second order ``2 tg_{hk} ||W_{h-1:k+1}||`` (docs/structured.md §5)."""
    H = dims.size - 1
    total = 0.0
    for h in range(1, H + 1):
        for k in range(1, h + 1):
            Ph, Pk, Qh, Qk = pn[H, h + 1], pn[H, k + 1], pn[h - 1, 1], pn[k - 1, 1]
            e = (
                2.0
                * Sxx_n
                * (
                    (tau_a[h - 1] * Pk + Ph * tau_a[k - 1]) * Qh * Qk
                    + Ph * Pk * (tau_b[h - 1] * Qk + Qh * tau_b[k - 1])
                )
            )
            if k < h:
                e += 2.0 * tau_g[h - 1, k - 1] * pn[h - 1, k + 1]
            mult = 2.0 if k < h else 1.0
            total += mult * e * e
    return np.sqrt(total)


@jit
def index_sets(dims, ranks):
    """K's coordinates: ``(koff, rows, cols)`` with layer h's coordinates at
    ``koff[h-1] .. koff[h]``, each a position ``(rows[i], cols[i])`` of ``X_h`` (d_h, d_{h-1}):
    first ``[:a, :b]`` row by row, then rows ``a..d_h`` of columns ``:c``, then rows ``:dd``
    of columns ``b..d_{h-1}``.  ``ranks`` (H, 4) holds ``a, dd, b, c`` per layer."""
    H = dims.size - 1
    koff = np.zeros(H + 1, np.int64)
    for h in range(1, H + 1):
        a, dd, b, c = ranks[h - 1, 0], ranks[h - 1, 1], ranks[h - 1, 2], ranks[h - 1, 3]
        koff[h] = koff[h - 1] + a * b + (dims[h] - a) * c + dd * (dims[h - 1] - b)
    rows = np.empty(koff[H], np.int64)
    cols = np.empty(koff[H], np.int64)
    for h in range(1, H + 1):
        a, dd, b, c = ranks[h - 1, 0], ranks[h - 1, 1], ranks[h - 1, 2], ranks[h - 1, 3]
        i = koff[h - 1]
        for r in range(a):
            for s in range(b):
                rows[i] = r
                cols[i] = s
                i += 1
        for r in range(a, dims[h]):
            for s in range(c):
                rows[i] = r
                cols[i] = s
                i += 1
        for r in range(dd):
            for s in range(b, dims[h - 1]):
                rows[i] = r
                cols[i] = s
                i += 1
    return koff, rows, cols


@jit
def k_bound(dims):
    """The largest possible order of K for the architecture ``dims`` (any point):
    ``sum_h a b + (d_h - a) c + dd (d_{h-1} - b)`` at the largest ranks
    ``a = min(d_h, ..., d_H)``, ``b = min(d_0, ..., d_{h-1})``, ``c = min(b, d_H)``,
    ``dd = min(a, d_0, d_H)`` (the expression grows with each)."""
    H = dims.size - 1
    d_x, d_y = dims[0], dims[H]
    total = 0
    for h in range(1, H + 1):
        a = dims[h]
        for j in range(h, H + 1):
            a = min(a, dims[j])
        b = dims[0]
        for j in range(h):
            b = min(b, dims[j])
        c = min(b, d_y)
        dd = min(a, min(d_x, d_y))
        total += a * b + (dims[h] - a) * c + dd * (dims[h - 1] - b)
    return total


@jit
def memory_bytes(dims, k):
    """Upper bound of the bytes :func:`structured_spectrum` allocates for a point of widths
    ``dims`` whose K has order ``k`` (use :func:`k_bound` before the point is known):
    ``8 [k^2 + 400 k + table + sum_h (3 d_h^2 + 3 d_{h-1}^2 + d_y d_h + d_{h-1} d_x)
    + sum_{h<k} d_h d_{k-1} + 4 d_max^2] + 16 k``: K; the eigenvalue workspace (band
    storage and panels of the two-stage solver, 3 (64 + 1) k, or dsyevd's 34 k); the
    partial products; per layer the bases, the SVDs' factors and copies, the transformed
    factors; the ``M^`` of every layer pair; the temporaries of the largest products; the
    index sets."""
    H = dims.size - 1
    d_x, d_y = dims[0], dims[H]
    d_max = 0
    for h in range(H + 1):
        d_max = max(d_max, dims[h])
    total = k * k + 400 * k + 4 * d_max * d_max
    for b in range(1, H + 2):
        for a in range(b - 1, H + 1):
            total += dims[a] * dims[b - 1]
    for h in range(1, H + 1):
        total += 3 * dims[h] * dims[h] + 3 * dims[h - 1] * dims[h - 1]
        total += d_y * dims[h] + dims[h - 1] * d_x
    for kk in range(2, H + 1):
        for h in range(1, kk):
            total += dims[h] * dims[kk - 1]
    return 8 * total + 16 * k


@jit
def flops(dims, k):
    """Leading floating-point operation count of :func:`structured_spectrum`:
    ``(4/3) k^3`` for the eigenvalues of K, ``k^2`` to assemble it, ``22 d^3`` per layer
    side for the full SVDs (Golub-Van Loan's count for an orthogonal factor of order d),
    ``4 d_h d_{k-1} (d_h + d_{k-1})`` per layer pair for ``M^`` (the partial products are
    the dense path's)."""
    H = dims.size - 1
    total = 4.0 / 3.0 * k * k * k + 1.0 * k * k
    for h in range(1, H + 1):
        total += 22.0 * (dims[h] ** 3 + dims[h - 1] ** 3)
    for kk in range(2, H + 1):
        for h in range(1, kk):
            total += 4.0 * dims[h] * dims[kk - 1] * (dims[h] + dims[kk - 1])
    return total


@jit
def assemble_k(dims, koff, rows, cols, ranks, Ah, Ah_off, Bh, Bh_off, Sxx, G, G_off, MT, MT_off, K):
    """The upper triangle of K (k, k) (C order, as :func:`.lapack.eigvalsh_destroy` reads
    it) from the transformed factors: ``Ah`` layer h's ``A^_h`` (d_y, d_h) at ``Ah_off[h-1]``,
    ``Bh`` its ``B^_h`` (d_{h-1}, d_x) at ``Bh_off[h-1]``; for layers ``h < k``, ``G``
    holds ``G^_{kh}[:dd_k, :c_h]`` at ``G_off[k-1, h-1]`` and ``MT`` holds ``M^_{kh}^T``
    (d_h, d_{k-1}) at ``MT_off[k-1, h-1]`` (-1: not needed).  Every upper entry is written
    once."""
    H = dims.size - 1
    d_y, d_x = dims[H], dims[0]
    for h in range(1, H + 1):
        a_h, c_h, b_h = ranks[h - 1, 0], ranks[h - 1, 3], ranks[h - 1, 2]
        A1 = as_matrix(Ah, Ah_off[h - 1], d_y, dims[h])
        B1 = as_matrix(Bh, Bh_off[h - 1], dims[h - 1], d_x)
        for kk in range(h, H + 1):
            a_k, dd_k, b_k = ranks[kk - 1, 0], ranks[kk - 1, 1], ranks[kk - 1, 2]
            A2 = as_matrix(Ah, Ah_off[kk - 1], d_y, dims[kk])
            B2 = as_matrix(Bh, Bh_off[kk - 1], dims[kk - 1], d_x)
            AA = np.zeros((a_h, a_k))  # 2 A^_h^T A^_k on the kept columns
            for y in range(d_y):
                for r in range(a_h):
                    v = 2.0 * A1[y, r]
                    for t in range(a_k):
                        AA[r, t] += v * A2[y, t]
            SB = np.zeros((d_x, b_k))  # Sxx B^_k^T
            for x in range(d_x):
                for u in range(b_k):
                    acc = 0.0
                    for z in range(d_x):
                        acc += Sxx[x, z] * B2[u, z]
                    SB[x, u] = acc
            BB = np.zeros((b_h, b_k))
            for s in range(b_h):
                for u in range(b_k):
                    acc = 0.0
                    for x in range(d_x):
                        acc += B1[s, x] * SB[x, u]
                    BB[s, u] = acc
            cross = kk > h and MT_off[kk - 1, h - 1] >= 0
            if cross:
                Gm = as_matrix(G, G_off[kk - 1, h - 1], dd_k, c_h)
                Mt = as_matrix(MT, MT_off[kk - 1, h - 1], dims[h], dims[kk - 1])
            else:
                Gm = as_matrix(G, 0, 0, 0)
                Mt = as_matrix(MT, 0, 0, 0)
            n2 = koff[kk] - koff[kk - 1]
            for i in range(koff[h] - koff[h - 1]):
                p = koff[h - 1] + i
                r = rows[p]
                s = cols[p]
                gn = r < a_h and s < b_h
                cr = cross and s < c_h
                j0 = i if kk == h else 0
                for j in range(j0, n2):
                    q = koff[kk - 1] + j
                    t = rows[q]
                    u = cols[q]
                    v = 0.0
                    if gn and t < a_k and u < b_k:
                        v = AA[r, t] * BB[s, u]
                    if cr and t < dd_k:
                        v += 2.0 * Gm[t, s] * Mt[r, u]
                    K[p, q] = v


@jit
def product_table_wide(w, dims, off):
    """:func:`.dense.product_table` (same layout, same bits) without multiplying by its
    identities: ``W_{a:a} = W_a I`` is written as ``W_a + 0.0``, which is what
    :func:`.dense.matmul_into`'s sum (from ``0.0``, in index order) gives for finite
    entries (adding the zero products changes nothing, ``0.0 + x = x`` and turns ``-0.0``
    into ``0.0``).  The identity products cost ``d_a d_{a-1}^2`` flops each: at hidden
    width 1,024, 6.7 of the 7.4 s of a point."""
    H = dims.size - 1
    table_off = np.full((H + 1, H + 2), -1, np.int64)
    total = 0
    for b in range(1, H + 2):
        for a in range(b - 1, H + 1):
            table_off[a, b] = total
            total += dims[a] * dims[b - 1]
    table = np.zeros(total)
    for b in range(1, H + 2):
        n = dims[b - 1]
        ident = as_matrix(table, table_off[b - 1, b], n, n)
        for i in range(n):
            ident[i, i] = 1.0
        for a in range(b, H + 1):
            W = layer(w, dims, off, a)
            dst = prod(table, table_off, dims, a, b)
            if a == b:
                for i in range(W.shape[0]):
                    for j in range(W.shape[1]):
                        dst[i, j] = W[i, j] + 0.0
            else:
                matmul_into(W, prod(table, table_off, dims, a - 1, b), dst)
    return table, table_off


@jit_inline  # one caller: compiled once, inside it (see mcland._kernels.jit)
def structured_parts(dims, w, Sxx, Syx, max_k):
    """Everything but the eigenvalues, for the point ``w`` and moments ``Sxx``, ``Syx``:
    returns ``(K, k, N, e_asm, e_map, e_trunc, d_max, info, ranks)`` with K (k, k) its upper
    triangle assembled (``(0, 0)`` when ``k > max_k`` (info -1) or the products are not
    finite (info -2)) and ``ranks`` (H, 4) the ``a, dd, b, c`` of every layer."""
    H = dims.size - 1
    d_x, d_y = dims[0], dims[H]
    off = layer_offsets(dims)
    N = off[H]
    d_max = 0
    for h in range(H + 1):
        d_max = max(d_max, dims[h])
    table, table_off = product_table_wide(w, dims, off)
    E = residual(prod(table, table_off, dims, H, 1), Sxx, Syx)
    Sxx_n = frob(Sxx)
    Syx_n = frob(Syx)
    R_n = frob(E)
    pn, perr = product_norms(table, table_off, dims)
    ranks = np.zeros((H, 4), np.int64)
    if not (np.isfinite(R_n) and np.isfinite(pn.sum()) and np.isfinite(perr.sum())):
        return np.empty((0, 0)), 0, N, np.nan, np.nan, np.nan, d_max, -2, ranks
    e_asm = assembly_error(pn, perr, dims, Sxx_n, Syx_n, R_n)
    e_map = transform_error(pn, perr, dims, Sxx_n, R_n)
    tol = rank_tolerances(pn, perr, dims, Sxx_n, Syx_n, R_n)

    # the bases of every layer, in two flat buffers
    L_off = np.zeros(H + 1, np.int64)
    R_off = np.zeros(H + 1, np.int64)
    for h in range(1, H + 1):
        L_off[h] = L_off[h - 1] + dims[h] * dims[h]
        R_off[h] = R_off[h - 1] + dims[h - 1] * dims[h - 1]
    Lbuf = np.empty(L_off[H])
    Rbuf = np.empty(R_off[H])
    for h in range(1, H + 1):
        Lh = as_matrix(Lbuf, L_off[h - 1], dims[h], dims[h])
        Rh = as_matrix(Rbuf, R_off[h - 1], dims[h - 1], dims[h - 1])
        a, dd = left_basis(
            prod(table, table_off, dims, H, h + 1), E, tol[h - 1, 0], tol[h - 1, 1], Lh
        )
        b, c = right_basis(
            prod(table, table_off, dims, h - 1, 1), E, tol[h - 1, 2], tol[h - 1, 3], Rh
        )
        ranks[h - 1, 0] = a
        ranks[h - 1, 1] = dd
        ranks[h - 1, 2] = b
        ranks[h - 1, 3] = c
    koff, rows, cols = index_sets(dims, ranks)
    k = koff[H]
    if k > max_k:
        return np.empty((0, 0)), k, N, e_asm, e_map, np.nan, d_max, -1, ranks

    # transformed factors A^_h = A_h L_h, B^_h = R_h^T B_h and what they leave out
    Ah_off = np.zeros(H + 1, np.int64)
    Bh_off = np.zeros(H + 1, np.int64)
    for h in range(1, H + 1):
        Ah_off[h] = Ah_off[h - 1] + d_y * dims[h]
        Bh_off[h] = Bh_off[h - 1] + dims[h - 1] * d_x
    Ah = np.empty(Ah_off[H])
    Bh = np.empty(Bh_off[H])
    tau_a = np.zeros(H)
    tau_b = np.zeros(H)
    for h in range(1, H + 1):
        Lh = as_matrix(Lbuf, L_off[h - 1], dims[h], dims[h])
        Rh = as_matrix(Rbuf, R_off[h - 1], dims[h - 1], dims[h - 1])
        A = _dot(prod(table, table_off, dims, H, h + 1), Lh)
        B = _dot(np.ascontiguousarray(Rh.T), prod(table, table_off, dims, h - 1, 1))
        a, b = ranks[h - 1, 0], ranks[h - 1, 2]
        ta = 0.0
        for y in range(d_y):
            for j in range(dims[h]):
                Ah[Ah_off[h - 1] + y * dims[h] + j] = A[y, j]
                if j >= a:
                    ta += A[y, j] * A[y, j]
        tb = 0.0
        for i in range(dims[h - 1]):
            for x in range(d_x):
                Bh[Bh_off[h - 1] + i * d_x + x] = B[i, x]
                if i >= b:
                    tb += B[i, x] * B[i, x]
        tau_a[h - 1] = np.sqrt(ta)
        tau_b[h - 1] = np.sqrt(tb)

    # second-order factors for layers h < kk: G^ (kept block) and M^ transposed
    G_off = np.full((H, H), -1, np.int64)
    MT_off = np.full((H, H), -1, np.int64)
    g_total = 0
    m_total = 0
    for kk in range(2, H + 1):
        for h in range(1, kk):
            dd_k, c_h = ranks[kk - 1, 1], ranks[h - 1, 3]
            G_off[kk - 1, h - 1] = g_total
            g_total += dd_k * c_h
            if dd_k > 0 and c_h > 0:
                MT_off[kk - 1, h - 1] = m_total
                m_total += dims[h] * dims[kk - 1]
    G = np.zeros(max(g_total, 1))
    MT = np.empty(max(m_total, 1))
    tau_g = np.zeros((H, H))
    for kk in range(2, H + 1):
        A2 = as_matrix(Ah, Ah_off[kk - 1], d_y, dims[kk])
        AtE = _dot(np.ascontiguousarray(A2.T), E)  # (d_k, d_x)
        for h in range(1, kk):
            B1 = as_matrix(Bh, Bh_off[h - 1], dims[h - 1], d_x)
            Gfull = _dot(AtE, np.ascontiguousarray(B1.T))  # (d_k, d_{h-1})
            dd_k, c_h = ranks[kk - 1, 1], ranks[h - 1, 3]
            Gk = as_matrix(G, G_off[kk - 1, h - 1], dd_k, c_h)
            tg = 0.0
            for t in range(dims[kk]):
                for s in range(dims[h - 1]):
                    if t < dd_k and s < c_h:
                        Gk[t, s] = Gfull[t, s]
                    else:
                        tg += Gfull[t, s] * Gfull[t, s]
            tau_g[kk - 1, h - 1] = np.sqrt(tg)
            if MT_off[kk - 1, h - 1] >= 0:
                Lh = as_matrix(Lbuf, L_off[h - 1], dims[h], dims[h])
                Rk = as_matrix(Rbuf, R_off[kk - 1], dims[kk - 1], dims[kk - 1])
                LhT = np.ascontiguousarray(Lh.T)
                if kk == h + 1:  # W_{h:h+1} is the identity
                    Mt = _dot(LhT, Rk)
                else:
                    WT = np.ascontiguousarray(prod(table, table_off, dims, kk - 1, h + 1).T)
                    Mt = _dot(LhT, _dot(WT, Rk))
                dst = as_matrix(MT, MT_off[kk - 1, h - 1], dims[h], dims[kk - 1])
                for i in range(dims[h]):
                    for j in range(dims[kk - 1]):
                        dst[i, j] = Mt[i, j]
    e_trunc = truncation_error(pn, dims, Sxx_n, tau_a, tau_b, tau_g)

    K = np.empty((k, k))  # only the upper triangle is written and read
    assemble_k(dims, koff, rows, cols, ranks, Ah, Ah_off, Bh, Bh_off, Sxx, G, G_off, MT, MT_off, K)
    return K, k, N, e_asm, e_map, e_trunc, d_max, 0, ranks


@jit_inline  # one caller: compiled once, inside it (see mcland._kernels.jit)
def _structured(dims, w, Sxx, Syx, max_k):
    K, k, N, e_asm, e_map, e_trunc, d_max, info, _ = structured_parts(dims, w, Sxx, Syx, max_k)
    if info != 0:
        return StructuredSpectrum(
            np.empty(0), k, N, np.nan, np.nan, e_asm, e_map, e_trunc, np.nan, info
        )
    h_norm = frob_upper(K)
    e_eig = (np.sqrt(k) + 2.0 * (PHI_ORTH + np.sqrt(d_max))) * EPS * h_norm
    ev = np.empty(k)
    lapack_info = 0
    if np.isfinite(h_norm):
        lapack_info = eigvalsh_large_destroy(K, ev)
    else:
        ev[:] = np.nan
        lapack_info = -2
    floor = e_asm + e_map + e_trunc + e_eig
    return StructuredSpectrum(
        ev, k, N, floor, h_norm, e_asm, e_map, e_trunc, e_eig, np.int64(lapack_info)
    )


@jit
def structured_spectrum(dims, w, moments, control):
    """Nonzero part of the Hessian spectrum of the point ``w`` (flat layers, see
    :mod:`.dense`) for the data ``moments`` (:class:`.bundles.Moments`), without the
    N x N Hessian.

    ``control`` (:class:`.bundles.StructuredControl`): ``whitened`` selects the Hessian in
    whitened input coordinates (``W_1 Sxx^{1/2}``, ``Sxx = I``; congruent to the original,
    same inertia; what the classification uses) or in the original ones; ``max_k`` caps the
    order of K (nothing of order k^2 is allocated above it).

    Returns a :class:`.bundles.StructuredSpectrum`: the ascending eigenvalues ``ev`` of
    K (k,); the Hessian's spectrum is ``ev`` plus ``N - k`` exact zeros.  Count inertia
    as :func:`.classify._spectral` does, with ``n_zero`` increased by ``N - k``.
    """
    if control.whitened:  # exactly as :func:`.classify.analyze` whitens
        w2, Syx = whitened_problem(dims, w, moments.Syx, moments.K, moments.K_inv)
        Sxx = np.eye(dims[0])
    else:
        w2, Sxx, Syx = w, moments.Sxx, moments.Syx
    return _structured(dims, w2, Sxx, Syx, control.max_k)
