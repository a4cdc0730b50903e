"""BLAS/LAPACK behaviour: bit-reproducible kernels, and one thread inside mcland's work.

OpenBLAS off its AVX-512 kernels (below), and :func:`one_blas_thread`, the single place
where mcland limits BLAS/LAPACK to one thread.

OpenBLAS's AVX-512 ("SkylakeX") kernels give results whose last bits depend on the memory
alignment of the arrays, which changes from call to call: computing the same 30,000
points of ``runs/quick.toml`` twice in one process gave different smallest Hessian
eigenvalues (at the rounding floor, ~1e-11) for 58 of them.  With the AVX2 ("Haswell")
kernels the results were identical.  On a CPU with AVX-512 (which always has AVX2) this
module therefore sets ``OPENBLAS_CORETYPE=Haswell`` unless the user set it, before
NumPy/SciPy load OpenBLAS; it must be imported before them (``mcland/__init__`` does so
first).  A process that loaded SciPy's OpenBLAS before importing mcland keeps its kernels.
"""

from __future__ import annotations

import os
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "OPENBLAS_CORETYPE"


def _has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return " avx512f" in line
    except OSError:  # pragma: no cover - not Linux
        pass
    return False


if platform.machine().lower() in ("x86_64", "amd64") and _has_avx512():
    os.environ.setdefault(ENV, "Haswell")


_lock = threading.Lock()
_users = 0
_limiter = None


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """BLAS/LAPACK limited to one thread while the block runs (threadpoolctl).

    mcland's LAPACK calls are many small eigenproblems inside its own worker threads, where
    BLAS threads only contend.  The limit is process-wide, so nested and concurrent blocks
    share one: the first to enter sets it, the last to leave restores the original limits.
    Setting it costs about 2 ms (threadpoolctl scans the loaded libraries), which a run
    directory's batches would otherwise pay once each.
    """
    global _users, _limiter
    from threadpoolctl import threadpool_limits

    with _lock:
        if _users == 0:
            _limiter = threadpool_limits(limits=1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                _limiter.restore_original_limits()
                _limiter = None
