"""Distributed runs on Dask: one task per shard, written by the workers themselves.

``mcland sample CONFIG --out DIR --scheduler tcp://host:8786`` connects to a running
Dask cluster; ``--workers N`` starts a local one (``N`` single-threaded worker processes on
127.0.0.1).  The client writes the manifest, submits one task per shard still to compute
and checks every shard a worker reports as written; a shard whose task failed, or whose
worker died, is submitted again (Dask itself reschedules the tasks of a dead worker).
Workers write into ``DIR`` with ordinary file calls, so ``DIR`` must be a local path
(``--workers``) or a path on a shared POSIX filesystem that every worker mounts at the
same place (``--scheduler``).

``dask.distributed`` is imported only here and only when a distributed run is asked for;
the default in-process path does not need it (``pip install "mcland[dask]"``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcland.core import faults
from mcland.core.errors import MclandError
from mcland.core.version import __version__
from mcland.execution.compute import compute_shard
from mcland.execution.job import Job
from mcland.rundir import directory as rundir
from mcland.rundir.files import MANIFEST, shard_name

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client
    from tqdm import tqdm

    from mcland.execution.signals import Stop

ATTEMPTS = 3  # submissions of a shard before the run gives up
JOB_LOSSES = 10  # times the scattered job may die with a worker before the run gives up
CONNECT_TIMEOUT = "30s"


def _dask() -> Any:
    try:
        import distributed
    except ImportError:
        raise MclandError(
            "--scheduler and --workers need dask.distributed: pip install 'mcland[dask]'"
        ) from None
    return distributed


@contextmanager
def client(scheduler: str | None, workers: int | None) -> Iterator[Client]:
    """A Dask client of the scheduler at ``scheduler``, or of a new local cluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler, e.g. ``tcp://10.0.0.5:8786``.
    workers : int, optional
        Without ``scheduler``: start ``LocalCluster(n_workers=workers,
        threads_per_worker=1, processes=True)`` on the loopback interface.

    Raises
    ------
    MclandError
        The scheduler cannot be reached or its address is malformed.
    """
    dd = _dask()
    if scheduler is not None:
        try:
            c = dd.Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, ValueError, TypeError) as exc:
            raise MclandError(f"cannot connect to the Dask scheduler {scheduler}: {exc}") from None
        with c:
            yield c
        return
    with (
        dd.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # any free port: clusters may run side by side
        ) as cluster,
        dd.Client(cluster, set_as_default=False) as c,
    ):
        yield c


def shard_task(job: Job, run_dir: str, manifest: dict[str, Any], k: int) -> int:
    """Worker side: compute shard ``k`` and write it into ``run_dir``; returns its row count."""
    faults.checkpoint("shard-task")
    if manifest["mcland_version"] != __version__:
        raise MclandError(
            f"worker has mcland {__version__}, the run needs {manifest['mcland_version']}"
        )
    directory = Path(run_dir)
    if not (directory / MANIFEST).is_file():
        raise MclandError(f"worker cannot see {directory / MANIFEST}: is {run_dir} shared?")
    return compute_shard(job, directory, manifest, k)


def run_shards(
    c: Client,
    job: Job,
    run_dir: Path,
    manifest: dict[str, Any],
    shards: list[int],
    bar: tqdm,
    stop: Stop | None = None,
) -> int:
    """Compute ``shards`` on the cluster of ``c``; returns the number of points computed.

    ``stop`` (SIGTERM/SIGINT of the client) is checked whenever a task completes: the run
    then stops, the remaining tasks are released, and shards being written by workers are
    either renamed into place whole or not at all.

    Every shard a task reports as written is checked (:func:`mcland.rundir.directory.check_shard`);
    a failed or bad shard is submitted again at once, up to :data:`ATTEMPTS` times in all.

    The job is scattered to the workers once.  Dask keeps scattered data on one worker
    (its active memory manager undoes ``broadcast=True``) and cannot recompute it, so a
    worker's death may take the job with it and cancel every task waiting for it ("lost
    dependencies").  That is not the shards' failure: the job is scattered again and the
    cancelled shards are resubmitted without counting an attempt, up to
    :data:`JOB_LOSSES` times per run.

    Raises
    ------
    MclandError
        Some shard still failed after :data:`ATTEMPTS` submissions, or the job was lost
        more than :data:`JOB_LOSSES` times (the message names a shard and the last error);
        the shards already written are kept for a resume.
    """
    dd = _dask()
    path = str(run_dir.resolve())
    job_ref = c.scatter(job, broadcast=True, hash=False)
    losses = 0
    tries = dict.fromkeys(shards, 0)
    failures: dict[int, str] = {}
    futures: dict[Any, tuple[int, Any]] = {}  # each task's shard and the job it was given
    pending = dd.as_completed(loop=c.loop)

    def submit(k: int, counted: bool = True) -> None:
        tries[k] += counted
        fut = c.submit(shard_task, job_ref, path, manifest, k, pure=False)
        futures[fut] = (k, job_ref)
        pending.add(fut)

    def job_lost() -> bool:
        if job_ref.status != "finished":
            return True
        try:
            return not c.who_has([job_ref]).get(job_ref.key)
        except Exception:  # FuturesCancelledError: the scheduler has forgotten it
            return True

    for k in shards:
        submit(k)
    computed = 0
    for fut in pending:
        k, given = futures.pop(fut)
        try:
            rows = fut.result()
        except MclandError:
            raise
        except Exception as exc:  # a dead worker, a lost job, ...: try again
            failures[k] = f"{type(exc).__name__}: {exc}"
            cancelled = fut.status == "cancelled"
            if cancelled and given is job_ref and job_lost():
                losses += 1
                if losses > JOB_LOSSES:
                    break
                job_ref = c.scatter(job, broadcast=True, hash=False)
            if cancelled and given is not job_ref:  # its job was lost: not the shard's failure
                submit(k, counted=False)
            elif tries[k] < ATTEMPTS:
                submit(k)
            if stop is not None:
                stop.between_shards()
            continue
        why = rundir.check_shard(run_dir, manifest, k)
        if why is not None:
            failures[k] = f"written but {why}"
            if tries[k] < ATTEMPTS:
                submit(k)
            continue
        failures.pop(k, None)
        computed += rows
        bar.update(rows)
        if stop is not None:
            stop.between_shards()
    if not failures:
        return computed
    c.cancel(list(futures))  # after a break: the tasks still pending
    k = min(failures)
    why = (
        f"the job's data was lost with dying workers {losses} time(s)"
        if losses > JOB_LOSSES
        else f"{len(failures)} shard(s) failed on the cluster {ATTEMPTS} times"
    )
    raise MclandError(f"{why} ({shard_name(k)}: {failures[k]}); rerun to resume")


# analysis on a Dask worker, where the data is
def on_cluster(
    fn: Callable[..., Any],
    *args: Any,
    scheduler: str | None = None,
    workers: int | None = None,
    **kwargs: Any,
) -> Any:
    """``fn(*args, **kwargs)`` run on a worker of a Dask cluster, where the data is; its
    result (or its exception) comes back to the caller.

    For a run directory on a cluster's filesystem: the analysis (``mcland report``, the
    claims of ``analysis/run_claims.py``, :func:`mcland.rundir.compare.compare_runs`) runs
    on a worker that mounts it, with the same code and so the same output as in process,
    and only its result (a path, the verdicts, a dict) travels back.  Paths are those the
    workers see.

    Parameters
    ----------
    fn : callable
        An importable function (it is sent to the worker by reference).
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``).
    workers : int, optional
        Without ``scheduler``: a local cluster of this many worker processes (default 1).
    """
    with client(scheduler, workers or (None if scheduler else 1)) as c:
        return c.submit(fn, *args, pure=False, **kwargs).result()
