"""A small run directory shared by the analysis and report tests (computed once)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mcland
from mcland.rundir.files import checksum_path, file_sha256

# Depths 2-4 so H = 2 and W = 0 points at H >= 3 occur; scaled data; three shards so
# loading crosses files; spectra stored for the report's spectral densities.
SMALL_RUN_CONFIG = {
    "n": 300,
    "seed": 515,
    "architecture": {"depth": [2, 4], "d_y": [1, 3], "d_x_extra": [0, 2], "hidden": [1, 4]},
    "data": {"m": 30, "scale_x": [0.1, 10.0], "scale_y": [0.1, 10.0]},
    "output": {"spectrum": True, "shard_size": 100},
}
_RUNS: dict[str, Path] = {}


def small_run(factory: pytest.TempPathFactory) -> Path:
    """The run directory of :data:`SMALL_RUN_CONFIG` (sampled on first use)."""
    if "small" not in _RUNS:
        out = factory.mktemp("runs") / "small"
        mcland.run(SMALL_RUN_CONFIG, out, progress=False)
        _RUNS["small"] = out
    return _RUNS["small"]


def tampered_copy(src: Path, dst: Path, edit: Callable[[pd.DataFrame], None]) -> Path:
    """Copy the run ``src`` to ``dst`` and apply ``edit`` (in place) to its first shard, whose
    checksum file is rewritten to match (as if the run had written those records)."""
    shutil.copytree(src, dst)
    first = sorted(dst.glob("part-*.parquet"))[0]
    table = pq.read_table(first)
    df = table.to_pandas().copy(deep=True)  # arrow-backed arrays are read-only
    edit(df)
    new = pa.Table.from_pandas(df, schema=table.schema, preserve_index=False)
    pq.write_table(new, first)
    digest = file_sha256(first)
    checksum_path(first).write_text(f"{digest}  {first.name}\n", encoding="ascii")
    return dst
