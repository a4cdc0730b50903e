"""Products, norms and eigenproblems for mcland's Python code, rounded as mcland decides.

NumPy's ``@``, ``dot`` and ``linalg.norm`` (a ``dot`` of the flattened array) call the BLAS
NumPy ships, whose kernel the process chose when it first loaded it (``OPENBLAS_CORETYPE``,
the CPU, whoever imported NumPy first); ``numpy.linalg.eigh`` / ``lstsq`` call its LAPACK.
The last bits of their results therefore depend on the process, not only on the inputs.
Every number mcland records that is computed in Python goes through the functions here
instead: compiled loops that sum in a fixed order (:mod:`mcland._kernels.dense`: row-major,
one accumulator, no FMA contraction, no reassociation) and mcland's own LAPACK instance
(:mod:`mcland._kernels.lapack`, :mod:`mcland._kernels.lapack_library`).

The loops are exact to the usual bound (``n eps`` relative for a sum of ``n`` squares, as
BLAS's) but slower than BLAS for large operands; mcland's operands are at most a few
hundred entries per side.  Arrays are copied to C-contiguous float64 first, so each
function compiles once.
"""

from __future__ import annotations

import math

import numpy as np

from mcland._kernels import dense, lapack


def _c(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _finite(a: np.ndarray, what: str) -> np.ndarray:
    """``a`` as C-contiguous float64; LAPACK is not given NaN or inf (``dsyevd`` has been
    seen to return finite, meaningless values for them), as NumPy refuses them."""
    a = _c(a)
    if not np.all(np.isfinite(a)):
        raise np.linalg.LinAlgError(f"{what}: array must not contain infs or NaNs")
    return a


def norm(a: np.ndarray) -> float:
    """Frobenius (2-) norm of ``a`` (any shape): ``sqrt`` of the squares summed in row-major
    order, in one accumulator (``numpy.linalg.norm`` without BLAS)."""
    flat = _c(a).reshape(-1)
    return math.sqrt(dense.dot(flat, flat))


def matmul(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A @ B`` for 2-D ``A`` (n, k), ``B`` (k, m): each entry summed over ``k`` in order."""
    A, B = _c(A), _c(B)
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"matmul: shapes {A.shape} and {B.shape} do not match")
    return dense.matmul(A, B)


def eigh(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(w, Q)`` of the symmetric ``A`` (N, N): ascending eigenvalues and eigenvectors in the
    columns of ``Q`` (``dsyevd`` of mcland's LAPACK); raises ``numpy.linalg.LinAlgError`` for
    a non-finite ``A`` or if LAPACK does not converge, as NumPy does."""
    w, Q = lapack.eigh(_finite(A, "eigh"))
    if A.shape[0] and not np.isfinite(w[0]):
        raise np.linalg.LinAlgError("eigh: dsyevd did not converge")
    return w, Q


def eigvalsh(A: np.ndarray) -> np.ndarray:
    """Ascending eigenvalues of the symmetric ``A`` (N, N) (``dsyevd`` without vectors, of
    mcland's LAPACK; the upper triangle of ``A`` in C order is read)."""
    work = _finite(A, "eigvalsh").copy()
    ev = np.empty(work.shape[0])
    if lapack.eigvalsh_destroy(work, ev) != 0:
        raise np.linalg.LinAlgError("eigvalsh: dsyevd did not converge")
    return ev


def lstsq(A: np.ndarray, b: np.ndarray, rcond: float) -> np.ndarray:
    """The minimum-norm least-squares solution of ``A x = b`` for ``A`` (m, n), ``b`` (m,),
    singular values at most ``rcond`` times the largest treated as zero: what
    ``numpy.linalg.lstsq(A, b, rcond)[0]`` returns, from the SVD of mcland's LAPACK
    (``dgesdd``) and the loops above: ``x = V_k diag(1 / s_k) U_k^T b``."""
    U, s, Vt = lapack.svd(_finite(A, "lstsq"))
    if s.size and not np.isfinite(s[0]):
        raise np.linalg.LinAlgError("lstsq: dgesdd did not converge")
    k = int(np.count_nonzero(s > rcond * s[0])) if s.size else 0
    c = matmul(U[:, :k].T, _c(b).reshape(-1, 1)).reshape(-1) / s[:k]
    return matmul(Vt[:k].T, c.reshape(-1, 1)).reshape(-1)


def svd(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(U, s, Vt)`` with ``A = U diag(s) Vt`` for ``A`` (m, n): ``U`` (m, m), ``s``
    (min(m, n),) decreasing, ``Vt`` (n, n) (``dgesdd`` of mcland's LAPACK); raises
    ``numpy.linalg.LinAlgError`` for a non-finite ``A`` or if LAPACK does not converge."""
    U, s, Vt = lapack.svd(_finite(A, "svd"))
    if s.size and not np.isfinite(s[0]):
        raise np.linalg.LinAlgError("svd: dgesdd did not converge")
    return U, s, Vt


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """``sum(a * b)`` over all entries of ``a`` and ``b`` (same size), in row-major order in one
    accumulator (``numpy.dot`` of the flattened arrays without BLAS)."""
    a, b = _c(a).reshape(-1), _c(b).reshape(-1)
    if a.size != b.size:
        raise ValueError(f"dot: sizes {a.size} and {b.size} differ")
    return float(dense.dot(a, b))
