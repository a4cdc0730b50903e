"""Bare, in-place LAPACK calls on the Hessian's triangle: the floor of the whole computation.

``np.linalg.eigvalsh`` and ``np.linalg.cholesky`` in Numba check every entry for
finiteness, copy the matrix into a freshly allocated Fortran-ordered array and only then
call LAPACK.  For a Hessian of order N ~ 200 that copy is a 350 kB allocation per point
(``mmap``, page faults, and on ``munmap`` a TLB shoot-down that stalls the other threads)
and costs about as much as everything else the sampler does for the point.  The routines
here call the same LAPACK drivers (``dsyevd`` without vectors, ``dpotrf``) through Numba's
own LAPACK bindings directly on the caller's buffer, which they overwrite.

Layout: the matrix is given as the C-ordered ``(N, N)`` array whose **upper** triangle
holds it (:func:`.hessian.hessian_into`); read in Fortran order that is the lower
triangle, which is what LAPACK is told to read (``uplo = 'L'``).  The other triangle is
never read, so it may hold anything.

Numba's bindings (``numba.np.linalg._LAPACK``) are not public API; they are the ones
Numba's own ``eigvalsh`` and ``cholesky`` use, resolved by symbol name, so kernels that
call them are cached like any other.  ``tests/test_lapack.py`` checks them against
``numpy.linalg`` on every install.
"""

from __future__ import annotations

import numpy as np
from numba import types
from numba.np.linalg import _LAPACK, ensure_lapack

from mcland._jit import jit

ensure_lapack()
_syevd = _LAPACK().numba_ez_xxxevd(types.float64)
_potrf = _LAPACK().numba_xxpotrf(types.float64)
_KIND = ord("d")
_NO_VECTORS = ord("N")
_LOWER = ord("L")


@jit
def eigvalsh_destroy(HmT, ev):
    """Ascending eigenvalues of the symmetric matrix whose upper triangle ``HmT`` (N, N),
    C order, holds, into ``ev[:N]``; ``HmT`` is overwritten.  Returns LAPACK's ``info``
    (0 on success; > 0 when ``dsyevd`` did not converge, then ``ev`` is NaN)."""
    N = HmT.shape[0]
    if N == 0:
        return 0
    info = _syevd(_KIND, _NO_VECTORS, _LOWER, N, HmT.ctypes, N, ev.ctypes)
    if info != 0:
        ev[:N] = np.nan
    return info


@jit
def cholesky_destroy(HmT):
    """Whether the Cholesky factorisation of the symmetric matrix whose upper triangle
    ``HmT`` (N, N), C order, holds succeeds, i.e. whether it is positive definite (up to the
    factorisation's backward error); ``HmT`` is overwritten by the partial factor."""
    N = HmT.shape[0]
    if N == 0:
        return True
    return _potrf(_KIND, _LOWER, N, HmT.ctypes, N) == 0
