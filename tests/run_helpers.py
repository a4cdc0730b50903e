"""Helpers shared by the run-directory tests: compare records, check a directory is clean."""

from __future__ import annotations

from pathlib import Path

from mcland.rundir import runlog
from mcland.rundir.compare import record_bytes, records
from mcland.rundir.files import CHECKSUM_DIR, CHECKSUM_SUFFIX, MANIFEST, shard_name, verify_checksum


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
    """Exactly ``run.json``, the run log, the plan's shards and their checksum files (no lock,
    no temporary file); every checksum verifies; sample ids 0..n-1 once each."""
    names = sorted(p.name for p in Path(run_dir).iterdir())
    expected = [
        MANIFEST,
        runlog.LOG_FILE,
        CHECKSUM_DIR,
        *(shard_name(k) for k in range(shards)),
    ]
    assert names == sorted(expected)
    sums = sorted(p.name for p in (Path(run_dir) / CHECKSUM_DIR).iterdir())
    assert sums == [shard_name(k) + CHECKSUM_SUFFIX for k in range(shards)]
    for k in range(shards):
        assert verify_checksum(Path(run_dir) / shard_name(k)) == "ok"
    ids = records(run_dir).column("sample_id").to_pylist()
    assert ids == list(range(n))
