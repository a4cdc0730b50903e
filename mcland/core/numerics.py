"""The numerics fingerprint: what, besides the configuration and the seed, decides the bits.

mcland's records are computed by its compiled kernels (Numba/LLVM), by its own LAPACK
instance (:mod:`mcland._kernels.lapack_library`) and, for a few columns, by NumPy's
element-wise operations and sums.  Within one fingerprint the records do not depend on the
process (import order, ``OPENBLAS_CORETYPE``, the BLAS NumPy loaded, threads, workers,
chunking).  Across fingerprints they may differ in the last bits, and then in anything
decided from them (a type at a tolerance's edge, an integration's step count):

* ``lapack``: which library computes mcland's LAPACK calls, and OpenBLAS's kernel
  (``core``) and build (``config``, which holds its version);
* ``numba``, ``llvmlite``: the compiler of the kernels; ``numpy``, ``scipy``: the versions
  (NumPy's sums, its random streams);
* ``machine`` and ``cpu_features``: the instruction-set features that change results:
  ``fma`` (glibc's ``exp``/``log``/``pow`` choose FMA code paths at run time), ``avx2``
  (whether the Haswell kernel can be used) and ``avx512f``; ``libc``, the C library.

The CPU model (``cpu``) is recorded for information but is not part of :func:`key`: the
kernels are compiled without fast-math, so LLVM's code for a different model of the same
features rounds identically.

The fingerprint is stored per session in the run log (:mod:`mcland.rundir.runlog`) and per shard
in its Parquet metadata (key :data:`META_KEY`); ``mcland status``, resumes and
:mod:`mcland.rundir.compare` report shards computed under different fingerprints.
"""

from __future__ import annotations

import hashlib
import json
import platform
from functools import lru_cache
from pathlib import Path
from typing import Any

META_KEY = "mcland.numerics"  # Parquet schema metadata key of a shard's fingerprint
_FEATURES = ("avx2", "avx512f", "fma")
_KEYED = ("lapack", "numba", "llvmlite", "numpy", "scipy", "machine", "cpu_features", "libc")


@lru_cache(maxsize=1)
def fingerprint() -> dict[str, Any]:
    """This process's numerics fingerprint (module docstring), with its :func:`key`."""
    import llvmlite
    import numba
    import numpy
    import scipy
    from llvmlite import binding

    from mcland._kernels import lapack_library

    features = binding.get_host_cpu_features()
    fp: dict[str, Any] = {
        "lapack": lapack_library.describe(),
        "numba": numba.__version__,
        "llvmlite": llvmlite.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "machine": platform.machine(),
        "cpu_features": [f for f in _FEATURES if features.get(f)],
        "libc": " ".join(platform.libc_ver()).strip() or None,
        "cpu": binding.get_host_cpu_name(),
    }
    fp["key"] = key(fp)
    return fp


def key(fp: dict[str, Any]) -> str:
    """12 hex digits identifying the fields of ``fp`` that can change the records."""
    keyed = {k: fp.get(k) for k in _KEYED}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]


def summary(fp: dict[str, Any] | None) -> str:
    """One line: ``key: LAPACK private Haswell (OpenBLAS 0.3.30), numba 0.68.1, ...``."""
    if not fp:
        return "unknown (no fingerprint: written by mcland 0.7.1 or earlier)"
    lap = fp.get("lapack") or {}
    config = str(lap.get("config") or "").split(" DYNAMIC_ARCH")[0]
    lapack = f"LAPACK {lap.get('mode')} {lap.get('core') or ''} ({config or lap.get('library')})"
    return (
        f"{fp.get('key')}: {' '.join(lapack.split())}, numba {fp.get('numba')}, numpy "
        f"{fp.get('numpy')}, scipy {fp.get('scipy')}, {fp.get('machine')} "
        f"[{' '.join(fp.get('cpu_features') or [])}], {fp.get('libc')}"
    )


def differences(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[str]:
    """The keyed fields in which two fingerprints differ (``["all"]`` if one is unknown)."""
    if not a or not b:
        return [] if not a and not b else ["all"]
    return [k for k in _KEYED if a.get(k) != b.get(k)]


def of_shard(path: str | Path) -> dict[str, Any] | None:
    """The fingerprint stored in a shard's metadata (None if it has none: written by 0.7.1
    or earlier, or not readable)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, ValueError):
        return None
    raw = meta.get(META_KEY.encode())
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def of_shards(paths: list[Path]) -> dict[str | None, list[Path]]:
    """Shards grouped by fingerprint key (None: no fingerprint), in the order given."""
    groups: dict[str | None, list[Path]] = {}
    for p in paths:
        fp = of_shard(p)
        groups.setdefault(fp.get("key") if fp else None, []).append(p)
    return groups


def report(paths: list[Path], current: dict[str, Any] | None = None) -> list[str]:
    """Lines saying under which fingerprints the shards ``paths`` were computed, and whether
    that is one fingerprint (then records are as one session would give them) or several;
    with ``current``, also whether it is this process's."""
    by_key: dict[str | None, list[Path]] = {}
    fps: dict[str | None, dict[str, Any] | None] = {}
    for p in paths:
        fp = of_shard(p)
        k = fp.get("key") if fp else None
        by_key.setdefault(k, []).append(p)
        fps.setdefault(k, fp)
    lines = []
    for k, ps in by_key.items():
        names = ", ".join(p.name for p in ps[:4]) + (
            f" (+{len(ps) - 4} more)" if len(ps) > 4 else ""
        )
        lines.append(f"numerics   {len(ps)} shard(s) {summary(fps[k])}: {names}")
    known = [k for k in by_key if k is not None]
    if len(known) > 1:
        lines.append(
            f"numerics   MIXED: shards computed under {len(known)} fingerprints (differing in "
            f"{', '.join(differences(fps[known[0]], fps[known[1]]))}); their records may differ in "
            "the last bits from a run computed under one (docs/numerics.md)"
        )
    if current is not None and known and any(k != current.get("key") for k in known):
        lines.append(
            f"numerics   this process computes under {summary(current)}: shards it writes may "
            "differ in the last bits from the ones above"
        )
    return lines


def mixed(paths: list[Path]) -> bool:
    """Whether the shards ``paths`` were computed under more than one known fingerprint."""
    return len([k for k in of_shards(paths) if k is not None]) > 1
