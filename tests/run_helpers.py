"""Helpers shared by the run-directory tests: compare records, check a directory is clean."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mcland import storage


def records(run_dir: Path) -> pa.Table:
    """Every record of a run directory, sorted by ``sample_id``, in one chunk, no metadata."""
    files = sorted(Path(run_dir).glob(storage.SHARD_GLOB))
    table = pa.concat_tables([pq.read_table(f) for f in files]).replace_schema_metadata(None)
    return table.sort_by("sample_id").combine_chunks()


def record_bytes(table: pa.Table) -> bytes:
    """The Arrow IPC serialisation of ``table``: equal bytes mean equal records, bit for bit."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def assert_same_records(a: Path, b: Path) -> None:
    """The run directories ``a`` and ``b`` hold the same records, byte for byte."""
    ta, tb = records(a), records(b)
    assert ta.num_rows == tb.num_rows, (ta.num_rows, tb.num_rows)
    assert ta.schema.equals(tb.schema)
    differ = [
        name
        for name in ta.column_names
        if record_bytes(ta.select([name])) != record_bytes(tb.select([name]))
    ]
    assert not differ, f"columns differ: {differ}"
    assert record_bytes(ta) == record_bytes(tb)


def assert_clean(run_dir: Path, n: int, shards: int) -> None:
    """Exactly ``run.json`` and the plan's shards; sample ids 0..n-1 once each."""
    names = sorted(p.name for p in Path(run_dir).iterdir())
    assert names == sorted([storage.MANIFEST, *(storage.shard_name(k) for k in range(shards))])
    ids = records(run_dir).column("sample_id").to_pylist()
    assert ids == list(range(n))
