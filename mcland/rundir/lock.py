"""One writer per run directory: the lock file ``DIR/.lock``.

Every command that writes a run directory (today :func:`mcland.run`, i.e. ``mcland sample``,
in process or as the client of a Dask cluster) holds this lock for the whole session,
through :func:`mcland.rundir.directory.writing`.  Dask workers write the shards of a run whose
client holds it and take no lock themselves.

The lock file is created with ``os.open(O_CREAT | O_EXCL)``, which is atomic on local
filesystems and on NFS v3 and later, and holds one JSON object: ``host``, ``pid``,
``start`` (UTC) and a random ``token``.  The holder additionally keeps a ``fcntl.flock``
on it (released by the kernel when the process dies, however it dies).

A second writer is refused (:class:`Locked`, exit status 2 on the command line) with a
message naming the holder.  A lock left behind by a process that no longer runs is
recovered from automatically when that process ran on *this* host (its pid is gone, or
nobody holds the ``flock`` any more).  A lock written on *another* host cannot be checked
from here (pids are per host, and ``flock`` over NFS depends on the server's lock manager):
it is refused, and the message names ``--force-unlock``, which removes it.  Use that only
when the other process is known to be gone: two writers on one directory could remove
each other's temporary files, although they would write identical shards.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcland.core.errors import MclandError

try:  # pragma: no cover - always there on POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
_SETTLE = 2.0  # seconds to wait for a lock file being created to get its content


class Locked(MclandError):
    """The run directory is being written by another process (or its lock is stale)."""


def lock_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / LOCK_FILE


def read_holder(run_dir: str | Path) -> dict[str, Any] | None:
    """The lock's content (``host``, ``pid``, ``start``, ``token``), None without a lock
    or while it is being written."""
    try:
        info = json.loads(lock_path(run_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def describe_holder(info: dict[str, Any]) -> str:
    return f"pid {info.get('pid')} on host {info.get('host')}, started {info.get('start')}"


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _flock_free(path: Path) -> bool:
    """True when nobody holds a ``flock`` on ``path`` (its holder died)."""
    if fcntl is None:  # pragma: no cover
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def is_stale(info: dict[str, Any], path: Path) -> bool:
    """Whether the lock ``info`` (read from ``path``) was left by a dead process of this host."""
    if info.get("host") != socket.gethostname():
        return False
    return not _pid_alive(info.get("pid")) or _flock_free(path)


def _remove_if_same(path: Path, info: dict[str, Any]) -> None:
    """Remove the lock file ``path`` if it still holds ``info`` (not a newer writer's lock)."""
    aside = path.with_name(f"{LOCK_FILE}.stale-{secrets.token_hex(4)}")
    try:
        os.rename(path, aside)  # atomic: of two recovering writers one gets it
    except FileNotFoundError:
        return
    try:
        again = json.loads(aside.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        again = None
    if again is not None and again != info:  # a live writer's lock: put it back
        os.rename(aside, path)
        return
    aside.unlink(missing_ok=True)


class RunLock:
    """The held lock of a run directory (see :func:`acquire`)."""

    def __init__(self, path: Path, fd: int, info: dict[str, Any]) -> None:
        self.path = path
        self.fd = fd
        self.info = info

    def release(self) -> None:
        """Remove the lock file, if it is still ours, and close it."""
        if self.fd < 0:
            return
        try:
            if read_holder(self.path.parent) == self.info:
                self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)
            self.fd = -1


def acquire(run_dir: Path, *, force_unlock: bool = False) -> RunLock:
    """Take the lock of ``run_dir`` (which must exist).

    Raises
    ------
    Locked
        Another live process holds it, or a process on another host did (the message
        names ``--force-unlock``).
    MclandError
        The lock file cannot be created (a read-only directory, ...).
    """
    path = lock_path(run_dir)
    waited = 0.0
    while True:
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "start": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "token": secrets.token_hex(8),
        }
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        except FileExistsError:
            pass
        except OSError as exc:
            raise MclandError(f"cannot write to {run_dir}: {exc.strerror}") from None
        else:
            try:
                if fcntl is not None:
                    with contextlib.suppress(OSError):  # NFS without a lock manager: O_EXCL only
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.write(fd, (json.dumps(info) + "\n").encode())
                os.fsync(fd)
            except OSError as exc:
                os.close(fd)
                path.unlink(missing_ok=True)
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise MclandError(f"cannot write to {run_dir}: {exc.strerror}") from None
                raise
            return RunLock(path, fd, info)
        held = read_holder(run_dir)
        if held is None:  # being written by its creator, or an empty file of a crash
            if waited < _SETTLE:
                time.sleep(0.1)
                waited += 0.1
                continue
            held = {}
        if force_unlock or (held and is_stale(held, path)) or (not held and _flock_free(path)):
            _remove_if_same(path, held) if held else path.unlink(missing_ok=True)
            force_unlock = False  # remove at most the lock seen now, not a new writer's
            waited = 0.0
            continue
        raise Locked(_refusal(run_dir, held))


def check_free(run_dir: Path, *, force_unlock: bool = False) -> None:
    """Raise :class:`Locked` now if a live writer holds ``run_dir``'s lock (read-only: a
    quick refusal before loading kernels or starting a cluster; :func:`acquire` decides)."""
    path = lock_path(run_dir)
    if force_unlock or not path.exists():
        return
    held = read_holder(run_dir)
    if held is None or is_stale(held, path):
        return
    raise Locked(_refusal(run_dir, held))


def _refusal(run_dir: Path, held: dict[str, Any]) -> str:
    who = describe_holder(held) if held else "an unknown process (empty lock file)"
    if held.get("host") == socket.gethostname():
        return (
            f"{run_dir} is being written by {who}; wait for it to finish or stop it "
            f"(lock file {lock_path(run_dir)})"
        )
    return (
        f"{run_dir} is locked by {who}; if that process is no longer running, rerun with "
        f"--force-unlock (or remove {lock_path(run_dir)})"
    )


@contextlib.contextmanager
def holding(run_dir: Path, *, force_unlock: bool = False) -> Iterator[RunLock]:
    """Hold the lock of ``run_dir`` for the block; creates ``run_dir`` if needed and removes
    it again if the block leaves it empty (a refused or failed fresh run writes nothing)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise MclandError(f"{run_dir} exists and is not a directory")
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MclandError(f"cannot write to {run_dir}: {exc.strerror}") from None
    try:
        lock = acquire(run_dir, force_unlock=force_unlock)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                run_dir.rmdir()
        raise
    try:
        yield lock
    finally:
        lock.release()
        if created:
            with contextlib.suppress(OSError):  # only if empty
                run_dir.rmdir()
