"""Compare the records of two run directories column by column, bit for bit (pyarrow's
``Array.equals`` on the shards sorted by ``sample_id``): the columns that differ, those
only one has.

Usage::

    python benchmarks/compare_columns.py RUN_A RUN_B
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.dataset as ds


def _table(run: str):
    files = sorted(str(p) for p in Path(run).glob("part-*.parquet"))
    return ds.dataset(files, format="parquet").to_table().sort_by("sample_id")


def main(a: str, b: str) -> int:
    ta, tb = _table(a), _table(b)
    shared = [c for c in ta.column_names if c in tb.column_names]
    differ = [c for c in shared if not ta.column(c).equals(tb.column(c))]
    print(f"rows {ta.num_rows} / {tb.num_rows}; only in A: {sorted(set(ta.column_names) - set(shared))}; "
          f"only in B: {sorted(set(tb.column_names) - set(shared))}; "
          f"{len(shared)} shared columns, differing: {differ}")  # fmt: skip
    return int(bool(differ) or ta.num_rows != tb.num_rows)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
