"""Random architectures, data and exact critical points (docs/theory.md §5).

Everything is drawn from one per-point stream (:mod:`.rng`).  Points are built in whitened
coordinates, ``W'_h = G_h [[D_h, 0], [0, E_h]] G_{h-1}^{-1}``, with ``G_0 = [V_S, V_{S^c}, V_0]``
and ``G_H = [U_S, U_{S^c}]`` orthonormal, random well-conditioned hidden bases ``G_h``, a
signal chain with ``D_H ... D_1 = diag(sigma_S)`` and a complement chain ``E`` that is a
critical point with zero product of the complement problem; then ``W_1 = W'_1 K^{-1}``.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels import params as p
from mcland._kernels import rng
from mcland._kernels.dense import (
    as_matrix,
    bottleneck,
    copy_block,
    copy_into,
    layer_offsets,
    matmul,
    matmul_nt_rows,
    matmul_rows,
)
from mcland._kernels.jit import jit, jit_inline
from mcland._kernels.whiten import problem, smallest_relative_gap

MAX_DATA_TRIES = 20


@jit
def draw_dims(state, params, fixed_dx, fixed_dy):
    """Architecture ``(d_0, ..., d_H)``: H, d_y, d_x = d_y + extra and hidden widths uniform
    in their inclusive ranges (the hidden widths log-uniform with ``params[P_HID_LOG] > 0``);
    with user data d_x and d_y are the data's."""
    H = rng.integer(state, int(params[p.P_DEPTH_MIN]), int(params[p.P_DEPTH_MAX]))
    dims = np.empty(H + 1, np.int64)
    if params[p.P_FIXED_DATA] > 0.0:
        dims[0] = fixed_dx
        dims[H] = fixed_dy
    else:
        dims[H] = rng.integer(state, int(params[p.P_DY_MIN]), int(params[p.P_DY_MAX]))
        dims[0] = dims[H] + rng.integer(state, int(params[p.P_DXE_MIN]), int(params[p.P_DXE_MAX]))
    lo = int(params[p.P_HID_MIN])
    hi = int(params[p.P_HID_MAX])
    for h in range(1, H):
        if params[p.P_HID_LOG] > 0.0:  # one uniform, as rng.integer
            # floor(exp(U(log lo, log(hi + 1)))): P(width in [a, b)) = log(b / a) / log((hi + 1) / lo)
            x = np.exp(np.log(lo) + (np.log(hi + 1.0) - np.log(lo)) * rng.uniform(state))
            dims[h] = min(hi, max(lo, int(x)))
        else:
            dims[h] = rng.integer(state, lo, hi)
    return dims


@jit
def _log_uniform(state, lo, hi):
    return np.exp(lo + (hi - lo) * rng.uniform(state))


@jit_inline
def draw_data(state, params, d_x, d_y):
    """Gaussian data ``X = a X0``, ``Y = b (T X0 + noise Z)`` (d_x, m) and (d_y, m), with
    log-uniform scale factors a, b; redrawn until it satisfies docs/theory.md §1.

    Returns ``(X, Y, a, b, ok, moments)`` with ``moments`` the data's
    :class:`.bundles.Moments` (:func:`.whiten.problem`).
    """
    m = int(params[p.P_M])
    for _ in range(MAX_DATA_TRIES):
        X0 = rng.normal_matrix(state, d_x, m)
        T = rng.normal_matrix(state, d_y, d_x)
        Z = rng.normal_matrix(state, d_y, m)
        a = _log_uniform(state, params[p.P_LSX_MIN], params[p.P_LSX_MAX])
        b = _log_uniform(state, params[p.P_LSY_MIN], params[p.P_LSY_MAX])
        Y = matmul(T, X0) + params[p.P_NOISE] * Z
        X = a * X0
        Y = b * Y
        moments = problem(X, Y)
        mu = moments.mu
        if (
            mu[0] > params[p.P_SXX_RCOND] * mu[mu.size - 1]
            and smallest_relative_gap(moments.lam) > params[p.P_GAP_RTOL]
        ):
            return X, Y, a, b, True, moments
    return X, Y, a, b, False, moments


PANEL = 16  # rows finished before their pass-1 steps are applied to the rows below


@jit_inline
def _step(q, i, j):
    """One Gram-Schmidt step on row j of ``q``: ``q_j -= (q_i . q_j) q_i``."""
    d = 0.0
    for k in range(q.shape[1]):
        d += q[i, k] * q[j, k]
    for k in range(q.shape[1]):
        q[j, k] -= d * q[i, k]


@jit_inline
def _step_pair(q, r, i, j):
    """:func:`_step` on row j of ``q`` and of ``r`` at once: two independent sums in
    one loop (each as :func:`_step` computes it), so that one waits less on the other."""
    d = 0.0
    e = 0.0
    for k in range(q.shape[1]):
        d += q[i, k] * q[j, k]
        e += r[i, k] * r[j, k]
    for k in range(q.shape[1]):
        q[j, k] -= d * q[i, k]
        r[j, k] -= e * r[i, k]


@jit_inline
def _step4(q, i, j):
    """:func:`_step` with q_i on rows j .. j+3 at once (four independent sums)."""
    d0 = 0.0
    d1 = 0.0
    d2 = 0.0
    d3 = 0.0
    for k in range(q.shape[1]):
        c = q[i, k]
        d0 += c * q[j, k]
        d1 += c * q[j + 1, k]
        d2 += c * q[j + 2, k]
        d3 += c * q[j + 3, k]
    for k in range(q.shape[1]):
        c = q[i, k]
        q[j, k] -= d0 * c
        q[j + 1, k] -= d1 * c
        q[j + 2, k] -= d2 * c
        q[j + 3, k] -= d3 * c


@jit_inline
def _normalise(q, j):
    nrm = 0.0
    for k in range(q.shape[1]):
        nrm += q[j, k] * q[j, k]
    nrm = np.sqrt(nrm)
    for k in range(q.shape[1]):
        q[j, k] /= nrm


@jit_inline
def _first_pass_below(q, i0, i1):
    """The first-pass steps with the finished rows ``i0 .. i1-1`` on every row below them,
    in the order of i: what the row-by-row loop does to each row, four rows at a time."""
    n = q.shape[0]
    j = i1
    while j + 4 <= n:
        for i in range(i0, i1):
            _step4(q, i, j)
        j += 4
    while j < n:
        for i in range(i0, i1):
            _step(q, i, j)
        j += 1


@jit
def _orthonormalise_pair(q, r):
    """Orthonormalise the rows of ``q`` and of ``r`` (both (n, n)) in place by modified
    Gram-Schmidt, twice: for each row j in turn, the steps with rows 0 .. j-1, again the
    same steps, then the row divided by its norm (the Q factor with positive R diagonal).

    Every row goes through exactly those operations in that order, so the bits are those
    of the row-by-row loop (:func:`tests.naive.orthogonal_reference`); the loops around
    them are reordered for speed (docs/structured.md §7, "Drawing a wide point"): a row's
    first-pass steps with a finished panel of ``PANEL`` rows are applied to all rows below
    as soon as that panel is finished, four rows at a time, and the two matrices advance
    together."""
    n = q.shape[0]
    for i0 in range(0, n, PANEL):
        i1 = min(n, i0 + PANEL)
        for j in range(i0, i1):
            for i in range(i0, j):  # the rest of the first pass
                _step_pair(q, r, i, j)
            for i in range(j):  # the second pass
                _step_pair(q, r, i, j)
            _normalise(q, j)
            _normalise(r, j)
        _first_pass_below(q, i0, i1)
        _first_pass_below(r, i0, i1)


@jit
def _conditioned(state, n, cond):
    """Random ``G`` (n, n) with singular values log-uniform in [cond^-1/2, cond^1/2], and G^-1:
    ``G = q1 diag(sv) q2^T`` with q1, q2 Haar-random orthogonal (the rows of a Gaussian
    matrix orthonormalised by Gram-Schmidt, twice for orthogonality to rounding level:
    :func:`_orthonormalise_pair`, without a LAPACK call)."""
    q1 = rng.normal_matrix(state, n, n)
    q2 = rng.normal_matrix(state, n, n)
    _orthonormalise_pair(q1, q2)
    half = 0.5 * np.log(cond)
    sv = np.empty(n)
    for j in range(n):
        sv[j] = np.exp(half * (2.0 * rng.uniform(state) - 1.0))
    Ginv = matmul_nt_rows(q2 / sv, q1)  # q2 diag(1/sv) q1^T
    q1 *= sv
    return matmul_nt_rows(q1, q2), Ginv  # q1 diag(sv) q2^T


@jit
def _free_block(state, rows, cols, low_rank):
    """Gaussian block scaled by 1/sqrt(cols); with probability ``low_rank`` of random lower rank."""
    if rows == 0 or cols == 0:
        return np.zeros((rows, cols))
    k = min(rows, cols)
    if k >= 2 and rng.uniform(state) < low_rank:
        rho = rng.integer(state, 1, k - 1)
        return matmul_rows(
            rng.normal_matrix(state, rows, rho), rng.normal_matrix(state, rho, cols)
        ) / np.sqrt(rho * cols)
    return rng.normal_matrix(state, rows, cols) / np.sqrt(cols)


@jit
def _choose_S(state, params, d_y, r):
    """Index set S as a boolean mask over eigen-indices (0-based), and the recipe used."""
    weights = np.array([params[p.P_W_GLOBAL], params[p.P_W_TOP], params[p.P_W_OTHER]])
    recipe = rng.categorical(state, weights)
    if recipe == 2 and (d_y < 2 or weights[0] + weights[1] + weights[2] <= 0.0):
        recipe = 1
    s_in = np.zeros(d_y, np.bool_)
    if recipe == 0:
        s_in[:r] = True
    elif recipe == 1:
        s_in[: rng.integer(state, 0, r - 1)] = True
    else:
        s = rng.integer(state, 1, min(r, d_y - 1))
        perm = rng.permutation(state, d_y)
        top = True
        for k in range(s):
            s_in[perm[k]] = True
            top = top and perm[k] < s
        if top:  # replace the weakest kept index by a dropped one
            s_in[s - 1] = False
            s_in[rng.integer(state, s, d_y - 1)] = True
    return s_in, recipe


@jit_inline
def _bases(moments, order_out, d_x, d_y):
    """The outer bases for S listed first in ``order_out`` ([S, S^c] eigen-indices):
    ``G_0^{-1} = [V_S, V_Sc, V_0]^T`` (d_x, d_x) and ``G_H = [U_S, U_Sc]`` (d_y, d_y)."""
    g0_inv = np.empty((d_x, d_x))
    for k in range(d_x):
        src = order_out[k] if k < d_y else k
        for j in range(d_x):
            g0_inv[k, j] = moments.Vt[src, j]
    gH = np.empty((d_y, d_y))
    for k in range(d_y):
        for i in range(d_y):
            gH[i, k] = moments.U[i, order_out[k]]
    return g0_inv, gH


@jit_inline
def _signal_chain(state, params, H, s, sig_s):
    """The signal blocks ``D_1 .. D_H`` (stacked, (H+1, s', s') with s' = max(s, 1)), random
    and conditioned for h < H, with ``D_H ... D_1 = diag(sig_s)``."""
    D = np.zeros((H + 1, max(s, 1), max(s, 1)))
    chain_inv = np.eye(s)
    for h in range(1, H):
        if s > 0:
            dh, dh_inv = _conditioned(state, s, params[p.P_SIGNAL_COND])
            copy_block(dh, D[h], 0, 0)
            chain_inv = matmul(chain_inv, dh_inv)
    for i in range(s):
        for j in range(s):
            D[H, i, j] = sig_s[i] * chain_inv[i, j]
    return D


@jit_inline
def _complement_chain(state, params, kill_weights, dims, s):
    """The complement blocks ``E_h`` (c_h, c_{h-1}), ``c_h = d_h - s``, concatenated
    row-major in a flat buffer with offsets: kill layers and the single-kill split of
    docs/theory.md §5.  Returns ``(E_buf, E_off, c)``."""
    H = dims.size - 1
    sc = dims[H] - s
    c = np.empty(H + 1, np.int64)
    for h in range(H + 1):
        c[h] = dims[h] - s
    killed = np.zeros(H + 1, np.bool_)
    rows_keep = np.ones(sc, np.bool_)  # rows of E_H allowed (the subset A)
    cols_keep = np.ones(c[0], np.bool_)  # columns of E_1 allowed
    if c.min() > 0:
        n_kill = 1 + rng.categorical(state, kill_weights[: min(H, kill_weights.size)])
        perm = rng.permutation(state, H)
        for t in range(n_kill):
            killed[perm[t] + 1] = True
        if n_kill == 1:
            kk = perm[0] + 1
            for i in range(sc):
                if kk == H:
                    in_a = True
                elif kk == 1:
                    in_a = False
                else:
                    in_a = rng.uniform(state) < params[p.P_SPLIT]
                rows_keep[i] = in_a
                cols_keep[i] = not in_a
    E_off = np.zeros(H + 1, np.int64)
    for h in range(1, H + 1):
        E_off[h] = E_off[h - 1] + c[h] * c[h - 1]
    E_buf = np.zeros(E_off[H])
    for h in range(1, H + 1):
        E = as_matrix(E_buf, E_off[h - 1], c[h], c[h - 1])
        if not killed[h]:
            block = _free_block(state, c[h], c[h - 1], params[p.P_LOW_RANK])
            copy_into(block, E_buf, E_off[h - 1])
        if h == H:
            for i in range(c[h]):
                if not rows_keep[i]:
                    E[i, :] = 0.0
        if h == 1:
            for j in range(c[0]):
                if not cols_keep[j]:
                    E[:, j] = 0.0
    return E_buf, E_off, c


@jit_inline
def construct(state, params, kill_weights, dims, moments):
    """Draw an exact critical point for architecture ``dims`` and the data of ``moments``
    (:class:`.bundles.Moments`).

    Returns ``(w, s_in, recipe, kill_mask)``: flat layers (see :mod:`.dense`), the drawn S
    as a mask, the recipe code, and a bit mask of the layers whose complement block E_h is
    identically zero (bit h-1 for layer h).  ``kill_weights[k-1]`` weighs drawing k kill layers.
    The layers are ``W'_h = G_h blockdiag(D_h, E_h) G_{h-1}^{-1}`` (``W_1 = W'_1 K^{-1}``)
    with random conditioned hidden bases ``G_h`` (docs/theory.md §5).
    """
    H = dims.size - 1
    d_x = dims[0]
    d_y = dims[H]
    s_in, recipe = _choose_S(state, params, d_y, bottleneck(dims))
    s = np.int64(0)  # not a literal 0: it would compile _conditioned for it too
    for i in range(d_y):
        if s_in[i]:
            s += 1
    order_out = np.empty(d_y, np.int64)  # [S, S^c] eigen-indices
    k = 0
    for want in (True, False):
        for i in range(d_y):
            if s_in[i] == want:
                order_out[k] = i
                k += 1
    g0_inv, gH = _bases(moments, order_out, d_x, d_y)
    sig_s = np.empty(s)
    for i in range(s):
        sig_s[i] = np.sqrt(moments.lam[order_out[i]])
    D = _signal_chain(state, params, H, s, sig_s)
    E_buf, E_off, c = _complement_chain(state, params, kill_weights, dims, s)

    w = np.empty(layer_offsets(dims)[H])
    kill_mask = 0
    g_prev_inv = g0_inv
    pos = 0
    for h in range(1, H + 1):
        E = as_matrix(E_buf, E_off[h - 1], c[h], c[h - 1])
        if E.size > 0 and np.all(E == 0.0):
            kill_mask |= 1 << (h - 1)
        mid = np.zeros((dims[h], dims[h - 1]))
        copy_block(D[h, :s, :s], mid, 0, 0)
        copy_block(E, mid, s, s)
        if h < H:
            g_h, g_h_inv = _conditioned(state, dims[h], params[p.P_BASIS_COND])
        else:
            g_h = gH
            g_h_inv = gH
        Wh = matmul_rows(matmul_rows(g_h, mid), g_prev_inv)
        if h == 1:
            Wh = matmul(Wh, moments.K_inv)
        copy_into(Wh, w, pos)
        pos += Wh.size
        g_prev_inv = g_h_inv
    return w, s_in, recipe, kill_mask
