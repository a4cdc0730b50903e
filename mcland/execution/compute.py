"""Computing a :class:`~mcland.execution.job.Job`: batches in worker threads, their records
as Arrow tables, shards written to a run directory.

:mod:`mcland.execution.runner` (run directories), :mod:`mcland.execution.cluster` (a shard
per Dask task) and the kinds' in-memory entry points build on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import scipy.linalg.cython_lapack  # noqa: F401 - the LAPACK Numba calls, loaded before any threadpool_limits

from mcland.core import faults, numerics
from mcland.core.blas import one_blas_thread
from mcland.core.errors import MclandError, StorageFull
from mcland.execution.job import Job
from mcland.execution.threads import ThreadPool, thread_pool
from mcland.rundir import directory as rundir
from mcland.rundir.files import FULL_ERRNOS, write_shard


def compute(job: Job, ids: np.ndarray, pool: ThreadPool | None = None) -> pa.Table:
    """Records of the ids ``ids`` (any order, any size) as an Arrow table.

    With ``pool``, interleaved subsets of the ids run concurrently in its threads
    (:func:`_start`); every id is computed from its own stream or input, so the table is
    the same with or without a pool.
    """
    with one_blas_thread():  # LAPACK calls inside the kernels stay single-threaded
        return job.finish(job.start(ids, pool))


def compute_batches(
    job: Job, ids: np.ndarray, pool: ThreadPool | None = None
) -> Iterator[pa.Table]:
    """Tables of consecutive batches of ``job.batch`` ids of ``ids``, as :func:`compute`
    gives them, with the work pipelined: while the caller converts, writes or otherwise
    consumes batch k, the pool's threads already compute batch k + 1, so they never wait
    for the single-threaded Arrow/Parquet work."""
    with one_blas_thread():
        pending = None
        for batch in _batches(ids, job.batch):
            started = job.start(batch, pool)
            if pending is not None:
                yield job.finish(pending)
            pending = started
        if pending is not None:
            yield job.finish(pending)


def _batches(ids: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, ids.size, size):
        yield ids[i : i + size]


def compute_table(
    job: Job,
    ids: np.ndarray,
    pool: ThreadPool | None = None,
    on_batch: Callable[[int], object] | None = None,
    check: Callable[[], object] | None = None,
) -> pa.Table:
    """The records of the ids ``ids`` as one table, computed batch by batch
    (:func:`compute_batches`); ``on_batch`` is called with each batch's number of ids, ``check``
    after each batch (it raises to abandon the table, e.g. on SIGTERM)."""
    tables = []
    sizes = (batch.size for batch in _batches(ids, job.batch))
    for size, table in zip(sizes, compute_batches(job, ids, pool), strict=True):
        tables.append(table)
        if on_batch is not None:
            on_batch(size)
        faults.checkpoint("batch-computed")
        if check is not None:
            check()
    return pa.concat_tables(tables)


def compute_all(job: Job, threads: int | None = None, progress: bool = False) -> pa.Table:
    """Every record of ``job`` in memory: the kernels loaded, then all ids computed in
    ``threads`` worker threads (default: all cores), with a progress bar in points."""
    from tqdm.auto import tqdm

    job.load_kernels(progress)
    ids = np.arange(job.n, dtype=np.int64)
    with thread_pool(threads) as pool, tqdm(total=job.n, unit="pt", disable=not progress) as bar:
        return compute_table(job, ids, pool, bar.update)


def compute_shard(
    job: Job,
    run_dir: Path,
    manifest: dict,
    k: int,
    pool: ThreadPool | None = None,
    on_batch: Callable[[int], object] | None = None,
    check: Callable[[], object] | None = None,
) -> int:
    """Compute shard ``k`` of the run and write it atomically; returns its row count.

    Parameters
    ----------
    job : Job
        The run's job (for ``sample``: :func:`make_plan`).
    run_dir : Path
        The run directory (already holding ``manifest``).
    manifest : dict
        The run's manifest; stored in the shard's metadata.
    k : int
        Shard index (its sample ids are given by :func:`mcland.rundir.directory.shard_range`).
    pool : ThreadPool, optional
        Threads to compute with (see :func:`compute`).
    on_batch : callable, optional
        Called with the number of points after each computed batch (progress bars).
    check : callable, optional
        Called after each batch; it raises to abandon the shard (nothing is written).

    Raises
    ------
    StorageFull
        The disk or quota is full (``ENOSPC``, ``EDQUOT``); no temporary file is left.
    MclandError
        Any other failure to write the shard.
    """
    start, stop = rundir.shard_range(manifest, k)
    table = compute_table(job, np.arange(start, stop, dtype=np.int64), pool, on_batch, check)
    path = rundir.shard_path(run_dir, k)
    try:
        write_shard(table, path, manifest, numerics.fingerprint())  # issue 23
    except OSError as exc:
        if exc.errno in FULL_ERRNOS:
            raise StorageFull(f"no space left writing {path} ({exc.strerror})") from None
        raise MclandError(f"cannot write {path}: {exc.strerror}") from None
    faults.checkpoint("shard-done")
    pa.default_memory_pool().release_unused()  # keep memory flat in the number of shards
    return stop - start
