"""Residual, loss, gradient and the full Hessian (docs/theory.md §2 and §4), with error bounds.

Parameter ordering: the Hessian acts on the concatenation of ``W_1.ravel(), ...,
W_H.ravel()`` (row-major), i.e. entry ``(W_h)_{ab}`` sits at ``off[h-1] + a d_{h-1} + b``.
In this ordering the Gauss-Newton block (h, k) is ``2 (P_h^T P_k) ⊗ (Q_h Sxx Q_k^T)`` with
``P_h = W_{H:h+1}``, ``Q_h = W_{h-1:1}``; the spectrum does not depend on the convention.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels.constants import EPS
from mcland._kernels.dense import (
    as_matrix,
    frob,
    inner,
    layer_offsets,
    matmul,
    matmul_into,
    matmul_nt,
    matmul_nt_into,
    matmul_tn,
    matmul_tn_into,
    prod,
    product_table,
)
from mcland._kernels.jit import jit


@jit
def residual(P, Sxx, Syx):
    """``R = W_{H:1} Sxx - Syx`` (d_y, d_x) for the end-to-end product ``P = W_{H:1}``."""
    R = matmul(P, Sxx)
    for i in range(R.shape[0]):
        for j in range(R.shape[1]):
            R[i, j] -= Syx[i, j]
    return R


@jit
def loss(P, Sxx, Syx, tr_syy):
    """``||P X - Y||^2 = tr(Syy) - 2 <P, Syx> + <P Sxx, P>``."""
    return tr_syy - 2.0 * inner(P, Syx) + inner(matmul(P, Sxx), P)


@jit
def gradient(table, table_off, dims, off, R):
    """Flat gradient, layout of ``w``: ``dL/dW_h = 2 W_{H:h+1}^T R W_{h-1:1}^T``."""
    H = dims.size - 1
    g = np.empty(off[H])
    for h in range(1, H + 1):
        Gh = matmul_nt(
            matmul_tn(prod(table, table_off, dims, H, h + 1), R),
            prod(table, table_off, dims, h - 1, 1),
        )
        cols = dims[h - 1]
        for i in range(dims[h]):
            for j in range(cols):
                g[off[h - 1] + i * cols + j] = 2.0 * Gh[i, j]
    return g


@jit
def gradient_scale(norms, dims, Sxx_n, Syx_n):
    """``sum_h 2 ||W_{H:h+1}|| ||W_{h-1:1}|| (||W_{H:1}|| ||Sxx|| + ||Syx||)`` with norm
    products as bounds: the size of the terms whose cancellation makes the gradient zero."""
    H = dims.size - 1
    base = norms[H, 1] * Sxx_n + Syx_n
    s = 0.0
    for h in range(1, H + 1):
        s += 2.0 * norms[H, h + 1] * norms[h - 1, 1] * base
    return s


@jit
def hessian_into(table, table_off, dims, off, Sxx, R, hess):
    """Assemble the **upper triangle** (blocks ``(h, k)``, ``k >= h``) of the Hessian
    (N, N) into the C-ordered ``hess``, from the Kronecker structure of docs/theory.md §4; the
    strict lower triangle is not touched.

    Read as a Fortran-ordered matrix, ``hess.T`` holds the lower triangle that LAPACK's
    symmetric routines read (:mod:`.lapack`), so the full matrix is never formed.
    Gauss-Newton entries ``2 (P_h^T P_k)_{ac} (Q_h Sxx Q_k^T)_{be}`` for every block, and
    for h < k the second-order entries ``d^2 L / d(W_h)_{eb} d(W_k)_{ac} = 2 G_{ab} B_{ce}``
    with ``G = W_{H:k+1}^T R W_{h-1:1}^T`` and ``B = W_{k-1:h+1}``.  Every entry is written
    once (both terms in one pass), so ``hess`` needs no zeroing.  Row ``(a, b)`` of block
    ``(h, k)`` is one contiguous run of ``d_k d_{k-1}`` entries ``(c, e)``; its factors are
    first expanded to rows of that length (``alpha[a] = 2 PtP[a, c]``, ``beta[b] =
    QSQ[b, e]``, ``gamma[b] = 2 G[c, b]``, ``delta[a] = B[e, a]``), so the run is one flat,
    vectorisable loop ``alpha[a] * beta[b] + gamma[b] * delta[a]`` -- the same operations
    in the same order as entry by entry, hence the same bits, at half the time for medium
    networks (short inner loops of length d_{k-1} were dominated by their set-up).
    ``W_{H:k+1}^T R`` is computed once per k, not once per block, and every small product
    and expansion lives in one scratch buffer allocated once per call.
    """
    H = dims.size - 1
    N = off[H]
    d_x = dims[0]
    flat = hess.reshape(N * N)
    rt_off = np.zeros(H + 2, np.int64)  # W_{H:k+1}^T R, (d_k, d_x), for every k
    for k in range(1, H + 1):
        rt_off[k + 1] = rt_off[k] + dims[k] * d_x
    D = 0
    for h in range(H + 1):
        D = max(D, dims[h])
    sq = D * max(D, d_x)  # room for any of the small products below
    run = D * D * D  # room for d_h (or d_{h-1}) expanded rows of length d_k d_{k-1}
    tmp = np.empty(rt_off[H + 1] + 4 * sq + 4 * run)  # one allocation for all of them
    for k in range(2, H + 1):
        matmul_tn_into(
            prod(table, table_off, dims, H, k + 1), R, as_matrix(tmp, rt_off[k], dims[k], d_x)
        )
    base_tmp = rt_off[H + 1]
    ex = base_tmp + 4 * sq  # after QSh, PtP, QSQ, G: the expanded rows alpha, delta, beta, gamma
    for h in range(1, H + 1):
        Ph = prod(table, table_off, dims, H, h + 1)
        Qh = prod(table, table_off, dims, h - 1, 1)
        dh, dh1 = dims[h], dims[h - 1]
        QSh = matmul_into(Qh, Sxx, as_matrix(tmp, base_tmp, dh1, d_x))
        oh = off[h - 1]
        for k in range(h, H + 1):
            dk, dk1 = dims[k], dims[k - 1]
            L = dk * dk1
            Pk = prod(table, table_off, dims, H, k + 1)
            PtP = matmul_tn_into(Ph, Pk, as_matrix(tmp, base_tmp + sq, dh, dk))
            QSQ = matmul_nt_into(
                QSh,
                prod(table, table_off, dims, k - 1, 1),
                as_matrix(tmp, base_tmp + 2 * sq, dh1, dk1),
            )
            ok = off[k - 1]
            alpha = as_matrix(tmp, ex, dh, L)
            beta = as_matrix(tmp, ex + 2 * run, dh1, L)
            for a in range(dh):
                for c in range(dk):
                    v = 2.0 * PtP[a, c]
                    for e in range(dk1):
                        alpha[a, c * dk1 + e] = v
            for b in range(dh1):
                for c in range(dk):
                    for e in range(dk1):
                        beta[b, c * dk1 + e] = QSQ[b, e]
            if k == h:
                for a in range(dh):
                    al = alpha[a]
                    for b in range(dh1):
                        be = beta[b]
                        row = (oh + a * dh1 + b) * N + ok
                        seg = flat[row : row + L]
                        for i in range(L):
                            seg[i] = al[i] * be[i]
                continue
            # h < k: Gauss-Newton and second-order terms in one pass over the block
            PkR = as_matrix(tmp, rt_off[k], dk, d_x)
            G = matmul_nt_into(PkR, Qh, as_matrix(tmp, base_tmp + 3 * sq, dk, dh1))
            B = prod(table, table_off, dims, k - 1, h + 1)  # (d_{k-1}, d_h)
            delta = as_matrix(tmp, ex + run, dh, L)
            gamma = as_matrix(tmp, ex + 3 * run, dh1, L)
            for a in range(dh):
                for c in range(dk):
                    for e in range(dk1):
                        delta[a, c * dk1 + e] = B[e, a]
            for b in range(dh1):
                for c in range(dk):
                    v = 2.0 * G[c, b]
                    for e in range(dk1):
                        gamma[b, c * dk1 + e] = v
            for a in range(dh):
                al = alpha[a]
                de = delta[a]
                for b in range(dh1):
                    be = beta[b]
                    ga = gamma[b]
                    row = (oh + a * dh1 + b) * N + ok
                    seg = flat[row : row + L]
                    for i in range(L):
                        seg[i] = al[i] * be[i] + ga[i] * de[i]


@jit
def assemble_hessian(dims, w, Sxx, Syx):
    """The Hessian (upper triangle, see :func:`hessian_into`) at the flat point ``w`` for
    the data moments ``Sxx``, ``Syx``, from scratch."""
    H = dims.size - 1
    off = layer_offsets(dims)
    table, table_off = product_table(w, dims, off)
    R = residual(prod(table, table_off, dims, H, 1), Sxx, Syx)
    hess = np.zeros((off[H], off[H]))
    hessian_into(table, table_off, dims, off, Sxx, R, hess)
    return hess


@jit
def frob_upper(hess):
    """Frobenius norm of the symmetric matrix whose upper triangle ``hess`` holds (four
    independent partial sums per row: a fixed summation order, four times the throughput)."""
    N = hess.shape[0]
    diag = 0.0
    off_diag = 0.0
    for i in range(N):
        diag += hess[i, i] * hess[i, i]
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        j = i + 1
        while j + 3 < N:
            s0 += hess[i, j] * hess[i, j]
            s1 += hess[i, j + 1] * hess[i, j + 1]
            s2 += hess[i, j + 2] * hess[i, j + 2]
            s3 += hess[i, j + 3] * hess[i, j + 3]
            j += 4
        while j < N:
            s0 += hess[i, j] * hess[i, j]
            j += 1
        off_diag += (s0 + s1) + (s2 + s3)
    return np.sqrt(diag + 2.0 * off_diag)


@jit
def product_norms(table, table_off, dims):
    """Norms of all partial products and estimates of their rounding errors.

    Returns ``(pn, perr)`` indexed ``[a, b]`` for ``W_{a:b}`` (0 <= a <= H, 1 <= b <= a+1):
    ``pn`` the Frobenius norm as computed, ``perr`` the first-order error of computing it
    left to right, ``eps sum_{k=b+1..a} d_{k-1} ||W_{a:k+1}|| ||W_k|| ||W_{k-1:b}||`` (exact
    identities and single layers have no error).  Partial products that vanish in exact
    arithmetic (e.g. complement chains through invertible bases) are computed as rounding
    noise of about ``perr``, which is why the noise floor uses ``pn + perr``.
    """
    H = dims.size - 1
    pn = np.zeros((H + 2, H + 2))
    perr = np.zeros((H + 2, H + 2))
    for b in range(1, H + 2):
        for a in range(b - 1, H + 1):
            pn[a, b] = frob(prod(table, table_off, dims, a, b))
    for b in range(1, H + 1):
        for a in range(b + 1, H + 1):
            e = 0.0
            for k in range(b + 1, a + 1):
                e += np.sqrt(dims[k - 1]) * pn[a, k + 1] * pn[k, k] * pn[k - 1, b]
            perr[a, b] = EPS * e
    return pn, perr


@jit
def assembly_error(pn, perr, dims, Sxx_n, Syx_n, R_n):
    """Estimate of the Frobenius norm of the rounding error of :func:`hessian_into`.

    First-order propagation of the errors of the partial products (:func:`product_norms`)
    and of the residual ``R = W_{H:1} Sxx - Syx`` (which cancels at critical points, so its
    error is judged against ``||W_{H:1}|| ||Sxx|| + ||Syx||``, not against ``||R||``) through
    the block formulas, plus ``eps sum_h d_h`` relative error of every accumulation.
    """
    H = dims.size - 1
    dsum = 0.0
    for h in range(H + 1):
        dsum += dims[h]
    root = np.sqrt(dsum)  # probabilistic accumulation model (Higham & Mary 2019)
    en = pn + perr
    err_r = EPS * root * (en[H, 1] * Sxx_n + Syx_n) + perr[H, 1] * Sxx_n
    total = 0.0
    for h in range(1, H + 1):
        for k in range(1, h + 1):
            Ph, Pk, Qh, Qk = en[H, h + 1], en[H, k + 1], en[h - 1, 1], en[k - 1, 1]
            e = (
                2.0
                * Sxx_n
                * (
                    EPS * root * Ph * Pk * Qh * Qk
                    + (perr[H, h + 1] * Pk + Ph * perr[H, k + 1]) * Qh * Qk
                    + Ph * Pk * (perr[h - 1, 1] * Qk + Qh * perr[k - 1, 1])
                )
            )
            if k < h:
                B = en[h - 1, k + 1]
                e += 2.0 * B * Ph * Qk * (err_r + EPS * root * R_n)
                e += 2.0 * perr[h - 1, k + 1] * Ph * Qk * R_n
            mult = 2.0 if k < h else 1.0
            total += mult * e * e
    return np.sqrt(total)
