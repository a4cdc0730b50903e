"""Loss and gradient of a small dense deep linear network without allocation, and batched
plain gradient descent on one architecture.

The loss is ``L(W) = ||W_{H:1} X - Y||_F^2 = tr(Syy) - 2 <W_{H:1}, Syx> + <W_{H:1} Sxx,
W_{H:1}>`` from the data moments of a :class:`~.bundles.FlowProblem` (original, unwhitened
coordinates), and ``dL/dW_h = 2 W_{H:h+1}^T R W_{h-1:1}^T`` with ``R = W_{H:1} Sxx - Syx``
(docs/theory.md §2).  :func:`value_and_gradient` evaluates both in ``O(d_x sum_h d_h
d_{h-1})`` operations, as reverse-mode differentiation would:

* forward, the prefix products ``A_h = W_{h:1} = W_h A_{h-1}`` (d_h, d_x), ``A_1 = W_1``;
* ``PS = A_H Sxx``, ``R = PS - Syx`` and the loss ``tr_syy - 2 <A_H, Syx> + <PS, A_H>``;
* backward, ``Z_H = R``, ``Z_{h-1} = W_h^T Z_h`` (d_{h-1}, d_x), i.e. ``Z_h = W_{H:h+1}^T R``,
  and ``dL/dW_h = 2 Z_h A_{h-1}^T`` (``2 Z_1`` for h = 1).

Every intermediate lives in one caller-provided buffer of :func:`workspace_size` float64;
offsets are running counters, so a call allocates nothing and the loops are plain index
arithmetic on flat row-major arrays (the layout of :mod:`.dense`).  Sums run in ascending
index order, so results depend only on the inputs, never on a thread or a batch.

Compared with :func:`.hessian.gradient` (which forms every partial product ``W_{a:b}``,
``O(H^2)`` products): the loss and ``R`` are the same bits (same products, same order);
``dL/dW_H`` and ``dL/dW_{H-1}`` too; for ``h <= H - 2`` the factor ``W_{H:h+1}^T R`` is
associated differently, ``W_{h+1}^T (... (W_H^T R))`` instead of ``(W_H ... W_{h+1})^T R``,
so those layers agree to rounding only (tests/test_gd.py).

:func:`descend_range` runs many trajectories of plain gradient descent on one architecture
(the benchmark's dynamics workload, docs/performance.md) in blocks of :data:`LANES`, one
trajectory per SIMD lane (:func:`value_and_gradient_lanes`), bit-identical to stepping
each trajectory alone with :func:`value_and_gradient`.  The dimensions are read at run
time: one compiled kernel serves every architecture.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels.jit import jit


@jit
def workspace_size(dims):
    """Float64 entries of the work buffer of :func:`value_and_gradient` for ``dims`` (H+1,):
    the prefix products ``A_1 .. A_H`` (``d_h d_x`` each), ``W_{H:1} Sxx`` (``d_y d_x``) and
    two backward buffers of ``max_h d_h`` x ``d_x``."""
    H = dims.size - 1
    d_x = dims[0]
    D = 0
    n = 0
    for h in range(1, H + 1):
        n += dims[h] * d_x
        D = max(D, dims[h])
    return n + dims[H] * d_x + 2 * D * d_x


@jit
def value_and_gradient(problem, w, g, work):
    """Loss at the flat point ``w`` (N,); its gradient is written into ``g`` (N,).

    Parameters
    ----------
    problem : FlowProblem
        ``dims`` (H+1,) int64, ``Sxx`` (d_x, d_x), ``Syx`` (d_y, d_x), ``tr_syy``.
    w : ndarray (N,)
        The layers ``W_1 .. W_H``, each row-major ``(d_h, d_{h-1})``, one after the other.
    g : ndarray (N,)
        Output, same layout as ``w``.
    work : ndarray (>= workspace_size(dims),)
        Scratch, overwritten.

    Returns
    -------
    float
        ``L(W) = tr(Syy) - 2 <W_{H:1}, Syx> + <W_{H:1} Sxx, W_{H:1}>``.
    """
    dims = problem.dims
    Sxx = problem.Sxx
    Syx = problem.Syx
    H = dims.size - 1
    d_x = dims[0]
    d_y = dims[H]
    # forward: A_h = W_h A_{h-1} at a_off; A_1 = W_1 copied
    n1 = dims[1] * d_x
    for i in range(n1):
        work[i] = w[i]
    a_prev = 0  # offset of A_{h-1} in work
    a_off = n1  # offset of A_h
    w_off = n1  # offset of W_h in w
    for h in range(2, H + 1):
        dh = dims[h]
        dh1 = dims[h - 1]
        for i in range(dh):
            wrow = w_off + i * dh1
            for j in range(d_x):
                s = 0.0
                for t in range(dh1):
                    s += w[wrow + t] * work[a_prev + t * d_x + j]
                work[a_off + i * d_x + j] = s
        a_prev = a_off
        a_off += dh * d_x
        w_off += dh * dh1
    p_off = a_prev  # A_H = W_{H:1}
    ps_off = a_off  # W_{H:1} Sxx, then R = W_{H:1} Sxx - Syx in place
    z0 = ps_off + d_y * d_x
    D = 0
    for h in range(1, H + 1):
        D = max(D, dims[h])
    z1 = z0 + D * d_x
    for i in range(d_y):
        for j in range(d_x):
            s = 0.0
            for t in range(d_x):
                s += work[p_off + i * d_x + t] * Sxx[t, j]
            work[ps_off + i * d_x + j] = s
    s1 = 0.0
    for i in range(d_y):
        for j in range(d_x):
            s1 += work[p_off + i * d_x + j] * Syx[i, j]
    s2 = 0.0
    for i in range(d_y):
        for j in range(d_x):
            s2 += work[ps_off + i * d_x + j] * work[p_off + i * d_x + j]
    value = problem.tr_syy - 2.0 * s1 + s2
    for i in range(d_y):
        for j in range(d_x):
            work[ps_off + i * d_x + j] -= Syx[i, j]
    # backward: Z_H = R; G_h = 2 Z_h A_{h-1}^T; Z_{h-1} = W_h^T Z_h
    z_cur = ps_off
    z_next = z0
    a_hm1 = p_off - dims[H - 1] * d_x  # offset of A_{h-1} for h = H
    for h in range(H, 1, -1):
        dh = dims[h]
        dh1 = dims[h - 1]
        w_off -= dh * dh1  # the offset of W_h
        for i in range(dh):
            for j in range(dh1):
                s = 0.0
                for t in range(d_x):
                    s += work[z_cur + i * d_x + t] * work[a_hm1 + j * d_x + t]
                g[w_off + i * dh1 + j] = 2.0 * s
        for i in range(dh1):
            for j in range(d_x):
                work[z_next + i * d_x + j] = 0.0
        for t in range(dh):
            for i in range(dh1):
                a = w[w_off + t * dh1 + i]
                for j in range(d_x):
                    work[z_next + i * d_x + j] += a * work[z_cur + t * d_x + j]
        z_cur = z_next
        z_next = z1 if z_next == z0 else z0
        a_hm1 -= dims[h - 2] * d_x
    for k in range(dims[1] * d_x):  # h = 1: A_0 = I
        g[k] = 2.0 * work[z_cur + k]
    return value


LANES = 8  # trajectories evaluated together, one per SIMD lane (8 float64: one AVX-512 register)


@jit
def value_and_gradient_lanes(problem, w, g, work, value):
    """:func:`value_and_gradient` for ``LANES`` points at once, lane-interleaved: entry
    ``p`` of lane ``b`` at ``p * LANES + b`` in ``w`` and ``g`` (N * LANES,) and in
    ``work`` (``(workspace_size(dims) + 1) * LANES``); the losses go to ``value``
    (LANES,).  Every loop of the single-point version gains an innermost loop over the
    lanes, which the compiler turns into vector instructions; each lane performs exactly the
    single-point version's operations in the same order (sums start from 0.0 and run in
    ascending index order; no fused multiply-add: no ``fastmath``), so a lane's results are
    the same bits as :func:`value_and_gradient` on that point alone."""
    B = LANES
    dims = problem.dims
    Sxx = problem.Sxx
    Syx = problem.Syx
    H = dims.size - 1
    d_x = dims[0]
    d_y = dims[H]
    n1 = dims[1] * d_x
    for i in range(n1 * B):
        work[i] = w[i]
    a_prev = 0
    a_off = n1
    w_off = n1
    for h in range(2, H + 1):
        dh = dims[h]
        dh1 = dims[h - 1]
        for i in range(dh):
            for j in range(d_x):
                o = (a_off + i * d_x + j) * B
                for b in range(B):
                    work[o + b] = 0.0
                for t in range(dh1):
                    wi = (w_off + i * dh1 + t) * B
                    ai = (a_prev + t * d_x + j) * B
                    for b in range(B):
                        work[o + b] += w[wi + b] * work[ai + b]
        a_prev = a_off
        a_off += dh * d_x
        w_off += dh * dh1
    p_off = a_prev
    ps_off = a_off
    z0 = ps_off + d_y * d_x
    D = 0
    for h in range(1, H + 1):
        D = max(D, dims[h])
    z1 = z0 + D * d_x
    acc = (z1 + D * d_x) * B  # LANES partial sums
    for i in range(d_y):
        for j in range(d_x):
            o = (ps_off + i * d_x + j) * B
            for b in range(B):
                work[o + b] = 0.0
            for t in range(d_x):
                pi = (p_off + i * d_x + t) * B
                c = Sxx[t, j]
                for b in range(B):
                    work[o + b] += work[pi + b] * c
    for b in range(B):
        work[acc + b] = 0.0
        value[b] = 0.0
    for i in range(d_y):
        for j in range(d_x):
            pi = (p_off + i * d_x + j) * B
            c = Syx[i, j]
            for b in range(B):
                work[acc + b] += work[pi + b] * c
    for i in range(d_y):
        for j in range(d_x):
            pi = (p_off + i * d_x + j) * B
            si = (ps_off + i * d_x + j) * B
            for b in range(B):
                value[b] += work[si + b] * work[pi + b]
    tr = problem.tr_syy
    for b in range(B):
        value[b] = tr - 2.0 * work[acc + b] + value[b]
    for i in range(d_y):
        for j in range(d_x):
            si = (ps_off + i * d_x + j) * B
            c = Syx[i, j]
            for b in range(B):
                work[si + b] -= c
    z_cur = ps_off
    z_next = z0
    a_hm1 = p_off - dims[H - 1] * d_x
    for h in range(H, 1, -1):
        dh = dims[h]
        dh1 = dims[h - 1]
        w_off -= dh * dh1
        for i in range(dh):
            for j in range(dh1):
                o = (w_off + i * dh1 + j) * B
                for b in range(B):
                    g[o + b] = 0.0
                for t in range(d_x):
                    zi = (z_cur + i * d_x + t) * B
                    ai = (a_hm1 + j * d_x + t) * B
                    for b in range(B):
                        g[o + b] += work[zi + b] * work[ai + b]
                for b in range(B):
                    g[o + b] = 2.0 * g[o + b]
        for i in range((dh1 * d_x) * B):
            work[z_next * B + i] = 0.0
        for t in range(dh):
            for i in range(dh1):
                wi = (w_off + t * dh1 + i) * B
                for j in range(d_x):
                    o = (z_next + i * d_x + j) * B
                    zi = (z_cur + t * d_x + j) * B
                    for b in range(B):
                        work[o + b] += w[wi + b] * work[zi + b]
        z_cur = z_next
        z_next = z1 if z_next == z0 else z0
        a_hm1 -= dims[h - 2] * d_x
    for k in range(dims[1] * d_x * B):
        g[k] = 2.0 * work[z_cur * B + k]


@jit
def descend_range(problem, run, start, stop, step):
    """Plain gradient descent ``W <- W - eta grad L(W)`` on the blocks ``q`` in
    ``range(start, stop, step)`` of ``run`` (:class:`~.bundles.GDRun`), block ``q`` being
    the trajectories ``q LANES .. (q + 1) LANES - 1`` (fewer in the last block; its empty
    lanes run from zero weights and are discarded): ``run.w[t]`` (N,) is advanced
    ``n_steps`` times in place and ``run.losses[t, k]`` receives the loss before step ``k``.

    The lanes of a block run :func:`value_and_gradient_lanes`, so every trajectory's
    iterates are the same bits as with :func:`value_and_gradient` alone, whatever the
    block, the thread or the number of threads.  Work buffers are allocated once per call,
    then nothing."""
    B = LANES
    T, N = run.w.shape
    work = np.empty((workspace_size(problem.dims) + 1) * B)
    wb = np.empty(N * B)
    gb = np.empty(N * B)
    value = np.empty(B)
    eta = run.eta
    for q in range(start, stop, step):
        t0 = q * B
        nb = min(B, T - t0)
        for p in range(N):
            for b in range(B):
                wb[p * B + b] = run.w[t0 + b, p] if b < nb else 0.0
        for k in range(run.n_steps):
            value_and_gradient_lanes(problem, wb, gb, work, value)
            for b in range(nb):
                run.losses[t0 + b, k] = value[b]
            for i in range(N * B):
                wb[i] -= eta * gb[i]
        for p in range(N):
            for b in range(nb):
                run.w[t0 + b, p] = wb[p * B + b]
