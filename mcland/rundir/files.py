"""The files of a run directory: their names, atomic writes, checksums, the manifest, loading.

A run directory holds ``run.json`` (the manifest: resolved configuration, seed, n,
package version, shard plan), written before any shard, and shards
``part-NNNNNN.parquet`` of contiguous ids.  Shards are written to a temporary name and
renamed, so a reader never sees a partial file and an interrupted run keeps every finished
shard.  The manifest's content is also stored in every shard's Parquet key-value metadata
under ``mcland``.  The contract (shard plan, shard checks, resume) is in
:mod:`mcland.rundir.directory`; what each kind of run puts in its shards, in
:mod:`mcland.rundir.kinds`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from mcland.core import faults
from mcland.core.errors import MclandError
from mcland.rundir import kinds

MANIFEST = "run.json"
# Shard naming, for the files and the run-directory contract (mcland.rundir.directory) alike:
# shard k is the file SHARD_FILE.format(k=k); the pattern is also recorded in every manifest.
SHARD_FILE = "part-{k:06d}.parquet"
SHARD_GLOB = "part-*.parquet"
SHARD_RE = re.compile(r"part-(\d+)\.parquet")  # fullmatch: group 1 is k
TMP_PREFIX = ".tmp-"  # files being written: TMP_PREFIX + "PID-TOKEN-" + final name
# the SHA-256 of shard NAME's bytes, as `sha256sum` writes it, is CHECKSUM_DIR/NAME.sha256
CHECKSUM_DIR = "checksums"
CHECKSUM_SUFFIX = ".sha256"
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)  # a full disk or quota


def shard_name(k: int) -> str:
    """The file name of shard ``k``."""
    return SHARD_FILE.format(k=k)


def tmp_name(name: str) -> str:
    """A temporary name, unique to this process and call, under which the file ``name`` is
    written before it is renamed (two attempts at one shard never share one)."""
    return f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{name}"


def checksum_path(path: Path) -> Path:
    """The checksum file of the shard at ``path``: ``DIR/checksums/NAME.sha256``."""
    return path.parent / CHECKSUM_DIR / (path.name + CHECKSUM_SUFFIX)


def _write_atomic(path: Path, data: bytes | memoryview, moment: str | None = None) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same directory,
    flushed to disk, then renamed; the temporary file never outlives the call."""
    tmp = path.with_name(tmp_name(path.name))
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if moment is not None:
            faults.checkpoint(moment)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_shard(
    table: pa.Table, path: Path, meta: dict[str, Any], numerics: dict[str, Any] | None = None
) -> None:
    """Write ``table`` to ``path`` atomically, with its checksum file.

    ``meta`` (the manifest) is stored under the schema metadata key ``mcland``, and
    ``numerics`` (the writing process's fingerprint, :mod:`mcland.core.numerics`), if given,
    under ``mcland.numerics``.

    The Parquet bytes are made in memory and hashed (SHA-256); the checksum file
    (:func:`checksum_path`) is written first, then the shard (temporary file in the same
    directory, ``fsync``, rename).  So a shard under its final name always has its checksum
    beside it, and a crash in between leaves at most a checksum of a missing shard, which
    the next write replaces.  Two attempts at one shard write identical bytes.
    """
    metadata = {"mcland": json.dumps(meta, sort_keys=True)}
    if numerics is not None:  # issue 23: the fingerprint the shard was computed under
        metadata["mcland.numerics"] = json.dumps(numerics, sort_keys=True)
    table = table.replace_schema_metadata(metadata)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **kinds.of(meta).parquet_options)
    data = memoryview(sink.getvalue())
    digest = hashlib.sha256(data).hexdigest()
    sums = path.parent / CHECKSUM_DIR
    sums.mkdir(exist_ok=True)
    tmp = path.with_name(tmp_name(path.name))
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        faults.checkpoint("shard-tmp")
        _write_atomic(checksum_path(path), f"{digest}  {path.name}\n".encode())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify_checksum(path: Path) -> str:
    """``"ok"``, ``"mismatch"`` (the bytes changed since the shard was written) or
    ``"absent"`` (no checksum file: written by mcland 0.5.0 or earlier) for the shard at
    ``path``."""
    try:
        text = checksum_path(path).read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return "absent"
    expected = text.split(maxsplit=1)[0] if text.strip() else ""
    return "ok" if expected == file_sha256(path) else "mismatch"


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    """Write ``run.json`` atomically (temporary file, then rename)."""
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
    _write_atomic(run_dir / MANIFEST, data, "manifest-tmp")


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """The manifest of a run directory, or MclandError if there is none."""
    path = Path(run_dir) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MclandError(f"{run_dir} is not an mcland run directory (no {MANIFEST})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise MclandError(f"cannot read {path}: {exc}") from None


# the shard list with the checksum check, shared by load and rundir.scan
def verified_files(run_dir: str | Path, verify: str = "error", stacklevel: int = 2) -> list[Path]:
    """The shard files of ``run_dir``, in name order, checked as ``verify`` says.

    ``"error"``: a shard whose bytes fail its checksum raises MclandError naming it;
    ``"skip"``: it is left out with a RuntimeWarning; ``"off"``: no check.  Shards without
    a checksum file (mcland 0.5.0) are kept unverified.  Used by :func:`load` and by the
    bounded-memory analysis (:mod:`mcland.rundir.scan`), so both read the same shards.
    """
    run_dir = Path(run_dir)
    files = sorted(run_dir.glob(SHARD_GLOB))
    if verify not in ("error", "skip", "off"):
        raise MclandError(f"verify must be 'error', 'skip' or 'off', got {verify!r}")
    if verify != "off":
        bad = [x for x in files if verify_checksum(x) == "mismatch"]
        if bad and verify == "error":
            raise MclandError(
                f"{run_dir}: {', '.join(x.name for x in bad)} fail(s) the checksum check "
                "(the bytes changed after the write); rerun `mcland sample` on the directory "
                "to recompute, or load with verify='skip'"
            )
        for x in bad:
            warnings.warn(
                f"{x}: fails its checksum check, left out", RuntimeWarning, stacklevel=stacklevel
            )
        files = [x for x in files if x not in bad]
    return files


def column_default(field: pa.Field) -> Any:
    """The value a record written before the column ``field`` existed has: the JSON in its
    metadata key ``default`` (e.g. ``spectrum_zeros``: 0), or None (read as null, e.g.
    ``verdict`` in a 0.7 run)."""
    raw = (field.metadata or {}).get(b"default")
    return None if raw is None else json.loads(raw)


def fill_defaults(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the nulls of every non-nullable column that has a
    :func:`column_default` replaced by it (only shards written before the column existed
    have them)."""
    for i, name in enumerate(table.column_names):
        if name not in schema.names:
            continue
        field = schema.field(name)
        default = column_default(field)
        col = table.column(i)
        if default is None or field.nullable or not col.null_count:
            continue
        filled = col.fill_null(pa.scalar(default, field.type))
        table = table.set_column(i, table.field(i), filled)
    return table


def load(
    run_dir: str | Path,
    columns: list[str] | None = None,
    filters: Any = None,
    verify: str = "error",
) -> pd.DataFrame:
    """Load the records of a run directory as a DataFrame, sorted by ``sample_id`` (a
    stable sort: a dynamics run's rows of one point stay in delta or eps order; a classify
    run's rows are in input order).

    Parameters
    ----------
    run_dir : path
        Directory written by ``mcland sample``, ``classify`` or ``dynamics`` (their schemas:
        :mod:`mcland.rundir.kinds`).
    columns : list of str, optional
        Subset of columns to read (column pushdown).
    filters : optional
        A pyarrow expression or DNF list such as ``[("H", "==", 3)]`` (predicate pushdown).
    verify : {"error", "skip", "off"}
        Every shard's bytes are checked against its checksum file first (one extra read).
        ``"error"`` (default): a shard that fails raises MclandError naming it; ``"skip"``:
        it is left out with a RuntimeWarning; ``"off"``: no check.  Shards without a
        checksum file (mcland 0.5.0) are read unverified.

    Returns
    -------
    pandas.DataFrame
        One row per record; type columns are categoricals; list columns hold NumPy arrays.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    files = verified_files(run_dir, verify, stacklevel=3)
    schema = kinds.shard_schema(manifest)
    if not files:
        return schema.empty_table().to_pandas()
    dataset = ds.dataset([str(x) for x in files], format="parquet", schema=schema)
    expr = pq.filters_to_expression(filters) if isinstance(filters, list) else filters
    table = fill_defaults(dataset.to_table(columns=columns, filter=expr), schema)
    if "sample_id" in table.column_names:
        table = table.sort_by("sample_id")
    return table.to_pandas()
