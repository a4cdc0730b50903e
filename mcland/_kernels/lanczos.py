"""The long-vector operations of block Lanczos with full reorthogonalisation.

Vectors are the **rows** of C-ordered arrays: the basis ``Q`` (m_max, N), a block ``W``
(b, N).  Every entry is computed by one loop in a fixed order (sums over the long index in
chunks of :data:`CHUNK` entries, four interleaved partial sums within a chunk, chunks added
in order), so results are the same bits whatever the thread that runs them; callers may
split the rows of an output between threads (:func:`project` over ``Q``'s rows,
:func:`subtract` over the column ranges ``[lo, hi)`` of the long index) without changing a
bit.  The driver and the projected eigenproblem are in :mod:`mcland.core.lanczos`.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels.jit import jit

CHUNK = 2048  # entries of the long index per chunk (a block's chunk stays in L2)


@jit
def _dot(x, y, lo, hi):
    """``sum_{t in [lo, hi)} x[t] y[t]``, four interleaved partial sums (fixed order)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    t = lo
    while t + 3 < hi:
        s0 += x[t] * y[t]
        s1 += x[t + 1] * y[t + 1]
        s2 += x[t + 2] * y[t + 2]
        s3 += x[t + 3] * y[t + 3]
        t += 4
    while t < hi:
        s0 += x[t] * y[t]
        t += 1
    return (s0 + s1) + (s2 + s3)


@jit
def project(Q, i0, i1, W, C):
    """``C[i, j] = <Q[i], W[j]>`` for ``i`` in ``[i0, i1)`` and every row ``j`` of ``W``
    (``C`` (>= i1, b)); each entry is summed chunk by chunk (:func:`_dot`)."""
    N = W.shape[1]
    b = W.shape[0]
    for i in range(i0, i1):
        for j in range(b):
            C[i, j] = 0.0
    lo = 0
    while lo < N:
        hi = min(lo + CHUNK, N)
        for i in range(i0, i1):
            q = Q[i]
            for j in range(b):
                C[i, j] += _dot(q, W[j], lo, hi)
        lo = hi


@jit
def subtract(Q, m, C, W, lo, hi):
    """``W[j, lo:hi] -= sum_{i < m} C[i, j] Q[i, lo:hi]`` for every row ``j`` of ``W`` (the
    sum over ``i`` in increasing order, entry by entry; chunk by chunk, each chunk of a
    basis row read once for the whole block)."""
    b = W.shape[0]
    c0 = lo
    while c0 < hi:
        c1 = min(c0 + CHUNK, hi)
        for i in range(m):
            q = Q[i]
            for j in range(b):
                c = C[i, j]
                if c != 0.0:
                    w = W[j]
                    for t in range(c0, c1):
                        w[t] -= c * q[t]
        c0 = c1


@jit
def norm_row(x):
    """Euclidean norm of a row (chunked fixed-order sum)."""
    N = x.size
    s = 0.0
    lo = 0
    while lo < N:
        hi = min(lo + CHUNK, N)
        s += _dot(x, x, lo, hi)
        lo = hi
    return np.sqrt(s)


@jit
def _against_block(W, j, R, record):
    """Row ``j`` of ``W`` projected out of the rows ``W[:j]`` (one modified Gram-Schmidt
    sweep), the coefficients added to ``R[:j, j]`` when ``record``."""
    N = W.shape[1]
    wj = W[j]
    for i in range(j):
        x = _dot_full(W[i], wj)
        if record:
            R[i, j] += x
        wi = W[i]
        for t in range(N):
            wj[t] -= x * wi[t]


@jit
def _against_basis(Q, m, W, C, passes, first_norms):
    """The rows of ``W`` projected out of ``Q[:m]`` as a block (each pass reads the basis
    once): at least one pass, at most ``passes``, another while a pass removed more than
    ``1 - 1/sqrt(2)`` of some row's norm (Daniel, Gragg, Kaufman & Stewart 1976)."""
    b, N = W.shape
    before = first_norms.copy()
    for _ in range(passes):
        if m == 0:
            return
        project(Q, 0, m, W, C)
        subtract(Q, m, C, W, 0, N)
        again = False
        for j in range(b):
            nrm = norm_row(W[j])
            if not (nrm > 0.7071067811865476 * before[j]):
                again = True
            before[j] = nrm
        if not again:
            return


@jit
def orthonormalize_block(Q, m, W, R, ref, spare, defl_rtol):
    """Orthonormalise the rows of ``W`` (b, N) against ``Q[:m]`` and each other, in place,
    for a caller that has already projected ``W`` out of ``Q[:m]`` once.

    The block is projected out of ``Q[:m]`` again ("twice is enough", Giraud, Langou &
    Rozloznik 2005; more passes, at most three, while a pass removes much of a row:
    :func:`_against_basis`), then orthonormalised within itself by two sweeps of modified
    Gram-Schmidt.  ``R`` (b, b) receives the within-block coefficients (``W_in = R^T
    W_out`` up to the components along ``Q[:m]``).  A row whose norm falls to ``defl_rtol *
    ref[j]`` or below (``ref`` (b,): the norms the rows had before any projection; the
    block is then numerically dependent: an invariant subspace) is replaced by row ``j`` of
    ``spare`` (random), orthonormalised the same way, with ``R[:, j] = 0``.

    Returns the number of rows replaced; ``-1`` if a spare row was dependent too; ``-2 -
    j`` if row ``j`` needed a spare and ``spare`` has no row ``j`` (the caller restores
    ``W`` and calls again with spare rows; the test that asks for them is deterministic).
    """
    b, N = W.shape
    C = np.empty((max(m, 1), b))
    first = np.empty(b)
    for j in range(b):
        first[j] = norm_row(W[j])
        for i in range(b):
            R[i, j] = 0.0
    _against_basis(Q, m, W, C, 3, first)
    replaced = 0
    for j in range(b):
        for _ in range(2):
            _against_block(W, j, R, True)
        nrm = norm_row(W[j])
        if not (nrm > defl_rtol * ref[j]):
            if j >= spare.shape[0]:
                return -2 - j
            replaced += 1
            for i in range(b):
                R[i, j] = 0.0
            wj = W[j]
            sj = spare[j]
            for t in range(N):
                wj[t] = sj[t]
            row = W[j : j + 1]
            n0 = np.empty(1)
            n0[0] = norm_row(wj)
            _against_basis(Q, m, row, C, 3, n0)
            _against_basis(Q, m, row, C, 3, n0)  # a fresh row: at least two passes
            for _ in range(2):
                _against_block(W, j, R, False)
            nrm = norm_row(wj)
            if not (nrm > defl_rtol * n0[0]):
                return -1
        else:
            R[j, j] = nrm
        inv = 1.0 / nrm
        wj = W[j]
        for t in range(N):
            wj[t] *= inv
    return replaced


@jit
def _dot_full(x, y):
    """``<x, y>`` over whole rows (chunked fixed-order sum)."""
    N = x.size
    s = 0.0
    lo = 0
    while lo < N:
        hi = min(lo + CHUNK, N)
        s += _dot(x, y, lo, hi)
        lo = hi
    return s


@jit
def gram_defect_rows(Q, m, i0, i1, out):
    """``out[i] = (<Q[i], Q[i]> - 1)^2 + 2 sum_{j > i} <Q[i], Q[j]>^2`` for ``i`` in ``[i0,
    i1)``: ``||Q[:m] Q[:m]^T - I||_F^2`` is ``sum(out[:m])`` (``O(m^2 N)`` in all).  Inner
    products chunk by chunk (the chunks of a pair added in order, as :func:`_dot_full`),
    so that a chunk of the basis is read from cache for all pairs."""
    N = Q.shape[1]
    n = i1 - i0
    G = np.zeros((n, m))
    lo = 0
    while lo < N:
        hi = min(lo + CHUNK, N)
        for i in range(i0, i1):
            qi = Q[i]
            for j in range(i, m):
                G[i - i0, j] += _dot(qi, Q[j], lo, hi)
        lo = hi
    for i in range(i0, i1):
        g = G[i - i0, i] - 1.0
        s = g * g
        for j in range(i + 1, m):
            g = G[i - i0, j]
            s += 2.0 * g * g
        out[i] = s


@jit
def combine(Q, m, S, Y, lo, hi):
    """``Y[k, lo:hi] = sum_{i < m} S[i, k] Q[i, lo:hi]`` for every column ``k`` of ``S``
    (m, p) (Ritz vectors from the eigenvectors of the projected matrix), sums over ``i`` in
    order, entry by entry; chunk by chunk, each chunk of a basis row read once."""
    p = S.shape[1]
    c0 = lo
    while c0 < hi:
        c1 = min(c0 + CHUNK, hi)
        for k in range(p):
            y = Y[k]
            for t in range(c0, c1):
                y[t] = 0.0
        for i in range(m):
            q = Q[i]
            for k in range(p):
                s = S[i, k]
                y = Y[k]
                for t in range(c0, c1):
                    y[t] += s * q[t]
        c0 = c1
