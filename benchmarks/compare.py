"""Compare the records of two run directories, byte for byte (Arrow IPC of each column)."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def records(run_dir: Path) -> pa.Table:
    files = sorted(Path(run_dir).glob("part-*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files]).replace_schema_metadata(None)
    return table.sort_by("sample_id").combine_chunks()


def ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def compare(a: Path, b: Path) -> dict[str, object]:
    """Row counts, duplicate ids and the columns whose bytes differ."""
    ta, tb = records(a), records(b)
    ids = ta.column("sample_id").to_numpy()
    differ = [c for c in ta.column_names if ipc(ta.select([c])) != ipc(tb.select([c]))]
    return {
        "rows": [ta.num_rows, tb.num_rows],
        "duplicate_ids": int(ids.size - len(set(ids.tolist()))),
        "ids_are_0_to_n-1": bool((ids == range(ids.size)).all()),
        "columns_differing": differ,
        "equal": ta.num_rows == tb.num_rows and not differ,
    }


if __name__ == "__main__":
    print(compare(Path(sys.argv[1]), Path(sys.argv[2])))
