"""Matrix-free Hessian-vector products ``nabla^2 L . v`` at any point, for blocks of vectors.

The loss is ``L(W) = ||W_{H:1} X - Y||_F^2``; the data enter through ``Sxx = X X^T`` and
``Syx = Y X^T`` only (whitened coordinates: ``Sxx = I``).  With ``A_h = W_{H:h+1}``
(d_y, d_h), ``B_h = W_{h-1:1}`` (d_{h-1}, d_x), ``R = W_{H:1} Sxx - Syx`` (d_y, d_x) and a
direction ``V = (V_1, ..., V_H)`` laid out like ``w`` (:mod:`.dense`), block ``h`` of
``U = nabla^2 L . V`` is (differentiate ``dL/dW_h = 2 A_h^T R B_h^T``, docs/matrix_free.md)::

    U_h = 2 A_h^T M_h                                      Gauss-Newton part
        + 2 sum_{k>h} W_{k-1:h+1}^T V_k^T G_{kh}           second-order part
        + 2 sum_{k<h} G_{hk} V_k^T W_{h-1:k+1}^T

    M_h    = sum_k (A_k V_k) C_{kh},   C_{kh} = B_k Sxx B_h^T   (d_{k-1}, d_{h-1})
    G_{kh} = A_k^T R B_h^T                                      (d_k, d_{h-1}), k > h

which is the action of the matrix :func:`.hessian.hessian_into` assembles (tests/test_hvp.py
checks it against ``naive.hessian @ v`` and against finite differences of the gradient).

:func:`hvp_factors` computes the small factors once per point (``O(H^2 d^3)``); then one
product costs, per vector, ``2 d_y (N + D^2 / 2) + sum_{h<k} c_{hk}`` multiply-adds with
``D = sum_h d_{h-1}`` and ``c_{hk}`` the cheaper of two associations of each second-order
term (:func:`hvp_cost`), i.e. ``O(N d)``: for 784-256-256-10 about 1.3e8 multiply-adds
against ``N^2 = 7.2e10`` for a dense product.  Memory (:func:`factor_size`): the product table
of :func:`.dense.product_table`, ``C`` (``D^2``), ``G`` and its transpose
(``2 sum_{k>h} d_k d_{h-1}``), and a work buffer of :func:`work_size` per thread.

All products are loops in the ``i, t, j`` order (``out[i, :] += a[i, t] b[t, :]``), which
the compiler vectorises without reassociating any sum; transposes are stored, never formed
on the fly.  Every vector of a block is processed alone by the same operations, so a
vector's product is the same bits whatever the block, the thread or the number of threads.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels.bundles import HVPFactors
from mcland._kernels.dense import as_matrix, layer_offsets, prod, product_table
from mcland._kernels.hessian import residual
from mcland._kernels.jit import jit


@jit
def _nn(A, B, out, alpha, accumulate):
    """``out = alpha A B`` (``out += alpha A B`` when ``accumulate``); ``i, t, j`` loops."""
    n, k = A.shape
    m = B.shape[1]
    for i in range(n):
        o = out[i]
        if not accumulate:
            for j in range(m):
                o[j] = 0.0
        for t in range(k):
            a = alpha * A[i, t]
            if a != 0.0:
                b = B[t]
                for j in range(m):
                    o[j] += a * b[j]


@jit
def _tn(A, B, out, alpha, accumulate):
    """``out = alpha A^T B`` (``out += ...`` when ``accumulate``); ``t, i, j`` loops."""
    k, n = A.shape
    m = B.shape[1]
    if not accumulate:
        for i in range(n):
            for j in range(m):
                out[i, j] = 0.0
    for t in range(k):
        b = B[t]
        for i in range(n):
            a = alpha * A[t, i]
            if a != 0.0:
                o = out[i]
                for j in range(m):
                    o[j] += a * b[j]


@jit
def _add_transpose(Y, out, alpha):
    """``out += alpha Y^T``."""
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            out[j, i] += alpha * Y[i, j]


@jit
def factor_size(dims):
    """``(table, C, G)``: float64 entries of the product table, of ``C`` and of ``G`` (each of
    ``G`` and ``GT``) of :func:`hvp_factors` for ``dims`` (H+1,)."""
    H = dims.size - 1
    table = 0
    for b in range(1, H + 2):
        for a in range(b - 1, H + 1):
            table += dims[a] * dims[b - 1]
    D = 0
    for h in range(1, H + 1):
        D += dims[h - 1]
    g = 0
    for h in range(1, H + 1):
        for k in range(h + 1, H + 1):
            g += dims[k] * dims[h - 1]
    return table, D * D, g


@jit
def hvp_factors(dims, w, Sxx, Syx):
    """The factors of the Hessian's action at the flat point ``w`` (N,) for the data moments
    ``Sxx`` (d_x, d_x), ``Syx`` (d_y, d_x); returns an :class:`~.bundles.HVPFactors`.

    Cost ``O(H^2 max_h d_h^2 d_x)`` (partial products, ``C``, ``G``), once per point."""
    H = dims.size - 1
    d_x = dims[0]
    d_y = dims[H]
    off = layer_offsets(dims)
    table, table_off = product_table(w, dims, off)
    R = residual(prod(table, table_off, dims, H, 1), Sxx, Syx)
    # C_{kh} = B_k Sxx B_h^T, every (k, h), each block contiguous at c_off[k, h]
    c_off = np.zeros((H + 1, H + 1), np.int64)
    total = 0
    for k in range(1, H + 1):
        for h in range(1, H + 1):
            c_off[k, h] = total
            total += dims[k - 1] * dims[h - 1]
    C = np.empty(total)
    D = 0
    for h in range(1, H + 1):
        D = max(D, dims[h - 1])
    BS = np.empty(D * d_x)
    BT = np.empty(d_x * D)
    for k in range(1, H + 1):
        Bk = prod(table, table_off, dims, k - 1, 1)
        BSk = as_matrix(BS, 0, dims[k - 1], d_x)
        _nn(Bk, Sxx, BSk, 1.0, False)
        for h in range(1, H + 1):
            Bh = prod(table, table_off, dims, h - 1, 1)
            BhT = as_matrix(BT, 0, d_x, dims[h - 1])
            for i in range(dims[h - 1]):
                for j in range(d_x):
                    BhT[j, i] = Bh[i, j]
            _nn(BSk, BhT, as_matrix(C, c_off[k, h], dims[k - 1], dims[h - 1]), 1.0, False)
    # G_{kh} = A_k^T R B_h^T (k > h) and its transpose
    g_off = np.full((H + 1, H + 1), -1, np.int64)
    total = 0
    for h in range(1, H + 1):
        for k in range(h + 1, H + 1):
            g_off[k, h] = total
            total += dims[k] * dims[h - 1]
    G = np.empty(total)
    GT = np.empty(total)
    RB = np.empty(d_y * D)
    for h in range(1, H + 1):
        Bh = prod(table, table_off, dims, h - 1, 1)
        RBh = as_matrix(RB, 0, d_y, dims[h - 1])
        for i in range(d_y):  # R B_h^T as row dot products (small: d_y d_x d_{h-1})
            for j in range(dims[h - 1]):
                s = 0.0
                for t in range(d_x):
                    s += R[i, t] * Bh[j, t]
                RBh[i, j] = s
        for k in range(h + 1, H + 1):
            Gkh = as_matrix(G, g_off[k, h], dims[k], dims[h - 1])
            _tn(prod(table, table_off, dims, H, k + 1), RBh, Gkh, 1.0, False)
            GTkh = as_matrix(GT, g_off[k, h], dims[h - 1], dims[k])
            for i in range(dims[k]):
                for j in range(dims[h - 1]):
                    GTkh[j, i] = Gkh[i, j]
    return HVPFactors(dims, off, table, table_off, R, C, c_off, G, GT, g_off)


@jit
def work_size(dims):
    """Float64 entries of the work buffer of :func:`hvp_into` for ``dims`` (H+1,):
    ``Z = (A_k V_k)_k`` and ``M = (M_h)_h`` (``d_y D`` each) and two ``d_max^2`` temporaries."""
    H = dims.size - 1
    D = 0
    dm = 0
    for h in range(1, H + 1):
        D += dims[h - 1]
    for h in range(H + 1):
        dm = max(dm, dims[h])
    return 2 * dims[H] * D + 2 * dm * dm


@jit
def _second_order_cost(dims, h, k):
    """Multiply-adds of the two associations ``(a, b)`` of the term of block ``h`` from
    block ``k > h`` (``W^T V_k^T G_{kh}``) and of the term of block ``k`` from block ``h``
    (``(W V_h G_{kh}^T)^T``), ``W = W_{k-1:h+1}``: ``(x_a, x_b, y_a, y_b)``."""
    dh, dh1, dk, dk1 = dims[h], dims[h - 1], dims[k], dims[k - 1]
    if k == h + 1:  # W = I: one product each
        return dk * dh * dh1, dk * dh * dh1, dh * dh1 * dk, dh * dh1 * dk
    x_a = dk * dk1 * dh + dh * dk * dh1  # (V_k W)^T G
    x_b = dk * dk1 * dh1 + dh * dk1 * dh1  # W^T (V_k^T G)
    y_a = dk1 * dh * dh1 + dk1 * dh1 * dk  # (W V_h) G^T
    y_b = dh * dh1 * dk + dk1 * dh * dk  # W (V_h G^T)
    return x_a, x_b, y_a, y_b


@jit
def hvp_cost(dims):
    """Multiply-adds of one product :func:`hvp_into` for ``dims`` (H+1,) (float64)."""
    H = dims.size - 1
    d_y = dims[H]
    c = 0.0
    for k in range(1, H + 1):
        c += 2.0 * d_y * dims[k] * dims[k - 1]  # A_k V_k and A_k^T M_k
        for h in range(1, H + 1):
            c += float(d_y) * dims[k - 1] * dims[h - 1]  # Z_k C_{kh}
    for h in range(1, H + 1):
        for k in range(h + 1, H + 1):
            x_a, x_b, y_a, y_b = _second_order_cost(dims, h, k)
            c += float(min(x_a, x_b) + min(y_a, y_b))
    return c


@jit
def hvp_into(f, v, u, work):
    """``u = nabla^2 L . v`` for one flat direction ``v`` (N,) into ``u`` (N,) (C-contiguous,
    layout of ``w``), from the factors ``f`` (:class:`~.bundles.HVPFactors`); ``work``
    (>= :func:`work_size`) is overwritten."""
    dims = f.dims
    off = f.off
    H = dims.size - 1
    d_y = dims[H]
    D = 0
    dm = 0
    for h in range(1, H + 1):
        D += dims[h - 1]
    for h in range(H + 1):
        dm = max(dm, dims[h])
    z0 = 0
    m0 = d_y * D
    t0 = 2 * d_y * D
    t1 = t0 + dm * dm
    # Gauss-Newton part: Z_k = A_k V_k, M_h = sum_k Z_k C_{kh}, U_h = 2 A_h^T M_h
    zk = z0
    for k in range(1, H + 1):
        Vk = as_matrix(v, off[k - 1], dims[k], dims[k - 1])
        Zk = as_matrix(work, zk, d_y, dims[k - 1])
        _nn(prod(f.table, f.table_off, dims, H, k + 1), Vk, Zk, 1.0, False)
        zk += d_y * dims[k - 1]
    mh = m0
    for h in range(1, H + 1):
        Mh = as_matrix(work, mh, d_y, dims[h - 1])
        zk = z0
        for k in range(1, H + 1):
            Zk = as_matrix(work, zk, d_y, dims[k - 1])
            Ckh = as_matrix(f.C, f.c_off[k, h], dims[k - 1], dims[h - 1])
            _nn(Zk, Ckh, Mh, 1.0, k > 1)
            zk += d_y * dims[k - 1]
        Uh = as_matrix(u, off[h - 1], dims[h], dims[h - 1])
        _tn(prod(f.table, f.table_off, dims, H, h + 1), Mh, Uh, 2.0, False)
        mh += d_y * dims[h - 1]
    # second-order part, pair by pair (h < k)
    for h in range(1, H + 1):
        dh, dh1 = dims[h], dims[h - 1]
        Vh = as_matrix(v, off[h - 1], dh, dh1)
        Uh = as_matrix(u, off[h - 1], dh, dh1)
        for k in range(h + 1, H + 1):
            dk, dk1 = dims[k], dims[k - 1]
            Vk = as_matrix(v, off[k - 1], dk, dk1)
            Uk = as_matrix(u, off[k - 1], dk, dk1)
            G = as_matrix(f.G, f.g_off[k, h], dk, dh1)
            GT = as_matrix(f.GT, f.g_off[k, h], dh1, dk)
            x_a, x_b, y_a, y_b = _second_order_cost(dims, h, k)
            if k == h + 1:
                _tn(Vk, G, Uh, 2.0, True)  # U_h += 2 V_k^T G
                Y = as_matrix(work, t0, dh, dk)  # (V_h G^T) = (G V_h^T)^T
                _nn(Vh, GT, Y, 1.0, False)
                _add_transpose(Y, Uk, 2.0)
                continue
            W = prod(f.table, f.table_off, dims, k - 1, h + 1)  # (d_{k-1}, d_h)
            if x_a <= x_b:
                T = as_matrix(work, t0, dk, dh)
                _nn(Vk, W, T, 1.0, False)
                _tn(T, G, Uh, 2.0, True)
            else:
                T = as_matrix(work, t0, dk1, dh1)
                _tn(Vk, G, T, 1.0, False)
                _tn(W, T, Uh, 2.0, True)
            Y = as_matrix(work, t1, dk1, dk)  # W V_h G^T = (G V_h^T W^T)^T
            if y_a <= y_b:
                T = as_matrix(work, t0, dk1, dh1)
                _nn(W, Vh, T, 1.0, False)
                _nn(T, GT, Y, 1.0, False)
            else:
                T = as_matrix(work, t0, dh, dk)
                _nn(Vh, GT, T, 1.0, False)
                _nn(W, T, Y, 1.0, False)
            _add_transpose(Y, Uk, 2.0)


@jit
def hvp_rows(f, V, U, start, stop, work):
    """``U[i] = nabla^2 L . V[i]`` for the rows ``i`` in ``range(start, stop)`` of ``V``
    (b, N) into ``U`` (b, N), both C-ordered; ``work`` (>= :func:`work_size`)."""
    for i in range(start, stop):
        hvp_into(f, V[i], U[i], work)


@jit
def hessian_frob(f):
    """``(||nabla^2 L||_F, ||GN||_F, ||SO||_F)``, the Frobenius norms of the Hessian and of
    its Gauss-Newton and second-order parts, from the factors alone (no N x N matrix): blocks ``(h, k)`` are
    ``GN_{hk} = 2 (A_h^T A_k) (x) C_{hk}`` plus, for ``h < k``, the second-order block with
    entries ``2 G_{kh}[c, b] W_{k-1:h+1}[e, a]``, so ``||GN_{hk}|| = 2 ||A_h^T A_k|| ||C_{hk}||``,
    ``||SO_{hk}|| = 2 ||G_{kh}|| ||W_{k-1:h+1}||`` and ``<GN_{hk}, SO_{hk}> = 4 tr(A_h^T A_k
    G_{kh} C_{hk} W_{k-1:h+1})``.  Cost ``O(H^2 d^3)``."""
    dims = f.dims
    H = dims.size - 1
    dm = 0
    for h in range(H + 1):
        dm = max(dm, dims[h])
    t1 = np.empty(dm * dm)
    t2 = np.empty(dm * dm)
    t3 = np.empty(dm * dm)
    total = 0.0
    gn_total = 0.0
    so_total = 0.0
    for h in range(1, H + 1):
        Ah = prod(f.table, f.table_off, dims, H, h + 1)
        for k in range(h, H + 1):
            Ak = prod(f.table, f.table_off, dims, H, k + 1)
            PtP = as_matrix(t1, 0, dims[h], dims[k])
            _tn(Ah, Ak, PtP, 1.0, False)
            Chk = as_matrix(f.C, f.c_off[h, k], dims[h - 1], dims[k - 1])
            gn = 0.0
            for i in range(dims[h]):
                for j in range(dims[k]):
                    gn += PtP[i, j] * PtP[i, j]
            cn = 0.0
            for i in range(dims[h - 1]):
                for j in range(dims[k - 1]):
                    cn += Chk[i, j] * Chk[i, j]
            blk = 4.0 * gn * cn
            if k > h:
                G = as_matrix(f.G, f.g_off[k, h], dims[k], dims[h - 1])
                W = prod(f.table, f.table_off, dims, k - 1, h + 1)
                gg = 0.0
                for i in range(dims[k]):
                    for j in range(dims[h - 1]):
                        gg += G[i, j] * G[i, j]
                ww = 0.0
                for i in range(dims[k - 1]):
                    for j in range(dims[h]):
                        ww += W[i, j] * W[i, j]
                GC = as_matrix(t2, 0, dims[k], dims[k - 1])
                _nn(G, Chk, GC, 1.0, False)
                GCW = as_matrix(t3, 0, dims[k], dims[h])
                _nn(GC, W, GCW, 1.0, False)
                cross = 0.0
                for i in range(dims[h]):
                    for j in range(dims[k]):
                        cross += PtP[i, j] * GCW[j, i]
                gn_total += 2.0 * blk
                so_total += 8.0 * gg * ww
                blk += 4.0 * gg * ww + 8.0 * cross
                total += 2.0 * blk
            else:
                gn_total += blk
                total += blk
    return np.sqrt(max(total, 0.0)), np.sqrt(gn_total), np.sqrt(so_total)
