"""``mcland.core.linalg``: the Python side's norms, products and eigenproblems without the
process's BLAS (issue 23), against references that sum in the documented order and
against numpy.linalg."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcland.core import linalg as la

EPS = np.finfo(float).eps


def _sequential_norm(a: np.ndarray) -> float:
    """The documented order, in plain Python: squares of the row-major entries added one by
    one to one float accumulator."""
    s = 0.0
    for v in np.ascontiguousarray(a).ravel().tolist():
        s += v * v
    return math.sqrt(s)


@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (3, 5), (4, 3, 2), (200,)])
def test_norm_sums_in_row_major_order(rng, shape):
    a = rng.standard_normal(shape) * 10.0 ** rng.uniform(-5, 5)
    assert la.norm(a) == _sequential_norm(a)  # bit for bit
    assert la.norm(a.T) == _sequential_norm(a.T)  # of the array given, not its memory
    exact = math.sqrt(math.fsum(float(v) ** 2 for v in a.ravel()))
    assert abs(la.norm(a) - exact) <= (a.size + 2) * EPS * exact


def test_matmul_sums_over_k_in_order(rng):
    A = rng.standard_normal((4, 6))
    B = rng.standard_normal((6, 3))
    C = la.matmul(A, B.T.copy().T)  # a non-contiguous operand is copied, same result
    for i in range(4):
        for j in range(3):
            s = 0.0
            for k in range(6):
                s += A[i, k] * B[k, j]
            assert C[i, j] == s
    with pytest.raises(ValueError, match="shapes"):
        la.matmul(A, A)


def test_eigh_eigvalsh_against_numpy(rng):
    B = rng.standard_normal((30, 30))
    A = (B + B.T) / 2
    w, Q = la.eigh(A)
    tol = 3000 * EPS * np.abs(A).max()
    np.testing.assert_allclose(w, np.linalg.eigvalsh(A), rtol=0, atol=tol)
    # dsyevd without vectors takes another route (dsterf, not dstedc): rounding apart
    np.testing.assert_allclose(la.eigvalsh(A), w, rtol=0, atol=tol)
    np.testing.assert_allclose((Q * w) @ Q.T, A, rtol=0, atol=tol)
    A[0, 5] = A[5, 0] = np.nan
    with pytest.raises(np.linalg.LinAlgError):
        la.eigh(A)


@pytest.mark.parametrize("rank", [1, 4, 8])
def test_lstsq_is_numpys_minimum_norm_solution(rng, rank):
    """Rank-deficient systems: the same minimum-norm solution as ``numpy.linalg.lstsq``
    with the same ``rcond`` (to rounding, relative to the solution)."""
    A = rng.standard_normal((8, rank)) @ rng.standard_normal((rank, 8))
    b = rng.standard_normal(8)
    x = la.lstsq(A, b, rcond=1e-10)
    ref = np.linalg.lstsq(A, b, rcond=1e-10)[0]
    np.testing.assert_allclose(x, ref, rtol=0, atol=1e4 * EPS * np.abs(ref).max())
