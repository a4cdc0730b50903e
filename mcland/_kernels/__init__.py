"""Private Numba kernels.  Nothing here is public API; see :mod:`mcland` instead."""


def cache_probe() -> int:  # pragma: no cover - never called
    """A function of this package, for finding where Numba caches its kernels
    (:func:`mcland._kernels.jit.cache_dir`)."""
    return 0
