"""Compare the records of two run directories column by column, bit for bit (pyarrow's
``Array.equals`` on the shards sorted by ``sample_id``, and where it says no, the float
values' bits, so that equal NaNs count as equal): the columns that differ, those only one
has.

Usage::

    python benchmarks/compare_columns.py RUN_A RUN_B
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds


def _table(run: str):
    files = sorted(str(p) for p in Path(run).glob("part-*.parquet"))
    return ds.dataset(files, format="parquet").to_table().sort_by("sample_id")


def _same(x: pa.Array, y: pa.Array) -> bool:
    """``x`` and ``y`` hold the same values bit for bit (NaN payloads included)."""
    if x.equals(y):
        return True
    if x.type != y.type or len(x) != len(y):
        return False
    if not pc.is_null(x).equals(pc.is_null(y)):
        return False
    if pa.types.is_list(x.type) or pa.types.is_large_list(x.type):
        lx, ly = pc.list_value_length(x), pc.list_value_length(y)
        return lx.equals(ly) and _same(pc.list_flatten(x), pc.list_flatten(y))
    if pa.types.is_floating(x.type):
        vx = np.asarray(x.fill_null(0.0).to_numpy(zero_copy_only=False))
        vy = np.asarray(y.fill_null(0.0).to_numpy(zero_copy_only=False))
        return vx.tobytes() == vy.tobytes()
    return False


def main(a: str, b: str) -> int:
    ta, tb = _table(a), _table(b)
    shared = [c for c in ta.column_names if c in tb.column_names]
    differ = [
        c for c in shared if not _same(ta.column(c).combine_chunks(), tb.column(c).combine_chunks())
    ]
    print(f"rows {ta.num_rows} / {tb.num_rows}; only in A: {sorted(set(ta.column_names) - set(shared))}; "
          f"only in B: {sorted(set(tb.column_names) - set(shared))}; "
          f"{len(shared)} shared columns, differing: {differ}")  # fmt: skip
    return int(bool(differ) or ta.num_rows != tb.num_rows)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
