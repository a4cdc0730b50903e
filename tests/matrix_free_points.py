"""Points for the matrix-free tests (tests/test_hvp.py, tests/test_extremes.py): random,
sampled, and balanced aligned critical points with large multiplicities; their whitened
moments and the dense truth (naive Hessian, ``eigvalsh``, the bands of docs/numerics.md)."""

from __future__ import annotations

from pathlib import Path

import naive
import numpy as np

import mcland
from mcland._kernels.constants import EPS
from mcland._kernels.dense import layer_offsets, product_table
from mcland._kernels.hessian import assembly_error, product_norms
from mcland.core.blas import one_blas_thread
from mcland.core.tolerances import C_NEG, C_ZERO

QUICK = Path(__file__).resolve().parent.parent / "runs" / "quick.toml"


def whiten(weights, X, Y):
    """``(weights_w, X_w)``: ``W_1 Sxx^{1/2}`` and ``Sxx^{-1/2} X`` (so ``X_w X_w^T = I`` and
    ``Y X_w^T = Syx Sxx^{-1/2}``), the coordinates of the classification."""
    Sxx, _, _ = naive.moments(X, Y)
    K = naive.sqrtm_psd(Sxx)
    return [weights[0] @ K, *weights[1:]], np.linalg.solve(K, X)


def flat(weights, X, Y):
    """``(dims, w, Sxx, Syx)`` as the kernels take them (original coordinates)."""
    Sxx, Syx, _ = naive.moments(X, Y)
    dims = np.array(naive.dims_of(weights), np.int64)
    return dims, naive.ravel_weights(weights), Sxx, Syx


def random_point(rng, dims, m=12, scale=1.0):
    weights = [rng.standard_normal((dims[h], dims[h - 1])) for h in range(1, len(dims))]
    X = scale * rng.standard_normal((dims[0], m))
    Y = rng.standard_normal((dims[-1], m))
    return weights, X, Y


def sampled_point(sample_id, config=QUICK):
    return mcland.draw_point(config, sample_id)


def wide_config(hidden=(20, 36), depth=(3, 4), n=200, seed=7):
    """A quick.toml-like sampler configuration with wider hidden layers (N 700..2,000 for ids 0..7)."""
    return {
        "n": n,
        "seed": seed,
        "architecture": {
            "depth": list(depth),
            "d_y": [2, 5],
            "d_x_extra": [0, 3],
            "hidden": list(hidden),
        },
        "data": {"m": 40, "noise": 0.5},
        "points": {
            "weight_global": 1.0,
            "weight_top_saddle": 1.6,
            "weight_other_saddle": 0.6,
            "kill_weights": [1, 1, 4, 4],
        },
    }


def balanced_aligned(dims, s, S, rng, m=None):
    """A balanced critical point aligned with the data, in whitened coordinates.

    ``Syx = U diag(s) V^T`` (``s`` (d_y,), repeated values give repeated eigenvalues of
    Sigma), ``X`` with ``X X^T = I``; the point keeps the 0-based indices ``S``:
    ``W_1 = O_1 D V_S^T``, ``W_h = O_h D O_{h-1}^T``, ``W_H = U_S D O_{H-1}^T`` with
    ``D = diag(s_S)^{1/H}`` and random orthonormal ``O_h`` (d_h, |S|), so ``W_{H:1} = U_S
    U_S^T Syx`` and every layer has the equal singular values of ``D``: the spectrum has
    multiplicities of the order of the widths.  Returns ``(weights, X, Y)``."""
    dims = list(dims)
    H = len(dims) - 1
    d_x, d_y = dims[0], dims[-1]
    m = m or d_x + d_y + 3
    U, _ = np.linalg.qr(rng.standard_normal((d_y, d_y)))
    V, _ = np.linalg.qr(rng.standard_normal((d_x, d_x)))
    Syx = U @ np.diag(s) @ V[:, :d_y].T
    Z, _ = np.linalg.qr(rng.standard_normal((m, m)))
    X = Z[:, :d_x].T  # X X^T = I
    Y = Syx @ X + 0.3 * Z[:, d_x : d_x + d_y].T  # noise orthogonal to X's rows
    S = list(S)
    k = len(S)
    D = np.diag(np.asarray(s, float)[S] ** (1.0 / H)) if k else np.zeros((0, 0))
    O = [V[:, S]]
    for h in range(1, H):
        O.append(np.linalg.qr(rng.standard_normal((dims[h], max(k, 1))))[0][:, :k])
    O.append(U[:, S])
    weights = [O[h] @ D @ O[h - 1].T for h in range(1, H + 1)]
    return weights, X, Y


def dense_floor(weights_w, X_w, Y, hess):
    """The dense path's noise floor of the whitened Hessian ``hess`` (N, N) (docs/numerics.md):
    ``E_asm + sqrt(N) eps ||hess||_F`` with the kernels' ``assembly_error``."""
    Sxx, Syx, _ = naive.moments(X_w, Y)
    dims = np.array(naive.dims_of(weights_w), np.int64)
    w = naive.ravel_weights(weights_w)
    table, table_off = product_table(w, dims, layer_offsets(dims))
    R = naive.partial_product(weights_w, len(weights_w), 1) @ Sxx - Syx
    pn, perr = product_norms(table, table_off, dims)
    e_asm = assembly_error(
        pn, perr, dims, np.linalg.norm(Sxx), np.linalg.norm(Syx), np.linalg.norm(R)
    )
    return e_asm + np.sqrt(w.size) * EPS * np.linalg.norm(hess)


def dense_truth(weights, X, Y):
    """``(eigenvalues, tol_zero, tol_neg)`` of the whitened Hessian: ``naive.hessian`` and
    ``numpy.linalg.eigvalsh``, bands ``C_ZERO``/``C_NEG`` times :func:`dense_floor`."""
    Ww, Xw = whiten(weights, X, Y)
    hess = naive.hessian(Ww, Xw, Y)
    floor = dense_floor(Ww, Xw, Y, hess)
    with one_blas_thread():  # BLAS threads only contend on a shared machine
        ev = np.linalg.eigvalsh(hess)
    return ev, C_ZERO * floor, C_NEG * floor


def counts(ev, tol_zero, tol_neg):
    """``(n_neg, n_zero, n_pos, n_band)`` with the bands of docs/numerics.md."""
    n_neg = int(np.sum(ev < -tol_neg))
    n_zero = int(np.sum(np.abs(ev) <= tol_zero))
    n_pos = int(np.sum(ev > tol_zero))
    return n_neg, n_zero, n_pos, ev.size - n_neg - n_zero - n_pos
