"""The one place where Numba compilation options are defined, and the upkeep of the cache.

Every private kernel is decorated with :data:`jit`, or with :data:`jit_inline` when it is
a stage of one bigger kernel called from a single place (``_analyze_whitened`` in
``analyze``, ``construct`` in ``draw_point``, ...): Numba then inlines its typed IR into
the caller instead of compiling it as a function of its own.  That matters for the first
run's compile time: every separately compiled function is optimised and turned into
machine code together with everything it calls, and again inside each caller, so a
deep chain of single-use stages paid for its leaves several times (measured per function
in docs/performance.md "First run").  Same options otherwise, so the same code.

``nogil`` lets disjoint point ranges run concurrently in Python threads
(:func:`mcland.execution.compute.compute`); this replaced a ``prange`` loop whose parallel lowering
re-optimised every inlined kernel and added about 30 s to the first compilation.  No kernel
uses ``fastmath``: the classification compares eigenvalues against rounding-error bounds,
which ``fastmath`` would void.

Numba invalidates a cached kernel only when *its own* source file changes, not when a
kernel it calls (and links in) does, so after a ``git pull`` of an editable install a
cached caller could silently run old code.  :func:`purge_stale_cache` prevents that: it
keeps a fingerprint of all kernel sources in the kernels' cache directory (wherever Numba
puts it: ``mcland/_kernels/__pycache__``, a per-user directory for read-only installs, or
``$NUMBA_CACHE_DIR``) and empties that directory when the fingerprint differs.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numba
from numba import njit

JIT_OPTIONS: dict[str, object] = {
    "cache": True,  # compiled code is reused by later processes
    "nogil": True,
    "error_model": "numpy",  # 0/0 gives nan instead of raising inside kernels
    "boundscheck": False,
}

_KERNELS = Path(__file__).resolve().parent  # mcland/_kernels
STAMP = "mcland-kernels.sha256"  # the fingerprint of the sources the cache was built from


def fingerprint() -> str:
    """SHA-256 of everything compiled into the kernels: ``mcland/_kernels/*.py`` (this file
    and the constants of :mod:`mcland._kernels.constants` among them; not the compile
    machinery of ``mcland/_kernels/compile/``, which is not compiled), plus the Numba and
    Python versions."""
    sources = sorted(_KERNELS.glob("*.py"))
    digest = hashlib.sha256(f"{numba.__version__} {sys.version}".encode())
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_dir() -> Path:
    """The directory where Numba caches the kernels of ``mcland/_kernels`` (created if
    needed), as Numba's own cache locator chooses it."""
    from mcland._kernels import cache_probe

    return Path(njit(cache=True)(cache_probe).stats.cache_path)


FINGERPRINT = fingerprint()  # of the sources this process compiles from, taken once


def purge_stale_cache() -> Path | None:
    """Empty the kernels' cache directory when it was built from other sources; returns the
    directory (``None`` when it cannot be written, e.g. a read-only install without a
    per-user cache: Numba then does not cache either)."""
    try:
        cache = cache_dir()
        stamp = cache / STAMP
        digest = FINGERPRINT
        if stamp.exists() and stamp.read_text() == digest:
            return cache
        for pattern in ("*.nbi", "*.nbc", "mcland-ready-*"):
            for f in cache.glob(pattern):
                f.unlink(missing_ok=True)
        stamp.write_text(digest)
        return cache
    except (OSError, RuntimeError):
        return None


CACHE_DIR = purge_stale_cache()
jit = njit(**JIT_OPTIONS)
jit_inline = njit(inline="always", **JIT_OPTIONS)
