"""The kinds of run a run directory can hold, as each describes its shards to this layer.

The run-directory layer knows no kind of run itself.  Each kind describes its shards with a
:class:`Kind`: the schema every shard must have, the column its records are keyed by and
how many records each id has, and the Parquet options its shards are written with.  The
package's top (``mcland/__init__.py``, the one place that knows every kind) registers them
with :func:`register`; today ``sample`` (:mod:`mcland.sampling`), ``classify``
(:mod:`mcland.classification`) and ``dynamics`` (:mod:`mcland.flow`).

The manifest's ``kind`` (absent in runs of mcland < 0.7: ``sample``) says which kind wrote
the directory; :func:`shard_schema`, :func:`rows_per_id` and :func:`shard_ids` are what
:mod:`mcland.rundir.directory` checks a shard against and :func:`mcland.load` reads with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from mcland.core.errors import MclandError

Manifest = dict[str, Any]


def _one(manifest: Manifest) -> int:
    return 1


@dataclass(frozen=True)
class Kind:
    """What a kind of run tells the run directory about its shards.

    Attributes
    ----------
    name : str
        The manifest's ``kind``.
    schema : callable
        ``schema(manifest)``: the schema every shard of the run must have (no metadata).
    key : callable
        ``key(manifest)``: the column holding each record's id (``sample_id``, ``row``), or
        None when the ids are a user's key column that is only counted.
    rows_per_id : callable
        ``rows_per_id(manifest)``: records per id (a dynamics run: its deltas or eps).
    parquet_options : dict
        Keyword arguments of :func:`pyarrow.parquet.write_table` for its shards.
    """

    name: str
    schema: Callable[[Manifest], pa.Schema]
    key: Callable[[Manifest], str | None]
    rows_per_id: Callable[[Manifest], int] = _one
    parquet_options: dict[str, Any] = field(default_factory=dict)


_KINDS: dict[str, Kind] = {}


def register(*kinds: Kind) -> None:
    """Make ``kinds`` known to the run directories (a later one of the same name replaces
    an earlier one)."""
    for kind in kinds:
        _KINDS[kind.name] = kind


def names() -> tuple[str, ...]:
    """The names of the registered kinds."""
    return tuple(_KINDS)


def kind_of(manifest: Manifest) -> str:
    """The name of the kind of run ``manifest`` describes."""
    return str(manifest.get("kind", "sample"))


def of(manifest: Manifest) -> Kind:
    """The registered :class:`Kind` of the run ``manifest`` describes.

    Raises
    ------
    MclandError
        No kind of that name is registered (a run of a newer mcland, say).
    """
    name = kind_of(manifest)
    try:
        return _KINDS[name]
    except KeyError:
        known = ", ".join(_KINDS) or "none"
        raise MclandError(f"unknown kind of run {name!r} (this mcland knows: {known})") from None


def shard_schema(manifest: Manifest) -> pa.Schema:
    """The schema every shard of the run must have (without metadata)."""
    return of(manifest).schema(manifest)


def rows_per_id(manifest: Manifest) -> int:
    """Records per id: the number of deltas or eps of a dynamics run, else 1."""
    return of(manifest).rows_per_id(manifest)


def shard_ids(manifest: Manifest, start: int, stop: int) -> tuple[str, np.ndarray] | None:
    """``(column, values)`` a shard holding ids ``start <= id < stop`` must carry, in order;
    None when only its row count can be checked (a classify run keyed by a user column)."""
    kind = of(manifest)
    column = kind.key(manifest)
    if column is None:
        return None
    return column, np.repeat(np.arange(start, stop), kind.rows_per_id(manifest))
