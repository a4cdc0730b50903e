"""Bare, in-place LAPACK calls on the Hessian's triangle: the floor of the whole computation.

``np.linalg.eigvalsh`` and ``np.linalg.cholesky`` in Numba check every entry for
finiteness, copy the matrix into a freshly allocated Fortran-ordered array and only then
call LAPACK.  For a Hessian of order N ~ 200 that copy is a 350 kB allocation per point
(``mmap``, page faults, and on ``munmap`` a TLB shoot-down that stalls the other threads)
and costs about as much as everything else the sampler does for the point.  The routines
here call the same LAPACK drivers (``dsyevd`` without vectors, ``dpotrf``) directly on the
caller's buffer, which they overwrite.

Layout: the matrix is given as the C-ordered ``(N, N)`` array whose **upper** triangle
holds it (:func:`.hessian.hessian_into`); read in Fortran order that is the lower
triangle, which is what LAPACK is told to read (``uplo = 'L'``).  The other triangle is
never read, so it may hold anything.

How LAPACK is reached, without Numba's private LAPACK bindings (``numba.np.linalg._LAPACK``,
used up to 0.5.0): only SciPy's and llvmlite's public functions and Numba's extension API
(``@intrinsic``, whose code generation uses ``numba.core.cgutils``). SciPy exports its
LAPACK as C functions (``scipy.linalg.cython_lapack``, Fortran interface: every argument by
pointer, integers C ``int``, checked against the capsule's signature at import). At import
their addresses (``numba.extending.get_cython_function_address``) are registered under the
symbol names ``mcland_dsyevd`` / ``mcland_dpotrf`` with ``llvmlite.binding.add_symbol``, and
the intrinsics below declare and call these symbols *by name*, passing the scalar arguments
through stack slots. Compiled code therefore holds no address, only the name, so the kernels
are cached like any other (a ctypes function pointer would make Numba refuse to cache them);
the symbols are resolved again in every process, which imports this module before it loads
any kernel that calls them.

This is the library Numba's own ``np.linalg.eigvalsh`` / ``cholesky`` call (its C helper
resolves ``dsyevd`` / ``dpotrf`` from ``scipy.linalg.cython_lapack`` too), and
:func:`eigvalsh_destroy` makes the same two calls as that helper: a workspace query, then
``dsyevd`` with the optimal workspace. The workspace size matters for the bits: with the
minimal ``lwork = 2N + 1``, which could be sized from ``N`` alone, ``dsytrd`` falls back to
its unblocked reduction, and with SciPy's OpenBLAS the eigenvalues then differ in the last
bits for every N > 32 tried (33..400), against none with the queried workspace.

Timing (warm, one thread, same matrices), Numba's binding -> this route, per call:
``dsyevd`` 0.17 -> 0.19 us for N = 2, 3.3 -> 3.3 us for N = 10, 40 -> 41 us for N = 40,
941 -> 936 us for N = 200; ``dpotrf`` 80 -> 81 us for N = 200.  ``tests/test_lapack.py``
checks bit-identity with Numba's ``eigvalsh`` and the results against ``numpy.linalg`` on
every install.
"""

from __future__ import annotations

import ctypes

import numpy as np
import scipy.linalg.cython_lapack as _cython_lapack
from llvmlite import binding as _llvm
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from mcland._kernels import lapack_library
from mcland._kernels.jit import jit

_D = "__pyx_t_5scipy_6linalg_13cython_lapack_d *"
_SIGNATURES = {  # as SciPy's capsules spell them: Fortran interface, 32-bit ``int``
    "dsyevd": f"void (char *, char *, int *, {_D}, int *, {_D}, {_D}, int *, int *, int *, int *)",
    "dpotrf": f"void (char *, int *, {_D}, int *, int *)",
    "dgesdd": (
        f"void (char *, int *, int *, {_D}, int *, {_D}, {_D}, int *, {_D}, int *, {_D}, "
        "int *, int *, int *)"
    ),
}


def _capsule_signature(name: str) -> str:
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    return get_name(_cython_lapack.__pyx_capi__[name]).decode()


def _register(name: str) -> str:
    """Make ``name`` of mcland's LAPACK instance (:mod:`.lapack_library`) callable from
    compiled code as the symbol ``mcland_<name>``.  SciPy's capsule signature is checked: the
    private instance is a copy of the library behind it, so the same interface."""
    found = _capsule_signature(name)
    if found != _SIGNATURES[name]:  # e.g. an ILP64 SciPy: the int32 slots would be wrong
        raise ImportError(f"scipy.linalg.cython_lapack.{name} has signature {found!r}")
    symbol = f"mcland_{name}"
    _llvm.add_symbol(symbol, lapack_library.address(name))
    return symbol


_DSYEVD = _register("dsyevd")
_DPOTRF = _register("dpotrf")
_DGESDD = _register("dgesdd")

_I8 = ir.IntType(8)
_I32 = ir.IntType(32)


def _slot(builder, value):
    """Pointer to a stack slot (in the calling kernel's frame) holding ``value``."""
    return builder.bitcast(cgutils.alloca_once_value(builder, value), cgutils.voidptr_t)


def _call(builder, symbol, args):
    """``symbol(*args)``, a ``void`` function of pointers, declared by name."""
    fnty = ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t] * len(args))
    builder.call(cgutils.get_or_insert_function(builder.module, fnty, symbol), args)


def _int32(context, builder, value, ty):
    return context.cast(builder, value, ty, types.int32)


def _pointer(context, builder, value, ty):
    return context.cast(builder, value, ty, types.voidptr)


def _workspace_query(jobz: str):
    """Intrinsic ``n -> (lwork, liwork)``: the optimal workspace of ``dsyevd(jobz, 'L', n,
    ...)`` from LAPACK's workspace query (``lwork = liwork = -1``); ``(-1, -1)`` if
    ``info != 0``."""

    @intrinsic
    def query(typingctx, n):
        if not isinstance(n, types.Integer):
            return None
        sig = types.UniTuple(types.int32, 2)(n)

        def codegen(context, builder, sig, args):
            n = _int32(context, builder, args[0], sig.args[0])
            work = cgutils.alloca_once_value(builder, ir.Constant(ir.DoubleType(), 0.0))
            iwork = cgutils.alloca_once_value(builder, _I32(0))
            info = cgutils.alloca_once_value(builder, _I32(0))
            null = cgutils.voidptr_t(None)  # A and W are not referenced by a query
            minus_one = _I32(-1)
            _call(
                builder,
                _DSYEVD,
                [
                    _slot(builder, _I8(ord(jobz))),
                    _slot(builder, _I8(ord("L"))),
                    _slot(builder, n),
                    null,
                    _slot(builder, n),
                    null,
                    builder.bitcast(work, cgutils.voidptr_t),
                    _slot(builder, minus_one),
                    builder.bitcast(iwork, cgutils.voidptr_t),
                    _slot(builder, minus_one),
                    builder.bitcast(info, cgutils.voidptr_t),
                ],
            )
            ok = builder.icmp_signed("==", builder.load(info), _I32(0))
            lwork = builder.select(ok, builder.fptosi(builder.load(work), _I32), minus_one)
            liwork = builder.select(ok, builder.load(iwork), minus_one)
            return context.make_tuple(builder, sig.return_type, [lwork, liwork])

        return sig, codegen

    return query


def _driver(jobz: str):
    """Intrinsic ``dsyevd(jobz, 'L', n, a, n, w, work, lwork, iwork, liwork, info)``,
    returning ``info``; ``a``, ``w``, ``work``, ``iwork`` are pointers (``array.ctypes``)."""

    @intrinsic
    def driver(typingctx, n, a, w, work, lwork, iwork, liwork):
        sig = types.int32(n, a, w, work, lwork, iwork, liwork)

        def codegen(context, builder, sig, args):
            n, a, w, work, lwork, iwork, liwork = (
                (_int32 if isinstance(ty, types.Integer) else _pointer)(context, builder, v, ty)
                for v, ty in zip(args, sig.args, strict=True)
            )
            info = cgutils.alloca_once_value(builder, _I32(0))
            _call(
                builder,
                _DSYEVD,
                [
                    _slot(builder, _I8(ord(jobz))),
                    _slot(builder, _I8(ord("L"))),
                    _slot(builder, n),
                    a,
                    _slot(builder, n),
                    w,
                    work,
                    _slot(builder, lwork),
                    iwork,
                    _slot(builder, liwork),
                    builder.bitcast(info, cgutils.voidptr_t),
                ],
            )
            return builder.load(info)

        return sig, codegen

    return driver


_dsyevd_workspace = _workspace_query("N")  # eigenvalues only
_dsyevd = _driver("N")
_dsyevd_workspace_v = _workspace_query("V")  # and eigenvectors
_dsyevd_v = _driver("V")


@intrinsic
def _dpotrf(typingctx, n, a):
    """``dpotrf('L', n, a, n, info)``; returns ``info``.  ``a`` is a pointer (``array.ctypes``)."""
    sig = types.int32(n, a)

    def codegen(context, builder, sig, args):
        n = _int32(context, builder, args[0], sig.args[0])
        a = _pointer(context, builder, args[1], sig.args[1])
        info = cgutils.alloca_once_value(builder, _I32(0))
        _call(
            builder,
            _DPOTRF,
            [
                _slot(builder, _I8(ord("L"))),
                _slot(builder, n),
                a,
                _slot(builder, n),
                builder.bitcast(info, cgutils.voidptr_t),
            ],
        )
        return builder.load(info)

    return sig, codegen


@intrinsic
def _dgesdd(typingctx, m, n, a, s, u, vt, work, lwork, iwork):
    """``dgesdd('A', m, n, a, m, s, u, m, vt, n, work, lwork, iwork, info)``; returns
    ``info``.  Array arguments are pointers (``array.ctypes``); ``lwork = -1`` is the
    workspace query (the optimal size in ``work[0]``)."""
    sig = types.int32(m, n, a, s, u, vt, work, lwork, iwork)

    def codegen(context, builder, sig, args):
        m, n, a, s, u, vt, work, lwork, iwork = (
            (_int32 if isinstance(ty, types.Integer) else _pointer)(context, builder, v, ty)
            for v, ty in zip(args, sig.args, strict=True)
        )
        info = cgutils.alloca_once_value(builder, _I32(0))
        _call(
            builder,
            _DGESDD,
            [
                _slot(builder, _I8(ord("A"))),
                _slot(builder, m),
                _slot(builder, n),
                a,
                _slot(builder, m),
                s,
                u,
                _slot(builder, m),
                vt,
                _slot(builder, n),
                work,
                _slot(builder, lwork),
                iwork,
                builder.bitcast(info, cgutils.voidptr_t),
            ],
        )
        return builder.load(info)

    return sig, codegen


@jit
def eigh(A):
    """``(w, Q)``: ascending eigenvalues (N,) and orthonormal eigenvectors (columns of ``Q``
    (N, N), C order) of the symmetric ``A`` (N, N; its upper triangle in C order, i.e. LAPACK's
    lower one in Fortran order, is read), by ``dsyevd('V', 'L')`` with the optimal workspace:
    the calls and bits of Numba's ``np.linalg.eigh`` (used up to 0.7.1), on mcland's LAPACK
    instance.  ``A`` is not changed.  A LAPACK failure gives NaN (Numba's raised)."""
    N = A.shape[0]
    buf = np.empty((N, N))  # Fortran order of the result: row j of buf is eigenvector j
    for i in range(N):
        for j in range(N):
            buf[i, j] = A[i, j]  # A symmetric: buf read in Fortran order is A
    w = np.empty(N)
    info = np.int32(0)
    if N > 0:
        lwork, liwork = _dsyevd_workspace_v(N)
        info = np.int32(-1)
        if lwork > 0:
            work = np.empty(lwork)
            iwork = np.empty(liwork, np.int32)
            info = _dsyevd_v(N, buf.ctypes, w.ctypes, work.ctypes, lwork, iwork.ctypes, liwork)
    Q = np.ascontiguousarray(buf.T)
    if info != 0:
        w[:] = np.nan
        Q[:, :] = np.nan
    return w, Q


@jit
def svd(A):
    """``(U, s, Vt)`` with ``A = U diag(s) Vt`` for ``A`` (m, n): ``U`` (m, m), ``s``
    (min(m, n),) decreasing, ``Vt`` (n, n), all C order, by ``dgesdd('A')`` with the optimal
    workspace: the calls and bits of Numba's ``np.linalg.svd`` (used up to 0.7.1), on mcland's
    LAPACK instance.  A LAPACK failure gives NaN (Numba's raised)."""
    m, n = A.shape
    k = min(m, n)
    a = np.empty((n, m))  # Fortran order of A: a[j, i] = A[i, j]
    for i in range(m):
        for j in range(n):
            a[j, i] = A[i, j]
    s = np.empty(k)
    u = np.empty((m, m))  # Fortran order of U
    vt = np.empty((n, n))  # Fortran order of Vt
    info = np.int32(0)
    if k > 0:
        query = np.zeros(1)
        iwork = np.empty(8 * k, np.int32)
        info = _dgesdd(
            m, n, a.ctypes, s.ctypes, u.ctypes, vt.ctypes, query.ctypes, -1, iwork.ctypes
        )
        if info == 0:
            lwork = np.int32(query[0])
            work = np.empty(lwork)
            info = _dgesdd(
                m, n, a.ctypes, s.ctypes, u.ctypes, vt.ctypes, work.ctypes, lwork, iwork.ctypes
            )
    U = np.ascontiguousarray(u.T)
    Vt = np.ascontiguousarray(vt.T)
    if info != 0:
        s[:] = np.nan
        U[:, :] = np.nan
        Vt[:, :] = np.nan
    return U, s, Vt


@jit
def eigvalsh_destroy(hess, ev):
    """Ascending eigenvalues of the symmetric matrix whose upper triangle ``hess`` (N, N),
    C order, holds, into ``ev[:N]``; ``hess`` is overwritten.  Returns LAPACK's ``info``
    (0 on success; > 0 when ``dsyevd`` did not converge, then ``ev[:N]`` is NaN).

    Non-finite entries are not checked for (Numba's ``eigvalsh`` checks, and raises): a NaN
    off the diagonal makes ``dsyevd`` fail (``info > 0``), but one on the diagonal has been
    seen to give ``info == 0`` and finite, meaningless eigenvalues; callers check
    finiteness first where it can occur.  Allocates ``dsyevd``'s optimal workspace, which
    its query returns (``(2 + nb) N`` doubles, ``nb = 32`` being ``dsytrd``'s block size in
    SciPy's OpenBLAS; 54 kB for N = 200), as Numba's ``eigvalsh`` does."""
    N = hess.shape[0]
    if N == 0:
        return 0
    lwork, liwork = _dsyevd_workspace(N)
    info = np.int32(-1)
    if lwork > 0:
        work = np.empty(lwork)
        iwork = np.empty(liwork, np.int32)
        info = _dsyevd(N, hess.ctypes, ev.ctypes, work.ctypes, lwork, iwork.ctypes, liwork)
    if info != 0:
        ev[:N] = np.nan
    return info


@jit
def cholesky_destroy(hess):
    """Whether the Cholesky factorisation of the symmetric matrix whose upper triangle
    ``hess`` (N, N), C order, holds succeeds, i.e. whether it is positive definite (up to the
    factorisation's backward error); ``hess`` is overwritten by the partial factor.  NaN
    entries are not detected (OpenBLAS's ``dpotrf`` has been seen to succeed on them)."""
    N = hess.shape[0]
    if N == 0:
        return True
    return _dpotrf(N, hess.ctypes) == 0
