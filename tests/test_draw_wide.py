"""The draw's reordered kernels (docs/structured.md §7, "Drawing a wide point") give the
bits of the row-by-row construction they replaced: the Gram-Schmidt bases, the products
that skip zeros, and a whole conditioned basis drawn from a point's stream, against the
ordered references of tests/naive.py (the loops of mcland 0.9.0)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from naive import ordered_matmul, ordered_matmul_nt, orthogonal_reference

from mcland._kernels import draw, rng
from mcland._kernels.dense import matmul_nt_rows, matmul_rows


def _same_bits(a, b):
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("n", [1, 2, 5, 16, 17, 23, 37])
def test_orthonormalised_rows_are_those_of_the_row_by_row_loop(n):
    # panels of 16 rows, four rows below at a time: n crosses both, with remainders
    g = np.random.default_rng(n)
    q = g.standard_normal((n, n))
    r = g.standard_normal((n, n)) * 1e3
    fast_q, fast_r = q.copy(), r.copy()
    draw._orthonormalise_pair(fast_q, fast_r)
    assert _same_bits(fast_q, orthogonal_reference(q))
    assert _same_bits(fast_r, orthogonal_reference(r))
    assert np.allclose(fast_q @ fast_q.T, np.eye(n), atol=1e-13)


def _blocky(g, rows, cols):
    """A layer-like factor: a small dense block, an identity block, exact zeros (killed
    complement rows and columns), negative zeros."""
    A = np.zeros((rows, cols))
    A[:2, :2] = g.standard_normal((2, 2))
    k = min(rows, cols) - 2
    A[2 : 2 + k, 2 : 2 + k] = np.eye(k)
    A[rows - 1, :] = 0.0
    A[:, 3] = -0.0
    A[1, 5] = -0.0
    return A


@pytest.mark.parametrize(
    ("n", "k", "m"), [(1, 1, 1), (7, 9, 8), (19, 12, 21), (12, 12, 12), (9, 7, 130)]
)
def test_products_skipping_zeros_have_the_bits_of_the_ordered_sums(n, k, m):
    g = np.random.default_rng(n * k * m)
    for A, B in [
        (g.standard_normal((n, k)), g.standard_normal((k, m))),  # dense: sums of k terms
        (
            _blocky(g, n, k) if min(n, k) > 5 else g.standard_normal((n, k)),
            g.standard_normal((k, m)),
        ),
        (g.standard_normal((n, k)), _blocky(g, k, m) if min(k, m) > 5 else np.zeros((k, m))),
        (np.zeros((n, k)), -g.standard_normal((k, m))),  # every term skipped: +0.0 entries
    ]:
        assert _same_bits(matmul_rows(A, B), ordered_matmul(A, B))
        Bt = np.ascontiguousarray(B.T)
        assert _same_bits(matmul_nt_rows(A, Bt), ordered_matmul_nt(A, Bt))


def test_products_with_a_non_finite_factor_keep_the_nans_of_the_ordered_sums():
    A = np.array([[0.0, 1.0], [2.0, 0.0]])
    B = np.array([[np.inf, 1.0], [3.0, np.nan]])
    want = ordered_matmul(A, B)  # 0 * inf = NaN in row 0
    assert np.isnan(want[0, 0])
    assert _same_bits(matmul_rows(A, B), want)


@pytest.mark.parametrize("n", [3, 21])
def test_a_conditioned_basis_from_a_stream_is_the_row_by_row_one(n):
    cond = 50.0
    state = rng.stream(20261207, n)
    G, G_inv = draw._conditioned(state.copy(), n, cond)
    # the reference draws the same numbers from the same stream, in the same order
    q1 = rng.normal_matrix(state, n, n).copy()
    q2 = rng.normal_matrix(state, n, n).copy()
    q1 = orthogonal_reference(q1)
    q2 = orthogonal_reference(q2)
    half = 0.5 * math.log(cond)  # libm, as the kernel (NumPy's SIMD exp may differ by an ulp)
    sv = np.array([math.exp(half * (2.0 * rng.uniform(state) - 1.0)) for _ in range(n)])
    assert _same_bits(G_inv, ordered_matmul_nt(q2 / sv, q1))
    assert _same_bits(G, ordered_matmul_nt(q1 * sv, q2))
    assert np.allclose(G @ G_inv, np.eye(n), atol=1e-10 * cond)
