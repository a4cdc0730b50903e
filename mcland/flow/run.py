"""``mcland dynamics``: gradient-flow experiments from drawn critical points, in memory
(:func:`dynamics`) or into run directories (:func:`run`) with the machinery of
``mcland sample`` (:mod:`mcland.execution.runner`: shards, manifest, resume, lock, run log, Dask).

The ids of a dynamics run are the sample ids of its configuration: point ``k`` is drawn
exactly as ``mcland sample`` draws it, and its records are the point's sample record
(:data:`mcland.points.records.SCHEMA`) followed by the experiment's columns
(:func:`mcland.flow.schema.record_schema`), one record per delta (``escape``) or eps
(``small_init``), in the order of the ``[dynamics]`` section's list.  The experiments
themselves are :func:`mcland.flow.records.point_records`; docs/dynamics.md describes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import ValidationError

from mcland._kernels.compile.flow import prepare_dynamics
from mcland.core.config import (
    Config,
    Dynamics,
    as_config,
    config_from_dict,
    format_validation_error,
)
from mcland.core.errors import MclandError
from mcland.core.tolerances import Tolerances
from mcland.execution import runner, signals
from mcland.execution.compute import compute, compute_all
from mcland.execution.job import notifier
from mcland.execution.threads import ThreadPool
from mcland.flow.gradient_flow import matrix_free_steps
from mcland.flow.records import point_records
from mcland.flow.schema import record_schema
from mcland.flow.small_init import MAX_VISITS
from mcland.points.plan import Plan, make_plan
from mcland.points.records import PARQUET_OPTIONS, SCHEMA
from mcland.rundir.kinds import Kind

# points per batch: a point's flows cost ~1e3-1e5 gradient evaluations, so small batches
# keep progress and SIGTERM checks frequent; results do not depend on it
BATCH = 8
# float64 vectors of N one point's flows hold besides its analysis: the integrator's
# stages and buffers (about 14), the experiment's copies of the weights and the analysis
# outputs (about 10), room for a Krylov basis; small_init adds its visits' weights
FLOW_VECTORS = 48
DEFAULT_DELTAS = tuple(Dynamics().deltas)  # escape()'s default: the [dynamics] section's


def run_schema(experiment: str) -> pa.Schema:
    """The records of a dynamics run: :data:`mcland.points.records.SCHEMA`, then the experiment's
    columns (:func:`mcland.flow.schema.record_schema`) but its ``sample_id``."""
    extra = [f for f in record_schema(experiment) if f.name != "sample_id"]
    return pa.schema([*SCHEMA, *extra])


def rows_per_point(section: dict[str, Any]) -> int:
    """Records per point of a resolved ``[dynamics]`` section: its deltas or its eps."""
    return len(section["deltas"] if section["experiment"] == "escape" else section["eps"])


def _shard_schema(manifest: dict) -> pa.Schema:
    return run_schema(manifest["config"]["dynamics"]["experiment"])


def _key(manifest: dict) -> str:
    return "sample_id"


def _rows_per_id(manifest: dict) -> int:
    return rows_per_point(manifest["config"]["dynamics"])


KIND = Kind("dynamics", _shard_schema, _key, _rows_per_id, PARQUET_OPTIONS)
"""A ``dynamics`` run's shards: one record per (drawn point, delta or eps), the sample record
followed by the experiment's columns (:func:`run_schema`), keyed by ``sample_id``, each id
repeated once per delta or eps."""


def flow_vectors(experiment: str) -> int:
    """Float64 vectors of ``N`` one point of ``experiment`` holds during its flows
    (:data:`FLOW_VECTORS`, plus ``MAX_VISITS`` visits' weights for ``small_init``): part of
    a point's memory in the plan's check (:func:`mcland.points.plan.make_plan`)."""
    return FLOW_VECTORS + (MAX_VISITS if experiment == "small_init" else 0)


def _gated_records(plan: Plan, settings: Dynamics, sample_id: int) -> list[dict]:
    """:func:`point_records` holding one of the plan's slots (:meth:`Plan.slot`): the
    structured analyses and the flows of a point count in the plan's memory check."""
    with plan.slot():
        return point_records(plan, settings, sample_id)


class _Started(NamedTuple):
    """A batch being computed: the sample part and one future (or result) per point."""

    sample: Any
    flows: list[Future | list[dict]]


@dataclasses.dataclass(frozen=True)
class DynamicsJob:
    """A ``dynamics`` job (:class:`mcland.execution.job.Job`): the sampling plan, whose
    configuration carries the ``[dynamics]`` section (defaults filled in)."""

    plan: Plan

    kind = "dynamics"

    @property
    def batch(self) -> int:
        """Points per table: :data:`BATCH`, or the plan's (``WIDE_BATCH``) with structured
        points, whose output buffers its memory check counts."""
        return BATCH if self.plan.structured == "none" else self.plan.batch

    @property
    def settings(self) -> Dynamics:
        return self.plan.config.dynamics

    @property
    def n(self) -> int:
        return self.plan.n

    def manifest(self) -> dict:
        """As a sample run's (the configuration holds the ``[dynamics]`` section)."""
        return self.plan.manifest()

    def load_kernels(self, progress: bool = False) -> float:
        """The sampler's kernels (:meth:`mcland.points.plan.Plan.load_kernels`: the wide
        ones for a plan with structured points) and the configured integrator's, compiled
        beside them on a first run (:func:`mcland._kernels.compile.flow.prepare_dynamics`);
        with ``progress`` and structured points, one line on stderr says what they cost."""
        integrator = self.settings.integrator
        wide = self.plan.structured != "none"
        notify = notifier(progress)
        if wide and notify is not None:  # the progress bar moves per batch of such points
            above = "every point" if self.plan.structured == "all" else (
                f"points of more than {self.plan.dense_max_n:,} parameters"
            )  # fmt: skip
            notify(
                f"{above}: structured spectrum for W* and the end of each flow, seconds (width "
                "256) to minutes (width 1,024) per analysis (docs/dynamics.md, Width)"
            )
        krylov = matrix_free_steps(self.plan.n_max, integrator)  # some flows may take them
        return prepare_dynamics(self.plan.sampler, integrator, notify, wide=wide, krylov=krylov)

    def start(self, ids: np.ndarray, pool: ThreadPool | None) -> _Started:
        """Start the points' sample records and their flows (one task per point)."""
        sample = self.plan.start(ids, pool)
        records = point_records if self.plan.structured == "none" else _gated_records
        if pool is None:
            flows = [records(self.plan, self.settings, int(i)) for i in ids]
        else:
            flows = [pool.submit(records, self.plan, self.settings, int(i)) for i in ids]
        return _Started(sample, flows)

    def finish(self, started: _Started) -> pa.Table:
        """Each point's sample record, repeated once per flow record, then the flows'."""
        sample = self.plan.finish(started.sample)
        rows = [r for f in started.flows for r in (f.result() if isinstance(f, Future) else f)]
        schema = record_schema(self.settings.experiment)
        flows = pa.Table.from_pylist(rows, schema=schema)
        per = len(rows) // max(sample.num_rows, 1)
        repeated = sample.take(pa.array(np.repeat(np.arange(sample.num_rows), per)))
        if not np.array_equal(
            repeated.column("sample_id").to_numpy(), flows.column("sample_id").to_numpy()
        ):
            raise AssertionError("flow records out of step with their points")  # a bug
        cols = [*repeated.columns, *(flows.column(f.name) for f in schema if f.name != "sample_id")]
        return pa.Table.from_arrays(cols, schema=run_schema(self.settings.experiment))


def make_job(
    config: Config | dict | str | Path, n: int | None = None, seed: int | None = None
) -> DynamicsJob:
    """Validate the configuration and the data (:func:`mcland.points.plan.make_plan`: the
    analysis paths of ``classify.hessian`` as for a sample run, the flows' vectors counted
    in a structured point's memory); a configuration without ``[dynamics]`` gets the
    section's defaults."""
    cfg = as_config(config)  # without [dynamics]: its defaults, the escape experiment
    plan = make_plan(
        cfg, n, seed, run="dynamics", flow_vectors=flow_vectors(cfg.dynamics.experiment)
    )
    if not plan.config.has_dynamics:  # the defaults, written into the manifest
        config = plan.config.model_copy(update={"dynamics": Dynamics()})
        plan = dataclasses.replace(plan, config=config)
    return DynamicsJob(plan)


def dynamics(
    config: Config | dict | str | Path,
    *,
    n: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Run the configuration's dynamics experiment on ``n`` drawn points, in memory.

    Parameters
    ----------
    config : Config, dict or path to a TOML file
        A sampling configuration with a ``[dynamics]`` section (docs/configuration.md;
        without one, the section's defaults: the escape experiment).
    n, seed : int, optional
        Override the configuration's ``n`` and ``seed``.
    threads : int, optional
        Worker threads (default: all cores).  Results do not depend on it.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per (point, delta) or (point, eps): the point's sample record
        (docs/output-schema.md) and the experiment's columns (docs/dynamics.md).
    """
    return compute_all(make_job(config, n, seed), threads, progress).to_pandas()


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
) -> runner.Outcome:
    """Run the configuration's dynamics experiment into the run directory ``out``.

    Parameters are those of :func:`mcland.run`; shards hold ``output.shard_size`` points
    each (all their records).  Read the records with :func:`mcland.load`.
    """
    job = make_job(config, n, seed)
    return runner.run_job(
        job,
        out,
        job.plan.config.output.shard_size,
        threads=threads,
        progress=progress,
        scheduler=scheduler,
        workers=workers,
        force_unlock=force_unlock,
        grace=grace,
        desc="dynamics",
    )


def escape(
    config: Config | dict | str | Path,
    sample_id: int,
    deltas: Sequence[float] = DEFAULT_DELTAS,
    *,
    f: float = 0.5,
    budget: int = 200_000,
    t_max_steps: float = 1e9,
    n_record: int = 64,
    rtol: float = 1e-6,
    grad_tol: float = 1e-4,
    integrator: str = "auto",
    seed: int | None = None,
    tolerances: Tolerances | None = None,
) -> pd.DataFrame:
    """Escape of gradient flow from point ``sample_id`` of ``config``, one row per delta:
    the point's sampler record joined with :func:`point_records` (``experiment =
    "escape"``; columns in docs/dynamics.md).

    Parameters
    ----------
    config : Config, dict or path to a TOML file
        The sampling configuration (its ``[dynamics]`` section is not used: the
        arguments below are the settings).
    sample_id : int
        Which point.
    deltas : sequence of float
        Relative perturbation sizes, in (0, 1].
    f, budget, t_max_steps, n_record, rtol, grad_tol, integrator
        ``escape_fraction``, ``max_evals``, ``t_max_steps``, ``n_record``, ``rtol``,
        ``grad_tol``, ``integrator`` of the ``[dynamics]`` section.
    seed : int, optional
        Overrides the configuration's seed.
    tolerances : Tolerances, optional
        Classification tolerances (override the configuration's ``[classify]`` factors,
        for the record and the dynamics alike).

    Returns
    -------
    pandas.DataFrame
    """
    try:
        settings = Dynamics(
            experiment="escape", deltas=[float(d) for d in deltas], escape_fraction=float(f),
            max_evals=int(budget), t_max_steps=float(t_max_steps), n_record=int(n_record),
            rtol=float(rtol), grad_tol=float(grad_tol), integrator=integrator,
        )  # fmt: skip
    except ValidationError as exc:
        raise MclandError(format_validation_error(exc, "escape")) from None
    if tolerances is not None:
        cfg = as_config(config)
        classify = {
            **cfg.resolved()["classify"], "grad_rtol": tolerances.grad_rtol,
            "c_zero": tolerances.c_zero, "c_neg": tolerances.c_neg,
        }  # fmt: skip
        config = config_from_dict(
            {**cfg.resolved(), "classify": classify}, source="tolerances", base_dir=cfg.base_dir
        )
    plan = make_plan(config, None, seed, run="dynamics", flow_vectors=flow_vectors("escape"))
    record = compute(plan, np.array([int(sample_id)], np.int64)).to_pandas()
    rows = pa.Table.from_pylist(
        point_records(plan, settings, int(sample_id)), schema=record_schema("escape")
    ).to_pandas()
    return rows.merge(record, on="sample_id", how="left")
