"""The kinds of run a run directory can hold, and what their shards must look like.

The manifest's ``kind`` (absent in runs of mcland < 0.7: ``sample``) says which job wrote
the directory (:class:`mcland.pipeline.Job`):

* ``sample``: one record per drawn point, :data:`mcland.storage.SCHEMA`, keyed by
  ``sample_id``;
* ``classify``: one record per given point, :func:`mcland.classify.record_schema`, keyed
  by ``row`` (the input's index; a user key column is only counted);
* ``dynamics``: one record per (drawn point, delta or eps), the sample record followed by
  the experiment's columns (:func:`mcland.dynamics_run.run_schema`), keyed by
  ``sample_id``, each id repeated once per delta or eps.

:func:`shard_schema` and :func:`shard_ids` are what :mod:`mcland.rundir` checks a shard
against and :func:`mcland.load` reads with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

KINDS = ("sample", "classify", "dynamics")


def kind_of(manifest: dict[str, Any]) -> str:
    """The kind of run ``manifest`` describes."""
    return str(manifest.get("kind", "sample"))


def shard_schema(manifest: dict[str, Any]) -> pa.Schema:
    """The schema every shard of the run must have (without metadata)."""
    kind = kind_of(manifest)
    if kind == "sample":
        from mcland.storage import SCHEMA

        return SCHEMA
    if kind == "classify":
        from mcland.classify import record_schema

        return record_schema(pa.type_for_alias(manifest["key_type"]))
    if kind == "dynamics":
        from mcland.dynamics_run import run_schema

        return run_schema(manifest["config"]["dynamics"]["experiment"])
    raise ValueError(f"unknown kind of run {kind!r}")


def rows_per_id(manifest: dict[str, Any]) -> int:
    """Records per id: the number of deltas or eps of a dynamics run, else 1."""
    if kind_of(manifest) != "dynamics":
        return 1
    from mcland.dynamics_run import rows_per_point

    return rows_per_point(manifest["config"]["dynamics"])


def shard_ids(manifest: dict[str, Any], start: int, stop: int) -> tuple[str, np.ndarray] | None:
    """``(column, values)`` a shard holding ids ``start <= id < stop`` must carry, in order;
    None when only its row count can be checked (a classify run keyed by a user column)."""
    kind = kind_of(manifest)
    ids = np.arange(start, stop)
    if kind == "classify":
        return None if manifest.get("key") is not None else ("row", ids)
    return "sample_id", np.repeat(ids, rows_per_id(manifest))
