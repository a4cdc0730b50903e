"""Matrix-free extremes (mcland.core.lanczos, hessian_bounds, extremes): the proven
enclosures and inertia bounds always contain the dense truth (naive Hessian, eigvalsh,
the bands of docs/numerics.md), at sampled points, wider sampled points and balanced
aligned points whose spectra have large multiplicities."""

from __future__ import annotations

import tracemalloc

import matrix_free_points as mp
import naive
import numpy as np
import pytest

from mcland._kernels import hvp as khvp
from mcland.core.extremes import matrix_free_cost, matrix_free_spectrum, operator_error
from mcland.core.hessian_bounds import count_above, count_below, structural_spectrum
from mcland.core.lanczos import block_lanczos, ritz_error

# (dims, singular values of Syx, kept indices S): strict saddles whose negative eigenvalues
# are 16-fold and 9-fold, a non-strict saddle and W = 0 (depth 2: strict; depth 4: H = 0),
# a balanced global minimizer
BALANCED = [
    ((8, 12, 12, 8), [2, 2, 2, 2, 1, 1, 1, 1], [4, 5, 6, 7]),
    ((8, 30, 30, 6), [3, 3, 3, 1, 1, 1], [3, 4, 5]),
    ((5, 12, 12, 12, 4), [2, 2, 1, 1], [2, 3]),
    ((4, 16, 3), [3, 2, 1], []),
    ((6, 20, 20, 20, 4), [2, 2, 1, 1], []),
    ((6, 20, 20, 20, 4), [2, 2, 1, 1], [0, 1, 2, 3]),
]


def _run(weights, X, Y, **kw):
    """Matrix-free bounds of the whitened Hessian with the dense path's bands, and the truth."""
    ev, tz, tn = mp.dense_truth(weights, X, Y)
    Ww, Xw = mp.whiten(weights, X, Y)
    dims, w, Sxx, Syx = mp.flat(Ww, Xw, Y)
    e = matrix_free_spectrum(dims, w, Sxx, Syx, tol_zero=tz, tol_neg=tn, **kw)
    return e, ev, tz, tn


def _assert_contains(e, ev, tz, tn, label=""):
    n_neg, n_zero, n_pos, n_band = mp.counts(ev, tz, tn)
    got = {
        "n_neg": (e.n_neg_lo, n_neg, e.n_neg_hi),
        "n_zero": (e.n_zero_lo, n_zero, e.n_zero_hi),
        "n_pos": (e.n_pos_lo, n_pos, e.n_pos_hi),
        "n_band": (e.n_band_lo, n_band, e.n_band_hi),
        "eig_min": (e.eig_min_lo, ev[0], e.eig_min_hi),
        "eig_max": (e.eig_max_lo, ev[-1], e.eig_max_hi),
    }
    for name, (lo, truth, hi) in got.items():
        assert lo <= truth <= hi, (label, name, lo, truth, hi)
    # the residual radius of each extreme Ritz value contains an eigenvalue
    assert np.min(np.abs(ev - e.eig_min_ritz)) <= e.eig_min_resid, label
    assert np.min(np.abs(ev - e.eig_max_ritz)) <= e.eig_max_resid, label
    if e.curvature == "negative":
        assert n_neg > 0, label
    if e.curvature == "nonnegative":
        assert n_neg == 0 and n_band == 0, label


# ------------------------------------------------------------------ block Lanczos alone


def _known(rng, N=240):
    ev = np.concatenate([[-3.0] * 7, [-1.0] * 5, np.zeros(150), rng.uniform(0.1, 5, N - 162)])
    Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    A = (Q * ev) @ Q.T
    A = 0.5 * (A + A.T)
    return A, np.linalg.eigvalsh(A)


@pytest.mark.parametrize("block", [1, 3, 8])
@pytest.mark.parametrize("max_products", [40, 100, 400])
def test_ritz_values_interlace_the_spectrum(rng, block, max_products):
    """Cauchy interlacing with the computed error: ``lambda_j <= theta_j + delta_j`` and
    ``lambda_{N-m+j} >= theta_j - delta_j``, converged or not; every residual radius
    holds an eigenvalue; with ``m = N`` the Ritz values are the eigenvalues."""
    A, lam = _known(rng)
    N = lam.size

    def apply(V, U):
        U[:] = V @ A

    res = block_lanczos(apply, N, block=block, n_want=3, max_products=max_products, seed=5)
    op = 4 * N * np.finfo(float).eps * np.linalg.norm(A)  # BLAS product error, generously
    delta = ritz_error(res, N, op)
    m = res.m
    assert res.orth_defect < 1e-12 and res.products <= max_products
    assert np.all(lam[:m] <= res.theta + delta)
    assert np.all(lam[N - m :] >= res.theta - delta)
    for k, j in enumerate(res.wanted):
        r = res.resid[k] / res.y_norm[k] + op
        assert np.min(np.abs(lam - res.theta[j])) <= r
    if res.exhausted:
        assert np.all(np.abs(lam - res.theta) <= delta)


def test_lanczos_is_deterministic(rng):
    A, _ = _known(rng)

    def apply(V, U):
        U[:] = V @ A

    a = block_lanczos(apply, A.shape[0], block=4, max_products=80, seed=3)
    b = block_lanczos(apply, A.shape[0], block=4, max_products=80, seed=3)
    assert np.array_equal(a.theta, b.theta) and np.array_equal(a.T, b.T)


# ------------------------------------------------------------------ bounds vs the dense truth


def test_bounds_contain_the_truth_at_sampled_points():
    """60 exact critical points of runs/quick.toml (every type, kill layers, W = 0), with
    a basis far from the whole space (at most N/2 products)."""
    seen = set()
    for sid in range(60):
        weights, X, Y = mp.sampled_point(sid)
        N = naive.ravel_weights(weights).size
        e, ev, tz, tn = _run(weights, X, Y, block=4, n_want=2, max_products=max(12, N // 2))
        _assert_contains(e, ev, tz, tn, label=sid)
        seen.add(e.curvature)
    assert seen == {"negative", "nonnegative", "uncertain"}


def test_bounds_contain_the_truth_at_wider_sampled_points():
    """Sampled critical points with hidden widths 20..36 (N 736..2,020): large null
    spaces."""
    cfg = mp.wide_config()
    sizes = []
    for sid in range(8):
        weights, X, Y = mp.sampled_point(sid, cfg)
        e, ev, tz, tn = _run(weights, X, Y, block=8, n_want=4, max_products=160)
        _assert_contains(e, ev, tz, tn, label=sid)
        assert e.lanczos_basis < e.N
        sizes.append(e.N)
    assert max(sizes) > 1000


@pytest.mark.parametrize("case", range(len(BALANCED)))
@pytest.mark.parametrize("block", [1, 4, 16])
def test_bounds_contain_the_truth_at_balanced_points(rng, case, block):
    dims, s, S = BALANCED[case]
    weights, X, Y = mp.balanced_aligned(dims, s, S, rng)
    e, ev, tz, tn = _run(weights, X, Y, block=block, n_want=4, max_products=120)
    _assert_contains(e, ev, tz, tn, label=(dims, S, block))


def test_a_block_sees_a_multiple_eigenvalue_single_vectors_do_not(rng):
    """The issue's pitfall: 16 equal negative eigenvalues.  Single-vector Lanczos proves
    only a few of them; a block of 16 proves all 16, and the structure proves there are
    no more: the count is decided."""
    dims, s, S = BALANCED[0]
    weights, X, Y = mp.balanced_aligned(dims, s, S, rng)
    single, ev, tz, tn = _run(weights, X, Y, block=1, n_want=4, max_products=120)
    blocked, _, _, _ = _run(weights, X, Y, block=16, n_want=4, max_products=120)
    n_neg = mp.counts(ev, tz, tn)[0]
    assert n_neg == 16
    assert single.n_neg_lo < 16 <= single.n_neg_hi
    assert blocked.n_neg_lo == 16 == blocked.n_neg_hi
    assert blocked.curvature == single.curvature == "negative"


def test_the_whole_space_decides_the_morse_index():
    """With ``m = N`` interlacing encloses every eigenvalue: the negative count is decided
    (``tol_neg = 10 floor`` is far above the Ritz values' error); the zero/positive split
    at ``tol_zero = floor`` is decided where the error is below the floor (docs/matrix_free.md)."""
    decided = 0
    for sid in (3, 10, 16, 18, 31):
        weights, X, Y = mp.sampled_point(sid)
        N = naive.ravel_weights(weights).size
        e, ev, tz, tn = _run(weights, X, Y, block=4, max_products=N + 64, rtol=0.0)
        assert e.lanczos_basis == N and e.n_neg_lo == e.n_neg_hi, sid
        _assert_contains(e, ev, tz, tn, label=sid)
        decided += e.inertia_exact
    assert decided >= 3


def test_structural_bounds_against_dense_spectra(rng):
    """At random (non-critical) points and data scaled by 10: ``lambda_min >= -sum 2
    sigma_1(G) sigma_1(W)``, the Weyl counts bound the true counts at every threshold, and
    at least ``N - rank_bound`` eigenvalues vanish."""
    for dims in [(3, 7, 6, 2), (4, 9, 8, 7, 3), (2, 12, 12, 2), (5, 3, 4), (6, 2, 5, 3, 4)]:
        weights, X, Y = mp.random_point(rng, dims, scale=10.0)
        Ww, Xw = mp.whiten(weights, X, Y)
        d, w, Sxx, Syx = mp.flat(Ww, Xw, Y)
        f = khvp.hvp_factors(d, w, Sxx, Syx)
        spec = structural_spectrum(f)
        op, _, _, e_asm = operator_error(f, Sxx, Syx)
        err = op + e_asm + spec.svd_error  # pieces as computed vs the exact Hessian
        lam = np.linalg.eigvalsh(naive.hessian(Ww, Xw, Y))
        scale = np.abs(lam).max()
        assert lam[0] >= spec.eig_min_lower - err and lam[-1] <= spec.eig_max_upper + err
        for x in scale * np.array([1e-6, 1e-3, 0.01, 0.1, 0.5]):
            assert np.sum(lam < -x) <= count_below(spec, x - err), (dims, x)
            assert np.sum(lam > x) <= count_above(spec, x - err), (dims, x)
        zeros = np.sum(np.abs(lam) <= 1e-9 * scale)
        assert zeros >= lam.size - spec.rank, dims


def test_results_do_not_depend_on_threads(rng):
    weights, X, Y = mp.balanced_aligned(*BALANCED[1][:2], BALANCED[1][2], rng)
    Ww, Xw = mp.whiten(weights, X, Y)
    d, w, Sxx, Syx = mp.flat(Ww, Xw, Y)
    one = matrix_free_spectrum(d, w, Sxx, Syx, block=6, max_products=60, threads=1).columns()
    two = matrix_free_spectrum(d, w, Sxx, Syx, block=6, max_products=60, threads=2).columns()
    for k in ("seconds", "product_seconds"):
        one.pop(k), two.pop(k)
    assert one == two


def test_memory_is_predicted_and_refused(rng):
    weights, X, Y = mp.random_point(rng, (20, 40, 30, 10))
    d, w, Sxx, Syx = mp.flat(weights, X, Y)
    cost = matrix_free_cost(d, block=8, max_products=100, n_want=8)
    tracemalloc.start()
    matrix_free_spectrum(d, w, Sxx, Syx, block=8, max_products=100)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak <= cost.bytes
    with pytest.raises(MemoryError, match="GiB"):
        matrix_free_spectrum(d, w, Sxx, Syx, block=8, max_products=100, max_bytes=cost.bytes // 2)
