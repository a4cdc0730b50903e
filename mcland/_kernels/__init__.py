"""Private Numba kernels.  Nothing here is public API; see :mod:`mcland` instead."""
