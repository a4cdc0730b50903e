"""The run directory as a contract: manifest, shard plan, shard checks, progress.

A run directory holds ``run.json`` (the manifest), written before anything else, and the
shards of its plan: shard ``k`` is the file ``part-{k:06d}.parquet`` holding the records
of the contiguous sample ids ``k * shard_size <= sample_id < min((k + 1) * shard_size, n)``.
Shards are written under a temporary name (``.tmp-PID-TOKEN-…``, unique per attempt) and
renamed, so a file with a shard's name is either absent or complete.  Beside each shard,
``checksums/NAME.sha256`` holds the SHA-256 of its bytes (``sha256sum`` format), written
before the shard is renamed into place; it is not part of the manifest, so it does not
change the run's identity.  ``.lock`` marks the directory as being written
(:mod:`mcland.rundir.lock`).

A shard is *done* when its bytes match its checksum (runs of mcland 0.6.0 and later must
have one; shards of earlier versions have none and are *unverifiable*), it is readable, has its kind's schema,
carries this run's manifest in its metadata and holds exactly its plan's sample ids, in
order (a dynamics shard: each id once per delta or eps; see :mod:`mcland.rundir.kinds` for the
schema and key of each kind of run).  Anything else is *bad* and is recomputed on resume.  :func:`scan` classifies every
shard of a directory; ``mcland status DIR`` prints it.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mcland.core import numerics
from mcland.core.errors import MclandError, StorageFull
from mcland.rundir import kinds, lock
from mcland.rundir.files import (
    CHECKSUM_DIR,
    FULL_ERRNOS,
    MANIFEST,
    SHARD_FILE,
    SHARD_RE,
    TMP_PREFIX,
    read_manifest,
    shard_name,
    verify_checksum,
    write_manifest,
)

FORMAT = 2  # version of the run-directory layout, stored in the manifest
_MANIFEST_TMP_RE = re.compile(re.escape(TMP_PREFIX) + r"\d+-(?:[0-9a-f]+-)?" + re.escape(MANIFEST))
CHECKSUMS_FROM = (0, 6, 0)  # runs of this mcland version and later have checksum files
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")
_LISTED = 5  # shard names listed in a status line before "(+N more)"


def plan_fields(n: int, shard_size: int) -> dict[str, Any]:
    """The shard plan's entries of the manifest."""
    return {
        "format": FORMAT,
        "n": n,
        "shard_size": shard_size,
        "shards": (n + shard_size - 1) // shard_size,
        "shard_file": SHARD_FILE,
        "shard_ids": "k * shard_size <= sample_id < min((k + 1) * shard_size, n)",
    }


def shard_range(manifest: dict[str, Any], k: int) -> tuple[int, int]:
    """``(start, stop)``: shard ``k`` holds the sample ids ``start <= id < stop``."""
    size = int(manifest["shard_size"])
    return k * size, min((k + 1) * size, int(manifest["n"]))


def shard_path(run_dir: Path, k: int) -> Path:
    return run_dir / shard_name(k)


def check_out_path(out: str | Path) -> Path:
    """The run directory as a local path (URLs are refused: workers write with POSIX calls)."""
    if _URL_RE.match(str(out)):  # also "s3:/b/x", as click's Path normalises "s3://b/x"
        raise MclandError(
            f"--out {out}: URLs are not supported; use a local directory or one on a shared "
            "POSIX filesystem (NFS, Lustre, GPFS, a mounted bucket) that every worker sees"
        )
    return Path(out)


def has_checksums(manifest: dict[str, Any]) -> bool:
    """Whether the run's shards must have checksum files (written by mcland >= 0.6.0)."""
    nums = re.findall(r"\d+", str(manifest.get("mcland_version", "")))[:3]
    return tuple(int(x) for x in nums) >= CHECKSUMS_FROM


def check_shard(run_dir: Path, manifest: dict[str, Any], k: int) -> str | None:
    """None if shard ``k`` is done, else why not (``"missing"``, ``"unreadable"``, …)."""
    return _check_shard(run_dir, manifest, k)[0]


def _check_shard(run_dir: Path, manifest: dict[str, Any], k: int) -> tuple[str | None, bool]:
    """(:func:`check_shard`'s answer, whether the shard's checksum was verified)."""
    path = shard_path(run_dir, k)
    if not path.exists():
        return "missing", False
    why = _check_content(path, manifest, k)  # reads every page: the more telling reason first
    if why is not None:
        return why, False
    try:
        checksum = verify_checksum(path)
    except OSError as exc:
        return f"unreadable ({exc.strerror})", False
    if checksum == "mismatch":
        return f"corrupt: its bytes differ from checksums/{path.name}.sha256", False
    if checksum == "absent" and has_checksums(manifest):
        return f"no checksum file checksums/{path.name}.sha256", False
    return None, checksum == "ok"


def _check_content(path: Path, manifest: dict[str, Any], k: int) -> str | None:
    start, stop = shard_range(manifest, k)
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
        table = pf.read()  # every page decoded: the whole file is readable
    except (OSError, pa.ArrowException) as exc:
        return f"unreadable ({type(exc).__name__})"
    if not schema.remove_metadata().equals(kinds.shard_schema(manifest)):
        return "schema differs from this mcland version's"
    meta = (schema.metadata or {}).get(b"mcland")
    try:
        same_run = meta is not None and json.loads(meta) == manifest
    except ValueError:
        same_run = False
    if not same_run:
        return "written by another run (its metadata differs from run.json)"
    rows = (stop - start) * kinds.rows_per_id(manifest)
    if table.num_rows != rows:
        return f"has {table.num_rows} rows, expected {rows}"
    expected = kinds.shard_ids(manifest, start, stop)
    if expected is not None:
        column, ids = expected
        if not np.array_equal(table.column(column).to_numpy(), ids):
            what = "sample ids" if column == "sample_id" else f"{column} values"
            return f"does not hold exactly the {what} {start}..{stop - 1} in order"
    return None


def _in_plan(name: str, k: int, shards: int) -> bool:
    return k < shards and name == shard_name(k)


def _names(ks: list[int]) -> str:
    shown = ", ".join(shard_name(k) for k in ks[:_LISTED])
    return shown + (f" (+{len(ks) - _LISTED} more)" if len(ks) > _LISTED else "")


@dataclass
class RunStatus:
    """Progress of a run directory (see :func:`scan`)."""

    run_dir: Path
    manifest: dict[str, Any]
    done: list[int] = field(default_factory=list)
    bad: dict[int, str] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # temporary files of killed writes
    strays: list[str] = field(default_factory=list)  # shard files outside the plan
    unverifiable: list[int] = field(default_factory=list)  # done, no checksum (mcland 0.5.0)
    writer: dict[str, Any] | None = None  # the lock's holder, if the directory is locked
    numerics: list[str] = field(default_factory=list)  # issue 23: fingerprints of done shards
    mixed_numerics: bool = False  # done shards computed under different fingerprints

    @property
    def pending(self) -> list[int]:
        """Shards still to compute (bad or missing), in order."""
        return sorted([*self.bad, *self.missing])

    @property
    def rows_done(self) -> int:
        return sum(b - a for a, b in (shard_range(self.manifest, k) for k in self.done))

    @property
    def complete(self) -> bool:
        return not self.pending and not self.strays

    @property
    def verified(self) -> bool:
        """Complete, every shard's bytes match its checksum, and all shards were computed
        under one numerics fingerprint (:mod:`mcland.core.numerics`; shards without one,
        written by 0.7.1 or earlier, do not count against it)."""
        return self.complete and not self.unverifiable and not self.mixed_numerics

    def to_dict(self) -> dict[str, Any]:
        """The facts of :meth:`describe` for scripts (``mcland status --json``)."""
        m = self.manifest
        return {
            "run_dir": str(self.run_dir),
            "kind": kinds.kind_of(m),
            "mcland_version": m.get("mcland_version"),
            "seed": m.get("seed"),
            "n": int(m["n"]),
            "shard_size": int(m["shard_size"]),
            "shards": int(m["shards"]),
            "done": [shard_name(k) for k in self.done],
            "missing": [shard_name(k) for k in self.missing],
            "bad": {shard_name(k): why for k, why in self.bad.items()},
            "unverifiable": [shard_name(k) for k in self.unverifiable],
            "strays": list(self.strays),
            "leftovers": list(self.leftovers),
            "rows_done": self.rows_done,
            "complete": self.complete,
            "verified": self.verified,
            "writer": self.writer,
            "numerics": list(self.numerics),
            "mixed_numerics": self.mixed_numerics,
        }

    def describe(self) -> str:
        """Human-readable report, one item per line (``mcland status``)."""
        m = self.manifest
        n, shards = int(m["n"]), int(m["shards"])
        lines = [
            f"run        {self.run_dir}  ({kinds.kind_of(m)}, mcland {m.get('mcland_version')}, "
            + (f"seed {m['seed']}, " if m.get("seed") is not None else "")
            + f"n {n}, {shards} shards of {m['shard_size']})",
            f"shards     {len(self.done)} of {shards} done",
            f"points     {self.rows_done} of {n} ({100.0 * self.rows_done / n:.1f}%)",
        ]
        if self.missing:
            lines.append(f"missing    {len(self.missing)}: {_names(self.missing)}")
        lines += [f"bad        {shard_name(k)}: {why}" for k, why in self.bad.items()]
        verified = len(self.done) - len(self.unverifiable)
        lines.append(f"checksums  {verified} of {len(self.done)} done shards verified (SHA-256)")
        if self.unverifiable:
            lines.append(
                f"unverifiable {len(self.unverifiable)} without checksum (written before 0.6.0): "
                f"{_names(self.unverifiable)}"
            )
        if self.writer:
            lines.append(
                f"writer     {lock.describe_holder(self.writer)} holds {lock.LOCK_FILE} "
                "(a run in progress, or a stale lock)"
            )
        lines += self.numerics
        if self.strays:
            lines.append(f"strays     not in the plan (remove them): {', '.join(self.strays)}")
        if self.leftovers:
            lines.append(
                f"leftovers  {len(self.leftovers)} temporary file(s): a write in progress, or left "
                "by a killed run (removed on resume)"
            )
        lines.append(
            "complete   yes"
            if self.complete
            else f"complete   no (rerun the same `mcland {kinds.kind_of(m)} … --out DIR` to finish)"
        )
        return "\n".join(lines)


def _check_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    for key in ("n", "shard_size", "shards"):
        if not isinstance(manifest.get(key), int) or manifest[key] < (0 if key == "n" else 1):
            raise MclandError(f"{run_dir / MANIFEST}: no valid shard plan ({key})")


def scan(run_dir: str | Path, manifest: dict[str, Any] | None = None) -> RunStatus:
    """Classify every shard of the run in ``run_dir`` as done, bad or missing.

    Parameters
    ----------
    run_dir : path
        A run directory.
    manifest : dict, optional
        The run's manifest (default: read ``run.json``).

    Raises
    ------
    MclandError
        ``run_dir`` is not a run directory or its manifest is unreadable.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MclandError(f"{run_dir}: no such run directory")
    manifest = read_manifest(run_dir) if manifest is None else manifest
    if not isinstance(manifest, dict):
        raise MclandError(f"{run_dir / MANIFEST}: not an mcland manifest")
    _check_manifest(run_dir, manifest)
    st = RunStatus(run_dir, manifest)
    for k in range(int(manifest["shards"])):
        why, verified = _check_shard(run_dir, manifest, k)
        if why is None:
            st.done.append(k)
            if not verified:
                st.unverifiable.append(k)
        elif why == "missing":
            st.missing.append(k)
        else:
            st.bad[k] = why
    for p in sorted(run_dir.iterdir()):
        m = SHARD_RE.fullmatch(p.name)
        if m and not _in_plan(p.name, int(m.group(1)), int(manifest["shards"])):
            st.strays.append(p.name)
        elif p.name.startswith(TMP_PREFIX):
            st.leftovers.append(p.name)
    sums = run_dir / CHECKSUM_DIR
    if sums.is_dir():
        st.leftovers += [
            f"{CHECKSUM_DIR}/{p.name}"
            for p in sorted(sums.iterdir())
            if p.name.startswith(TMP_PREFIX)
        ]
    st.writer = lock.read_holder(run_dir) if lock.lock_path(run_dir).exists() else None
    done = [shard_path(run_dir, k) for k in st.done]  # issue 23: fingerprints, footers only
    st.numerics = numerics.report(done)
    st.mixed_numerics = numerics.mixed(done)
    return st


def progress(run_dir: Path, manifest: dict[str, Any]) -> tuple[int, int]:
    """(shards, rows) present in ``run_dir`` by file name (no check: for messages)."""
    ks = [k for k in range(int(manifest["shards"])) if shard_path(run_dir, k).exists()]
    return len(ks), sum(b - a for a, b in (shard_range(manifest, k) for k in ks))


def _write_new(run_dir: Path, manifest: dict[str, Any]) -> None:
    created = False
    try:
        if not run_dir.exists():
            run_dir.mkdir(parents=True)
            created = True
        write_manifest(run_dir, manifest)
    except OSError as exc:
        if created:  # nothing half-written stays behind
            shutil.rmtree(run_dir, ignore_errors=True)
        if exc.errno in FULL_ERRNOS:
            raise StorageFull(f"no space left writing {run_dir / MANIFEST}") from None
        raise MclandError(f"cannot write to {run_dir}: {exc.strerror}") from None


def prepare(run_dir: Path, manifest: dict[str, Any]) -> RunStatus:
    """Create ``run_dir`` with its manifest, or accept it when it holds the same run (resume).

    On resume the manifest must match exactly (otherwise the error names the differing
    keys), shard files outside the plan are refused, and temporary files of an
    interrupted write are removed.

    Returns
    -------
    RunStatus
        Which shards are done and which are still to compute.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise MclandError(f"{run_dir} exists and is not a directory")
    entries = [p for p in run_dir.iterdir() if p.name != lock.LOCK_FILE] if run_dir.is_dir() else []
    if all(_MANIFEST_TMP_RE.fullmatch(p.name) for p in entries):
        # empty, or only a manifest whose write was interrupted: a fresh run
        for p in entries:
            p.unlink()
        _write_new(run_dir, manifest)
        return RunStatus(run_dir, manifest, missing=list(range(int(manifest["shards"]))))
    if not (run_dir / MANIFEST).exists():
        raise MclandError(f"{run_dir} is not empty and holds no mcland run; choose another --out")
    old = read_manifest(run_dir)
    if not isinstance(old, dict):
        raise MclandError(f"{run_dir / MANIFEST}: not an mcland manifest")
    keys = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
    if keys:
        raise MclandError(
            f"{run_dir} holds a different run (differs in: {', '.join(keys)}); choose another --out"
        )
    st = scan(run_dir, manifest)
    if st.strays:
        raise MclandError(
            f"{run_dir} holds shard files outside the run's plan ({', '.join(st.strays)}); "
            "remove them"
        )
    remove_leftovers(run_dir, st.leftovers)  # of writes killed with their process
    st.leftovers = []
    return st


def remove_leftovers(run_dir: Path, names: list[str] | None = None) -> None:
    """Remove temporary files of writes whose process died (default: those :func:`scan`
    finds).  Only for the lock's holder: a live attempt whose file is removed fails its
    rename and is retried, so at worst work is repeated, never data lost."""
    names = scan(run_dir).leftovers if names is None else names
    for name in names:
        (run_dir / name).unlink(missing_ok=True)


@contextlib.contextmanager
def writing(
    run_dir: Path, manifest: dict[str, Any], *, force_unlock: bool = False
) -> Iterator[RunStatus]:
    """Hold the run directory's lock (:mod:`mcland.rundir.lock`) and :func:`prepare` it: the one
    way in for every command that writes a run directory.

    Raises
    ------
    mcland.rundir.lock.Locked
        Another process is writing ``run_dir``.
    """
    with lock.holding(run_dir, force_unlock=force_unlock):
        yield prepare(run_dir, manifest)
