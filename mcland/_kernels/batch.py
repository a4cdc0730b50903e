"""The batch loop: draw and analyse many points, each from its own random stream.

Point ``t`` seeds its own stream from ``(seed, ids[t])``, so the content of a row does
not depend on the thread that computed it, on the batch size or on its neighbours.
"""

from __future__ import annotations

import numpy as np

from mcland._jit import jit
from mcland._kernels import fields as f
from mcland._kernels import params as p
from mcland._kernels import rng
from mcland._kernels.classify import analyze
from mcland._kernels.dense import frob, layer, layer_offsets, matmul
from mcland._kernels.draw import construct, draw_data, draw_dims
from mcland._kernels.whiten import critical_values_into, problem, smallest_relative_gap


@jit
def _product_error(w, dims, inS, U, Syx, Kinv):
    """``||W_{H:1} - U_S U_S^T Syx Sxx^{-1}||_F / ||Syx Sxx^{-1}||_F``."""
    H = dims.size - 1
    off = layer_offsets(dims)
    P = layer(w, dims, off, 1).copy()
    for h in range(2, H + 1):  # W_{H:1} in the order of product_table: the same bits
        P = matmul(layer(w, dims, off, h), P)
    B = matmul(matmul(Syx, Kinv), Kinv)
    Us = U.copy()
    for i in range(inS.size):
        if not inS[i]:
            Us[:, i] = 0.0
    T = matmul(Us, matmul(U.T.copy(), B))
    return frob(P - T) / frob(B)


@jit
def draw_point(seed, sample_id, prm, kill_w, fx, fy):
    """Draw point ``sample_id``: returns
    ``(dims, w, X, Y, inS_drawn, recipe, kill_mask, a, b, ok, pb)``, ``pb`` the data's
    :func:`.whiten.problem` tuple.  ``fx``/``fy`` are the user data when
    ``prm[P_FIXED_DATA] > 0`` (then a = b = 1).
    """
    state = rng.stream(seed, sample_id)
    dims = draw_dims(state, prm, fx.shape[0], fy.shape[0])
    H = dims.size - 1
    if prm[p.P_FIXED_DATA] > 0.0:
        X = fx
        Y = fy
        a = 1.0
        b = 1.0
        ok = True
        pb = problem(X, Y)
    else:
        X, Y, a, b, ok, pb = draw_data(state, prm, dims[0], dims[H])
    lam, U, Vt, Kinv = pb[6], pb[7], pb[8], pb[5]
    w, inS, recipe, kill_mask = construct(state, prm, kill_w, dims, lam, U, Vt, Kinv)
    return dims, w, X, Y, inS, recipe, kill_mask, a, b, ok, pb


@jit
def process_range(
    seed, ids, prm, kill_w, fx, fy,
    dims_out, dint, dflt, frow, irow, smask, sdrawn, ranks, spec_w, spec, wout, cvals,
    start, stop, step,
):  # fmt: skip
    """Draw and analyse the points ``ids[start:stop:step]``; row t of every output is point
    ids[t].

    Output shapes (n = ids.size): ``dims_out`` (n, H_max+1) padded with 0; ``dint``/``dflt``
    draw facts (:data:`params.DRAW_INT_FIELDS` / ``DRAW_FLOAT_FIELDS``); ``frow``/``irow``
    analysis rows (:mod:`.fields`); ``smask``/``sdrawn`` (n, d_y_max) read and drawn S;
    ``ranks`` (n, R_max); ``spec_w``/``spec`` (n, N_max) or (n, 0), whitened and original
    spectra; ``wout`` (n, n_w_max) or (n, 0);
    ``cvals`` (n, 2**d_y_max) or (n, 0), the enumerated critical values, NaN-padded.
    Compiled with ``nogil``: disjoint ranges run concurrently in threads (see
    :func:`mcland.sampling.compute`).  The per-point body is inlined here rather than in a
    function of its own: every extra layer of jitted calls re-optimises all the code below
    it and cost about 10 s of first compilation.
    """
    no_direction = np.zeros(0)  # escape directions are not stored
    work = np.empty(0)  # the Hessian's scratch, grown to the largest point of the range
    flags = f.SPECTRUM
    if prm[p.P_SPECTRUM_FREE] > 0.0:
        flags = f.CHOLESKY
    if prm[p.P_ORIGINAL_SPECTRUM] > 0.0:
        flags |= f.ORIGINAL
    for t in range(start, stop, step):
        dims, w, X, Y, inS, recipe, kill_mask, a, b, ok, pb = draw_point(
            seed, ids[t], prm, kill_w, fx, fy
        )
        H = dims.size - 1
        Sxx, Syx, tr_syy, mu, K, Kinv, lam, U, Vt = pb
        N = 0
        r = dims[0]
        for h in range(1, H + 1):
            N += dims[h] * dims[h - 1]
            r = min(r, dims[h])
        dims_out[t] = 0
        dims_out[t, : H + 1] = dims
        s = 0
        for i in range(inS.size):
            sdrawn[t, i] = inS[i]
            if inS[i]:
                s += 1
        dint[t, p.D_H] = H
        dint[t, p.D_DX] = dims[0]
        dint[t, p.D_DY] = dims[H]
        dint[t, p.D_R] = r
        dint[t, p.D_N] = N
        dint[t, p.D_RECIPE] = recipe
        dint[t, p.D_S_DRAWN] = s
        dint[t, p.D_KILL_MASK] = kill_mask
        dint[t, p.D_STATUS] = p.STATUS_OK if ok else p.STATUS_DATA_REJECTED
        dflt[t, p.D_SCALE_X] = a
        dflt[t, p.D_SCALE_Y] = b
        dflt[t, p.D_MIN_REL_GAP] = smallest_relative_gap(lam)
        dflt[t, p.D_SXX_RCOND] = mu[0] / mu[mu.size - 1]
        dflt[t, p.D_PRODUCT_ERR] = _product_error(w, dims, inS, U, Syx, Kinv)
        if wout.shape[1] > 0:
            wout[t, : w.size] = w
        cvals[t] = np.nan
        if cvals.shape[1] >= (1 << dims[H]):
            critical_values_into(lam, tr_syy, r, cvals[t])
        if work.size < 2 * N * N:
            work = np.empty(2 * N * N)
        point_flags = flags
        if flags & f.CHOLESKY and rng.audit_uniform(seed, ids[t]) < prm[p.P_AUDIT_FRACTION]:
            point_flags |= f.SPECTRUM
        analyze(
            dims, w, Sxx, Syx, tr_syy, K, Kinv, lam, U, Vt,
            prm[p.P_GRAD_RTOL], prm[p.P_C_ZERO], prm[p.P_C_NEG], point_flags,
            frow[t], irow[t], smask[t], ranks[t], spec_w[t], spec[t], no_direction, work,
        )  # fmt: skip
