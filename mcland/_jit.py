"""The one place where Numba compilation options are defined.

Every private kernel is decorated with :data:`jit`.  ``nogil`` lets disjoint point ranges
run concurrently in Python threads (:func:`mcland.pipeline.compute`); this replaced a
``prange`` loop whose parallel lowering re-optimised every inlined kernel and added about
30 s to the first compilation.  No kernel uses ``fastmath``: the classification compares
eigenvalues against rounding-error bounds, which ``fastmath`` would void.

Numba invalidates a cached kernel only when *its own* source file changes, not when a
kernel it calls (and inlines) does, so after a ``git pull`` of an editable install a cached
caller could silently run old code.  :func:`_purge_stale_cache` prevents that: it keeps a
fingerprint of all kernel sources next to the cache and empties the cache when it differs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from numba import njit

JIT_OPTIONS: dict[str, object] = {
    "cache": True,  # compiled code is reused by later processes
    "nogil": True,
    "error_model": "numpy",  # 0/0 gives nan instead of raising inside kernels
    "boundscheck": False,
}


def _purge_stale_cache() -> None:
    here = Path(__file__).resolve().parent
    sources = [Path(__file__).resolve(), *sorted((here / "_kernels").glob("*.py"))]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()
    cache = here / "_kernels" / "__pycache__"
    stamp = cache / "mcland-kernels.sha256"
    try:
        if stamp.exists() and stamp.read_text() == digest:
            return
        for f in [*cache.glob("*.nbi"), *cache.glob("*.nbc")]:
            f.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        stamp.write_text(digest)
    except OSError:  # read-only install: Numba then caches per user, keyed by file times
        pass


_purge_stale_cache()
jit = njit(**JIT_OPTIONS)
