"""mcland's own instance of SciPy's LAPACK library, loaded with a fixed OpenBLAS kernel.

Why: OpenBLAS chooses its compute kernels once, when a process first loads it, from the
CPU or from ``OPENBLAS_CORETYPE``; its AVX-512 ("SkylakeX") kernels give results whose last
bits depend on the memory alignment of the arrays.  A process that loaded OpenBLAS before
mcland (a notebook that imported NumPy or SciPy first, a worker started by ``dask worker``)
keeps the kernels it chose, whatever mcland does afterwards.  So mcland does not call the
process's LAPACK: at import it loads a **private copy** of the very library SciPy's
``cython_lapack`` uses, with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_NUM_THREADS=1`` set only
while that copy initialises.  The copy is a separate instance (its own kernel table and
thread pool): the process's other OpenBLAS instances, and later changes to them
(threadpoolctl, ``OPENBLAS_CORETYPE``), do not affect it, and it affects none of them.

How: the library file is found among the loaded ones (threadpoolctl lists them) as the
32-bit-integer (LP64) OpenBLAS exporting ``dsyevd``; its bytes are written to an anonymous
memory file (``os.memfd_create``; a temporary file, unlinked once loaded, where memfd is
missing) and loaded from there with ``ctypes``.  The dynamic loader sees a new file (new
inode, new path), so it maps a second instance; the copy's own dependencies (libgfortran)
are already loaded by SciPy's library and shared.  Cost, once per process: finding the
library (threadpoolctl, about 0.05 s), one read and one write of its 25 MB (0.05-0.1 s on
the shared 2-core VM under load), and those 25 MB in memory.

The kernel: ``Haswell`` (AVX2 + FMA) on every x86-64 CPU that has AVX2 and FMA, Intel or
AMD, with or without AVX-512, so that all of them compute the same bits; on older x86-64
CPUs and other architectures OpenBLAS's own choice, which the numerics fingerprint
(:func:`describe`) records.  If no OpenBLAS can be found (SciPy built against MKL,
Accelerate, a system LAPACK...) mcland falls back to SciPy's ``cython_lapack`` itself, and
the fingerprint says ``shared``: then the records depend on that library as the process
loaded it.

This module is imported by :mod:`.lapack` before any kernel that calls LAPACK is loaded.
"""

from __future__ import annotations

import ctypes
import os
import platform
import tempfile
import threading

import scipy.linalg.cython_lapack  # loads SciPy's LAPACK (and its libgfortran) first

CORETYPE = "Haswell"  # the OpenBLAS kernel mcland's instance uses where the CPU has it
ENV_CORE = "OPENBLAS_CORETYPE"
ENV_THREADS = ("OPENBLAS_NUM_THREADS", "OPENBLAS_DEFAULT_NUM_THREADS")
ENV_MODE = "MCLAND_LAPACK"
ROUTINES = (
    "dsyevd", "dpotrf", "dgesdd",  # the dense path (.lapack)
    "dgeqrf", "dlarft", "dsbev", "dsymm", "dsyr2k", "dgemm",  # the two-stage solver (.band)
)  # fmt: skip
_BLAS = ("dsymm", "dsyr2k", "dgemm")  # in scipy.linalg.cython_blas, the others in cython_lapack
_PREFIXES = ("scipy_", "")  # SciPy's wheels prefix OpenBLAS's symbols with ``scipy_``


def _cpu_has_haswell_kernels() -> bool:
    """Whether the CPU runs OpenBLAS's Haswell kernels (x86-64 with AVX2 and FMA)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    from llvmlite import binding

    features = binding.get_host_cpu_features()
    return bool(features.get("avx2")) and bool(features.get("fma"))


def _symbol(lib: ctypes.CDLL, name: str) -> tuple[str, int] | None:
    for prefix in _PREFIXES:
        full = f"{prefix}{name}_"
        try:
            return full, ctypes.cast(getattr(lib, full), ctypes.c_void_p).value
        except AttributeError:
            continue
    return None


def _find_library() -> str | None:
    """Path of the loaded LP64 OpenBLAS that exports ``dsyevd``, else None; among several,
    the one SciPy's ``cython_lapack`` links to (its file names it: ``DT_NEEDED``)."""
    from threadpoolctl import threadpool_info

    found = []
    for info in threadpool_info():
        if info.get("internal_api") != "openblas":
            continue
        path = info.get("filepath")
        try:
            lib = ctypes.CDLL(path)  # already loaded: the same instance, no side effect
        except OSError:
            continue
        if _symbol(lib, "dsyevd") is not None:  # ILP64 builds export ``dsyevd_64_``
            found.append(path)
    if len(found) > 1:
        try:
            with open(scipy.linalg.cython_lapack.__file__, "rb") as f:
                linked = f.read()
        except OSError:
            linked = b""
        found.sort(key=lambda p: os.path.basename(p).encode() not in linked)
    return found[0] if found else None


def _load_copy(path: str, core: str | None) -> ctypes.CDLL:
    """A new instance of the library at ``path``: its bytes in a new (anonymous) file,
    loaded with ``OPENBLAS_CORETYPE=core`` (unless None) and one thread."""
    with open(path, "rb") as f:
        data = f.read()
    fd = None
    tmp = None
    if hasattr(os, "memfd_create"):
        try:
            fd = os.memfd_create("mcland-lapack")
        except OSError:
            fd = None
    if fd is not None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        where = f"/proc/self/fd/{fd}"
    else:  # pragma: no cover - platforms without memfd
        handle, tmp = tempfile.mkstemp(prefix="mcland-lapack-", suffix=".so")
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        where = tmp
    saved = {k: os.environ.get(k) for k in (ENV_CORE, *ENV_THREADS)}
    try:
        if core is not None:
            os.environ[ENV_CORE] = core
        for k in ENV_THREADS:
            os.environ[k] = "1"
        return ctypes.CDLL(where, mode=getattr(os, "RTLD_LOCAL", 0) | getattr(os, "RTLD_NOW", 2))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if fd is not None:
            os.close(fd)  # the mapping stays
        if tmp is not None:  # pragma: no cover
            os.unlink(tmp)


class _Library:
    """The loaded instance: routine addresses and what it is (for the fingerprint)."""

    def __init__(self) -> None:
        self.addresses: dict[str, int] = {}
        self.mode = "shared"  # or "private"
        self.source = None
        self.core = None
        self.config = None
        # MCLAND_LAPACK=shared: SciPy's instance, as up to 0.7.1 (for diagnosis and tests)
        path = None if os.environ.get(ENV_MODE) == "shared" else _find_library()
        if path is not None:
            core = CORETYPE if _cpu_has_haswell_kernels() else None
            lib = _load_copy(path, core)
            found = {name: _symbol(lib, name) for name in ROUTINES}
            if all(found.values()):
                self.addresses = {name: found[name][1] for name in ROUTINES}
                self.mode, self.source = "private", os.path.basename(path)
                prefix = found["dsyevd"][0][: -len("dsyevd_")]
                self.core = _text(lib, f"{prefix}openblas_get_corename")
                self.config = _text(lib, f"{prefix}openblas_get_config")
                self._lib = lib  # kept alive for the life of the process
        if not self.addresses:
            from numba.extending import get_cython_function_address

            self.addresses = {
                name: get_cython_function_address(
                    f"scipy.linalg.cython_{'blas' if name in _BLAS else 'lapack'}", name
                )
                for name in ROUTINES
            }
            self.source = "scipy.linalg.cython_lapack"


def _text(lib: ctypes.CDLL, name: str) -> str | None:
    try:
        fn = getattr(lib, name)
    except AttributeError:
        return None
    fn.restype = ctypes.c_char_p
    fn.argtypes = []
    value = fn()
    return value.decode(errors="replace") if value else None


_lock = threading.Lock()
_library: _Library | None = None


def library() -> _Library:
    """The process's instance (loaded on first use)."""
    global _library
    with _lock:
        if _library is None:
            _library = _Library()
        return _library


def address(name: str) -> int:
    """Address of the LAPACK or BLAS routine ``name`` (one of :data:`ROUTINES`) in mcland's
    instance."""
    return library().addresses[name]


def describe() -> dict[str, str | None]:
    """What computes mcland's LAPACK calls: ``mode`` (``private``: mcland's own instance;
    ``shared``: SciPy's, as the process loaded it), the library file, OpenBLAS's kernel
    (``core``) and its build string (``config``, which holds the version)."""
    lib = library()
    return {"mode": lib.mode, "library": lib.source, "core": lib.core, "config": lib.config}
