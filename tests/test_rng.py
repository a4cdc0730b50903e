"""The ziggurat normal generator against the normal distribution itself (SciPy)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mcland._kernels import rng as krng

N_DRAWS = 1_000_000


@pytest.fixture(scope="module")
def draws() -> np.ndarray:
    return krng.normal_matrix(krng.stream(11, 5), 1000, N_DRAWS // 1000).ravel()


def test_ziggurat_layers_have_equal_area():
    x, ratio = krng._ziggurat_tables()
    C, R, V = krng._ZIG_C, krng._ZIG_R, krng._ZIG_V
    assert x[1] == R and x[C] == 0.0
    assert np.all(np.diff(x[1:]) < 0)
    f = np.exp(-0.5 * x**2)
    # layer i (1 <= i < C): the rectangle [0, x_i] x [f(x_i), f(x_{i+1})]; the top one
    # reaches f(x_C) = f(0) = 1
    np.testing.assert_allclose(x[1:C] * (f[2:] - f[1:C]), V, rtol=1e-8)
    # base: the rectangle [0, R] x [0, f(R)] plus the tail beyond R, also of area V
    base = R * f[1] + np.sqrt(2 * np.pi) * stats.norm.sf(R)
    assert base == pytest.approx(V, rel=1e-10)
    assert x[0] * f[1] == pytest.approx(V, rel=1e-14)
    np.testing.assert_array_equal(ratio, x[1:] / x[:-1])


def test_normal_draws_follow_the_normal_distribution(draws):
    # a fixed stream: deterministic, so a threshold on the p-value cannot flake
    assert stats.kstest(draws, "norm").pvalue > 1e-3
    edges = stats.norm.ppf(np.linspace(0, 1, 257))
    counts = np.histogram(draws, edges)[0]
    assert stats.chisquare(counts).pvalue > 1e-3
    assert abs(draws.mean()) < 5 / np.sqrt(N_DRAWS)
    assert abs(draws.var() - 1) < 5 * np.sqrt(2 / N_DRAWS)
    assert abs(stats.skew(draws)) < 5 * np.sqrt(6 / N_DRAWS)
    assert abs(stats.kurtosis(draws)) < 5 * np.sqrt(24 / N_DRAWS)


def test_normal_tail_beyond_the_base_layer(draws):
    R = krng._ZIG_R
    tail = np.abs(draws[np.abs(draws) > R])
    p = 2 * stats.norm.sf(R)
    assert abs(tail.size - p * N_DRAWS) < 5 * np.sqrt(p * N_DRAWS)
    # the conditional law of |z| given |z| > R: a normal truncated to (R, inf)
    assert stats.kstest(tail, stats.truncnorm(R, np.inf).cdf).pvalue > 1e-3
    assert np.sum(draws > R) == pytest.approx(np.sum(draws < -R), abs=5 * np.sqrt(tail.size))


def test_normal_draws_are_uncorrelated(draws):
    for lag in (1, 2, 7):
        r = np.corrcoef(draws[:-lag], draws[lag:])[0, 1]
        assert abs(r) < 5 / np.sqrt(N_DRAWS)
    # the layer index and the value come from disjoint bits of one output: |z| must not
    # depend on the previous draw's layer either
    assert abs(np.corrcoef(np.abs(draws[:-1]), np.abs(draws[1:]))[0, 1]) < 5 / np.sqrt(N_DRAWS)
