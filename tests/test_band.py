"""The two-stage symmetric eigenvalue solver (:mod:`mcland._kernels.band`) against
``numpy.linalg.eigvalsh``: accuracy, multiplicities, the triangle it reads, and the bits
under one and two BLAS threads."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from mcland._kernels.band import eigvalsh_band_destroy, to_band_destroy
from mcland._kernels.constants import EPS


def _upper_only(A):
    T = A.copy()
    T[np.tril_indices(A.shape[0], -1)] = np.nan
    return T


def _band_of(a, b):
    n = a.shape[0]
    B = np.zeros((n, n))
    for d in range(b + 1):
        idx = np.arange(n - d)
        B[idx, idx + d] = a[idx, idx + d]
        B[idx + d, idx] = a[idx, idx + d]
    return B


@pytest.mark.parametrize(("n", "b"), [(12, 4), (40, 4), (150, 8), (300, 32), (301, 64)])
def test_band_form_is_similar(rng, n, b):
    """After the first stage the band alone has the eigenvalues of the matrix."""
    A = rng.standard_normal((n, n))
    A = A + A.T
    a = _upper_only(A)
    to_band_destroy(a, b)
    got = np.linalg.eigvalsh(_band_of(a, b))
    assert np.abs(got - np.linalg.eigvalsh(A)).max() <= np.sqrt(n) * EPS * np.linalg.norm(A)


@pytest.mark.parametrize(("n", "b"), [(300, 32), (520, 64), (700, 16)])
def test_eigenvalues_match_numpy(rng, n, b):
    B = rng.standard_normal((n, n)) * 10.0 ** rng.uniform(-3, 3)
    A = (B + B.T) / 2
    ev = np.empty(n)
    assert eigvalsh_band_destroy(_upper_only(A), ev, b) == 0
    assert np.abs(ev - np.linalg.eigvalsh(A)).max() <= np.sqrt(n) * EPS * np.linalg.norm(A)


def test_multiplicities_and_exact_zeros_survive(rng):
    """A spectrum with large multiplicities and a 200-fold zero (as the Hessians have):
    every cluster keeps its size within rounding."""
    n = 600
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.concatenate([np.full(150, -3.0), np.zeros(200), np.full(100, 1e-3), np.full(150, 7.0)])
    A = (Q * lam) @ Q.T
    A = (A + A.T) / 2
    ev = np.empty(n)
    eigvalsh_band_destroy(_upper_only(A), ev, 64)
    tol = np.sqrt(n) * EPS * np.linalg.norm(A)
    for value, count in [(-3.0, 150), (0.0, 200), (1e-3, 100), (7.0, 150)]:
        assert np.sum(np.abs(ev - value) <= tol) == count


def test_zero_matrix_gives_exact_zeros():
    ev = np.full(400, np.nan)
    eigvalsh_band_destroy(np.zeros((400, 400)), ev, 32)
    assert np.all(ev == 0.0)


def test_same_bits_on_every_run_with_a_given_number_of_blas_threads(rng):
    """Repeated runs give the same bits.  Across thread counts they do not (neither do
    dsyevd's, checked here too), which is why the sampler runs its kernels under one
    BLAS thread (``mcland._blas.one_blas_thread``)."""
    n = 300
    A = rng.standard_normal((n, n))
    A = A + A.T
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="blas"):
            runs = []
            for _ in range(3):
                ev = np.empty(n)
                eigvalsh_band_destroy(_upper_only(A), ev, 64)
                runs.append(ev)
        assert np.array_equal(runs[0], runs[1]) and np.array_equal(runs[0], runs[2])
