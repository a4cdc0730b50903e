"""The ``mcland`` command line: ``sample``, ``dynamics``, ``status``, ``inspect``, ``classify``,
``groundtruth``, ``bench`` and ``report``
(every command of :data:`cli`; ``tests/test_docs.py`` keeps this list complete): the group
and the entry point in :mod:`.app`, the commands in :mod:`.run_commands` and
:mod:`.other_commands`, their shared options in :mod:`.options`.

Bad input of any kind ends with one line ``mcland: error: ...`` on stderr and exit status 2
(:data:`EXIT_BAD_INPUT`; also a run directory locked by another writer).  Other statuses:
3 a full disk or quota (:data:`EXIT_STORAGE_FULL`), 1 ``status --verify`` of a run that is
not complete or does not verify (:data:`EXIT_NOT_VERIFIED`), 143 / 130 a run stopped by
SIGTERM / SIGINT (128 + the signal's number, as shells report it).
"""

from __future__ import annotations

from mcland.cli import other_commands, run_commands  # noqa: F401 - they register the commands
from mcland.cli.app import EXIT_BAD_INPUT, EXIT_NOT_VERIFIED, EXIT_STORAGE_FULL, cli, main

__all__ = ["EXIT_BAD_INPUT", "EXIT_NOT_VERIFIED", "EXIT_STORAGE_FULL", "cli", "main"]
