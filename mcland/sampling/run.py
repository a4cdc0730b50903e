"""The ``sample`` kind's entry points: in-memory sampling (:func:`sample`), run directories
(:func:`run`, in process or on Dask), single-point redraws (:func:`draw_point`), and what its
shards hold (:data:`KIND`).

The job itself is :class:`mcland.points.plan.Plan`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from mcland._kernels.batch import draw_point as _draw_point
from mcland.core.config import Config
from mcland.execution import runner, signals
from mcland.execution.compute import compute_all
from mcland.points.inspect import split_layers
from mcland.points.plan import make_plan
from mcland.points.records import PARQUET_OPTIONS, SCHEMA
from mcland.rundir.files import SHARD_GLOB
from mcland.rundir.kinds import Kind


def _key(manifest: dict) -> str:
    return "sample_id"


KIND = Kind("sample", lambda manifest: SCHEMA, _key, parquet_options=PARQUET_OPTIONS)
"""A ``sample`` run's shards: one record per drawn point (:data:`mcland.points.records.SCHEMA`),
keyed by ``sample_id``."""


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
    return compute_all(make_plan(config, n, seed), threads, progress).to_pandas()


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
    force_unlock: bool = False,
    grace: float = signals.DEFAULT_GRACE,
) -> RunSummary:
    """Draw and classify points into the run directory ``out`` (see :mod:`mcland.rundir.directory`).

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
    force_unlock : bool
        Remove the lock of ``out`` left by a process on another host that no longer runs
        (:mod:`mcland.rundir.lock`); locks of dead processes on this host are recovered anyway.
    grace : float
        Seconds after SIGTERM/SIGINT within which the shard in progress may still be
        finished; after them it is abandoned (when called from the main thread).  Not
        part of the run's identity.

    Returns
    -------
    RunSummary
        The type counts (numeric x theory) and the agreement rate over the whole run.

    Raises
    ------
    MclandError
        Bad configuration or data, an output directory holding something else, an
        unreachable scheduler, shards that failed on the cluster.
    mcland.rundir.lock.Locked
        Another process is writing ``out`` (a MclandError).
    StorageFull
        The disk or quota filled up (a MclandError); finished shards are kept, nothing
        partial is left, and a rerun with space resumes.
    Interrupted
        SIGTERM or SIGINT stopped the run; finished shards are kept.
    """
    plan = make_plan(config, n, seed)
    done = runner.run_job(
        plan,
        out,
        plan.config.output.shard_size,
        threads=threads,
        progress=progress,
        scheduler=scheduler,
        workers=workers,
        force_unlock=force_unlock,
        grace=grace,
    )
    return _summarise(done.run_dir, plan.n, done.computed, done.seconds, done.kernel_seconds)


def _summarise(
    run_dir: Path, n: int, computed: int, seconds: float, kernel_seconds: float
) -> RunSummary:
    """The run's :class:`RunSummary`, read shard by shard (memory flat in the run's size)."""
    cols = ["sample_id", "numeric_type", "theory_type", "agree", "audit_type"]
    counts = None
    agree = 0
    audited = 0
    odd = []
    for path in sorted(run_dir.glob(SHARD_GLOB)):
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
    plan = make_plan(config, None, seed, analyse=False)  # drawing needs no Hessian
    point = _draw_point(plan.sampler, int(sample_id))
    weights = [W.copy() for W in split_layers(point.w, point.dims)]
    return weights, np.array(point.X), np.array(point.Y)
