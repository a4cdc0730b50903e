"""Compare the records of two run directories bit for bit (e.g. a cluster run against an
in-process one): ``python -m mcland.rundir.compare RUN_A RUN_B``."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mcland.core import numerics
from mcland.rundir import kinds
from mcland.rundir.files import SHARD_GLOB, read_manifest


def _key(run_dir: str | Path) -> str | None:
    """The key column of the run's kind (None: none, e.g. ``classify`` with a user key)."""
    manifest = read_manifest(run_dir)
    return kinds.of(manifest).key(manifest)


def records(run_dir: str | Path) -> pa.Table:
    """Every record of a run directory, sorted by its kind's key column (stably: shard
    order within a key; no key: shard order), in one chunk, no metadata
    (neither the schema's nor its fields': field descriptions are documentation, not records,
    so runs written before they existed compare equal)."""
    files = sorted(Path(run_dir).glob(SHARD_GLOB))
    table = pa.concat_tables(
        [pq.read_table(f) for f in files], promote_options="permissive"
    ).replace_schema_metadata(None)
    bare = pa.schema([field.remove_metadata() for field in table.schema])
    table, key = table.cast(bare), _key(run_dir)
    return (table.sort_by(key) if key is not None else table).combine_chunks()


def record_bytes(table: pa.Table) -> bytes:
    """The Arrow IPC serialisation of ``table``: equal bytes mean equal records, bit for bit."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def compare_runs(a: str | Path, b: str | Path) -> dict[str, object]:
    """Row counts, duplicate ids, whether ids are ``0..n-1``, the columns whose bytes differ
    and the verdict ``equal``; ``numerics``: the fingerprint keys (:mod:`mcland.core.numerics`)
    of each run's shards (None: a shard written by 0.7.1 or earlier), and ``numerics_differ``:
    whether the shards were computed under more than one known fingerprint, the one
    reason besides a bug that records of the same run can differ."""
    ta, tb = records(a), records(b)
    key = _key(a)
    ids = ta.column(key).to_pylist() if key is not None else list(range(ta.num_rows))
    ka, kb = (list(numerics.of_shards(sorted(Path(r).glob(SHARD_GLOB)))) for r in (a, b))
    differ = [
        c for c in ta.column_names if record_bytes(ta.select([c])) != record_bytes(tb.select([c]))
    ]
    return {
        "rows": [ta.num_rows, tb.num_rows],
        "duplicate_ids": len(ids) - len(set(ids)),
        "ids_are_0_to_n-1": ids == list(range(len(ids))),
        "columns_differing": differ,
        "equal": ta.num_rows == tb.num_rows and not differ and ta.schema.equals(tb.schema),
        "numerics": {"a": sorted(map(str, ka)), "b": sorted(map(str, kb))},
        "numerics_differ": len({k for k in [*ka, *kb] if k is not None}) > 1,
    }


if __name__ == "__main__":
    print(compare_runs(sys.argv[1], sys.argv[2]))
