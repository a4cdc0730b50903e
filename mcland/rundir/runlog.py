"""The run log: one JSON line per sampling session, appended beside the manifest.

``DIR/runlog.jsonl`` records *when, where and how* each invocation of :func:`mcland.run`
(``mcland sample … --out DIR``) on a run directory worked: start and end time (UTC), wall
seconds, host, process id, mcland version, the points it wrote, its threads or Dask
workers (and their hosts), whether it completed, and the numerics fingerprint of the
process (``numerics``) and of the shards it wrote (``shard_numerics``: key -> shard names;
:mod:`mcland.core.numerics`).  A fresh run writes one line, every resume appends another, so the run's total wall time is the sum over the lines.

The log is *not* part of the run's identity: the manifest (``run.json``) alone decides
whether a resume matches (:func:`mcland.rundir.directory.prepare`), shards never carry the log, and
a run directory without a log (written by mcland 0.5.0 or earlier) is an ordinary run.

A line is written when the session ends, normally or by an exception (``completed`` is
then false and ``error`` names it, e.g. ``Interrupted: stopped by SIGTERM; …``); rerunning a complete run
(nothing to compute) writes none, so it leaves the directory unchanged.  A process killed by
SIGKILL, or a machine that loses power, leaves no line for its session.  Each line is
appended with one ``write`` call on a file opened with ``O_APPEND``, then flushed to disk
(``fsync``), so lines of concurrent sessions do not interleave on a local filesystem
and a crash can at worst truncate the last line, which :func:`read` skips.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mcland.core import numerics
from mcland.core.version import __version__
from mcland.rundir import directory as rundir

LOG_FILE = "runlog.jsonl"
FORMAT = 1  # version of a log line's fields
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def log_path(run_dir: str | Path) -> Path:
    """The run log's path in ``run_dir``."""
    return Path(run_dir) / LOG_FILE


def utc_text(t: datetime) -> str:
    """``2026-01-31T12:34:56.789Z``: an aware datetime as ISO 8601 UTC, milliseconds."""
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def append(run_dir: str | Path, entry: dict[str, Any]) -> None:
    """Append ``entry`` as one JSON line to the run log of ``run_dir``.

    The line is written with a single ``write`` to a file opened with ``O_APPEND`` (so
    lines of concurrent writers do not interleave on a local filesystem), then
    ``fsync``-ed.  After a line truncated by a crash, the new line starts on a line of
    its own.

    Parameters
    ----------
    run_dir : path
        The run directory (it must exist).
    entry : dict
        JSON-serialisable fields of the line.

    Raises
    ------
    OSError
        The log cannot be opened or written.
    """
    data = (json.dumps(entry, separators=(",", ":"), sort_keys=True) + "\n").encode()
    fd = os.open(log_path(run_dir), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # a line truncated by a crash
            data = b"\n" + data
        view = memoryview(data)
        while view:  # one call unless the disk fills up or a signal interrupts it
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def read(run_dir: str | Path) -> list[dict[str, Any]]:
    """The sessions recorded in the run log of ``run_dir``, oldest first.

    Lines that are not JSON objects (a line truncated by a crash) are skipped.

    Parameters
    ----------
    run_dir : path
        A run directory.

    Returns
    -------
    list of dict
        One dict per session line; empty when the run has no log (runs written by mcland
        0.5.0 or earlier) -- use :func:`log_path` ``.exists()`` to tell the two apart.
    """
    try:
        text = log_path(run_dir).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def format_seconds(seconds: float) -> str:
    """``"42.1 s"``, ``"12 min 5 s"`` or ``"3 h 7 min"``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    s = round(seconds)
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


@dataclass(frozen=True)
class LogSummary:
    """The run log of a directory summed over its sessions (see :func:`summarise`)."""

    sessions: int
    wall_seconds: float
    hosts: list[str]
    points: int
    completed: int
    first_start: str | None
    last_end: str | None
    versions: list[str] = field(default_factory=list)


def summarise(entries: list[dict[str, Any]]) -> LogSummary:
    """Total wall time, hosts, points and completed sessions of the log lines ``entries``.

    Parameters
    ----------
    entries : list of dict
        Lines from :func:`read`.

    Returns
    -------
    LogSummary
        ``wall_seconds`` is the sum over the sessions (time the run was being computed,
        not the span from first start to last end); ``hosts`` are all hosts named by
        any session (its own and its Dask workers'), sorted.
    """

    def num(e: dict[str, Any], key: str) -> float:
        v = e.get(key)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0.0

    hosts: set[str] = set()
    for e in entries:
        hosts.update(str(h) for h in (e.get("hosts") or [e.get("host")]) if h)
    starts = sorted(str(e["start"]) for e in entries if e.get("start"))
    ends = sorted(str(e["end"]) for e in entries if e.get("end"))
    versions = sorted({str(e["mcland_version"]) for e in entries if e.get("mcland_version")})
    return LogSummary(
        sessions=len(entries),
        wall_seconds=sum(num(e, "wall_seconds") for e in entries),
        hosts=sorted(hosts),
        points=int(sum(num(e, "points") for e in entries)),
        completed=sum(e.get("completed") is True for e in entries),
        first_start=starts[0] if starts else None,
        last_end=ends[-1] if ends else None,
        versions=versions,
    )


def how_computed(entry: dict[str, Any]) -> str:
    """``"4 threads"``, ``"1 thread"`` or ``"2 Dask workers"`` of a log line."""
    if entry.get("workers"):
        return f"{entry['workers']} Dask worker" + ("s" if entry["workers"] != 1 else "")
    return f"{entry.get('threads')} thread" + ("s" if entry.get("threads") != 1 else "")


def describe(entry: dict[str, Any]) -> str:
    """One line about one session, e.g. for ``mcland status``."""
    how = how_computed(entry)
    state = "completed" if entry.get("completed") else f"not completed ({entry.get('error')})"
    wall = entry.get("wall_seconds")
    wall_text = format_seconds(wall) if isinstance(wall, int | float) else "?"
    return (
        f"{entry.get('start')} on {', '.join(entry.get('hosts') or [str(entry.get('host'))])}: "
        f"{entry.get('points')} points in {wall_text}, {how}, mcland "
        f"{entry.get('mcland_version')}, {state}"
    )


def describe_last(run_dir: str | Path) -> str | None:
    """``mcland status``'s line about the last session of ``run_dir`` (None without a log)."""
    entries = read(run_dir)
    if not entries:
        return None
    return f"last run   {describe(entries[-1])} ({len(entries)} session(s) in {LOG_FILE})"


# ---------------------------------------------------------------------------------------
def _dask_hosts(executor: object) -> dict[str, str]:
    """Worker address -> host of a Dask client's workers ({} for anything else)."""
    info = getattr(executor, "scheduler_info", None)
    if info is None:
        return {}
    try:
        workers = info()["workers"]
        return {str(addr): str(w.get("host", addr)) for addr, w in workers.items()}
    except Exception:  # a dying cluster must not fail the log
        return {}


def _error_text(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _shard_numerics(run_dir: Path, ks: list[int]) -> dict[str, list[str]]:
    """Fingerprint key -> shards (names) among the shards ``ks``, from their metadata."""
    groups = numerics.of_shards([rundir.shard_path(run_dir, k) for k in ks])
    return {str(key): [p.name for p in ps] for key, ps in groups.items()}


def _shard_stamp(run_dir: Path, k: int) -> tuple[int, int] | None:
    try:
        st = rundir.shard_path(run_dir, k).stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)


class Session:
    """One sampling session on a run directory; its line is appended by :meth:`close`.

    Parameters
    ----------
    run_dir : Path
        The run directory, already prepared (:func:`mcland.rundir.directory.prepare`).
    status : RunStatus
        What ``prepare`` returned: the shards this session is to compute.
    executor : object, optional
        The thread pool or Dask client computing the shards (Dask workers' hosts are
        recorded).
    threads : int, optional
        Threads of an in-process run (None: all cores this process may use).
    workers, scheduler : optional
        The ``--workers`` / ``--scheduler`` of a distributed run.
    since : float, optional
        ``time.perf_counter()`` value at which the session started (default: now), so
        that loading the kernels or starting a cluster before ``prepare`` counts.
    """

    def __init__(
        self,
        run_dir: Path,
        status: rundir.RunStatus,
        executor: object = None,
        threads: int | None = None,
        workers: int | None = None,
        scheduler: str | None = None,
        since: float | None = None,
    ) -> None:
        now = time.perf_counter()
        since = now if since is None else since
        self.run_dir = Path(run_dir)
        self.manifest = status.manifest
        self.t0 = since
        self.start = datetime.now(UTC) - timedelta(seconds=now - since)
        self.pending = list(status.pending)
        self.stamps = {k: _shard_stamp(self.run_dir, k) for k in self.pending}
        self.rows_before = status.rows_done
        self.executor = executor
        self.workers = workers
        self.scheduler = scheduler
        self.distributed = workers is not None or scheduler is not None
        if self.distributed:
            self.threads = None
        elif threads is None:  # as mcland.execution.threads.default_threads
            affinity = getattr(os, "sched_getaffinity", None)
            self.threads = len(affinity(0)) if affinity else (os.cpu_count() or 1)
        else:
            self.threads = threads
        self.dask_hosts = _dask_hosts(executor)

    def entry(self, error: BaseException | None) -> dict[str, Any]:
        """The log line of the session, ending now."""
        seconds = time.perf_counter() - self.t0
        written = [
            k for k in self.pending if _shard_stamp(self.run_dir, k) not in (None, self.stamps[k])
        ]
        points = sum(b - a for a, b in (rundir.shard_range(self.manifest, k) for k in written))
        host = socket.gethostname()
        self.dask_hosts.update(_dask_hosts(self.executor))
        worker_hosts = sorted({host if h in _LOOPBACK else h for h in self.dask_hosts.values()})
        return {
            "format": FORMAT,
            "start": utc_text(self.start),
            "end": utc_text(datetime.now(UTC)),
            "wall_seconds": math.ceil(seconds * 1000) / 1000,  # up: never below the time spent
            "host": host,
            "hosts": sorted({host, *worker_hosts}),
            "pid": os.getpid(),
            "mcland_version": __version__,
            "python": sys.version.split()[0],
            "n": int(self.manifest["n"]),
            "points": points,
            "shards": len(written),
            "points_done": self.rows_before + points,
            "threads": self.threads,
            "workers": (len(self.dask_hosts) or self.workers) if self.distributed else None,
            "scheduler": self.scheduler,
            "completed": error is None,
            "error": None if error is None else _error_text(error),
            # issue 23: this process's numerics fingerprint, and those of the shards this
            # session wrote (a Dask worker's may differ from the process's)
            "numerics": numerics.fingerprint(),
            "shard_numerics": _shard_numerics(self.run_dir, written),
        }

    def close(self, error: BaseException | None = None) -> None:
        """Append the session's line; a failure to write it only warns.

        A session that had nothing to compute (a rerun of a complete run) and ended
        normally writes no line: rerunning a finished run leaves the directory unchanged.
        """
        if not self.pending and error is None:
            return
        try:
            append(self.run_dir, self.entry(error))
        except OSError as exc:
            warnings.warn(
                f"could not append to {log_path(self.run_dir)}: {exc.strerror or exc}",
                RuntimeWarning,
                stacklevel=2,
            )


@contextmanager
def session(
    run_dir: Path,
    status: rundir.RunStatus,
    executor: object = None,
    threads: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    since: float | None = None,
) -> Iterator[Session]:
    """A :class:`Session` whose line is appended when the block ends, even by an exception.

    Parameters
    ----------
    run_dir, status, executor, threads, workers, scheduler, since
        As for :class:`Session`.

    Examples
    --------
    >>> status = rundir.prepare(run_dir, manifest)  # doctest: +SKIP
    >>> with runlog.session(run_dir, status, pool, threads=4):  # doctest: +SKIP
    ...     compute the shards of status.pending
    """
    s = Session(run_dir, status, executor, threads, workers, scheduler, since)
    try:
        yield s
    except BaseException as exc:
        s.close(exc)
        raise
    s.close()


__all__ = [
    "LOG_FILE",
    "LogSummary",
    "Session",
    "append",
    "describe",
    "describe_last",
    "format_seconds",
    "how_computed",
    "log_path",
    "read",
    "session",
    "summarise",
]
