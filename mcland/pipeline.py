"""The computing pipeline: a :class:`Job` (what to compute for a range of ids), batches
computed in worker threads, their records as Arrow tables, shards written to a run directory.

Every kind of run is a job: :class:`Plan` (``sample``: draw and classify points),
:class:`mcland.classify_run.ClassifyJob` (given points) and
:class:`mcland.dynamics_run.DynamicsJob` (gradient flow from drawn points).
:mod:`mcland.runner` (run directories), :mod:`mcland.sampling` (the public
:func:`~mcland.sampling.sample` and :func:`~mcland.sampling.run`) and
:mod:`mcland.distributed` (a shard per Dask task) build on it; it imports none of them.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import pyarrow as pa
import scipy.linalg.cython_lapack  # noqa: F401 - the LAPACK Numba calls, loaded before any threadpool_limits

from mcland import _compile, _faults, rundir, storage
from mcland._blas import one_blas_thread
from mcland._kernels.batch import process_range
from mcland._kernels.bundles import RangeOutput, Sampler
from mcland.config import Config, config_from_dict, load_config
from mcland.datasource import load_data
from mcland.errors import MclandError, StorageFull
from mcland.problem import Problem

BATCH = 512  # points per table (the next one computes while one is written); results do not depend on it
# tasks per thread and batch, each taking every k-th point; results do not depend on it
TASKS_PER_THREAD = 2


class Job(Protocol):
    """What the pipeline computes: records for ids ``0 <= id < n``, each id's from its own
    random stream or input row, so that any split into batches, threads, shards or Dask
    tasks gives the same records.

    A job is pickled to Dask workers, so it holds data, not open resources.
    """

    kind: str  # "sample", "classify", "dynamics": the run directory's kind (mcland.kinds)
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
    of :func:`mcland._compile.prepare_sampler`)."""
    return (lambda line: print(f"mcland: {line}", file=sys.stderr)) if progress else None


@dataclass(frozen=True)
class Plan:
    """A ``sample`` job: everything a batch of drawn points needs besides the sample ids.

    Attributes
    ----------
    config : Config
        The validated configuration (``n`` and ``seed`` overrides applied).
    kernel_params : ndarray
        The flat parameter vector of :mod:`mcland._kernels.params`
        (:meth:`mcland.config.Config.kernel_params`).
    kill_weights : ndarray
        ``points.kill_weights``: weight of drawing 1, 2, ... zero complement blocks.
    fixed_x, fixed_y : ndarray
        The user data ``X (d_x, m)``, ``Y (d_y, m)`` of a file source; ``(0, 0)`` arrays
        for Gaussian data (drawn per point).
    h_max, dy_max, n_max : int
        Largest depth, output width and parameter count of any point: the sizes of the
        output buffers.
    """

    config: Config
    kernel_params: np.ndarray
    kill_weights: np.ndarray
    fixed_x: np.ndarray
    fixed_y: np.ndarray
    h_max: int
    dy_max: int
    n_max: int

    @property
    def sampler(self) -> Sampler:
        """What drawing a point takes besides its id, as the kernels' bundle
        (:class:`mcland._kernels.bundles.Sampler`)."""
        return Sampler(self.seed, self.kernel_params, self.kill_weights, self.fixed_x, self.fixed_y)

    kind = "sample"
    batch = BATCH

    @property
    def n(self) -> int:
        return self.config.n

    @property
    def seed(self) -> int:
        return self.config.seed

    def manifest(self) -> dict:
        """The configuration, seed and (for user data) the data's SHA-256."""
        return {
            "seed": self.seed,
            "config": self.config.resolved(),
            # user data is part of the run: resuming on changed data is refused
            "data_sha256": hashlib.sha256(
                self.fixed_x.tobytes() + self.fixed_y.tobytes()
            ).hexdigest()
            if self.fixed_x.size
            else None,
        }

    def load_kernels(self, progress: bool = False) -> float:
        """Compile (first run of an installation: two processes side by side, see
        :mod:`mcland._compile`) or load the sampler's kernels; returns the seconds it took.
        With ``progress``, a first-run compilation is announced on stderr."""
        return _compile.prepare_sampler(self.sampler, notifier(progress))

    def start(self, ids: np.ndarray, pool: ThreadPool | None) -> _Started:
        """:func:`_start`."""
        return _start(self, ids, pool)

    def finish(self, started: _Started) -> pa.Table:
        """:func:`_finish`."""
        return _finish(self, started)


def _as_config(config: Config | dict | str | Path) -> Config:
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return config_from_dict(config)
    return load_config(config)


def make_plan(
    config: Config | dict | str | Path, n: int | None = None, seed: int | None = None
) -> Plan:
    """Validate the configuration and the data and size the output buffers."""
    cfg = _as_config(config)
    if n is not None or seed is not None:
        cfg = config_from_dict(
            {
                **cfg.resolved(),
                **({"n": n} if n is not None else {}),
                **({"seed": seed} if seed is not None else {}),
            },
            source="overrides",
            base_dir=cfg.base_dir,
        )
    data, arch = cfg.data, cfg.architecture
    if data.source == "gaussian":
        fixed_x = fixed_y = np.zeros((0, 0))
        dx_max, dy_max = arch.d_y[1] + arch.d_x_extra[1], arch.d_y[1]
    else:
        path = Path(cfg.base_dir) / str(data.path)
        X, Y = load_data(data.source, path, data.x_columns, data.y_columns)
        problem = Problem.from_data(  # checks the data's assumptions before any point
            X, Y, gap_rtol=cfg.classify.gap_rtol, sxx_rcond=cfg.classify.sxx_rcond
        )
        fixed_x = np.ascontiguousarray(X, np.float64)
        fixed_y = np.ascontiguousarray(Y, np.float64)
        dx_max, dy_max = problem.d_x, problem.d_y
    h_max, hidden = arch.depth[1], arch.hidden[1]
    n_max = dx_max * hidden + (h_max - 2) * hidden * hidden + hidden * dy_max
    kernel_params, kill_weights = cfg.kernel_params(fixed_data=data.source != "gaussian")
    return Plan(cfg, kernel_params, kill_weights, fixed_x, fixed_y, h_max, dy_max, n_max)


# ---------------------------------------------------------------------- worker threads


@dataclass(frozen=True)
class ThreadPool:
    """The worker threads of a run: a running executor and its number of threads.

    The count is kept beside the executor because the batches are dealt out by it
    (:attr:`tasks`) and executors do not expose it.
    """

    executor: Executor
    threads: int

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        """``executor.submit(fn, *args)``."""
        return self.executor.submit(fn, *args)

    @property
    def tasks(self) -> int:
        """Tasks per batch (see :func:`_start`)."""
        return TASKS_PER_THREAD * self.threads


def default_threads() -> int:
    """Number of CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


@contextmanager
def thread_pool(threads: int | None) -> Iterator[ThreadPool | None]:
    """``threads`` worker threads (default: :func:`default_threads`) for the functions
    below, shut down on exit; None for one thread (the batches then run in the caller's).

    Raises
    ------
    MclandError
        ``threads < 1``.
    """
    threads = default_threads() if threads is None else threads
    if threads < 1:
        raise MclandError(f"threads must be >= 1, got {threads}")
    if threads == 1:
        yield None
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mcland") as executor:
        yield ThreadPool(executor, threads)


# ---------------------------------------------------------------------- batches


class _Started(NamedTuple):
    """A batch being computed: its output buffers, its ids, the tasks computing it (none
    when it was computed in the calling thread)."""

    out: storage.BatchOutput
    ids: np.ndarray
    tasks: list[Future]


def _start(plan: Plan, ids: np.ndarray, pool: ThreadPool | None) -> _Started:
    """Allocate a batch's outputs and start computing it: in ``pool`` if given, else right
    here.

    The batch is dealt to ``k = TASKS_PER_THREAD * threads`` tasks, task j taking points
    j, j + k, j + 2k, ...: interleaving balances the tasks (costs grow with the network),
    and few tasks mean few returns to Python.  A thread that finishes a task needs the GIL
    to start the next one, and while the main thread converts a batch it holds the GIL for
    up to ``sys.getswitchinterval()`` (5 ms).  With the earlier chunks of 8 points per task,
    lowering that interval to 0.2 ms took the small benchmark's pipeline/floor ratio from
    2.64 to 2.30 (medians of 5 paired rounds), which is what the waits were costing.
    """
    output = plan.config.output
    out = storage.BatchOutput.allocate(
        ids.size,
        plan.h_max,
        plan.dy_max,
        plan.n_max,
        output.spectrum,
        output.original_spectrum,
        output.weights,
    )
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    # the same arrays, named for the kernel (BatchOutput's fields carry the kernel's names)
    view = RangeOutput(**{name: getattr(out, name) for name in RangeOutput._fields})
    args = (plan.sampler, ids, view)
    if pool is None:
        process_range(*args, 0, ids.size, 1)
        return _Started(out, ids, [])
    k = min(ids.size, pool.tasks)
    tasks = [pool.submit(process_range, *args, j, ids.size, k) for j in range(k)]
    return _Started(out, ids, tasks)


def _finish(plan: Plan, started: _Started) -> pa.Table:
    """Wait for the batch ``started`` and return its records."""
    for task in started.tasks:
        task.result()  # raises what the task raised
    return storage.to_table(started.out, started.ids, plan.seed)


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
        _faults.checkpoint("batch-computed")
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


# ---------------------------------------------------------------------- shards


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
        Shard index (its sample ids are given by :func:`mcland.rundir.shard_range`).
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
        storage.write_shard(table, path, manifest)
    except OSError as exc:
        if exc.errno in storage.FULL_ERRNOS:
            raise StorageFull(f"no space left writing {path} ({exc.strerror})") from None
        raise MclandError(f"cannot write {path}: {exc.strerror}") from None
    _faults.checkpoint("shard-done")
    pa.default_memory_pool().release_unused()  # keep memory flat in the number of shards
    return stop - start
