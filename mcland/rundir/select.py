"""Exact order statistics of a column of any length in bounded memory (radix selection).

The ``i``-th smallest value of a group is found without sorting the group: a value's
position in the sort order is its *sort key*, DuckDB's binary-comparable key of the
double (``create_sort_key(x, 'ASC NULLS LAST')``: a null marker, then the eight bytes of
the float with the sign flipped so that bytes compare as the numbers do; ``-0.0`` and
``0.0`` share a key, NaN has one key after ``+inf``, null comes after NaN).  Written in
hex, a prefix of the key is a bucket of the values, and buckets sort as their values:

1. one pass counts the values of every group per bucket of the key's first two bytes
   (``count``, ``min``, ``max``: a hash aggregate of at most 65,536 buckets per group);
2. the cumulative counts tell, for each wanted rank, its bucket and its rank inside it;
   a bucket whose values are all equal (``min = max``: ties, however many) answers at
   once; a bucket of at most :data:`FETCH` values is fetched, sorted in NumPy and read;
   a larger bucket is split on the next two bytes of the key by a further pass.

After four splits a bucket is one key, hence one value, so at most four passes follow the
first (two on data spread like floats usually are).  No query holds more than
:data:`FETCH_TOTAL` fetched values or :data:`MAX_BUCKETS` buckets (brackets beyond are
split over more passes), so memory does not depend on the number of rows.  The answers
are exact and equal to :func:`numpy.sort`'s (NaN after ``+inf``, null after NaN, both
returned as NaN), whatever the order or the threads in which DuckDB reads the rows; the
one liberty NumPy leaves, the order of ``-0.0`` and ``0.0`` (equal numbers), is fixed
here: the negative zeros come first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

FETCH = 1 << 16
"""A bucket of at most this many values is fetched and sorted in NumPy (else split)."""
FETCH_TOTAL = 1 << 20
"""At most this many values are fetched by one query (8 MB of float64)."""
MAX_BUCKETS = 1 << 19
"""At most this many buckets are counted by one splitting query (its hash table)."""
KEY_HEX = 18  # the sort key of a non-null double: 9 bytes, 18 hex digits
FIRST = 6  # the first buckets: the null marker and the key's first two bytes
STEP = 4  # each split: two more bytes


def _next_length(prefix: int) -> int:
    """Hex digits of the buckets that split a bracket whose prefix has ``prefix``."""
    return FIRST if prefix == 0 else prefix + STEP


def _norm(v: Any) -> Any:
    """A group key value usable in a dict (NaN equal to NaN)."""
    if isinstance(v, float | np.floating) and math.isnan(v):
        return ("nan",)
    if isinstance(v, np.generic):
        return v.item()
    return v


@dataclass
class _Bucket:
    """Values of one group whose sort keys start with ``prefix``."""

    prefix: str
    count: int
    lo: float  # smallest value (NaN if null)
    hi: float  # largest value (NaN if null)
    neg_zeros: int  # how many are -0.0
    nans: int  # how many are NaN
    nulls: int  # how many are null


@dataclass
class _Bracket:
    """A bucket of one group holding some wanted ranks, to fetch or split."""

    group: tuple  # group key values as DuckDB returned them
    prefix: str
    before: int  # values of the group before the bucket
    count: int
    ranks: list[int] = field(default_factory=list)  # 1-based, within the group
    fetch: bool = False


def _value(b: _Bucket, r: int) -> float | None:
    """The ``r``-th value (1-based) of bucket ``b`` if the bucket holds one value only."""
    if b.nulls == b.count or b.nans == b.count:
        return np.nan
    if b.nulls or b.nans or b.lo != b.hi:
        return None
    if b.lo == 0.0:  # -0.0 and 0.0 share a key: the negative zeros first
        return -0.0 if r <= b.neg_zeros else 0.0
    return float(b.lo)


def sort_values(x: np.ndarray) -> np.ndarray:
    """``x`` sorted as :func:`numpy.sort` sorts it (NaN last), negative zeros before the
    positive ones."""
    x = np.sort(np.asarray(x, dtype=float))
    zero = x == 0.0
    if zero.any():
        neg = int(np.signbit(x[zero]).sum())
        x[zero] = np.where(np.arange(int(zero.sum())) < neg, -0.0, 0.0)
    return x


class Selection:
    """Exact order statistics of ``value`` per group of ``by`` over ``source`` rows
    satisfying ``where`` (see the module docstring).

    Parameters
    ----------
    scan : Scan
        The open run (:class:`mcland.rundir.scan.Scan`: its ``table``, ``add_table`` and
        ``drop_table``).
    value, where, by, source : str, str, sequence of str, str
        SQL: the value (cast to DOUBLE), the rows' condition, the group expressions
        (output columns ``g0``, ``g1``, ...) and the relation.

    Attributes
    ----------
    counts : DataFrame
        Per group, sorted by the groups: ``g0``, ..., ``n`` (rows), ``nan`` (NaN values);
        null values count in ``n``, not in ``nan``.  Made by the first pass.
    """

    def __init__(
        self, scan: Any, value: str, where: str, by: Sequence[str], source: str = "records"
    ) -> None:
        self.scan = scan
        self.keys = [f"g{k}" for k in range(len(by))]
        groups = "".join(f"{e} AS {k}, " for e, k in zip(by, self.keys, strict=True))
        self.rows = (
            f"SELECT *, hex(create_sort_key(x, 'ASC NULLS LAST')) AS _h FROM "
            f"(SELECT {groups}({value})::DOUBLE AS x FROM {source} WHERE {where})"
        )
        keys = "".join(f"{k}, " for k in self.keys)
        first = scan.table(
            f"SELECT {keys}left(_h, {FIRST}) AS _p, {self._stats('x')} FROM ({self.rows}) "
            f"GROUP BY ALL ORDER BY ALL"
        )
        self.key_types = {k: first.schema.field(k).type for k in self.keys}
        self.buckets: dict[tuple, list[_Bucket]] = {}
        self.groups: dict[tuple, tuple] = {}  # normalised key -> key as DuckDB returned it
        cols = {c: first.column(c).to_pylist() for c in first.column_names}
        for j in range(first.num_rows):
            group = tuple(cols[k][j] for k in self.keys)
            norm = tuple(_norm(v) for v in group)
            self.groups.setdefault(norm, group)
            self.buckets.setdefault(norm, []).append(self._bucket(cols, j))
        groups = list(self.groups.items())
        counts = {
            k: pa.array([g[j] for _, g in groups], type=self.key_types[k])
            for j, k in enumerate(self.keys)
        }  # the key columns as DuckDB gives them (pandas types as from Scan.df)
        counts["n"] = pa.array(
            [sum(b.count for b in self.buckets[m]) for m, _ in groups], pa.int64()
        )
        counts["nan"] = pa.array(
            [sum(b.nans for b in self.buckets[m]) for m, _ in groups], pa.int64()
        )
        self.counts: pd.DataFrame = pa.table(counts).to_pandas()

    @staticmethod
    def _stats(x: str) -> str:
        """SQL of a bucket's aggregates (see :class:`_Bucket`)."""
        return (
            f"count(*) AS _c, min({x}) AS _lo, max({x}) AS _hi, "
            f"count(*) FILTER ({x} = 0 AND signbit({x})) AS _nz, "
            f"count(*) FILTER (isnan({x})) AS _nan, count(*) FILTER ({x} IS NULL) AS _null"
        )

    @staticmethod
    def _bucket(cols: dict[str, list], j: int) -> _Bucket:
        lo, hi = cols["_lo"][j], cols["_hi"][j]
        return _Bucket(
            prefix=cols["_p"][j],
            count=int(cols["_c"][j]),
            lo=np.nan if lo is None else float(lo),
            hi=np.nan if hi is None else float(hi),
            neg_zeros=int(cols["_nz"][j]),
            nans=int(cols["_nan"][j]),
            nulls=int(cols["_null"][j]),
        )

    # ------------------------------------------------------------------ resolution
    def values(self, wanted: Sequence[tuple]) -> dict[tuple, float]:
        """``{(g0, ..., i): x}``: the ``i``-th smallest value (1-based) of each wanted
        group, for ``wanted`` tuples ``(g0, ..., i)``; NaN for a rank beyond the group
        (or a group without rows), a NaN or a null value."""
        out: dict[tuple, float] = {}
        start: dict[tuple, _Bracket] = {}
        for item in wanted:
            *key, i = item
            norm = tuple(_norm(v) for v in key)
            if norm not in self.groups:
                out[tuple(item)] = np.nan
                continue
            if norm not in start:
                n = sum(b.count for b in self.buckets[norm])
                start[norm] = _Bracket(self.groups[norm], "", 0, n)
            start[norm].ranks.append(int(i))
        answers: dict[tuple, float] = {}  # (normalised key, i) -> x
        brackets = [(b, self.buckets[norm]) for norm, b in start.items()]
        while brackets:
            pending: dict[tuple, _Bracket] = {}
            for bracket, buckets in brackets:
                self._place(bracket, buckets, answers, pending)
            brackets = self._next(list(pending.values()), answers)
        for item in wanted:
            *key, i = item
            if tuple(item) not in out:
                norm = tuple(_norm(v) for v in key)
                out[tuple(item)] = answers[(norm, int(i))]
        return out

    def _place(
        self,
        bracket: _Bracket,
        buckets: list[_Bucket],
        answers: dict[tuple, float],
        pending: dict[tuple, _Bracket],
    ) -> None:
        """Find each rank of ``bracket`` in its ``buckets``: answered, or a new bracket."""
        norm = tuple(_norm(v) for v in bracket.group)
        buckets = sorted(buckets, key=lambda b: b.prefix)
        cum = np.cumsum([b.count for b in buckets])
        for i in bracket.ranks:
            r = i - bracket.before
            if r < 1 or not len(cum) or r > cum[-1]:
                answers[(norm, i)] = np.nan
                continue
            j = int(np.searchsorted(cum, r, side="left"))
            below = int(cum[j - 1]) if j else 0
            b = buckets[j]
            x = _value(b, r - below)
            if x is not None:
                answers[(norm, i)] = x
                continue
            if len(b.prefix) >= KEY_HEX:  # pragma: no cover - one key is one value
                raise AssertionError(f"bucket {b.prefix} holds {b.lo} .. {b.hi}")
            key = (norm, b.prefix)
            if key not in pending:
                pending[key] = _Bracket(bracket.group, b.prefix, bracket.before + below, b.count)
            pending[key].ranks.append(i)

    def _next(
        self, pending: list[_Bracket], answers: dict[tuple, float]
    ) -> list[tuple[_Bracket, list[_Bucket]]]:
        """Fetch the small brackets (answering their ranks) and split the others, in as
        many passes as the bounds :data:`FETCH_TOTAL` and :data:`MAX_BUCKETS` need;
        return the split brackets with their new buckets."""
        fetched = 0
        for b in sorted(pending, key=lambda b: b.count):
            b.fetch = b.count <= FETCH and fetched + b.count <= FETCH_TOTAL
            fetched += b.count if b.fetch else 0
        out: list[tuple[_Bracket, list[_Bucket]]] = []
        chunk: list[_Bracket] = []
        buckets = 0
        for b in pending:
            size = 0 if b.fetch else min(b.count, 1 << (4 * STEP))
            if chunk and buckets + size > MAX_BUCKETS:
                out += self._pass(chunk, answers)
                chunk, buckets = [], 0
            chunk.append(b)
            buckets += size
        if chunk:
            out += self._pass(chunk, answers)
        return out

    def _pass(
        self, brackets: list[_Bracket], answers: dict[tuple, float]
    ) -> list[tuple[_Bracket, list[_Bucket]]]:
        """One query over the rows of ``brackets`` (one prefix length): the values of
        those to fetch, the buckets of the others."""
        prefix = len(brackets[0].prefix)
        assert all(len(b.prefix) == prefix for b in brackets)
        nxt = _next_length(prefix)
        cols: dict[str, pa.Array] = {
            k: pa.array([b.group[j] for b in brackets], type=self.key_types[k])
            for j, k in enumerate(self.keys)
        }
        cols["_b"] = pa.array(range(len(brackets)), type=pa.int64())
        cols["_f"] = pa.array([b.fetch for b in brackets], type=pa.bool_())
        cols["_p"] = pa.array([b.prefix for b in brackets], type=pa.string())
        self.scan.add_table("_brackets", pa.table(cols))
        on = " AND ".join(
            [
                *(f"v.{k} IS NOT DISTINCT FROM w.{k}" for k in self.keys),
                f"left(v._h, {prefix}) = w._p",
            ]
        )
        got = self.scan.table(
            f"""SELECT w._b AS _b, CASE WHEN w._f THEN '' ELSE left(v._h, {nxt}) END AS _p,
                       {self._stats("v.x")}, list(v.x) FILTER (w._f) AS _xs
                FROM ({self.rows}) v JOIN _brackets w ON {on} GROUP BY ALL"""
        )
        self.scan.drop_table("_brackets")
        cols_ = {c: got.column(c).to_pylist() for c in got.column_names if c != "_xs"}
        xs = got.column("_xs")
        split: dict[int, list[_Bucket]] = {}
        for j in range(got.num_rows):
            k = int(cols_["_b"][j])
            b = brackets[k]
            if b.fetch:
                values = sort_values(np.asarray(xs[j].values, dtype=float))
                norm = tuple(_norm(v) for v in b.group)
                for i in b.ranks:
                    answers[(norm, i)] = float(values[i - b.before - 1])
            else:
                split.setdefault(k, []).append(self._bucket(cols_, j))
        return [(brackets[k], split[k]) for k in sorted(split)]


__all__ = ["FETCH", "FETCH_TOTAL", "MAX_BUCKETS", "Selection", "sort_values"]
