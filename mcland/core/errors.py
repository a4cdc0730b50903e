"""The exception raised for every kind of bad input."""

from __future__ import annotations

import signal


class MclandError(ValueError):
    """Bad input (configuration, data, weights, paths): the message says what and where.

    The command line prints the message on one line of stderr and exits with status 2.
    """


class StorageFull(MclandError):
    """The disk or the quota filled up while a run directory was written (``ENOSPC``,
    ``EDQUOT``).  Nothing partial is left; the command line exits with status 3."""


class Interrupted(Exception):
    """A run stopped by SIGTERM or SIGINT (:func:`mcland.run`); finished shards are kept.

    The command line prints the message and exits with ``128 + signum`` (143, 130).
    """

    def __init__(self, signum: int, message: str = "") -> None:
        self.signum = signum
        super().__init__(message or f"stopped by {signal.Signals(signum).name}")


class TooLarge(MclandError):
    """A request whose predicted memory (or flops) exceeds what this machine allows
    (:mod:`mcland.core.cost`), refused before anything is allocated or written: the message
    names the estimate, the limit and the alternative.  The command line exits with
    status 2, as for any bad input."""
