"""What the execution layer runs: a :class:`Job`, records for a range of ids.

Every kind of run is a job: :class:`mcland.points.plan.Plan` (``sample``: draw and classify
points), :class:`mcland.classification.run.ClassifyJob` (given points) and
:class:`mcland.flow.run.DynamicsJob` (gradient flow from drawn points).  The execution layer
(:mod:`.compute`, :mod:`.runner`, :mod:`.cluster`) knows them only through this protocol.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from mcland.execution.threads import ThreadPool


class Job(Protocol):
    """What the pipeline computes: records for ids ``0 <= id < n``, each id's from its own
    random stream or input row, so that any split into batches, threads, shards or Dask
    tasks gives the same records.

    A job is pickled to Dask workers, so it holds data, not open resources.
    """

    kind: str  # "sample", "classify", "dynamics": the run directory's kind (mcland.rundir.kinds)
    batch: int  # ids per batch (a table; the next one computes while one is written)

    @property
    def n(self) -> int:
        """Number of ids."""

    def manifest(self) -> dict:
        """The run's identity beyond the shard plan (JSON-able); resuming needs it equal."""

    def load_kernels(self, progress: bool = False) -> float:
        """Compile or load the kernels the job needs; returns the seconds it took."""

    def start(self, ids: np.ndarray, pool: ThreadPool | None) -> Any:
        """Start computing the records of ``ids`` (in ``pool`` if given)."""

    def finish(self, started: Any) -> pa.Table:
        """Wait for what :meth:`start` started and return the records, in id order."""


def notifier(progress: bool) -> Callable[[str], None] | None:
    """With ``progress``, what announces a first-run compilation on stderr (the ``notify``
    of :func:`mcland._kernels.compile.sampler.prepare_sampler`)."""
    return (lambda line: print(f"mcland: {line}", file=sys.stderr)) if progress else None
