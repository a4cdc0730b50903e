"""Tests of the reference implementations in tests/naive.py.

The references are checked against things that do not share their derivation:
finite differences of the loss (for the gradient) and of the gradient (for the Hessian),
second differences of the loss along a line (for the quadratic form), hand-computed
closed forms, critical points built by hand from docs/theory.md §2, and the external fixture
file (labels computed by an independent implementation).

Tolerances
----------
* gradient vs central differences of the loss: max abs error <= 1e-6 * max |gradient|
  (step eps^(1/3) * max|w|; observed errors are ~1e-10 relative).
* Hessian vs central differences of the gradient: max abs error <= 1e-6 * max |H|.
* fixtures: gradient <= 1e-10 of its natural scale (observed ~1e-15), smallest
  eigenvalue within 1e-6 * stored scale (observed ~1e-15), loss to 1e-10 relative.
"""

import hashlib
import re

import naive as nv
import numpy as np
import pytest

# ---------------------------------------------------------------------- helpers


def random_point(rng, dims, m=None, wscale=1.0):
    """Random weights and data for architecture dims = (d_0, ..., d_H)."""
    m = dims[0] + 3 if m is None else m
    weights = [
        wscale * rng.standard_normal((dims[h], dims[h - 1])) / np.sqrt(dims[h - 1])
        for h in range(1, len(dims))
    ]
    X = rng.standard_normal((dims[0], m))
    Y = rng.standard_normal((dims[-1], m))
    return weights, X, Y


def random_dims(rng, depth, wmin=1, wmax=4):
    return tuple(int(d) for d in rng.integers(wmin, wmax + 1, size=depth + 1))


CASES = [(depth, seed) for depth in (2, 3, 4, 5) for seed in range(4)]


def grad_scales(weights, X, Y):
    """Natural size of dL/dW_h: 2 prod_{k != h} ||W_k|| * (prod ||W|| ||Sxx|| + ||Syx||)."""
    Sxx, Syx, _ = nv.moments(X, Y)
    nrm = [np.linalg.norm(W) for W in weights]
    r_scale = np.prod(nrm) * np.linalg.norm(Sxx) + np.linalg.norm(Syx)
    return [2 * np.prod(nrm[:h] + nrm[h + 1 :]) * r_scale for h in range(len(weights))]


def build_critical_point(rng, X, Y, S, hidden):
    """Exact critical point with W_{H:1} = U_S U_S^T Syx Sxx^{-1} (docs/theory.md §2).

    hidden = (d_1, ..., d_{H-1}), each >= |S|. W_1 = Q_1 [U_S^T Syx Sxx^{-1}; 0],
    W_h = Q_h [[I_s, 0], [0, 0]] Q_{h-1}^{-1}, W_H = [U_S, 0] Q_{H-1}^{-1} with random
    invertible Q_h. Then W_{H:h+1}^T R = 0 for h < H and R W_{H-1:1}^T = 0, so W is critical.
    """
    Sxx, Syx, _ = nv.moments(X, Y)
    _, U = nv.eig_sigma(X, Y)
    US = U[:, [i - 1 for i in S]]
    s = len(S)
    Q = [rng.standard_normal((d, d)) + 3 * np.eye(d) for d in hidden]

    def embed(M, rows, cols):
        out = np.zeros((rows, cols))
        out[: M.shape[0], : M.shape[1]] = M
        return out

    top = US.T @ Syx @ np.linalg.inv(Sxx)
    weights = [Q[0] @ embed(top, hidden[0], X.shape[0])]
    for h in range(1, len(hidden)):
        weights.append(Q[h] @ embed(np.eye(s), hidden[h], hidden[h - 1]) @ np.linalg.inv(Q[h - 1]))
    weights.append(embed(US, Y.shape[0], hidden[-1]) @ np.linalg.inv(Q[-1]))
    return weights


# ------------------------------------------------------------------ basic pieces


def test_moments_are_sums_of_outer_products():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((3, 7)), rng.standard_normal((2, 7))
    Sxx, Syx, Syy = nv.moments(X, Y)
    assert np.allclose(Sxx, sum(np.outer(X[:, j], X[:, j]) for j in range(7)))
    assert np.allclose(Syx, sum(np.outer(Y[:, j], X[:, j]) for j in range(7)))
    assert np.allclose(Syy, sum(np.outer(Y[:, j], Y[:, j]) for j in range(7)))


def test_partial_product():
    rng = np.random.default_rng(1)
    W = [rng.standard_normal(s) for s in [(3, 2), (4, 3), (5, 4)]]
    assert np.array_equal(nv.partial_product(W, 0, 1), np.eye(2))  # W_{0:1} = I_{d_0}
    assert np.array_equal(nv.partial_product(W, 2, 3), np.eye(4))  # W_{2:3} = I_{d_2}
    assert np.array_equal(nv.partial_product(W, 3, 4), np.eye(5))  # W_{H:H+1} = I_{d_H}
    assert np.array_equal(nv.partial_product(W, 2, 2), W[1])
    assert np.allclose(nv.partial_product(W, 3, 1), W[2] @ W[1] @ W[0])
    assert np.allclose(nv.partial_product(W, 3, 2), W[2] @ W[1])
    assert nv.partial_product(W, 2, 1).shape == (4, 2)


def test_ravel_is_row_major_concatenation():
    W = [np.array([[1.0, 2.0]]), np.array([[3.0], [4.0]])]
    theta = nv.ravel_weights(W)
    assert theta.tolist() == [1.0, 2.0, 3.0, 4.0]
    W = [np.arange(6.0).reshape(2, 3), np.arange(6.0, 10.0).reshape(2, 2)]
    assert nv.ravel_weights(W).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    back = nv.unravel_weights(nv.ravel_weights(W), (3, 2, 2))
    assert all(np.array_equal(a, b) for a, b in zip(W, back, strict=True))


def test_loss_by_hand_and_by_moments():
    # one sample per column, scalar network: L = sum_j (w2 w1 x_j - y_j)^2
    W = [np.array([[2.0]]), np.array([[-1.5]])]
    X = np.array([[1.0, -2.0, 0.5]])
    Y = np.array([[0.0, 1.0, 2.0]])
    expected = (-3.0 - 0.0) ** 2 + (6.0 - 1.0) ** 2 + (-1.5 - 2.0) ** 2
    assert nv.loss(W, X, Y) == pytest.approx(expected, rel=1e-14)
    rng = np.random.default_rng(2)
    W, X, Y = random_point(rng, (4, 3, 2, 3))
    Sxx, Syx, Syy = nv.moments(X, Y)
    P = nv.partial_product(W, 3, 1)
    by_moments = np.trace(P @ Sxx @ P.T) - 2 * np.trace(P @ Syx.T) + np.trace(Syy)
    assert nv.loss(W, X, Y) == pytest.approx(by_moments, rel=1e-12)


# ------------------------------------------------------------ first order


@pytest.mark.parametrize(("depth", "seed"), CASES)
def test_gradient_matches_finite_differences(depth, seed):
    rng = np.random.default_rng(100 + seed * 10 + depth)
    W, X, Y = random_point(rng, random_dims(rng, depth))
    g = nv.ravel_weights(nv.gradient(W, X, Y))
    gfd = nv.ravel_weights(nv.gradient_fd(W, X, Y))
    assert [a.shape for a in nv.gradient(W, X, Y)] == [w.shape for w in W]
    assert np.max(np.abs(g)) > 0
    assert np.max(np.abs(g - gfd)) <= 1e-6 * np.max(np.abs(g))


def test_gradient_by_hand_scalar_case():
    w1, w2 = 0.7, -1.3
    x = np.array([1.0, 2.0, -0.5, 0.3])
    y = np.array([0.2, -1.0, 0.4, 1.1])
    e = w2 * w1 * x - y
    g = nv.gradient([np.array([[w1]]), np.array([[w2]])], x[None], y[None])
    assert g[0][0, 0] == pytest.approx(2 * np.sum(e * w2 * x), rel=1e-13)
    assert g[1][0, 0] == pytest.approx(2 * np.sum(e * w1 * x), rel=1e-13)


# ----------------------------------------------------------------- second order


@pytest.mark.parametrize(("depth", "seed"), CASES)
def test_hessian_matches_finite_differences(depth, seed):
    rng = np.random.default_rng(200 + seed * 10 + depth)
    W, X, Y = random_point(rng, random_dims(rng, depth))
    H = nv.hessian(W, X, Y)
    Hfd = nv.hessian_fd(W, X, Y)
    N = sum(w.size for w in W)
    assert H.shape == Hfd.shape == (N, N)
    assert np.max(np.abs(H - Hfd)) <= 1e-6 * np.max(np.abs(H))


def test_hessian_matches_finite_differences_rectangular_layers():
    # distinct widths everywhere so that any row/column-major mix-up shows
    rng = np.random.default_rng(7)
    W, X, Y = random_point(rng, (4, 2, 3, 5, 1))
    H = nv.hessian(W, X, Y)
    assert np.max(np.abs(H - nv.hessian_fd(W, X, Y))) <= 1e-6 * np.max(np.abs(H))


@pytest.mark.parametrize(("depth", "seed"), CASES)
def test_hessian_symmetric_and_quadratic_form(depth, seed):
    rng = np.random.default_rng(300 + seed * 10 + depth)
    W, X, Y = random_point(rng, random_dims(rng, depth))
    H = nv.hessian(W, X, Y)
    assert np.max(np.abs(H - H.T)) <= 1e-13 * np.max(np.abs(H))
    for _ in range(3):
        V = [rng.standard_normal(w.shape) for w in W]
        v = nv.ravel_weights(V)
        q = nv.quadratic_form(W, X, Y, V)
        assert q == pytest.approx(v @ H @ v, rel=1e-10, abs=1e-12 * np.abs(H).max() * v @ v)
    assert np.allclose(nv.spectrum(W, X, Y), np.sort(np.linalg.eigvalsh(H)))


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_quadratic_form_matches_second_difference_of_loss(depth):
    # d^2/dt^2 L(W + t V) at t = 0 by a second difference, independent of §4
    rng = np.random.default_rng(400 + depth)
    W, X, Y = random_point(rng, random_dims(rng, depth, 2, 4))
    V = [rng.standard_normal(w.shape) for w in W]
    t = 1e-4
    Lt = lambda t: nv.loss([w + t * v for w, v in zip(W, V, strict=True)], X, Y)  # noqa: E731
    second = (Lt(t) - 2 * Lt(0.0) + Lt(-t)) / t**2
    q = nv.quadratic_form(W, X, Y, V)
    assert q == pytest.approx(second, rel=1e-5, abs=1e-5 * abs(Lt(0.0)))


def test_hessian_by_hand_scalar_network():
    # L = sum_j (w2 w1 x_j - y_j)^2
    # d2L/dw1^2   = 2 w2^2 sum x^2
    # d2L/dw2^2   = 2 w1^2 sum x^2
    # d2L/dw1dw2  = 2 sum [w1 w2 x^2 + (w2 w1 x - y) x] = 4 w1 w2 sum x^2 - 2 sum x y
    w1, w2 = 0.8, -1.7
    x = np.array([1.0, -0.5, 2.0, 0.25, -1.5])
    y = np.array([0.3, 1.2, -0.7, 0.9, 0.1])
    sxx, sxy = np.sum(x * x), np.sum(x * y)
    expected = np.array(
        [
            [2 * w2**2 * sxx, 4 * w1 * w2 * sxx - 2 * sxy],
            [4 * w1 * w2 * sxx - 2 * sxy, 2 * w1**2 * sxx],
        ]
    )
    H = nv.hessian([np.array([[w1]]), np.array([[w2]])], x[None], y[None])
    assert np.allclose(H, expected, rtol=1e-13, atol=0)


def test_hessian_zero_weights_depth3_is_exactly_zero():
    rng = np.random.default_rng(8)
    dims = (3, 2, 4, 2)
    _, X, Y = random_point(rng, dims)
    W = [np.zeros((dims[h], dims[h - 1])) for h in range(1, 4)]
    H = nv.hessian(W, X, Y)
    assert H.shape == (6 + 8 + 8, 6 + 8 + 8)
    assert np.all(H == 0)


def test_hessian_zero_weights_depth2_has_negative_eigenvalue():
    # At W = 0, H = 2 the Hessian is [[0, M^T], [M, 0]] with M ~ -2 Syx (x) I_{d_1} up to
    # a permutation, so its spectrum is {+-2 sigma_i(Syx)} (each d_1 times) plus zeros.
    rng = np.random.default_rng(9)
    dims = (3, 2, 2)
    _, X, Y = random_point(rng, dims)
    W = [np.zeros((2, 3)), np.zeros((2, 2))]
    _, Syx, _ = nv.moments(X, Y)
    sv = np.linalg.svd(Syx, compute_uv=False)
    ev = nv.spectrum(W, X, Y)
    expected = np.sort(np.concatenate([2 * sv, 2 * sv, -2 * sv, -2 * sv, np.zeros(2)]))
    assert ev[0] < 0
    assert np.allclose(ev, expected, rtol=1e-12, atol=1e-12 * sv[0])


# ------------------------------------------------------------ critical points


def test_eig_sigma():
    rng = np.random.default_rng(10)
    X, Y = rng.standard_normal((4, 9)), rng.standard_normal((3, 9))
    lam, U = nv.eig_sigma(X, Y)
    Sxx, Syx, _ = nv.moments(X, Y)
    Sigma = Syx @ np.linalg.inv(Sxx) @ Syx.T
    assert np.all(np.diff(lam) < 0)
    assert lam[-1] > 0
    assert np.allclose(Sigma @ U, U * lam)
    assert np.allclose(U.T @ U, np.eye(3))


def test_critical_values_by_hand():
    # X = I, Y = diag(3, 1): Sxx = I, Sigma = diag(9, 1), tr(Syy) = 10
    X, Y = np.eye(2), np.diag([3.0, 1.0])
    assert np.allclose(nv.critical_values(X, Y, 0), [10.0])
    assert np.allclose(nv.critical_values(X, Y, 1), [1.0, 9.0, 10.0])
    assert np.allclose(nv.critical_values(X, Y, 2), [0.0, 1.0, 9.0, 10.0])
    rng = np.random.default_rng(11)
    X, Y = rng.standard_normal((5, 9)), rng.standard_normal((4, 9))
    assert len(nv.critical_values(X, Y, 2)) == 1 + 4 + 6


def test_read_S_by_hand():
    # X = I, Y = diag(3, 1): u_1 = e_1, u_2 = e_2 (up to sign); H = 2, width 2
    X, Y = np.eye(2), np.diag([3.0, 1.0])
    # (W_2 must annihilate the residual too: W_2 = I would not be critical)
    keep1 = [np.diag([3.0, 0.0]), np.diag([1.0, 0.0])]  # product diag(3, 0): S = {1}
    keep2 = [np.diag([0.0, 1.0]), np.diag([0.0, 1.0])]  # product diag(0, 1): S = {2}
    assert nv.read_S(keep1, X, Y) == (1,)
    assert nv.read_S(keep2, X, Y) == (2,)
    assert nv.read_S([np.zeros((2, 2)), np.eye(2)], X, Y) == ()
    assert nv.read_S([Y, np.eye(2)], X, Y) == (1, 2)
    for W in (keep1, keep2):
        assert np.allclose(nv.ravel_weights(nv.gradient(W, X, Y)), 0)
    assert not np.allclose(nv.ravel_weights(nv.gradient([keep1[0], np.eye(2)], X, Y)), 0)


@pytest.mark.parametrize(
    ("hidden", "S"),
    [
        ((3,), ()),
        ((3,), (1,)),
        ((3,), (2,)),
        ((3,), (1, 2)),
        ((3,), (1, 3)),
        ((3, 4), (1,)),
        ((3, 4), (2, 3)),
        ((4, 3, 3), (1,)),
        ((4, 3, 3), (1, 2, 3)),
        ((2, 2), (1, 2)),
        ((2, 3), (3,)),
    ],
)
def test_constructed_critical_points(hidden, S):
    """§2 and §3 on exact critical points built by hand, judged by the full spectrum."""
    rng = np.random.default_rng([*hidden, 99, *S])
    dx, dy = 4, 3
    X, Y = rng.standard_normal((dx, dx + 5)), rng.standard_normal((dy, dx + 5))
    W = build_critical_point(rng, X, Y, S, hidden)
    g = nv.gradient(W, X, Y)
    gs = grad_scales(W, X, Y)
    assert all(np.linalg.norm(gh) <= 1e-10 * sc for gh, sc in zip(g, gs, strict=True))
    assert nv.read_S(W, X, Y) == S
    lam, _ = nv.eig_sigma(X, Y)
    _, _, Syy = nv.moments(X, Y)
    L = nv.loss(W, X, Y)
    assert pytest.approx(np.trace(Syy) - sum(lam[i - 1] for i in S), rel=1e-10) == L
    r = min(dx, *hidden, dy)
    assert np.min(np.abs(nv.critical_values(X, Y, r) - L)) <= 1e-10 * L
    # type by spectrum, compared with the rank criterion
    Sxx, Syx, _ = nv.moments(X, Y)
    ev = nv.spectrum(W, X, Y)
    scale = max(np.abs(ev).max(), np.linalg.norm(Sxx), np.linalg.norm(Syx))
    if ev[0] < -1e-6 * scale:
        by_spectrum = "strict_saddle"
    else:
        assert ev[0] > -1e-10 * scale, "ambiguous smallest eigenvalue"
        by_spectrum = "global_minimizer" if tuple(range(1, r + 1)) == S else "non_strict_saddle"
    assert nv.theory_type_rank(W, X, Y) == by_spectrum


def test_theory_type_rank_zero_weights():
    rng = np.random.default_rng(12)
    _, X, Y = random_point(rng, (3, 2, 2))
    assert nv.theory_type_rank([np.zeros((2, 3)), np.zeros((2, 2))], X, Y) == "strict_saddle"
    W3 = [np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 2))]
    assert nv.theory_type_rank(W3, X, Y) == "non_strict_saddle"


# ------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fixtures():
    return nv.load_fixtures()


def test_fixture_file_sha256():
    """The fixture file is the one recorded in its README (a silent change fails)."""
    readme = (nv.FIXTURES_PATH.parent / "README.md").read_text(encoding="utf-8")
    recorded = re.findall(r"sha256: ([0-9a-f]{64})", readme)
    assert len(recorded) == 1, "README must record exactly one sha256"
    assert hashlib.sha256(nv.FIXTURES_PATH.read_bytes()).hexdigest() == recorded[0]


def test_fixture_counts(fixtures):
    # numbers from tests/data/fixtures/README.md
    counts = [sum(p["num"] == k for p in fixtures) for k in range(4)]
    assert counts == [175, 100, 306, 19]
    assert len(fixtures) == 600
    assert all(p["num"] == p["th"] for p in fixtures)
    assert all((p["S"] is None) == (p["num"] == 3) for p in fixtures)


def test_fixture_layout(fixtures):
    for p in fixtures:
        dims, W = p["dims"], p["weights"]
        assert [w.shape for w in W] == [(dims[h], dims[h - 1]) for h in range(1, len(dims))]
        assert p["X"].shape[0] == dims[0]
        assert p["Y"].shape[0] == dims[-1]
        assert p["X"].shape[1] == p["Y"].shape[1]
    assert nv.load_fixtures(nv.FIXTURES_PATH)[5]["loss"] == fixtures[5]["loss"]


def test_fixture_critical_points(fixtures):
    bad = []
    for i, p in enumerate(fixtures):
        W, X, Y = p["weights"], p["X"], p["Y"]
        L = nv.loss(W, X, Y)
        if abs(L - p["loss"]) > 1e-10 * max(1.0, abs(p["loss"])):
            bad.append((i, "loss", L, p["loss"]))
        g = nv.gradient(W, X, Y)
        gs = grad_scales(W, X, Y)
        rel = max(np.linalg.norm(gh) / sc if sc > 0 else 0.0 for gh, sc in zip(g, gs, strict=True))
        if p["num"] == 3:
            if rel < 1e-6:
                bad.append((i, "non-critical point has tiny gradient", rel))
            continue
        if rel > 1e-10:
            bad.append((i, "gradient", rel))
        S = nv.read_S(W, X, Y)
        if p["S"] != S:
            bad.append((i, "S", S, p["S"]))
        ev = nv.spectrum(W, X, Y)
        if abs(ev[0] - p["eigmin"]) > 1e-6 * p["scale"]:
            bad.append((i, "eigmin", ev[0], p["eigmin"], p["scale"]))
        lam, _ = nv.eig_sigma(X, Y)
        _, _, Syy = nv.moments(X, Y)
        cv = np.trace(Syy) - sum(lam[j - 1] for j in p["S"])
        if abs(L - cv) > 1e-8 * max(1.0, L):
            bad.append((i, "critical value", L, cv))
    assert not bad, bad[:10]


def test_fixture_theory_type_rank(fixtures):
    bad = [
        (i, nv.theory_type_rank(p["weights"], p["X"], p["Y"]), p["th"])
        for i, p in enumerate(fixtures)
        if p["th"] < 3
        and nv.theory_type_rank(p["weights"], p["X"], p["Y"]) != nv.TYPE_NAMES[p["th"]]
    ]
    assert not bad, bad[:10]
