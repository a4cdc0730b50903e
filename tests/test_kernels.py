"""Kernels against the NumPy references of tests/naive.py and against finite differences."""

from __future__ import annotations

import naive
import numpy as np
import pytest

from mcland._kernels import rng as krng
from mcland._kernels.classify import _cholesky_bracket, _exceeds
from mcland._kernels.dense import as_matrix, layer_offsets, prod, product_table
from mcland._kernels.draw import _orthonormalise_pair
from mcland._kernels.fields import ABOVE, BAND, BELOW
from mcland._kernels.hessian import frob_upper, gradient, hessian_into, loss, residual
from mcland._kernels.lapack import eigvalsh_destroy
from mcland._kernels.theory import numerical_rank, pair_curvature, top_singular_pair
from mcland._kernels.whiten import moments, whiten
from mcland.points.inspect import inspect_point

SHAPES = [
    (2, 1, 1),
    (3, 2, 2),
    (4, 3, 1, 2),
    (3, 5, 2, 4, 2),
    (2, 1, 3, 1, 2, 1),
    (5, 2, 6, 3, 4, 2, 3),
]


def _point(rng, dims, m=12, scale=1.0):
    weights = [rng.standard_normal((dims[h], dims[h - 1])) for h in range(1, len(dims))]
    X = scale * rng.standard_normal((dims[0], m))
    Y = rng.standard_normal((dims[-1], m))
    return weights, X, Y


def _kernel_parts(weights, X):
    dims = np.array([weights[0].shape[1], *(W.shape[0] for W in weights)], np.int64)
    w = np.concatenate([W.ravel() for W in weights])
    off = layer_offsets(dims)
    table, table_off = product_table(w, dims, off)
    return dims, w, off, table, table_off


def symmetric_from_upper(hess):
    """The symmetric matrix whose upper triangle ``hess`` holds (the rest is ignored)."""
    U = np.triu(hess)
    return U + np.triu(hess, 1).T


@pytest.mark.parametrize("dims", SHAPES)
def test_partial_products_match_naive(rng, dims):
    weights, X, _ = _point(rng, dims)
    d, _, _, table, table_off = _kernel_parts(weights, X)
    H = len(dims) - 1
    for b in range(1, H + 2):
        for a in range(b - 1, H + 1):
            np.testing.assert_allclose(
                prod(table, table_off, d, a, b),
                naive.partial_product(weights, a, b),
                rtol=1e-12,
                atol=1e-12,
            )


@pytest.mark.parametrize("dims", SHAPES)
@pytest.mark.parametrize("scale", [1e-2, 1.0, 1e2])
def test_loss_gradient_hessian_match_naive(rng, dims, scale):
    weights, X, Y = _point(rng, dims, scale=scale)
    d, _, off, table, table_off = _kernel_parts(weights, X)
    H = len(dims) - 1
    Sxx, Syx, tr_syy = moments(X, Y)
    P = prod(table, table_off, d, H, 1)
    R = residual(P, Sxx, Syx)
    np.testing.assert_allclose(loss(P, Sxx, Syx, tr_syy), naive.loss(weights, X, Y), rtol=1e-9)
    g = gradient(table, table_off, d, off, R)
    g_ref = naive.ravel_weights(naive.gradient(weights, X, Y))
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-12 * np.abs(g_ref).max())
    N = off[-1]
    hess = np.full((N, N), np.nan)
    hessian_into(table, table_off, d, off, Sxx, R, hess)
    block = np.repeat(np.arange(len(off) - 1), np.diff(off))  # layer of each parameter
    below = block[:, None] > block[None, :]
    assert np.isnan(hess[below]).all()  # blocks below the block diagonal are not written
    assert np.isfinite(np.triu(hess)).all()  # every upper entry is (scratch needs no zeroing)
    Hm = symmetric_from_upper(hess)
    H_ref = naive.hessian(weights, X, Y)
    np.testing.assert_allclose(Hm, H_ref, rtol=1e-10, atol=1e-12 * np.abs(H_ref).max())
    assert frob_upper(hess) == pytest.approx(np.linalg.norm(H_ref), rel=1e-12)
    ev = np.empty(N)
    assert eigvalsh_destroy(hess, ev) == 0  # reads the upper triangle only: NaN below
    np.testing.assert_allclose(ev, np.linalg.eigvalsh(H_ref), atol=1e-10 * np.abs(H_ref).max())


@pytest.mark.parametrize("dims", SHAPES[:4])
def test_gradient_and_hessian_against_finite_differences(rng, dims):
    """Central differences: error O(h^2) with h ~ eps^(1/3), so 1e-6 of the scale."""
    weights, X, Y = _point(rng, dims)
    d, _, off, table, table_off = _kernel_parts(weights, X)
    H = len(dims) - 1
    Sxx, Syx, _ = moments(X, Y)
    R = residual(prod(table, table_off, d, H, 1), Sxx, Syx)
    g = gradient(table, table_off, d, off, R)
    g_fd = naive.ravel_weights(naive.gradient_fd(weights, X, Y))
    assert np.abs(g - g_fd).max() <= 1e-6 * np.abs(g_fd).max()
    N = off[-1]
    Hm = np.zeros((N, N))
    hessian_into(table, table_off, d, off, Sxx, R, Hm)
    Hm = symmetric_from_upper(Hm)
    H_fd = naive.hessian_fd(weights, X, Y)
    assert np.abs(Hm - H_fd).max() <= 1e-6 * np.abs(H_fd).max()


def test_scalar_network_hessian_by_hand():
    """H = 2, d_0 = d_1 = d_2 = 1: L = sum_j (w2 w1 x_j - y_j)^2, so with sxx = sum x^2,
    sxy = sum x y:  d2L/dw1^2 = 2 w2^2 sxx, d2L/dw2^2 = 2 w1^2 sxx,
    d2L/dw1 dw2 = 4 w1 w2 sxx - 2 sxy."""
    x = np.array([[0.5, -1.0, 2.0, 0.3]])
    y = np.array([[1.0, 0.2, -0.7, 0.4]])
    w1, w2 = 0.8, -1.3
    sxx, sxy = float(np.sum(x * x)), float(np.sum(x * y))
    exact = np.array(
        [
            [2 * w2**2 * sxx, 4 * w1 * w2 * sxx - 2 * sxy],
            [4 * w1 * w2 * sxx - 2 * sxy, 2 * w1**2 * sxx],
        ]
    )
    weights = [np.array([[w1]]), np.array([[w2]])]
    d, _, off, table, table_off = _kernel_parts(weights, x)
    Sxx, Syx, _ = moments(x, y)
    R = residual(prod(table, table_off, d, 2, 1), Sxx, Syx)
    Hm = np.zeros((2, 2))
    hessian_into(table, table_off, d, off, Sxx, R, Hm)
    np.testing.assert_allclose(symmetric_from_upper(Hm), exact, rtol=1e-14)
    rep = inspect_point(weights, x, y)
    np.testing.assert_allclose(rep.eigenvalues, np.linalg.eigvalsh(exact), rtol=1e-12)
    assert not rep.is_critical and rep.theory_type == "not_critical"


@pytest.mark.parametrize("dims", SHAPES)
def test_inspect_spectrum_matches_naive(rng, dims):
    weights, X, Y = _point(rng, dims)
    rep = inspect_point(weights, X, Y)
    ref = naive.spectrum(weights, X, Y)
    np.testing.assert_allclose(rep.eigenvalues, ref, atol=1e-10 * np.abs(ref).max())
    assert rep.eig_min == rep.eigenvalues[0] and rep.eig_max == rep.eigenvalues[-1]
    assert rep.n_neg + rep.n_zero + rep.n_pos <= rep.N == len(ref)
    np.testing.assert_allclose(rep.loss, naive.loss(weights, X, Y), rtol=1e-9)
    H = len(dims) - 1
    for (a, b), k in rep.ranks.items():
        assert 1 <= b <= a <= H
        assert k == np.linalg.matrix_rank(naive.partial_product(weights, a, b))


def test_whitening_matches_naive(rng):
    X = rng.standard_normal((5, 40)) * np.array([[1], [10], [0.1], [3], [1]])
    Y = rng.standard_normal((3, 40))
    Sxx, Syx, _ = moments(X, Y)
    mu, K, Kinv, lam, U, Vt = whiten(Sxx, Syx)
    np.testing.assert_allclose(K @ K, Sxx, rtol=1e-12, atol=1e-12 * np.abs(Sxx).max())
    np.testing.assert_allclose(K @ Kinv, np.eye(5), atol=1e-10)
    lam_ref, U_ref = naive.eig_sigma(X, Y)
    np.testing.assert_allclose(lam, lam_ref, rtol=1e-10)
    np.testing.assert_allclose(np.abs(U.T @ U_ref), np.eye(3), atol=1e-8)
    np.testing.assert_allclose(Vt @ Vt.T, np.eye(5), atol=1e-12)
    M = Syx @ Kinv
    np.testing.assert_allclose(M, U @ np.diag(np.sqrt(lam)) @ Vt[:3], atol=1e-10 * np.abs(M).max())


def test_as_matrix_is_a_c_contiguous_view_that_keeps_its_buffer():
    """``_as_matrix`` (private Numba array internals, see the module docstring of
    ``mcland._kernels.dense``): C layout, shares memory, holds a reference to its buffer."""
    import gc

    from numba import types

    flat = np.arange(20.0)
    M = as_matrix(flat, 3, 4, 2)
    assert as_matrix.nopython_signatures[0].return_type == types.Array(types.float64, 2, "C")
    np.testing.assert_array_equal(M, flat[3:11].reshape(4, 2))
    assert np.shares_memory(M, flat) and M.flags.c_contiguous
    M[0, 1] = -1.0
    assert flat[4] == -1.0
    Z = krng.normal_matrix(krng.stream(3, 1), 30, 40)  # a view of a buffer the kernel allocated
    first = Z.copy()
    del flat, M
    gc.collect()
    junk = [np.full(1200, 7.0) for _ in range(50)]  # would land in Z's memory were it freed
    np.testing.assert_array_equal(Z, first)
    assert junk


def test_streams_are_deterministic_and_distinct():
    a = krng.stream(7, 3)
    b = krng.stream(7, 3)
    xa = krng.normal_matrix(a, 2, 3)
    np.testing.assert_array_equal(xa, krng.normal_matrix(b, 2, 3))
    others = [krng.stream(7, 4), krng.stream(8, 3)]
    for st in others:
        assert not np.array_equal(krng.normal_matrix(st, 2, 3), xa)


def test_stream_distributions():
    st = krng.stream(1, 2)
    u = np.array([krng.uniform(st) for _ in range(40000)])
    z = krng.normal_matrix(st, 200, 200).ravel()
    # consecutive draws are uncorrelated
    assert abs(np.corrcoef(z[0::2], z[1::2])[0, 1]) < 5 / np.sqrt(20000)
    k = np.array([krng.integer(st, 2, 5) for _ in range(8000)])
    # 5-sigma bounds for the means and variances of 40,000 draws
    assert abs(u.mean() - 0.5) < 5 * np.sqrt(1 / 12 / 40000)
    assert abs(z.mean()) < 5 / np.sqrt(40000)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / 40000)
    assert set(np.unique(k)) == {2, 3, 4, 5}
    assert np.all(np.abs(np.bincount(k)[2:] / 8000 - 0.25) < 0.03)


def test_random_orthogonal_matrices():
    st = krng.stream(3, 9)
    qs = []
    for _ in range(1000):  # the rows of Gaussian matrices orthonormalised, two at a time
        q, r = krng.normal_matrix(st, 5, 5).copy(), krng.normal_matrix(st, 5, 5).copy()
        _orthonormalise_pair(q, r)
        qs += [q, r]
    for q in qs[:50]:
        np.testing.assert_allclose(q @ q.T, np.eye(5), atol=1e-14)
    # Haar: entries have mean 0 and variance 1/n, both orientations occur
    e = np.array([q[0, 0] for q in qs])
    assert abs(e.mean()) < 5 * np.sqrt(0.2 / 2000) and abs(e.var() - 0.2) < 0.03
    dets = np.sign([np.linalg.det(q) for q in qs])
    assert 0.4 < (dets > 0).mean() < 0.6


@pytest.mark.parametrize("N", [1, 2, 7, 40])
def test_cholesky_bracket_decides_the_sign_of_the_smallest_eigenvalue(rng, N):
    """Cholesky of H + tau I succeeds exactly when every eigenvalue exceeds -tau."""
    Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    for lam_min in (-1.0, -1e-3, 0.0, 1e-3):
        lam = np.concatenate([[lam_min], rng.uniform(0.5, 2.0, N - 1)]) * 10.0
        Hm = (Q * lam) @ Q.T
        Hm = (Hm + Hm.T) / 2
        Hm[np.tril_indices(N, -1)] = np.nan  # the kernels read the upper triangle only
        kept = Hm.copy()
        scratch = np.full(N * N, np.nan)
        for tau in (1e-4, 1e-1, 20.0):
            assert _exceeds(Hm, tau, scratch) == (lam.min() > -tau), (lam_min, tau)
        expect = ABOVE if lam.min() >= -1e-4 else BELOW if lam.min() < -1e-1 else BAND
        for likely_below in (False, True):
            assert _cholesky_bracket(Hm, 1e-4, 1e-1, likely_below, scratch) == expect
        np.testing.assert_array_equal(Hm, kept)  # the factorisations work on the scratch


def test_numerical_rank_matches_svd_rank(rng):
    for _ in range(300):
        n, m = rng.integers(1, 12, size=2)
        k = int(rng.integers(0, min(n, m) + 1))
        M = rng.standard_normal((n, k)) @ rng.standard_normal((k, m)) * 10.0 ** rng.uniform(-3, 3)
        cut = 10 * max(n, m) * np.finfo(float).eps * np.linalg.norm(M) + 1e-300
        assert numerical_rank(M, cut) == np.linalg.matrix_rank(M, tol=cut) == k


@pytest.mark.parametrize("dims", [d for d in SHAPES if len(d) >= 3])
def test_pair_certificate_is_skipped_exactly_when_weyl_bound_allows(rng, dims):
    """A pair's eigenvalue problem is skipped (curvature inf) exactly when 2 sigma_1(G)
    ||B||_F <= tol, and the curvature it would have had is never below -2 sigma_1(G) ||B||_2
    (the Gauss-Newton part is positive semidefinite: Weyl's inequality), on arbitrary,
    non-critical points, so that the bound does not rest on criticality."""
    weights, X, Y = _point(rng, dims)
    d, _, _, table, table_off = _kernel_parts(weights, X)
    H = len(dims) - 1
    Sxx, Syx, _ = moments(X, Y)
    R = residual(prod(table, table_off, d, H, 1), Sxx, Syx)
    for h1 in range(1, H):
        for h2 in range(h1 + 1, H + 1):
            G = naive.partial_product(weights, H, h2 + 1).T @ R
            G = G @ naive.partial_product(weights, h1 - 1, 1).T
            B = naive.partial_product(weights, h2 - 1, h1 + 1)
            sigma = np.linalg.svd(G, compute_uv=False)[0]
            bound = 2.0 * sigma * np.linalg.norm(B)
            c = pair_curvature(table, table_off, d, Sxx, R, h1, h2, -1.0, False)[0]
            scale = np.linalg.norm(Sxx) * max(1.0, np.abs(G).max(), np.linalg.norm(B)) ** 2
            assert c >= -2.0 * sigma * np.linalg.norm(B, 2) - 1e-12 * scale
            assert (
                pair_curvature(table, table_off, d, Sxx, R, h1, h2, bound * (1 + 1e-6), False)[0]
                == np.inf
            )
            kept = pair_curvature(table, table_off, d, Sxx, R, h1, h2, bound * (1 - 1e-6), False)[0]
            assert kept == c


def test_top_singular_pair_against_svd(rng):
    """Power iteration gives sigma_1 and, when sigma_1 is separated, the SVD's vectors."""
    cases = [rng.standard_normal((m, n)) for m in (1, 2, 5, 14) for n in (1, 3, 14)]
    cases.append(rng.standard_normal((6, 2)) @ rng.standard_normal((2, 7)))  # rank 2
    U, _, Vt = np.linalg.svd(rng.standard_normal((6, 6)))
    cases.append((U * [3.0, 3.0 * (1 - 1e-9), 1, 0.5, 0.1, 0]) @ Vt)  # nearly degenerate top
    for G in cases:
        p, y, sigma = top_singular_pair(G)
        u, sv, vt = np.linalg.svd(G)
        # the documented worst case: 2 sqrt(eps) relative, and never above sigma_1
        assert sv[0] * (1 - 3e-8) <= sigma <= sv[0] * (1 + 1e-14)
        assert np.linalg.norm(p) == pytest.approx(1.0) and np.linalg.norm(y) == pytest.approx(1.0)
        assert p @ G @ y == pytest.approx(sigma, rel=1e-14)  # what the certificate uses
        if sv.size == 1 or sv[1] < 0.9 * sv[0]:
            assert sigma == pytest.approx(sv[0], rel=1e-14)
            assert abs(p @ u[:, 0]) == pytest.approx(1.0, abs=1e-10)
            assert abs(y @ vt[0]) == pytest.approx(1.0, abs=1e-10)
    p, y, sigma = top_singular_pair(np.zeros((3, 4)))
    assert sigma == 0.0 and np.linalg.norm(p) == 1.0 and np.linalg.norm(y) == 1.0
