"""Test-only fault injection: stop the process at a named moment of a run.

Inert unless the environment variable ``MCLAND_TEST_FAULT`` is set to
``ACTION:MOMENT:COUNT:FLAG``.  At the ``COUNT``-th time this process reaches ``MOMENT``
(see :data:`MOMENTS`), the file ``FLAG`` is created (exclusively, so the fault fires once
across processes and resumes) and then

* ``kill`` — the process sends itself SIGKILL (used to kill a Dask worker mid-task);
* ``term`` — the process sends itself SIGTERM (a pre-empted Dask worker);
* ``pause`` — the process sleeps, so a test can SIGKILL it from outside at exactly that
  moment (for example between writing a shard's temporary file and renaming it);
  a signal that the process handles (SIGTERM, SIGINT) ends the pause, as it would end a
  system call, so a test can also send those at exactly that moment;
* ``enospc`` — ``OSError(ENOSPC)`` is raised there, as a full disk would raise it.

The fault tests (``tests/test_faults.py``, ``tests/test_distributed.py``) use it to hit
moments that a random timer would rarely reach.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections import Counter

ENV = "MCLAND_TEST_FAULT"
MOMENTS = (
    "manifest-tmp",  # run.json written under its temporary name, not yet renamed
    "manifest-written",  # run.json in place, no shard started
    "batch-computed",  # a batch of a shard computed, the shard not yet written
    "shard-tmp",  # a shard written under its temporary name, not yet renamed
    "shard-done",  # a shard renamed into place
    "all-shards",  # every shard in place, the summary not yet read
    "shard-task",  # a distributed shard task started on a worker
)
_seen: Counter[str] = Counter()


def checkpoint(moment: str) -> None:
    """Fire the configured fault if this is its moment (no-op without ``MCLAND_TEST_FAULT``)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    action, at, count, flag = spec.split(":", 3)
    if at != moment:
        return
    _seen[moment] += 1
    if _seen[moment] != int(count):
        return
    try:
        fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, f"{os.getpid()}\n".encode())
    os.close(fd)
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "term":  # what a pre-empted node's processes receive first
        os.kill(os.getpid(), signal.SIGTERM)
    elif action == "pause":
        _pause()  # the test kills or signals the process now
    elif action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _pause() -> None:
    """Sleep until a handled signal arrives (or an hour passes)."""
    received: list[int] = []
    handlers = {}

    def note(signum: int, frame: object) -> None:
        received.append(signum)
        handler = handlers.get(signum)
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:  # die of it, as without the pause
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    try:
        for s in (signal.SIGTERM, signal.SIGINT):
            handlers[s] = signal.signal(s, note)
    except ValueError:  # not the main thread: only SIGKILL ends the pause
        pass
    try:
        deadline = time.monotonic() + 3600
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
