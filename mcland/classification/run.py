"""``mcland classify`` on run directories: given points classified shard by shard, with the
manifest, resume, lock, run log and Dask of ``mcland sample`` (:mod:`mcland.execution.runner`).

The ids of a classify run are the input rows ``0 <= row < n``; shard ``k`` holds rows
``k * shard_size <= row < (k + 1) * shard_size`` in the records of
:func:`mcland.classification.schema.record_schema`.  The manifest holds the SHA-256 of the points as read
(architectures, weights and keys) and of the data, so a resume on changed POINTS or DATA is
refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from mcland.classification.analysis import check_points
from mcland.classification.certify.rows import DEFAULT_REL
from mcland.classification.classify import check_stability_rel, classify_given
from mcland.classification.inputs import Points, read_points
from mcland.classification.schema import record_schema
from mcland.core.config import Output
from mcland.core.errors import MclandError
from mcland.core.problem import Problem
from mcland.core.ragged import Ragged
from mcland.core.tolerances import Tolerances
from mcland.execution import runner, signals
from mcland.execution.progress import announce, cost_lines
from mcland.execution.threads import ThreadPool
from mcland.points.plan import BATCH
from mcland.points.records import PARQUET_OPTIONS
from mcland.rundir.kinds import Kind

DEFAULT_SHARD_SIZE = Output.model_fields["shard_size"].default  # as for sampling runs


def _shard_schema(manifest: dict) -> pa.Schema:
    return record_schema(pa.type_for_alias(manifest["key_type"]))


def _key(manifest: dict) -> str | None:
    return None if manifest.get("key") is not None else "row"


KIND = Kind("classify", _shard_schema, _key, parquet_options=PARQUET_OPTIONS)
"""A ``classify`` run's shards: one record per given point (:func:`.schema.record_schema`),
keyed by ``row`` (the input's index; a user key column is only counted)."""


def points_sha256(given: Points) -> str:
    """SHA-256 of the points as read: each point's architecture (int64) and weights
    (float64), point after point, then the keys."""
    dims, w = given.dims, given.w
    stream = np.empty(dims.flat.size + w.flat.size, np.int64)  # both are 8-byte words
    dims.place_into(stream, dims.off[:-1] + w.off[:-1])
    Ragged(w.flat.view(np.int64), w.off).place_into(stream, dims.off[1:] + w.off[:-1])
    digest = hashlib.sha256(stream.tobytes())
    digest.update(repr(given.keys.to_pylist()).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class ClassifyJob:
    """A ``classify`` job (:class:`mcland.execution.job.Job`): the checked points and the data.

    Attributes
    ----------
    given : Points
        The points (:func:`mcland.classification.inputs.read_points`).
    X : ndarray (d_x, m)
    Y : ndarray (d_y, m)
        The data.
    problem : Problem
        Its moments and spectral data (:meth:`mcland.Problem.from_data`), which the points
        were checked against.
    refine : bool
        Refine non-critical points first (:func:`mcland.classification.refine.refine_point`).
    key : str or None
        The POINTS column the ``row`` keys come from.
    tolerances : Tolerances
    stability_rel : float
        The perturbation size of the stability columns (:mod:`mcland.classification.certify`).
    hessian : str
        ``auto``, ``dense``, ``structured`` or ``matrix_free`` (:func:`mcland.classify`).
    """

    given: Points
    X: np.ndarray
    Y: np.ndarray
    problem: Problem
    refine: bool
    key: str | None
    tolerances: Tolerances
    stability_rel: float = DEFAULT_REL
    hessian: str = "auto"

    kind = "classify"
    batch = BATCH

    @property
    def n(self) -> int:
        return len(self.given.w)

    def manifest(self) -> dict:
        """Points and data (SHA-256), refine, key and its type, tolerances."""
        key_type = str(self.given.keys.type)
        try:
            pa.type_for_alias(key_type)
        except ValueError:
            raise MclandError(
                f"key column {self.key!r} has type {key_type}; use an integer or string column"
            ) from None
        return {
            "points_sha256": points_sha256(self.given),
            "data_sha256": hashlib.sha256(self.X.tobytes() + self.Y.tobytes()).hexdigest(),
            "refine": self.refine,
            "key": self.key,
            "key_type": key_type,
            "tolerances": asdict(self.tolerances),
            "stability_rel": self.stability_rel,
            # only when not the default, so that the runs written before it resume
            **({"hessian": self.hessian} if self.hessian != "auto" else {}),
        }

    def load_kernels(self, progress: bool = False) -> float:
        """Nothing to prepare: the kernels compile or load on the first batch.  With
        ``progress``, the predicted cost per point of the wide architectures is printed on
        stderr (:func:`mcland.execution.progress.cost_lines`)."""
        if progress:
            announce(cost_lines(self.given.dims, self.hessian, "classify", matrix_free=True))
        return 0.0

    def start(self, ids: np.ndarray, pool: ThreadPool | None) -> pa.Table:
        """The records of input rows ``ids``, computed now with the threads of ``pool``
        (the points were read and checked once, by :func:`make_job`)."""
        return classify_given(
            self.given.take(ids),
            self.X,
            self.Y,
            self.problem,
            refine=self.refine,
            tolerances=self.tolerances,
            threads=1 if pool is None else pool.threads,
            stability_rel=self.stability_rel,
            hessian=self.hessian,
        )

    def finish(self, started: pa.Table) -> pa.Table:
        """The table :meth:`start` computed."""
        return started


def make_job(
    points: Sequence[Sequence[np.ndarray]] | str | Path,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    refine: bool = False,
    key: str | None = None,
    tolerances: Tolerances | None = None,
    stability_rel: float | None = None,
    hessian: str = "auto",
    threads: int | None = None,
) -> ClassifyJob:
    """Check the data, read the points (:func:`mcland.classification.inputs.read_points`)
    and refuse what cannot fit (:func:`mcland.classification.analysis.check_points`)."""
    rel = check_stability_rel(stability_rel)
    X = np.ascontiguousarray(X, np.float64)
    Y = np.ascontiguousarray(Y, np.float64)
    problem = Problem.from_data(X, Y)
    given = read_points(points, problem, key)
    check_points(given.dims, hessian, refine, threads)
    tol = tolerances or Tolerances()
    return ClassifyJob(given, X, Y, problem, refine, key, tol, rel, hessian)


def run(
    points: Sequence[Sequence[np.ndarray]] | str | Path,
    X: np.ndarray,
    Y: np.ndarray,
    out: str | Path,
    *,
    refine: bool = False,
    key: str | None = None,
    tolerances: Tolerances | None = None,
    stability_rel: float | None = None,
    hessian: str = "auto",
    shard_size: int = DEFAULT_SHARD_SIZE,
    threads: int | None = None,
    progress: bool = True,
    scheduler: str | None = None,
    workers: int | None = None,
    force_unlock: bool = False,
    grace: float = signals.DEFAULT_GRACE,
) -> runner.Outcome:
    """Classify ``points`` (as :func:`mcland.classify`) into the run directory ``out``.

    Parameters
    ----------
    points, X, Y, refine, key, tolerances, stability_rel, hessian
        As for :func:`mcland.classify` (``stability_rel`` None: its default).
    out : path
        Run directory: created, or resumed when it holds the same run (same points, data
        and options; a POINTS file changed since is refused).
    shard_size : int
        Points per shard.
    threads, progress, scheduler, workers, force_unlock, grace
        As for :func:`mcland.run`.

    Returns
    -------
    mcland.execution.runner.Outcome
        Read the records with :func:`mcland.load`.
    """
    if shard_size < 1:
        raise MclandError(f"shard_size must be >= 1, got {shard_size}")
    job = make_job(
        points, X, Y, refine=refine, key=key, tolerances=tolerances,
        stability_rel=stability_rel, hessian=hessian, threads=threads,
    )  # fmt: skip
    return runner.run_job(
        job,
        out,
        shard_size,
        threads=threads,
        progress=progress,
        scheduler=scheduler,
        workers=workers,
        force_unlock=force_unlock,
        grace=grace,
        desc="classifying",
    )
