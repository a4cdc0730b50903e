"""The bare LAPACK calls (mcland's private instance of SciPy's OpenBLAS, by symbol name)
against numpy.linalg and against Numba's own ``np.linalg`` routines, which call SciPy's
instance of the same library."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import requires, version

import numpy as np
import pytest
from numba import njit

from mcland._kernels import lapack
from mcland._kernels.lapack import cholesky_destroy, eigvalsh_destroy


def _upper_only(A):
    """C-ordered copy of the symmetric ``A`` with NaN below the diagonal: the calls must
    read the upper triangle (LAPACK's lower triangle in Fortran order) and nothing else."""
    T = A.copy()
    T[np.tril_indices(A.shape[0], -1)] = np.nan
    return T


@njit
def _workspace(N):
    return lapack._dsyevd_workspace(N)


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


_SAME_CALLS = """
import sys
import numpy as np
from numba import njit
from mcland._kernels import lapack, lapack_library
from mcland._kernels.lapack import eigvalsh_destroy

numba_eigvalsh = njit(lambda A: np.linalg.eigvalsh(A.T))
numba_eigh = njit(lambda A: np.linalg.eigh(A))
numba_svd = njit(lambda A: np.linalg.svd(A))
rng = np.random.default_rng(int(sys.argv[1]))
sizes = [*range(1, 41), 127, 128, 129, 200, *rng.integers(1, 201, 40)]
for N in sizes:
    B = rng.standard_normal((N, N)) * 10.0 ** rng.uniform(-3, 3)
    A = (B + B.T) / 2
    if rng.uniform() < 0.3:  # rank-deficient: clustered, exactly repeated eigenvalues
        C = rng.standard_normal((N, max(1, N // 3)))
        A = C @ C.T
    T = A.copy()
    T[np.tril_indices(N, -1)] = np.nan
    ev = np.empty(N)
    assert eigvalsh_destroy(T, ev) == 0
    assert np.array_equal(ev, numba_eigvalsh(np.triu(A))), ("eigvalsh", N)
    if N <= 60:
        w, Q = lapack.eigh(A)
        w0, Q0 = numba_eigh(A)
        assert np.array_equal(w, w0) and np.array_equal(Q, np.ascontiguousarray(Q0)), ("eigh", N)
        M = rng.standard_normal((N, int(rng.integers(1, 60))))
        U, s, Vt = lapack.svd(M)
        U0, s0, Vt0 = numba_svd(M)
        assert np.array_equal(U, U0) and np.array_equal(s, s0) and np.array_equal(Vt, Vt0), ("svd", N)
print(lapack_library.describe()["core"], len(sizes))
"""


def test_the_calls_are_bitwise_numbas_on_the_same_kernel():
    """Same driver, triangle and workspace as the Numba routines the kernels used up to
    0.7.1 (``np.linalg.eigvalsh``, ``eigh``, ``svd``, which call SciPy's instance of the
    same library): with that instance on the kernel and thread count of mcland's private
    one (a child with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_NUM_THREADS=1``), the same bits,
    so the records did not change.  The sizes straddle the point where ``dsytrd`` switches
    to its blocked reduction (N > 32 here), where a workspace other than the optimal one
    would change the bits."""
    from mcland._kernels import lapack_library

    core = lapack_library.describe()["core"]
    if lapack_library.describe()["mode"] != "private" or core is None:
        pytest.skip("no private OpenBLAS instance on this install")
    # one thread, as mcland's instance: OpenBLAS's thread count changes the bits too
    # (dgesdd of a 60 x 60 matrix: U and Vt differ in the last bits with 2 threads)
    env = {**os.environ, "OPENBLAS_CORETYPE": core, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _SAME_CALLS, "7"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == [core, "84"]


@pytest.mark.parametrize("N", [1, 2, 33, 200])
def test_workspace_query_returns_at_least_the_documented_minimum(N):
    lwork, liwork = _workspace(N)
    assert lwork >= (1 if N == 1 else 2 * N + 1)
    assert liwork >= 1


def test_eigvalsh_destroy_of_empty_matrix():
    assert eigvalsh_destroy(np.zeros((0, 0)), np.zeros(0)) == 0


@pytest.mark.parametrize("N", [5, 40, 200])
def test_eigvalsh_destroy_reports_failure_on_nan(N):
    """A NaN off the diagonal makes ``dsyevd``'s QR iteration fail: ``info > 0`` comes back
    and ``ev`` is NaN.  (Not every non-finite input is caught, see the docstring.)"""
    A = np.eye(N)
    A[0, N - 1] = np.nan
    ev = np.full(N + 1, 7.0)
    assert eigvalsh_destroy(A, ev) > 0
    assert np.isnan(ev[:N]).all() and ev[N] == 7.0


@pytest.mark.parametrize("N", [1, 3, 40])
def test_cholesky_destroy_decides_positive_definiteness(rng, N):
    Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    for lam_min in (-1.0, -1e-6, 1e-6, 1.0):
        lam = np.concatenate([[lam_min], rng.uniform(0.5, 2.0, N - 1)])
        A = (Q * lam) @ Q.T
        assert cholesky_destroy(_upper_only((A + A.T) / 2)) == (lam_min > 0)


def test_cholesky_destroy_agrees_with_numpy(rng):
    """``dpotrf`` success (``info == 0``) against ``np.linalg.cholesky`` raising, on
    positive definite, indefinite and negative definite matrices of sizes 1..120, and the
    factor itself: the lower triangle in Fortran order, i.e. ``L.T`` in the upper one."""
    decided = {True: 0, False: 0}
    for _ in range(150):
        N = int(rng.integers(1, 121))
        Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
        lam = rng.uniform(0.1, 2.0, N) * rng.choice([-1.0, 1.0], N, p=[0.02, 0.98])
        A = (Q * lam) @ Q.T
        A = (A + A.T) / 2
        try:
            L = np.linalg.cholesky(A)
        except np.linalg.LinAlgError:
            L = None
        M = _upper_only(A)
        ok = cholesky_destroy(M)
        assert ok == (L is not None) == (lam.min() > 0), N
        if ok:
            np.testing.assert_allclose(np.triu(M), L.T, rtol=0, atol=1e-12 * abs(L).max())
        decided[ok] += 1
    assert min(decided.values()) > 20  # both outcomes were exercised


def test_cholesky_destroy_of_empty_matrix():
    assert cholesky_destroy(np.zeros((0, 0)))


def test_a_different_lapack_signature_is_refused(monkeypatch):
    """The stack slots are C ``int``; a SciPy whose LAPACK took other integers (ILP64)
    must be refused at import, not called with the wrong argument widths."""
    monkeypatch.setitem(lapack._SIGNATURES, "dpotrf", "void (char *, long *)")
    with pytest.raises(ImportError, match="dpotrf"):
        lapack._register("dpotrf")


def test_numba_is_within_the_declared_bound():
    """The kernels rely on Numba's caching and typing behaviour and on its private array
    internals (``mcland._kernels.dense._as_matrix``), so ``pyproject.toml`` bounds
    ``numba`` from above; the bound is raised once the whole suite passes on a new
    release.  This catches an environment where Numba was upgraded past it afterwards."""
    from packaging.requirements import Requirement

    (numba_req,) = [r for r in map(Requirement, requires("mcland")) if r.name == "numba"]
    assert any(s.operator == "<" for s in numba_req.specifier), numba_req
    assert version("numba") in numba_req.specifier, (version("numba"), str(numba_req))


@pytest.mark.parametrize("N", [1, 2, 7, 40])
def test_eigh_and_svd_decompose(rng, N):
    """``lapack.eigh`` and ``lapack.svd`` against the definitions and numpy.linalg, to
    ``100 N eps`` of the matrix's scale (LAPACK's backward error is a small multiple of
    ``N eps ||A||``)."""
    eps = np.finfo(float).eps
    B = rng.standard_normal((N, N))
    A = (B + B.T) / 2
    w, Q = lapack.eigh(A)
    assert Q.flags.c_contiguous and np.all(np.diff(w) >= 0)
    tol = 100 * N * eps * np.abs(A).max()
    np.testing.assert_allclose((Q * w) @ Q.T, A, rtol=0, atol=tol)
    np.testing.assert_allclose(Q.T @ Q, np.eye(N), rtol=0, atol=100 * N * eps)
    np.testing.assert_allclose(w, np.linalg.eigvalsh(A), rtol=0, atol=tol)
    for shape in ((N, N + 3), (N + 3, N)):
        M = rng.standard_normal(shape)
        U, s, Vt = lapack.svd(M)
        k = min(shape)
        assert U.shape == (shape[0], shape[0]) and Vt.shape == (shape[1], shape[1])
        tol = 100 * max(shape) * eps * np.abs(M).max()
        np.testing.assert_allclose((U[:, :k] * s) @ Vt[:k], M, rtol=0, atol=tol)
        np.testing.assert_allclose(U.T @ U, np.eye(shape[0]), rtol=0, atol=100 * k * eps)
        np.testing.assert_allclose(Vt @ Vt.T, np.eye(shape[1]), rtol=0, atol=100 * k * eps)
        np.testing.assert_allclose(s, np.linalg.svd(M, compute_uv=False), rtol=0, atol=tol)


def test_eigh_and_svd_report_failure_as_nan():
    A = np.eye(4)
    A[0, 3] = A[3, 0] = np.nan
    w, Q = lapack.eigh(A)
    assert np.isnan(w).all() and np.isnan(Q).all()
