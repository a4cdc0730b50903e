"""Run directories for every kind of job: :func:`run_job` computes the shards of a
:class:`mcland.execution.job.Job` that are not done yet into a run directory, in this process
(a thread pool) or on Dask, under the directory's lock, with the run log, progress bar,
signal handling and full-disk handling that every kind of run shares.

:func:`mcland.sampling.run`, :func:`mcland.classification.run.run` and
:func:`mcland.flow.run.run` are thin wrappers over it.
"""

from __future__ import annotations

import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mcland.core import faults, numerics
from mcland.core.errors import Interrupted, MclandError, StorageFull
from mcland.core.version import __version__
from mcland.execution import cluster, signals
from mcland.execution.compute import compute_shard
from mcland.execution.job import Job
from mcland.execution.progress import heartbeat
from mcland.execution.threads import ThreadPool, thread_pool
from mcland.rundir import directory as rundir
from mcland.rundir import lock, runlog


@dataclass(frozen=True)
class Outcome:
    """What :func:`run_job` did: the directory, ids computed by this call, the seconds the
    computing took and those spent compiling or loading the kernels before it."""

    run_dir: Path
    computed: int
    seconds: float
    kernel_seconds: float


def manifest(job: Job, shard_size: int) -> dict[str, Any]:
    """The run's manifest: the shard plan, the kind, the version and the job's identity."""
    return {
        **rundir.plan_fields(job.n, shard_size),
        "kind": job.kind,
        "mcland_version": __version__,
        **job.manifest(),
    }


def check_run_options(threads: int | None, scheduler: str | None, workers: int | None) -> None:
    """MclandError for options of :func:`run_job` that do not go together."""
    if scheduler is not None and workers is not None:
        raise MclandError("give either --scheduler or --workers, not both")
    if threads is not None and (scheduler is not None or workers is not None):
        raise MclandError("--threads is for in-process runs; Dask workers run one shard per thread")
    if workers is not None and workers < 1:
        raise MclandError(f"workers must be >= 1, got {workers}")


def run_job(
    job: Job,
    out: str | Path,
    shard_size: int,
    *,
    threads: int | None = None,
    progress: bool = True,
    scheduler: str | None = None,
    workers: int | None = None,
    force_unlock: bool = False,
    grace: float = signals.DEFAULT_GRACE,
    desc: str = "sampling",
) -> Outcome:
    """Compute the shards of ``job`` still missing in the run directory ``out``.

    Parameters
    ----------
    job : Job
        What to compute (ids ``0 <= id < job.n``).
    out : path
        Run directory: created, or resumed when it holds the same run (same manifest).
        Shards already done are kept; bad or missing ones are computed.
    shard_size : int
        Ids per shard (part of the run's identity).
    threads, progress, scheduler, workers, force_unlock, grace
        As for :func:`mcland.run`.
    desc : str
        Label of the progress bar.

    Raises
    ------
    MclandError
        Options that do not go together, an output directory holding something else, an
        unreachable scheduler, shards that failed on the cluster.
    mcland.rundir.lock.Locked
        Another process is writing ``out``.
    StorageFull, Interrupted
        The disk filled up, or SIGTERM/SIGINT stopped the run; finished shards are kept,
        nothing partial is left, and a rerun resumes.
    """
    check_run_options(threads, scheduler, workers)
    if not grace >= 0:
        raise MclandError(f"grace must be >= 0 seconds, got {grace}")
    run_dir = rundir.check_out_path(out)
    man = manifest(job, shard_size)
    lock.check_free(run_dir, force_unlock=force_unlock)  # refuse early, before any work
    on_dask = scheduler is not None or workers is not None
    with signals.catching(grace) as stop:
        # entered below: a Dask client connects before anything is written
        executing = cluster.client(scheduler, workers) if on_dask else thread_pool(threads)
        t_load = time.perf_counter()
        # compile (first run) or load the kernels before the clock starts; on a cluster too,
        # whose workers then load them from a shared cache (docs/distributed.md)
        job.load_kernels(progress)
        try:
            stop.between_shards()  # a signal while loading: nothing written
            t0 = time.perf_counter()
            # the lock is held from before the manifest is written until the session's
            # run-log line is appended: one writer per run directory
            with (
                executing as executor,
                rundir.writing(run_dir, man, force_unlock=force_unlock) as status,
            ):
                faults.checkpoint("manifest-written")
                # appends this session's line (wall time, hosts, points) to DIR/runlog.jsonl
                log = runlog.session(run_dir, status, executor, threads, workers, scheduler, t_load)
                with (
                    log,
                    tqdm(
                        total=job.n,
                        initial=status.rows_done,
                        unit="pt",
                        disable=not progress,
                        desc=desc,
                    ) as bar,
                ):
                    run = cluster.run_shards if on_dask else run_shards
                    with heartbeat(bar):  # the clock moves while a wide point computes
                        computed = run(executor, job, run_dir, man, status.pending, bar, stop)
                    t_done = time.perf_counter()  # within the session the run log times
                if status.pending:  # temporary files of attempts that died (Dask workers)
                    rundir.remove_leftovers(run_dir)
        except (Interrupted, StorageFull) as exc:
            raise _with_progress(exc, run_dir, man) from None
    faults.checkpoint("all-shards")
    _warn_if_mixed(run_dir, man, computed)
    return Outcome(run_dir, computed, t_done - t0, t0 - t_load)


def _warn_if_mixed(run_dir: Path, man: dict[str, Any], computed: int) -> None:
    """Issue 23: a session that computed shards into a run whose shards now come from more
    than one numerics fingerprint (a resume under other numerics, Dask workers unlike the
    client) says so; ``mcland status`` lists them."""
    if not computed:
        return
    paths = [rundir.shard_path(run_dir, k) for k in range(int(man["shards"]))]
    paths = [p for p in paths if p.exists()]
    if numerics.mixed(paths):
        warnings.warn(
            f"{run_dir}: " + "; ".join(line.split(None, 1)[1] for line in numerics.report(paths)),
            RuntimeWarning,
            stacklevel=3,
        )


def run_shards(
    pool: ThreadPool | None,
    job: Job,
    run_dir: Path,
    manifest: dict,
    shards: list[int],
    bar: tqdm,
    stop: signals.Stop | None = None,
) -> int:
    """Compute ``shards`` in this process, one after the other, each with all the threads of
    ``pool``; returns the number of ids computed (the in-process counterpart of
    :func:`mcland.execution.cluster.run_shards`).  ``stop`` is checked between shards and
    batches (SIGTERM/SIGINT)."""
    stop = signals.Stop() if stop is None else stop
    computed = 0
    for k in shards:
        stop.between_shards()
        computed += compute_shard(job, run_dir, manifest, k, pool, bar.update, stop.between_batches)
    return computed


def _with_progress(
    exc: Interrupted | StorageFull, run_dir: Path, manifest: dict
) -> Interrupted | StorageFull:
    """``exc`` with a message saying how far the run got."""
    shards, rows = rundir.progress(run_dir, manifest) if run_dir.is_dir() else (0, 0)
    got = (
        f"{shards} of {manifest['shards']} shards ({rows} of {manifest['n']} points) "
        f"complete in {run_dir}"
    )
    if isinstance(exc, StorageFull):
        return StorageFull(f"{exc}; {got}; no partial file left; free space, then rerun to resume")
    name = signal.Signals(exc.signum).name
    return Interrupted(exc.signum, f"stopped by {name}; {got}; nothing partial written")
