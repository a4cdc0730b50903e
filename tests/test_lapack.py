"""The bare in-place LAPACK calls (Numba's private bindings) against numpy.linalg."""

from __future__ import annotations

import numpy as np
import pytest

from mcland._kernels.lapack import cholesky_destroy, eigvalsh_destroy


def _upper_only(A):
    """C-ordered copy of the symmetric ``A`` with NaN below the diagonal: the calls must
    read the upper triangle (LAPACK's lower triangle in Fortran order) and nothing else."""
    T = A.copy()
    T[np.tril_indices(A.shape[0], -1)] = np.nan
    return T


@pytest.mark.parametrize("N", [1, 2, 5, 39, 130])
def test_eigvalsh_destroy_matches_numpy(rng, N):
    B = rng.standard_normal((N, N)) * 10.0 ** rng.uniform(-3, 3)
    A = (B + B.T) / 2
    ev = np.full(N + 3, 7.0)
    assert eigvalsh_destroy(_upper_only(A), ev) == 0
    ref = np.linalg.eigvalsh(A)
    np.testing.assert_allclose(
        ev[:N], ref, rtol=0, atol=1e3 * N * np.finfo(float).eps * abs(ref).max()
    )
    assert (ev[N:] == 7.0).all()  # writes N values, no more
    assert np.all(np.diff(ev[:N]) >= 0)


def test_eigvalsh_destroy_is_bitwise_the_same_lapack_call_as_numba_eigvalsh(rng):
    """Same driver (dsyevd, no vectors, lower triangle in Fortran order), same result bits:
    the benchmark's floor and the pipeline decompose exactly what Numba's eigvalsh would."""
    from numba import njit

    @njit
    def numba_eigvalsh(A):
        return np.linalg.eigvalsh(A.T)

    for N in (3, 40, 90):
        B = rng.standard_normal((N, N))
        A = (B + B.T) / 2
        ev = np.empty(N)
        eigvalsh_destroy(_upper_only(A), ev)
        np.testing.assert_array_equal(ev, numba_eigvalsh(np.triu(A)))


def test_eigvalsh_destroy_of_empty_matrix():
    assert eigvalsh_destroy(np.zeros((0, 0)), np.zeros(0)) == 0


@pytest.mark.parametrize("N", [1, 3, 40])
def test_cholesky_destroy_decides_positive_definiteness(rng, N):
    Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    for lam_min in (-1.0, -1e-6, 1e-6, 1.0):
        lam = np.concatenate([[lam_min], rng.uniform(0.5, 2.0, N - 1)])
        A = (Q * lam) @ Q.T
        assert cholesky_destroy(_upper_only((A + A.T) / 2)) == (lam_min > 0)
