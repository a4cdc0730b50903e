"""Compare the records of two run directories bit for bit (e.g. a cluster run against an
in-process one): ``python -m mcland.rundir.compare RUN_A RUN_B``.

The runs are streamed shard by shard in key order (the key their kind names,
:mod:`mcland.rundir.kinds`: ``sample_id``; ``row`` for a classify run) and compared in aligned slices, so memory does not grow with the runs: a shard and a
slice of the other run at a time.  Shards whose key ranges overlap (not a valid run
directory, whose shards hold consecutive ids) are read together and sorted, as one.
On a cluster, where the data is: ``mcland.execution.cluster.on_cluster(compare_runs, a, b,
scheduler=ADDRESS)``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mcland.core import numerics
from mcland.rundir import kinds
from mcland.rundir.files import MANIFEST, SHARD_GLOB, read_manifest


def _bare(schema: pa.Schema) -> pa.Schema:
    """``schema`` without metadata (neither the schema's nor its fields')."""
    return pa.schema([field.remove_metadata() for field in schema])


def _key(run_dir: str | Path, schema: pa.Schema) -> str | None:
    """The column that orders the records, as the run's kind names it (``sample_id``;
    ``row`` for a classify run); None (shard order) for a kind without an integer key or a
    directory without a manifest whose records have no ``sample_id``."""
    if (Path(run_dir) / MANIFEST).is_file():
        manifest = read_manifest(run_dir)
        if kinds.kind_of(manifest) in kinds.names():
            return kinds.of(manifest).key(manifest)
    return "sample_id" if "sample_id" in schema.names else None


def records(run_dir: str | Path) -> pa.Table:
    """Every record of a run directory, sorted by its key (``sample_id``, ``row`` for a
    classify run), in one chunk, no metadata (neither the schema's nor its fields': field
    descriptions are documentation, not records, so runs written before they existed compare
    equal).  In memory: for small runs; :func:`compare_runs` streams."""
    files = sorted(Path(run_dir).glob(SHARD_GLOB))
    table = pa.concat_tables(
        [pq.read_table(f) for f in files], promote_options="permissive"
    ).replace_schema_metadata(None)
    bare = _bare(table.schema)
    key = _key(run_dir, bare)
    table = table.cast(bare)
    return (table.sort_by(key) if key else table).combine_chunks()


def record_bytes(table: pa.Table) -> bytes:
    """The Arrow IPC serialisation of ``table``: equal bytes mean equal records, bit for bit."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _key_range(path: Path, key: str) -> tuple[int, int] | None:
    """Smallest and largest key of a shard from its Parquet statistics (None if absent)."""
    meta = pq.read_metadata(path)
    col = meta.schema.to_arrow_schema().get_field_index(key)
    lo = hi = None
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(col).statistics
        if stats is None or not stats.has_min_max:
            return None
        lo = stats.min if lo is None else min(lo, stats.min)
        hi = stats.max if hi is None else max(hi, stats.max)
    return None if lo is None else (int(lo), int(hi))


def ordered_tables(run_dir: str | Path) -> tuple[pa.Schema, Iterator[pa.Table]]:
    """The run's schema (unified over the shards, no metadata) and its records as a stream
    of tables in key order (a stable sort: a dynamics run's rows of one point keep their
    order), one shard — or one group of shards whose key ranges overlap — at a time."""
    files = sorted(Path(run_dir).glob(SHARD_GLOB))
    schemas = [_bare(pq.read_schema(f)) for f in files]
    schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])
    key = _key(run_dir, schema) if files else None
    ranges = [_key_range(f, key) if key else None for f in files]
    groups: list[list[int]] = []
    if key is None:  # shard order: one shard at a time
        groups = [[i] for i in range(len(files))]
    elif any(r is None for r in ranges):  # no statistics: one group (in memory)
        groups = [list(range(len(files)))] if files else []
    else:
        order = sorted(range(len(files)), key=lambda i: ranges[i])
        top = None
        for i in order:
            lo, hi = ranges[i]
            if groups and top is not None and lo <= top:
                groups[-1].append(i)
                top = max(top, hi)
            else:
                groups.append([i])
                top = hi

    def stream() -> Iterator[pa.Table]:
        for group in groups:
            parts = [pq.read_table(files[i]).replace_schema_metadata(None) for i in sorted(group)]
            table = pa.concat_tables(parts, promote_options="permissive").cast(schema)
            yield table.sort_by(key) if key else table

    return schema, stream()


def _slices(tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The tables of a stream, skipping empty ones."""
    for t in tables:
        if t.num_rows:
            yield t


def compare_runs(a: str | Path, b: str | Path) -> dict[str, object]:
    """Row counts, duplicate ids, whether ids are ``0..n-1``, the columns whose bytes differ
    and the verdict ``equal`` (of run ``a``'s key column: ``sample_id``, ``row`` for a
    classify run); ``numerics``: the fingerprint keys (:mod:`mcland.core.numerics`) of each
    run's shards (None: a shard written by 0.7.1 or earlier), and ``numerics_differ``:
    whether the shards were computed under more than one known fingerprint, the one reason
    besides a bug that records of the same run can differ.

    Both runs are streamed in key order and compared slice by slice (memory bounded by a
    shard of each).  On a Dask worker, where the data is:
    :func:`mcland.execution.cluster.on_cluster` ``(compare_runs, a, b, scheduler=...)``.
    """
    schema_a, sa = ordered_tables(a)
    schema_b, sb = ordered_tables(b)
    columns = schema_a.names
    key = _key(a, schema_a) if columns else None
    differ: set[str] = set()
    rows = [0, 0]
    dupes, prev, sequential = 0, None, True
    ia, ib = _slices(sa), _slices(sb)
    ta = tb = None
    while True:
        ta = ta if ta is not None else next(ia, None)
        tb = tb if tb is not None else next(ib, None)
        if ta is None or tb is None:
            break
        n = min(ta.num_rows, tb.num_rows)
        pa_, pb_ = ta.slice(0, n), tb.slice(0, n)
        rows[0] += n
        rows[1] += n
        if key is not None:
            ids = pa_.column(key).to_numpy()
            start = rows[0] - n
            sequential &= bool((ids == range(start, start + n)).all()) if n else True
            dupes += int((ids[1:] == ids[:-1]).sum()) + int(prev is not None and ids[0] == prev)
            prev = ids[-1]
        for c in columns:
            if c in differ:
                continue
            if c not in schema_b.names or not _same(pa_.column(c), pb_.column(c)):
                differ.add(c)
        ta = ta.slice(n) if ta.num_rows > n else None
        tb = tb.slice(n) if tb.num_rows > n else None
    for t, it, side in ((ta, ia, 0), (tb, ib, 1)):  # the rest of the longer run
        while t is not None:
            rows[side] += t.num_rows
            if side == 0 and key is not None:
                ids = t.column(key).to_numpy()
                start = rows[0] - t.num_rows
                sequential &= bool((ids == range(start, start + t.num_rows)).all())
                dupes += int((ids[1:] == ids[:-1]).sum()) + int(prev is not None and ids[0] == prev)
                prev = ids[-1]
            t = next(it, None)
    ka, kb = (list(numerics.of_shards(sorted(Path(r).glob(SHARD_GLOB)))) for r in (a, b))
    if rows[0] != rows[1]:  # columns of different lengths never have the same bytes
        differ = set(columns)
    return {
        "rows": rows,
        "duplicate_ids": dupes,
        "ids_are_0_to_n-1": sequential,
        "columns_differing": [c for c in columns if c in differ],
        "equal": rows[0] == rows[1] and not differ and schema_a.equals(schema_b),
        "numerics": {"a": sorted(map(str, ka)), "b": sorted(map(str, kb))},
        "numerics_differ": len({k for k in [*ka, *kb] if k is not None}) > 1,
    }


def _same(x: pa.ChunkedArray, y: pa.ChunkedArray) -> bool:
    """Whether two columns of equal length have the same IPC bytes (fresh buffers).

    Dictionary columns (the type codes) are compared by value: their dictionaries follow
    the values a Parquet column chunk holds, so two shard plans of the same records give
    different dictionaries."""
    if x.type != y.type:
        return False
    if pa.types.is_dictionary(x.type):
        x, y = x.cast(x.type.value_type), y.cast(y.type.value_type)
    ax = pa.concat_arrays(x.chunks) if x.num_chunks else pa.array([], x.type)
    ay = pa.concat_arrays(y.chunks) if y.num_chunks else pa.array([], y.type)
    tx = pa.table({"c": ax})
    ty = pa.table({"c": ay})
    return record_bytes(tx) == record_bytes(ty)


def main(argv: list[str] | None = None) -> int:
    """``python -m mcland.rundir.compare RUN_A RUN_B``: print the comparison; exit 0 when the
    runs are equal, 1 otherwise."""
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m mcland.rundir.compare", description=__doc__.splitlines()[0]
    )
    ap.add_argument("a")
    ap.add_argument("b")
    ns = ap.parse_args(argv)
    result = compare_runs(ns.a, ns.b)
    print(result)
    return 0 if result["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
