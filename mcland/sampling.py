"""Driving the batch kernel: in-memory sampling, run directories, single-point redraws."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.linalg.cython_lapack  # noqa: F401 - the LAPACK Numba calls, loaded before any threadpool_limits
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from mcland import _compile, _faults, rundir, runlog, storage
from mcland._kernels.batch import draw_point as _draw_point
from mcland._kernels.batch import process_range
from mcland._kernels.bundles import RangeOutput, Sampler
from mcland.config import Config, config_from_dict, load_config
from mcland.datasource import load_data
from mcland.errors import MclandError
from mcland.point import split_layers
from mcland.problem import Problem

BATCH = 512  # points per table (the next one computes while one is written); results do not depend on it
# tasks per thread and batch, each taking every k-th point; results do not depend on it
TASKS_PER_THREAD = 2


@dataclass(frozen=True)
class Plan:
    """Everything a batch needs besides the sample ids."""

    config: Config
    prm: np.ndarray
    kill_w: np.ndarray
    fx: np.ndarray
    fy: np.ndarray
    h_max: int
    dy_max: int
    n_max: int

    @property
    def n(self) -> int:
        return self.config.n

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def sampler(self) -> Sampler:
        """The kernels' bundle of this plan (:class:`mcland._kernels.bundles.Sampler`)."""
        return Sampler(self.seed, self.prm, self.kill_w, self.fx, self.fy)


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
    d, a = cfg.data, cfg.architecture
    if d.source == "gaussian":
        fx = fy = np.zeros((0, 0))
        dx_max, dy_max = a.d_y[1] + a.d_x_extra[1], a.d_y[1]
    else:
        path = Path(cfg.base_dir) / str(d.path)
        X, Y = load_data(d.source, path, d.x_columns, d.y_columns)
        prob = Problem.from_data(
            X, Y, gap_rtol=cfg.classify.gap_rtol, sxx_rcond=cfg.classify.sxx_rcond
        )
        fx, fy = np.ascontiguousarray(X, np.float64), np.ascontiguousarray(Y, np.float64)
        dx_max, dy_max = prob.d_x, prob.d_y
    h_max, hid = a.depth[1], a.hidden[1]
    n_max = dx_max * hid + (h_max - 2) * hid * hid + hid * dy_max
    prm, kill_w = cfg.kernel_params(fixed_data=d.source != "gaussian")
    return Plan(cfg, prm, kill_w, fx, fy, h_max, dy_max, n_max)


def _start(plan: Plan, ids: np.ndarray, pool: Executor | None) -> tuple:
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
    o = plan.config.output
    out = storage.BatchOutput.allocate(
        ids.size, plan.h_max, plan.dy_max, plan.n_max, o.spectrum, o.original_spectrum, o.weights
    )
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    args = (plan.sampler, ids, kernel_output(out))
    if pool is None:
        process_range(*args, 0, ids.size, 1)
        return out, ids, []
    k = min(ids.size, n_tasks(pool))
    tasks = [pool.submit(process_range, *args, j, ids.size, k) for j in range(k)]
    return out, ids, tasks


def kernel_output(out: storage.BatchOutput) -> RangeOutput:
    """The kernel's view of a batch's output buffers (the same arrays, named for
    :func:`mcland._kernels.batch.process_range`)."""
    return RangeOutput(
        dims=out.dims, draw_int=out.dint, draw_float=out.dflt, row_float=out.frow,
        row_int=out.irow, s_mask=out.smask, s_drawn=out.sdrawn, ranks=out.ranks,
        spectrum_w=out.spec_w, spectrum=out.spec, weights=out.weights,
        critical_values=out.cvals,
    )  # fmt: skip


def load_kernels(plan: Plan, progress: bool = False) -> float:
    """Compile (first run, two processes side by side: :mod:`mcland._compile`) or load the
    kernels ``plan`` needs; returns the seconds it took.  With ``progress``, a first-run
    compilation is announced on stderr."""
    notify = (lambda line: print(f"mcland: {line}", file=sys.stderr)) if progress else None
    return _compile.prepare_sampler(plan.sampler, notify)


def n_tasks(pool: Executor) -> int:
    """Tasks per batch for ``pool`` (see :func:`_start`)."""
    return TASKS_PER_THREAD * getattr(pool, "_max_workers", os.cpu_count() or 1)


def _finish(plan: Plan, started: tuple) -> pa.Table:
    out, ids, tasks = started
    for task in tasks:
        task.result()
    return storage.to_table(out, ids, plan.seed)


def compute(plan: Plan, ids: np.ndarray, pool: Executor | None = None) -> pa.Table:
    """Records of the points ``ids`` (any order, any size) as an Arrow table.

    With ``pool``, interleaved subsets of the points run concurrently in its threads
    (:func:`_start`); every point is computed from its own stream, so the table is the same
    with or without a pool.
    """
    with threadpool_limits(limits=1):  # LAPACK calls inside the kernels stay single-threaded
        return _finish(plan, _start(plan, ids, pool))


def compute_batches(
    plan: Plan, ids: np.ndarray, pool: Executor | None = None
) -> Iterator[pa.Table]:
    """Tables of consecutive batches of :data:`BATCH` points of ``ids``, as :func:`compute`
    gives them, with the work pipelined: while the caller converts, writes or otherwise
    consumes batch k, the pool's threads already compute batch k + 1, so they never wait
    for the single-threaded Arrow/Parquet work."""
    with threadpool_limits(limits=1):
        pending = None
        for batch in _batches(ids):
            started = _start(plan, batch, pool)
            if pending is not None:
                yield _finish(plan, pending)
            pending = started
        if pending is not None:
            yield _finish(plan, pending)


def _batches(ids: np.ndarray) -> Iterator[np.ndarray]:
    for i in range(0, ids.size, BATCH):
        yield ids[i : i + BATCH]


def default_threads() -> int:
    """Number of CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


@contextmanager
def _pool(threads: int | None) -> Iterator[Executor | None]:
    threads = default_threads() if threads is None else threads
    if threads < 1:
        raise MclandError(f"threads must be >= 1, got {threads}")
    if threads == 1:
        yield None
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mcland") as pool:
        yield pool


def sample(
    config: Config | dict | str | Path,
    *,
    n: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Draw and classify ``n`` points in memory (for small runs; see :func:`run` for disk).

    Parameters
    ----------
    config : Config, dict or path to a TOML file
    n, seed : int, optional
        Override the configuration's ``n`` and ``seed``.
    threads : int, optional
        Worker threads (default: all cores this process may use).  Results do not depend on it.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per point, columns as documented in docs/output-schema.md.
    """
    plan = make_plan(config, n, seed)
    load_kernels(plan, progress)
    ids = np.arange(plan.n, dtype=np.int64)
    tables = []
    with _pool(threads) as pool, tqdm(total=plan.n, unit="pt", disable=not progress) as bar:
        for table in compute_batches(plan, ids, pool):
            tables.append(table)
            bar.update(table.num_rows)
    return pa.concat_tables(tables).to_pandas()


@dataclass(frozen=True)
class RunSummary:
    """What :func:`run` did: type counts (numeric x theory) and agreement over the whole run;
    in spectrum-free mode the number of audited points (full spectrum as well) and those
    whose spectral type (``audit_type``) differs from the Cholesky one."""

    run_dir: Path
    n: int
    computed: int
    seconds: float
    counts: pd.DataFrame
    agreement: float
    audited: int = 0
    audit_disagreements: pd.DataFrame | None = None
    kernel_seconds: float = 0.0  # compiling (first run) or loading the kernels, not in seconds


def _manifest(plan: Plan) -> dict:
    from mcland import __version__

    return {
        **rundir.plan_fields(plan.n, plan.config.output.shard_size),
        "mcland_version": __version__,
        "seed": plan.seed,
        "config": plan.config.resolved(),
        # user data is part of the run: resuming on changed data is refused
        "data_sha256": hashlib.sha256(plan.fx.tobytes() + plan.fy.tobytes()).hexdigest()
        if plan.fx.size
        else None,
    }


def compute_table(
    plan: Plan,
    ids: np.ndarray,
    pool: Executor | None = None,
    on_batch: Callable[[int], object] | None = None,
) -> pa.Table:
    """The records of the points ``ids`` as one table, computed batch by batch
    (:func:`compute_batches`); ``on_batch`` is called with each batch's size."""
    tables = []
    for table in compute_batches(plan, ids, pool):
        tables.append(table)
        if on_batch is not None:
            on_batch(table.num_rows)
        _faults.checkpoint("batch-computed")
    return pa.concat_tables(tables)


def compute_shard(
    plan: Plan,
    run_dir: Path,
    manifest: dict,
    k: int,
    pool: Executor | None = None,
    on_batch: Callable[[int], object] | None = None,
) -> int:
    """Compute shard ``k`` of the run and write it atomically; returns its row count.

    Parameters
    ----------
    plan : Plan
        The run's plan (:func:`make_plan`).
    run_dir : Path
        The run directory (already holding ``manifest``).
    manifest : dict
        The run's manifest; stored in the shard's metadata.
    k : int
        Shard index (its sample ids are given by :func:`mcland.rundir.shard_range`).
    pool : Executor, optional
        Threads to compute with (see :func:`compute`).
    on_batch : callable, optional
        Called with the number of points after each computed batch (progress bars).
    """
    start, stop = rundir.shard_range(manifest, k)
    table = compute_table(plan, np.arange(start, stop, dtype=np.int64), pool, on_batch)
    path = rundir.shard_path(run_dir, k)
    try:
        storage.write_shard(table, path, manifest)
    except OSError as exc:
        raise MclandError(f"cannot write {path}: {exc.strerror}") from None
    _faults.checkpoint("shard-done")
    pa.default_memory_pool().release_unused()  # keep memory flat in the number of shards
    return stop - start


def run(
    config: Config | dict | str | Path,
    out: str | Path,
    *,
    n: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    progress: bool = True,
    scheduler: str | None = None,
    workers: int | None = None,
) -> RunSummary:
    """Draw and classify points into the run directory ``out`` (see :mod:`mcland.rundir`).

    Parameters
    ----------
    config : Config, dict or path to a TOML file
    out : path
        Run directory: created, or resumed when it holds the same run.  Shards already
        done are kept; bad or missing ones are computed.
    n, seed : int, optional
        Override the configuration's ``n`` and ``seed``.
    threads : int, optional
        Threads of the in-process run (default: all cores).  Results do not depend on it.
    progress : bool
        Show a progress bar on stderr.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``): one task per shard
        still to compute; the workers write the shards into ``out``, which they must see
        at the same path.  Needs ``mcland[dask]``.
    workers : int, optional
        Start a local Dask cluster of this many single-threaded worker processes instead.

    Returns
    -------
    RunSummary
        The type counts (numeric x theory) and the agreement rate over the whole run.

    Raises
    ------
    MclandError
        Bad configuration or data, an output directory holding something else, an
        unreachable scheduler, shards that failed on the cluster.
    """
    if scheduler is not None and workers is not None:
        raise MclandError("give either --scheduler or --workers, not both")
    if threads is not None and (scheduler is not None or workers is not None):
        raise MclandError("--threads is for in-process runs; Dask workers run one shard per thread")
    if workers is not None and workers < 1:
        raise MclandError(f"workers must be >= 1, got {workers}")
    plan = make_plan(config, n, seed)
    run_dir = rundir.check_out_path(out)
    manifest = _manifest(plan)
    distributed = scheduler is not None or workers is not None
    if distributed:
        from mcland import distributed as dist

        cluster = dist.client(scheduler, workers)  # connects before anything is written
    else:
        cluster = _pool(threads)
    t_load = time.perf_counter()
    # compile (first run) or load the kernels before the clock starts; for a cluster too,
    # whose workers then load them from a shared cache (docs/distributed.md)
    load_kernels(plan, progress)
    t0 = time.perf_counter()
    computed = 0
    with cluster as executor:
        status = rundir.prepare(run_dir, manifest)
        _faults.checkpoint("manifest-written")
        # appends this session's line (wall time, hosts, points) to DIR/runlog.jsonl at the end
        log = runlog.session(run_dir, status, executor, threads, workers, scheduler, t_load)
        with (
            log,
            tqdm(
                total=plan.n,
                initial=status.rows_done,
                unit="pt",
                disable=not progress,
                desc="sampling",
            ) as bar,
        ):
            if distributed:
                computed = dist.run_shards(executor, plan, run_dir, manifest, status.pending, bar)
            else:
                for k in status.pending:
                    computed += compute_shard(plan, run_dir, manifest, k, executor, bar.update)
    _faults.checkpoint("all-shards")
    seconds = time.perf_counter() - t0
    return _summarise(run_dir, plan.n, computed, seconds, t0 - t_load)


def _summarise(
    run_dir: Path, n: int, computed: int, seconds: float, kernel_seconds: float
) -> RunSummary:
    """The run's :class:`RunSummary`, read shard by shard (memory flat in the run's size)."""
    cols = ["sample_id", "numeric_type", "theory_type", "agree", "audit_type"]
    counts = None
    agree = 0
    audited = 0
    odd = []
    for path in sorted(run_dir.glob(storage.SHARD_GLOB)):
        part = pq.read_table(path, columns=cols).to_pandas()
        c = pd.crosstab(part["numeric_type"], part["theory_type"], dropna=False)
        counts = c if counts is None else counts.add(c, fill_value=0).astype(np.int64)
        agree += int(part["agree"].sum())
        checked = part[part["audit_type"].notna()]
        audited += len(checked)
        odd.append(
            checked[checked["audit_type"].astype(str) != checked["numeric_type"].astype(str)]
        )
    odd_rows = pd.concat(odd) if odd else pd.DataFrame(columns=cols)
    return RunSummary(
        run_dir,
        n,
        computed,
        seconds,
        counts if counts is not None else pd.DataFrame(),
        agree / n,
        audited,
        odd_rows[["sample_id", "numeric_type", "audit_type"]].reset_index(drop=True),
        kernel_seconds,
    )


def draw_point(
    config: Config | dict | str | Path, sample_id: int, *, seed: int | None = None
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Redraw point ``sample_id`` of a run exactly as the sampler built it.

    Parameters
    ----------
    config : Config, dict or path to a TOML file
        The run's configuration (its ``seed`` is used unless ``seed`` is given).
    sample_id : int
        The record's ``sample_id``.
    seed : int, optional
        Override the configuration's seed.

    Returns
    -------
    weights : list of ndarray
        ``[W_1, ..., W_H]``, ``W_h`` of shape ``(d_h, d_{h-1})``.
    X : ndarray (d_x, m)
    Y : ndarray (d_y, m)
        The point's data (the user data for file sources).

    Examples
    --------
    >>> W, X, Y = mcland.draw_point("runs/quick.toml", 17)  # doctest: +SKIP
    >>> mcland.inspect_point(W, X, Y).numeric_type  # doctest: +SKIP
    """
    plan = make_plan(config, None, seed)
    point = _draw_point(plan.sampler, int(sample_id))
    weights = [W.copy() for W in split_layers(point.w, point.dims)]
    return weights, np.array(point.X), np.array(point.Y)
