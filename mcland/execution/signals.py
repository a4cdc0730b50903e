"""Pre-emption: SIGTERM and SIGINT stop a run between batches, never inside a write.

:func:`catching` installs handlers (main thread only) that only note the signal.  The run
checks the note between shards (:meth:`Stop.between_shards`: stop before the next one) and
between the batches of a shard (:meth:`Stop.between_batches`: the shard in progress is
finished if that takes less than ``grace`` seconds from the signal, otherwise abandoned,
and nothing of it is written).  A second signal abandons the shard at once.  Batch
computing runs in worker threads with the GIL released, so the main thread sees the
signal within a batch's time (about a second at most for the shipped configurations).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from mcland.core.errors import Interrupted

SIGNALS = (signal.SIGTERM, signal.SIGINT)
DEFAULT_GRACE = 30.0  # seconds


class Stop:
    """The signal received, if any, and when."""

    def __init__(self, grace: float = DEFAULT_GRACE) -> None:
        self.grace = grace
        self.signum: int | None = None
        self.at = 0.0

    def handler(self, signum: int, frame: object) -> None:
        if self.signum is not None:  # a second signal: abandon the shard now
            self.grace = 0.0
            return
        self.signum = signum
        self.at = time.monotonic()

    def between_shards(self) -> None:
        """Raise :class:`Interrupted` if a signal came."""
        if self.signum is not None:
            raise Interrupted(self.signum)

    def between_batches(self) -> None:
        """Raise :class:`Interrupted` if a signal came more than ``grace`` seconds ago."""
        if self.signum is not None and time.monotonic() - self.at >= self.grace:
            raise Interrupted(self.signum)


@contextmanager
def catching(grace: float = DEFAULT_GRACE) -> Iterator[Stop]:
    """A :class:`Stop` fed by SIGTERM/SIGINT handlers for the block (previous handlers
    restored after it); outside the main thread no handler is installed."""
    stop = Stop(grace)
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    old = {s: signal.signal(s, stop.handler) for s in SIGNALS}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)
