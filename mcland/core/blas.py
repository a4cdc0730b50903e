"""One BLAS/LAPACK thread inside mcland's work: :func:`one_blas_thread`, the single place
where mcland limits BLAS/LAPACK to one thread.

mcland's own LAPACK calls do not go through the process's OpenBLAS: they use a private
instance with a fixed kernel (:mod:`mcland._kernels.lapack_library`), so mcland no longer
sets ``OPENBLAS_CORETYPE`` for the process (up to 0.7 it set ``Haswell`` at import, which
took effect only when mcland was imported before NumPy and SciPy).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

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
