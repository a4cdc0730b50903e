"""Second-order theory of docs/theory.md §2-3: read S off a point, escape certificates.

Openness of a layer pair is decided by the curvature it produces, not by thresholds on
``G`` or on ranks.  docs/theory.md suggests 2 x 2 problems, one per candidate direction pair;
here the Hessian is restricted at once to the subspace spanned by all candidates of a
pair (``p q^T`` on layer h2 for every q, ``x y^T`` on layer h1 for every x, with p and y
fixed), a (d_{h2-1} + d_h1)-dimensional problem whose smallest eigenvalue is at most that
of every 2 x 2 candidate and needs no singular vectors of the partial products.  It is a
Rayleigh quotient, so it is never below the Hessian's smallest eigenvalue.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels.constants import EPS
from mcland._kernels.dense import (
    dot,
    frob,
    matmul,
    matmul_nt,
    matmul_tn,
    matvec,
    matvec_into,
    prod,
    rmatvec,
    rmatvec_into,
)
from mcland._kernels.jit import jit
from mcland._kernels.lapack import eigh, eigvalsh_destroy


@jit
def read_S(P, K, U, lam):
    """Membership of each eigen-index in S, and the largest deviation from an exact 0/1.

    ``z_i = ||u_i^T W_{H:1} K|| / sqrt(lam_i)`` is exactly 1 for i in S and 0 otherwise at a
    critical point; ``i`` is taken to be in S when ``z_i > 1/2``.  The returned deviation
    ``max_i min(z_i, |1 - z_i|)`` audits that reading.
    """
    d_y = lam.size
    PK = matmul(P, K)
    s_in = np.zeros(d_y, np.bool_)
    dev = 0.0
    for i in range(d_y):
        row = rmatvec(PK, np.ascontiguousarray(U[:, i]))
        z = np.sqrt(dot(row, row) / lam[i])
        s_in[i] = z > 0.5
        dev = max(dev, min(z, abs(1.0 - z)))
    return s_in, dev


@jit
def subspace_curvature(table, table_off, dims, Sxx, R, h1, h2, p, y, want_vector):
    """Smallest Hessian Rayleigh quotient on ``{p q^T on layer h2} + {x y^T on layer h1}``,
    and its minimiser ``c = (q, x)`` (unit norm, so ``V = (p q^T, x y^T)`` has unit norm)
    if ``want_vector``, else an empty ``c``.  The value comes from the eigenvalues-only
    routine either way (cheaper, and the same bits whether or not the vector is wanted).

    ``p`` (d_h2,) and ``y`` (d_{h1-1},) are fixed unit vectors, ``q`` ranges over
    R^{d_{h2-1}} and ``x`` over R^{d_h1}: the subspace holds every two-layer certificate
    direction of docs/theory.md §3 built from this (p, y), so its smallest eigenvalue is at most
    each certificate's curvature, and at least the Hessian's smallest eigenvalue.  With
    ``A = W_{H:h2+1}``, ``B = W_{h2-1:h1+1}``, ``C = W_{h1-1:1}``, ``T2 = W_{h2-1:1}``,
    ``T1 = W_{H:h1+1}``, ``a = A p`` and ``c = C^T y`` the restricted Hessian in the
    standard bases of q and x is::

        [[2 |a|^2 T2 Sxx T2^T,                    2 (T2 Sxx c)(T1^T a)^T + 2 (a^T R c) B],
         [.^T,                                    2 (c^T Sxx c) T1^T T1                  ]]
    """
    H = dims.size - 1
    a = matvec(prod(table, table_off, dims, H, h2 + 1), p)
    c = rmatvec(prod(table, table_off, dims, h1 - 1, 1), y)
    T2 = prod(table, table_off, dims, h2 - 1, 1)
    T1 = prod(table, table_off, dims, H, h1 + 1)
    B = prod(table, table_off, dims, h2 - 1, h1 + 1)
    n2 = dims[h2 - 1]
    n1 = dims[h1]
    Sc = matvec(Sxx, c)
    t2sc = matvec(T2, Sc)
    t1a = rmatvec(T1, a)
    aa = dot(a, a)
    csc = dot(c, Sc)
    arc = dot(a, matvec(R, c))
    M = np.empty((n2 + n1, n2 + n1))
    T2S = matmul(T2, Sxx)
    T2ST2 = matmul_nt(T2S, T2)
    T1T1 = matmul_tn(T1, T1)
    for i in range(n2):
        for j in range(n2):
            M[i, j] = 2.0 * aa * T2ST2[i, j]
        for j in range(n1):
            v = 2.0 * t2sc[i] * t1a[j] + 2.0 * arc * B[i, j]
            M[i, n2 + j] = v
            M[n2 + j, i] = v
    for i in range(n1):
        for j in range(n1):
            M[n2 + i, n2 + j] = 2.0 * csc * T1T1[i, j]
    vec = np.ascontiguousarray(eigh(M)[1][:, 0]) if want_vector else np.zeros(0)
    ev = np.empty(n2 + n1)
    eigvalsh_destroy(M, ev)  # the same bits as np.linalg.eigvalsh, without its copy
    return ev[0], vec


@jit
def top_singular_pair(G):
    """``(p, y, sigma)``: unit vectors with ``G y = sigma p``, sigma the largest singular
    value of ``G`` (m, n), by power iteration on ``G^T G``.

    Used for the certificates, where any unit pair gives a valid certificate (a Rayleigh
    quotient) and the top pair gives the strongest one: the iteration stops when
    ``||G y||`` no longer grows (relative change below ``8 eps``), at most 500 steps.  It
    starts from the largest row of ``G``, so the result is deterministic.  An SVD costs
    5-30 us for these 2 x 2 ... 14 x 14 matrices (LAPACK ``gesdd`` plus Numba's checks and
    copies); this costs well under 1 us when the top two singular values are apart.  With
    a relative gap ``delta = 1 - sigma_2 / sigma_1`` the value's relative error at the stop
    is at most about ``min(delta, 4 eps / delta) <= 2 sqrt(eps) ~ 3e-8`` (it lies between
    ``sigma_2`` and ``sigma_1``), and the vector is then a near-top one: either way the
    certificate's second-order term is within that factor of the strongest.
    """
    m, n = G.shape
    best = -1.0
    i0 = 0
    for i in range(m):
        r = 0.0
        for j in range(n):
            r += G[i, j] * G[i, j]
        if r > best:
            best = r
            i0 = i
    p = np.zeros(m)
    y = np.zeros(n)
    if best <= 0.0:
        p[0] = 1.0
        y[0] = 1.0
        return p, y, 0.0
    for j in range(n):
        y[j] = G[i0, j]
    y /= np.sqrt(dot(y, y))
    sigma = 0.0
    for _ in range(500):
        matvec_into(G, y, p)
        s_new = np.sqrt(dot(p, p))
        p /= s_new
        rmatvec_into(G, p, y)
        y /= np.sqrt(dot(y, y))
        if s_new - sigma <= 8.0 * EPS * s_new:
            sigma = s_new
            break
        sigma = s_new
    matvec_into(G, y, p)
    sigma = np.sqrt(dot(p, p))
    p /= sigma
    return p, y, sigma


@jit
def pair_curvature(table, table_off, dims, Sxx, R, h1, h2, tol, want_vector):
    """Certificate of the layer pair (h1, h2): ``(curvature, p, y, c)``, curvature ``inf``
    when the pair provably cannot reach ``-tol`` (below); see :func:`subspace_curvature`
    for ``c`` (empty unless ``want_vector``) and :func:`write_direction`.

    ``(p, y)`` is the top singular pair of ``G = W_{H:h2+1}^T R W_{h1-1:1}^T``
    (:func:`top_singular_pair`), the choice that maximises the second-order term
    ``(q^T B x)(p^T G y)`` of docs/theory.md §3; q and x are then optimised jointly by
    :func:`subspace_curvature`, so no rank threshold is needed.

    The restricted Hessian is its Gauss-Newton part, ``2 ||dP Sxx^{1/2}||^2`` for the
    first-order change ``dP`` of the product (positive semidefinite), plus
    ``2 (p^T G y) [[0, B], [B^T, 0]]`` with ``B = W_{h2-1:h1+1}``, whose eigenvalues are
    ``±2 |p^T G y| sigma_i(B)``.  By Weyl's inequality its smallest eigenvalue is at least
    ``-2 sigma ||B||_F``, ``sigma = ||G y|| >= |p^T G y|``: when that bound is at most
    ``tol`` (the zero tolerance) the pair is neither open nor in the ambiguous band, and
    its eigenvalue problem is skipped (``inf``, as for ``G = 0``).  At non-strict saddles
    most pairs are of this kind (755 of 825 on the medium benchmark's first 300 points).
    """
    H = dims.size - 1
    G = matmul_nt(
        matmul_tn(prod(table, table_off, dims, H, h2 + 1), R),
        prod(table, table_off, dims, h1 - 1, 1),
    )
    p, y, sigma = top_singular_pair(G)
    if 2.0 * sigma * frob(prod(table, table_off, dims, h2 - 1, h1 + 1)) <= tol:
        return np.inf, p, y, np.zeros(dims[h2 - 1] + dims[h1])
    val, c = subspace_curvature(table, table_off, dims, Sxx, R, h1, h2, p, y, want_vector)
    return val, p, y, c


@jit
def swap_curvature(table, table_off, dims, Sxx, R, K_inv, U, Vt, s_in, want_vector):
    """Certificate for ``S != [s]``: rotate a kept ``u_j`` toward a dropped ``u_i``, i < j.

    In whitened coordinates ``V_H = u_i (W_H^T u_j)^T`` and ``V_1 = z v_i^T`` with
    ``W_{H:2} z = u_j`` span a plane of curvature ``4 sigma_j (sigma_j - sigma_i) < 0``
    (at the right ratio); in the original coordinates ``v_i^T`` becomes ``v_i^T K^{-1}``.
    Both directions lie in the subspace of :func:`subspace_curvature` for
    ``(h1, h2) = (1, H)``, ``p = u_i`` and ``y ∝ K^{-1} v_i``.  Returns ``inf`` when S is a
    top set.  Returns ``(curvature, p, y, c)`` like :func:`pair_curvature`.
    """
    H = dims.size - 1
    d_y = s_in.size
    i = -1
    for t in range(d_y):
        if not s_in[t]:
            i = t
            break
    j = -1
    for t in range(d_y - 1, -1, -1):
        if s_in[t]:
            j = t
            break
    p = np.ascontiguousarray(U[:, max(i, 0)])
    y = matvec(K_inv, np.ascontiguousarray(Vt[max(i, 0), :]))
    y /= np.sqrt(dot(y, y))
    if i < 0 or j < 0 or j < i:
        return np.inf, p, y, np.zeros(dims[H - 1] + dims[1])
    # np.int64(1), not 1: a literal argument would compile a specialisation of its own
    h1 = np.int64(1)
    val, c = subspace_curvature(table, table_off, dims, Sxx, R, h1, H, p, y, want_vector)
    return val, p, y, c


@jit
def write_direction(dims, off, h1, h2, p, y, c, out):
    """Write the escape direction ``V`` (flat, layout of the weights) into ``out``:
    ``V_h2 = p q^T`` and ``V_h1 = x y^T`` with ``(q, x) = c``, every other layer zero."""
    out[:] = 0.0
    n2 = dims[h2 - 1]
    for a in range(dims[h2]):
        for b in range(n2):
            out[off[h2 - 1] + a * n2 + b] = p[a] * c[b]
    m1 = dims[h1 - 1]
    for a in range(dims[h1]):
        for b in range(m1):
            out[off[h1 - 1] + a * m1 + b] = c[n2 + a] * y[b]


@jit
def numerical_rank(M, cut):
    """Rank of ``M`` by Gaussian elimination with complete pivoting: the number of pivots
    above ``cut``.  Each pivot is within a modest factor of the matching singular value
    (rank-revealing in practice), at a fraction of an SVD's cost for these tiny matrices."""
    A = M.copy()
    n, m = A.shape
    rk = 0
    for t in range(min(n, m)):
        best = 0.0
        bi = t
        bj = t
        for i in range(t, n):
            for j in range(t, m):
                v = abs(A[i, j])
                if v > best:
                    best = v
                    bi = i
                    bj = j
        if best <= cut:
            break
        rk += 1
        for j in range(m):
            A[t, j], A[bi, j] = A[bi, j], A[t, j]
        for i in range(n):
            A[i, t], A[i, bj] = A[i, bj], A[i, t]
        for i in range(t + 1, n):
            li = A[i, t] / A[t, t]
            for j in range(t + 1, m):
                A[i, j] -= li * A[t, j]
    return rk


@jit
def partial_product_ranks(table, table_off, dims, norms, out):
    """Numerical ranks of all ``W_{a:b}``, 1 <= b <= a <= H, written to ``out`` in the order
    ``W_{1:1}, W_{2:1}, W_{2:2}, W_{3:1}, ...`` (index ``a(a-1)/2 + b - 1``).

    A direction counts when its pivot (:func:`numerical_rank`) exceeds
    ``10 max(d_a, d_{b-1}) (a-b+1) eps prod_{k=b..a} ||W_k||_F``, the rounding level of a
    product of that many factors.
    """
    H = dims.size - 1
    for a in range(1, H + 1):
        for b in range(1, a + 1):
            M = prod(table, table_off, dims, a, b)
            cut = 10.0 * max(M.shape[0], M.shape[1]) * (a - b + 1) * EPS * norms[a, b]
            out[a * (a - 1) // 2 + b - 1] = numerical_rank(M, cut)
