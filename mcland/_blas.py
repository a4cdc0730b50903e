"""Bit-reproducible BLAS/LAPACK: keep OpenBLAS off its AVX-512 kernels.

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
