"""Eigenvalues of a large symmetric matrix in two stages: to band form by blocked
Householder transformations (BLAS 3), then LAPACK's band solver.

``dsyevd`` (:func:`.lapack.eigvalsh_destroy`) reduces to tridiagonal form with
``dsytrd``, half of whose ``(4/3) n^3`` flops are matrix-vector products that stream the
whole trailing matrix once per column: memory-bound, about 20 s for n = 6,000 on two
cores.  Reducing first to a band of width ``b`` (panel QR ``dgeqrf`` + ``dlarft``, then
the two-sided update ``A <- Q^T A Q`` as ``dsymm`` and ``dsyr2k``, Bischof-Lang-Sun's SBR
first stage) reads the trailing matrix once per *panel* of ``b`` columns; ``dsbev`` then
reduces the band to tridiagonal form (``dsbtrd``, ``O(n^2 b)``) and finds the
eigenvalues (``dsterf``).  Both stages are orthogonal similarity transformations, so the
result is backward stable as ``dsyevd``'s: the computed eigenvalues are those of
``A + dA``, ``||dA|| = O(sqrt(n) eps ||A||)`` in the probabilistic model (checked against
``dsyevd`` in tests/test_band.py).

BLAS and LAPACK are reached as in :mod:`.lapack`: the routines of mcland's own instance
(:mod:`.lapack_library`: a private copy of SciPy's OpenBLAS on a fixed kernel and one
thread, so the bits do not depend on the process), their signatures checked against
SciPy's ``cython_blas`` / ``cython_lapack`` capsules at import, registered under
``mcland_<name>`` and called by name from compiled code (so the kernels are cached).

Layout: as :func:`.lapack.eigvalsh_destroy`, the C-ordered ``(n, n)`` array whose upper
triangle holds the matrix, read by Fortran as the lower triangle of its transpose: a
Fortran column ``j`` is the C row ``j``, so the trailing matrix at ``(m0, m0)`` is the
pointer to ``a[m0, m0]`` with leading dimension ``n``, and nothing is copied.
"""

from __future__ import annotations

import numpy as np
from llvmlite import binding as _llvm
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from mcland._kernels import lapack_library
from mcland._kernels.jit import jit
from mcland._kernels.lapack import _call, _capsule_signature, _slot, eigvalsh_destroy

_LD = "__pyx_t_5scipy_6linalg_13cython_lapack_d *"
_BD = "__pyx_t_5scipy_6linalg_11cython_blas_d *"
# Fortran interfaces as SciPy's capsules spell them; every integer a 32-bit ``int``.
# Argument kinds for :func:`_fortran`: c character, i int, d double (by reference),
# p pointer to an array.
_ROUTINES = {
    "dgeqrf": (
        "lapack",
        f"void (int *, int *, {_LD}, int *, {_LD}, {_LD}, int *, int *)",
        "iipippip",
    ),
    "dlarft": (
        "lapack",
        f"void (char *, char *, int *, int *, {_LD}, int *, {_LD}, {_LD}, int *)",
        "cciipippi",
    ),
    "dsbev": (
        "lapack",
        f"void (char *, char *, int *, int *, {_LD}, int *, {_LD}, {_LD}, int *, {_LD}, int *)",
        "cciipippipp",
    ),
    "dsymm": (
        "blas",
        f"void (char *, char *, int *, int *, {_BD}, {_BD}, int *, {_BD}, int *, {_BD}, {_BD}, int *)",
        "cciidpipidpi",
    ),
    "dsyr2k": (
        "blas",
        f"void (char *, char *, int *, int *, {_BD}, {_BD}, int *, {_BD}, int *, {_BD}, {_BD}, int *)",
        "cciidpipidpi",
    ),
    "dgemm": (
        "blas",
        f"void (char *, char *, int *, int *, int *, {_BD}, {_BD}, int *, {_BD}, int *, {_BD}, "
        f"{_BD}, int *)",
        "cciiidpipidpi",
    ),
}


def _capsule_signature_blas(name: str) -> str:
    import ctypes

    import scipy.linalg.cython_blas as _cython_blas

    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    return get_name(_cython_blas.__pyx_capi__[name]).decode()


def _fortran(name: str):
    """An intrinsic ``f(args)`` calling SciPy's ``name`` with the tuple ``args``, one entry
    per argument (kinds in :data:`_ROUTINES`: characters as integer codes, integers and
    doubles passed by reference through stack slots, pointers as ``array.ctypes``)."""
    lib, expected, kinds = _ROUTINES[name]
    found = _capsule_signature(name) if lib == "lapack" else _capsule_signature_blas(name)
    if found != expected:  # e.g. an ILP64 SciPy: the int32 slots would be wrong
        raise ImportError(f"scipy.linalg.cython_{lib}.{name} has signature {found!r}")
    symbol = f"mcland_{name}"
    _llvm.add_symbol(symbol, lapack_library.address(name))  # mcland's instance

    @intrinsic
    def call(typingctx, args):
        if not isinstance(args, types.BaseTuple) or len(args) != len(kinds):
            return None
        sig = types.none(args)

        def codegen(context, builder, sig, llargs):
            values = cgutils.unpack_tuple(builder, llargs[0], len(kinds))
            pointers = []
            for kind, value, ty in zip(kinds, values, sig.args[0].types, strict=True):
                if kind == "c":
                    pointers.append(_slot(builder, context.cast(builder, value, ty, types.int8)))
                elif kind == "i":
                    pointers.append(_slot(builder, context.cast(builder, value, ty, types.int32)))
                elif kind == "d":
                    pointers.append(_slot(builder, context.cast(builder, value, ty, types.float64)))
                else:
                    pointers.append(context.cast(builder, value, ty, types.voidptr))
            _call(builder, symbol, pointers)
            return context.get_dummy_value()

        return sig, codegen

    return call


_DGEQRF = _fortran("dgeqrf")
_DLARFT = _fortran("dlarft")
_DSBEV = _fortran("dsbev")
_DSYMM = _fortran("dsymm")
_DSYR2K = _fortran("dsyr2k")
_DGEMM = _fortran("dgemm")

_L, _N, _T, _F, _C = ord("L"), ord("N"), ord("T"), ord("F"), ord("C")

# Band width of the first stage and the order from which the two stages pay.  Measured
# on compressed Hessians of benchmarks/width_sweep.toml, one BLAS thread, CPU seconds
# (dsyevd / b = 32 / b = 64): k = 1,541: 0.21 / 0.21 / 0.26; k = 2,064: 0.51 / 0.51 / 0.54;
# k = 3,077: 2.64 / 1.66 / 1.49; k = 6,149: 20.7 / 12.5 / 10.4.
BAND = 64
SMALL = 2500


@jit
def to_band_destroy(a, b):
    """Reduce the symmetric matrix whose upper triangle the C-ordered ``a`` (n, n) holds to
    band form of half-width ``b`` by orthogonal similarity, in place: afterwards
    ``a[j, j + d]``, ``0 <= d <= b``, hold the band (the rest of ``a`` is scratch)."""
    n = a.shape[0]
    flat = a.reshape(n * n)
    info = np.zeros(1, np.int32)
    tau = np.empty(b)
    T = np.empty(b * b)
    P = np.empty(b * b)
    X = np.empty(b * b)
    V = np.empty(n * b)
    Y = np.empty(n * b)
    Z = np.empty(n * b)
    qwork = np.empty(1)
    _DGEQRF((n, b, V.ctypes, n, tau.ctypes, qwork.ctypes, -1, info.ctypes))  # workspace query
    work = np.empty(max(int(qwork[0]), b))
    lwork = work.size
    j0 = 0
    while j0 + b < n - 1:
        m0 = j0 + b
        m = n - m0
        nr = min(m, b)
        panel = flat[j0 * n + m0 :]  # Fortran (m, b) at A[m0, j0], leading dimension n
        _DGEQRF((m, b, panel.ctypes, n, tau.ctypes, work.ctypes, lwork, info.ctypes))
        for q in range(nr):  # V: unit lower trapezoidal (m, nr), leading dimension m
            row = (j0 + q) * n + m0
            for p in range(q):
                V[q * m + p] = 0.0
            V[q * m + q] = 1.0
            for p in range(q + 1, m):
                V[q * m + p] = flat[row + p]
        T[:] = 0.0  # dlarft writes the upper triangle only; the products read all of T
        _DLARFT((_F, _C, m, nr, V.ctypes, m, tau.ctypes, T.ctypes, b))
        trail = flat[m0 * n + m0 :]  # Fortran (m, m) at A[m0, m0], leading dimension n
        # W = A22 V T - 1/2 V (T^T V^T A22 V T); A22 <- A22 - V W^T - W V^T
        _DSYMM((_L, _L, m, nr, 1.0, trail.ctypes, n, V.ctypes, m, 0.0, Y.ctypes, m))
        _DGEMM((_N, _N, m, nr, nr, 1.0, Y.ctypes, m, T.ctypes, b, 0.0, Z.ctypes, m))
        _DGEMM((_T, _N, nr, nr, m, 1.0, V.ctypes, m, Z.ctypes, m, 0.0, X.ctypes, nr))
        _DGEMM((_T, _N, nr, nr, nr, 1.0, T.ctypes, b, X.ctypes, nr, 0.0, P.ctypes, nr))
        _DGEMM((_N, _N, m, nr, nr, -0.5, V.ctypes, m, P.ctypes, nr, 1.0, Z.ctypes, m))
        _DSYR2K((_L, _N, m, nr, -1.0, V.ctypes, m, Z.ctypes, m, 1.0, trail.ctypes, n))
        j0 = m0


@jit
def eigvalsh_band_destroy(a, ev, b):
    """Ascending eigenvalues of the symmetric matrix whose upper triangle the C-ordered
    ``a`` (n, n) holds, into ``ev[:n]``, by :func:`to_band_destroy` (half-width ``b``) and
    ``dsbev``; ``a`` is overwritten.  Orders up to ``2 b + 1`` go to ``dsyevd``
    (:func:`.lapack.eigvalsh_destroy`).  Returns LAPACK's ``info`` (0 on success,
    ``ev[:n]`` NaN otherwise)."""
    n = a.shape[0]
    if n <= 2 * b + 1:
        return eigvalsh_destroy(a, ev)
    to_band_destroy(a, b)
    ab = np.zeros(n * (b + 1))  # Fortran (b + 1, n), lower band storage: ab[d, j] = A[j + d, j]
    for j in range(n):
        for d in range(min(b, n - 1 - j) + 1):
            ab[j * (b + 1) + d] = a[j, j + d]
    work = np.empty(max(1, 3 * n - 2))
    zdummy = np.empty(1)
    info = np.zeros(1, np.int32)
    _DSBEV((_N, _L, n, b, ab.ctypes, b + 1, ev.ctypes, zdummy.ctypes, 1, work.ctypes, info.ctypes))
    if info[0] != 0:
        ev[:n] = np.nan
    return info[0]


@jit
def eigvalsh_large_destroy(a, ev):
    """:func:`.lapack.eigvalsh_destroy` below order :data:`SMALL`, the two stages of
    :func:`eigvalsh_band_destroy` (half-width :data:`BAND`) from there on."""
    if a.shape[0] < SMALL:
        return eigvalsh_destroy(a, ev)
    return eigvalsh_band_destroy(a, ev, BAND)
