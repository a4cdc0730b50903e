"""Matrix-free Hessian-vector products (mcland._kernels.hvp) against the dense reference,
finite differences of the gradient and an extended-precision reference; their error bound;
the Hessian's Frobenius norm from the factors."""

from __future__ import annotations

import matrix_free_points as mp
import naive
import numpy as np
import pytest

from mcland._kernels import hvp as khvp
from mcland.core.extremes import operator_error

SHAPES = [
    (2, 1, 1),
    (3, 2, 2),
    (4, 3, 1, 2),
    (3, 5, 2, 4, 2),
    (2, 1, 3, 1, 2, 1),
    (5, 2, 6, 3, 4, 2, 3),
    (7, 4, 9, 3),
]


def _products(weights, X, Y, V):
    dims, w, Sxx, Syx = mp.flat(weights, X, Y)
    f = khvp.hvp_factors(dims, w, Sxx, Syx)
    U = np.empty_like(V)
    khvp.hvp_rows(f, V, U, 0, V.shape[0], np.empty(khvp.work_size(dims)))
    return U, f, Sxx, Syx


def _hvp_longdouble(weights, X, Y, v):
    """``nabla^2 L . v`` in extended precision by forward-over-reverse differentiation (a
    different formula from the kernel's): tangents of the prefix products ``W_{h:1}`` and of
    the backward ``Z_h = W_{H:h+1}^T R``, ``U_h = 2 (dZ_h B_h^T + Z_h dB_h^T)``."""
    ld = np.longdouble
    Sxx, Syx, _ = naive.moments(X, Y)
    Sxx, Syx = Sxx.astype(ld), Syx.astype(ld)
    Ws = [W.astype(ld) for W in weights]
    dims = naive.dims_of(weights)
    Vs = [V.astype(ld) for V in naive.unravel_weights(v, dims)]
    H = len(Ws)
    B = [np.eye(dims[0], dtype=ld)]  # B[h] = W_{h:1}
    dB = [np.zeros((dims[0], dims[0]), ld)]
    for h in range(H):
        B.append(Ws[h] @ B[h])
        dB.append(Vs[h] @ B[h] + Ws[h] @ dB[h])
    R = B[H] @ Sxx - Syx
    dR = dB[H] @ Sxx
    Z, dZ = R, dR  # Z_H
    U = [None] * H
    for h in range(H, 0, -1):
        U[h - 1] = 2 * (dZ @ B[h - 1].T + Z @ dB[h - 1].T)
        Z, dZ = Ws[h - 1].T @ Z, Vs[h - 1].T @ Z + Ws[h - 1].T @ dZ
    return np.concatenate([u.ravel() for u in U])


def _hvp_tilde_longdouble(f, Sxx, v):
    """``H~ v`` in extended precision, ``H~`` the Hessian of the kernel's computed partial
    products and residual (mcland.core.extremes.operator_error), by the block formula."""
    ld = np.longdouble
    dims = [int(x) for x in f.dims]
    H = len(dims) - 1

    def prod(a, b):
        st = int(f.table_off[a, b])
        return f.table[st : st + dims[a] * dims[b - 1]].reshape(dims[a], dims[b - 1]).astype(ld)

    off = [int(x) for x in f.off]
    V = [v[off[h - 1] : off[h]].reshape(dims[h], dims[h - 1]).astype(ld) for h in range(1, H + 1)]
    A = [None] + [prod(H, h + 1) for h in range(1, H + 1)]
    B = [None] + [prod(h - 1, 1) for h in range(1, H + 1)]
    R = f.R.astype(ld)
    S = Sxx.astype(ld)
    U = [np.zeros_like(V[h - 1]) for h in range(1, H + 1)]
    D1 = sum(A[k] @ V[k - 1] @ B[k] for k in range(1, H + 1)) @ S
    for h in range(1, H + 1):
        U[h - 1] += 2 * A[h].T @ D1 @ B[h].T
        for k in range(1, H + 1):
            if k > h:
                W = prod(k - 1, h + 1)
                G = A[k].T @ R @ B[h].T
                U[h - 1] += 2 * W.T @ V[k - 1].T @ G
            elif k < h:
                W = prod(h - 1, k + 1)
                G = A[h].T @ R @ B[k].T
                U[h - 1] += 2 * G @ V[k - 1].T @ W.T
    return np.concatenate([u.ravel() for u in U])


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("whitened", [False, True])
def test_products_match_the_dense_hessian(rng, dims, whitened):
    weights, X, Y = mp.random_point(rng, dims, scale=3.0)
    if whitened:
        weights, X = mp.whiten(weights, X, Y)
    Hd = naive.hessian(weights, X, Y)
    V = rng.standard_normal((5, Hd.shape[0]))
    U, _, _, _ = _products(weights, X, Y, V)
    scale = np.linalg.norm(Hd) * np.linalg.norm(V, axis=1)
    assert np.all(np.linalg.norm(U - V @ Hd, axis=1) <= 1e-13 * scale)


@pytest.mark.parametrize("dims", SHAPES)
def test_products_match_finite_differences_of_the_gradient(rng, dims):
    weights, X, Y = mp.random_point(rng, dims)
    theta = naive.ravel_weights(weights)
    v = rng.standard_normal(theta.size)
    U, _, _, _ = _products(weights, X, Y, v[None, :])
    step = 1e-4 * max(1.0, np.abs(theta).max())

    def grad(t):
        return naive.ravel_weights(naive.gradient(naive.unravel_weights(t, dims), X, Y))

    fd = (grad(theta + step * v) - grad(theta - step * v)) / (2 * step)
    np.testing.assert_allclose(U[0], fd, rtol=0, atol=1e-6 * np.abs(fd).max())


def _error_cases(rng):
    for dims in SHAPES:
        yield mp.random_point(rng, dims, scale=10.0)
    for sid in range(40):  # exact critical points (whitened): the residual cancels
        weights, X, Y = mp.sampled_point(sid)
        yield (*mp.whiten(weights, X, Y), Y)
    for dims, s, S in [((6, 9, 9, 4), [2, 2, 1, 1], [2, 3]), ((5, 8, 8, 8, 3), [1, 1, 1], [0])]:
        yield mp.balanced_aligned(dims, s, S, rng)


def test_products_are_within_their_error_bound(rng):
    """``||fl(H v) - H~ v|| <= op_error ||v||`` and ``||fl(H v) - H v|| <= (op_error + E_asm)
    ||v||`` against extended-precision references (``H~``: the Hessian of the computed
    partial products; ``H``: the exact one), at random points (data scaled by 10), exact
    critical points and balanced points."""
    worst = 0.0
    for weights, X, Y in _error_cases(rng):
        N = naive.ravel_weights(weights).size
        V = rng.standard_normal((3, N))
        U, f, Sxx, Syx = _products(weights, X, Y, V)
        op, _, _, e_asm = operator_error(f, Sxx, Syx)
        for i in range(3):
            v_n = np.linalg.norm(V[i])
            err = float(np.linalg.norm(U[i] - _hvp_tilde_longdouble(f, Sxx, V[i])))
            assert err <= op * v_n, (naive.dims_of(weights), err, op * v_n)
            err = float(np.linalg.norm(U[i] - _hvp_longdouble(weights, X, Y, V[i])))
            assert err <= (op + e_asm) * v_n, (naive.dims_of(weights), err, (op + e_asm) * v_n)
            if op > 0:
                worst = max(worst, err / ((op + e_asm) * v_n))
    assert worst > 1e-3  # the bound is not vacuous by orders of magnitude


def test_block_rows_are_computed_alone(rng):
    """A row's product is the same bits whatever the block, the order and the split."""
    weights, X, Y = mp.random_point(rng, (5, 7, 6, 3))
    N = naive.ravel_weights(weights).size
    V = rng.standard_normal((6, N))
    U, f, _, _ = _products(weights, X, Y, V)
    work = np.empty(khvp.work_size(f.dims))
    U2 = np.full_like(V, np.nan)
    khvp.hvp_rows(f, V, U2, 3, 6, work)
    khvp.hvp_rows(f, V, U2, 0, 3, work)
    one = np.empty((1, N))
    khvp.hvp_rows(f, V[4:5].copy(), one, 0, 1, np.empty(khvp.work_size(f.dims)))
    assert np.array_equal(U, U2) and np.array_equal(U[4], one[0])


@pytest.mark.parametrize("dims", SHAPES)
def test_frobenius_norms_from_the_factors(rng, dims):
    weights, X, Y = mp.random_point(rng, dims)
    _, f, Sxx, _ = _products(weights, X, Y, np.zeros((1, naive.ravel_weights(weights).size)))
    Hd = naive.hessian(weights, X, Y)
    H = len(weights)
    A = [naive.partial_product(weights, H, h + 1) for h in range(1, H + 1)]
    B = [naive.partial_product(weights, h - 1, 1) for h in range(1, H + 1)]
    GN = np.block(
        [[2 * np.kron(A[h].T @ A[k], B[h] @ Sxx @ B[k].T) for k in range(H)] for h in range(H)]
    )
    h_f, gn_f, so_f = khvp.hessian_frob(f)
    np.testing.assert_allclose(
        [h_f, gn_f, so_f],
        [np.linalg.norm(Hd), np.linalg.norm(GN), np.linalg.norm(Hd - GN)],
        rtol=1e-12,
        atol=1e-14 * np.linalg.norm(Hd),
    )


def test_factor_sizes_and_cost(rng):
    dims = (6, 5, 7, 4)
    weights, X, Y = mp.random_point(rng, dims)
    _, f, _, _ = _products(weights, X, Y, np.zeros((1, naive.ravel_weights(weights).size)))
    table, c, g = khvp.factor_size(f.dims)
    assert (f.table.size, f.C.size, f.G.size, f.GT.size) == (table, c, g, g)
    # per vector: 2 d_y N (Gauss-Newton ends) + d_y D^2 + the second-order pairs
    d = dims
    N = sum(d[h] * d[h - 1] for h in range(1, 4))
    D = d[0] + d[1] + d[2]
    pairs = 2 * (d[2] * d[1] * d[0]) + 2 * (d[3] * d[2] * d[1])  # k = h + 1
    x13 = min(d[3] * d[2] * d[1] + d[1] * d[3] * d[0], d[3] * d[2] * d[0] + d[1] * d[2] * d[0])
    y13 = min(d[2] * d[1] * d[0] + d[2] * d[0] * d[3], d[1] * d[0] * d[3] + d[2] * d[1] * d[3])
    assert khvp.hvp_cost(f.dims) == 2 * d[3] * N + d[3] * D * D + pairs + x13 + y13
