"""Tidy group-bys of run records: type fractions with binomial intervals, strata, coverage.

Every function takes either a pandas DataFrame as returned by :func:`mcland.load` (only
the columns it names are needed) or a run directory (a path, or an open
:class:`mcland.rundir.scan.Scan`), and returns a new tidy DataFrame.  Given a run directory, the
group-by runs in DuckDB over the shards (:mod:`mcland.rundir.scan`) and the run is never loaded:
memory does not grow with the number of records, and the result is the one the DataFrame
of the whole run would give.  Functions whose result has one row per point
(:func:`disagreements`) or per stratum (:func:`strata`) return the first ``limit`` rows of
a run directory, with the total in ``result.attrs``.  None of them writes files;
:func:`load_depth` loads one depth with predicate pushdown.
Columns that a spectrum-free run leaves null (``n_neg``, ``n_zero``, ``eig_min_w``, ...)
are dropped row-wise by :func:`drop_null`, which also says how many rows went.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from mcland._kernels.fields import TYPE_NAMES
from mcland.core.errors import MclandError
from mcland.rundir.files import SHARD_GLOB, load, read_manifest
from mcland.rundir.scan import Scan, literal, open_scan, sql_name

Data = pd.DataFrame | str | Path | Scan
"""What the helpers take: the records as a DataFrame, or a run directory (path or
:class:`~mcland.rundir.scan.Scan`) to aggregate without loading it."""
MAX_ROWS = 100_000
"""Default number of rows returned for a run directory by the per-point and per-stratum
helpers (:func:`disagreements`, :func:`strata`); ``result.attrs`` holds the totals."""


@contextmanager
def scanning(data: str | Path | Scan) -> Iterator[Scan]:
    """``data`` as an open :class:`~mcland.rundir.scan.Scan` (opened and closed here if it is a
    path)."""
    scan, owned = open_scan(data)
    try:
        yield scan
    finally:
        if owned:
            scan.close()


def _type_sql(column: str) -> str:
    """A type column as text in SQL."""
    return f"{sql_name(column)}::VARCHAR"


TYPES = list(TYPE_NAMES)
"""The type codes of ``theory_type`` / ``numeric_type``, in display order (the kernels'
codes, :data:`mcland._kernels.fields.TYPE_NAMES`)."""


def run_columns(run_dir: str | Path) -> list[str]:
    """Column names of a run directory's shards (empty list if it has none yet)."""
    read_manifest(run_dir)
    files = sorted(Path(run_dir).glob(SHARD_GLOB))
    return list(pq.read_schema(files[0]).names) if files else []


def load_depth(run_dir: str | Path, H: int, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The records of depth ``H`` only, read with predicate (and column) pushdown.

    Parameters
    ----------
    run_dir : path
        A run directory.
    H : int
        Depth to keep.
    columns : sequence of str, optional
        Columns to read (all if omitted).

    Returns
    -------
    pandas.DataFrame
    """
    return load(
        run_dir, columns=None if columns is None else list(columns), filters=[("H", "==", H)]
    )


def drop_null(df: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, int]:
    """Rows of ``df`` where none of ``columns`` is null, and the number of rows dropped."""
    keep = df[list(columns)].notna().all(axis=1)
    return df[keep], int((~keep).sum())


def not_null(columns: Sequence[str]) -> str:
    """SQL condition: none of the record ``columns`` is null (:func:`drop_null` in SQL)."""
    return " AND ".join(f"{sql_name(c)} IS NOT NULL" for c in columns) or "TRUE"


def wilson_interval(
    k: np.ndarray | int, n: np.ndarray | int, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion ``k / n`` (vectorised).

    Parameters
    ----------
    k, n : int or array of int
        Successes and trials; ``n = 0`` gives the uninformative interval ``[0, 1]``.
    confidence : float
        Two-sided confidence level.

    Returns
    -------
    lo, hi : ndarray of float
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
        lo = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
        hi = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    # exact endpoints at k = 0 and k = n (the formula gives them up to rounding)
    lo = np.where(k == 0, 0.0, lo)
    hi = np.where(k == n, 1.0, hi)
    return lo, hi


def median_ranks(n: int, confidence: float = 0.95) -> int:
    """The ``j`` of :func:`median_interval` for ``n`` values (at least 1)."""
    from scipy.stats import binom  # here: scipy.stats costs 0.4 s of every mcland import

    j = int(binom.ppf((1.0 - confidence) / 2.0, n, 0.5))  # P(B <= j) >= alpha/2
    if j >= 1 and binom.cdf(j - 1, n, 0.5) > (1.0 - confidence) / 2.0:
        j -= 1
    return max(j, 1)


def median_intervals(
    scan: Scan, value: str, where: str, by: list[str], source: str = "records"
) -> pd.DataFrame:
    """:func:`median_interval` per group, from exact order statistics in DuckDB.

    Returns ``g0``, ..., ``n`` (rows with a non-null value), ``median``, ``lo``, ``hi``.
    """

    def ends(n: int) -> list[int]:
        j = median_ranks(n)
        return [j, n + 1 - j]

    got = scan.quantile_ranks(value, f"({where}) AND ({value}) IS NOT NULL", by, ends, source)
    if "x1" not in got:
        got["x1"] = got["x2"] = np.nan
    return got.rename(columns={"x1": "lo", "x2": "hi"})


def median_interval(x: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """The median of ``x`` and a distribution-free interval for it.

    The interval is ``[x_(j), x_(n+1-j)]`` (order statistics, 1-based) with ``j`` the
    largest index such that ``P(Binomial(n, 1/2) < j) <= (1 - confidence) / 2``; its
    coverage is at least ``confidence`` for ``n >= 6``.  For ``n <= 5`` no such ``j >= 1``
    exists and the interval is the range (coverage ``1 - 2^(1-n)``).

    Returns
    -------
    (median, lo, hi) : floats; NaN for an empty ``x``.
    """
    x = np.sort(np.asarray(x, float))
    n = x.size
    if not n:
        return np.nan, np.nan, np.nan
    j = median_ranks(n, confidence)
    return float(np.median(x)), float(x[j - 1]), float(x[n - j])


def type_fractions(
    df: Data,
    by: str | Sequence[str],
    type_col: str = "numeric_type",
    confidence: float = 0.95,
    where: str = "TRUE",
) -> pd.DataFrame:
    """Fraction of each type per group, with Wilson intervals.

    Parameters
    ----------
    df : DataFrame or run directory
        Records with the ``by`` columns and ``type_col``, or a run directory (path or
        :class:`~mcland.rundir.scan.Scan`) whose records are counted without loading them.
    by : str or sequence of str
        Grouping columns, e.g. ``"H"``, ``"r"``, ``"s"``, ``["H", "r"]``.
    type_col : str
        ``numeric_type`` or ``theory_type``.
    confidence : float
        Level of the intervals.
    where : str
        With a run directory: a SQL condition on the records counted (default all).

    Returns
    -------
    DataFrame
        Rows whose type is null are not counted (drop them first with :func:`drop_null`
        to know how many). One row per group and type (every type of :data:`TYPES`, zero
        counts included):
        the ``by`` columns, ``type``, ``count``, ``total``, ``fraction``, ``lo``, ``hi``.
    """
    by = [by] if isinstance(by, str) else list(by)
    if isinstance(df, pd.DataFrame):
        types = pd.Categorical(df[type_col].astype(str), categories=TYPES)
        counts = pd.crosstab([df[c] for c in by], types, dropna=False).reindex(
            columns=TYPES, fill_value=0
        )
    else:
        counts = _type_counts(df, by, type_col, where)
    counts.columns.name = "type"
    tidy = counts.stack().rename("count").reset_index()
    tidy["total"] = tidy.groupby(by, observed=True)["count"].transform("sum")
    tidy = tidy[tidy["total"] > 0].reset_index(drop=True)
    tidy["fraction"] = tidy["count"] / tidy["total"]
    tidy["lo"], tidy["hi"] = wilson_interval(
        tidy["count"].to_numpy(), tidy["total"].to_numpy(), confidence
    )
    return tidy


def _type_counts(data: str | Path | Scan, by: list[str], type_col: str, where: str) -> pd.DataFrame:
    """Counts per group (rows, sorted) and type (columns :data:`TYPES`), as the crosstab of
    :func:`type_fractions` gives them, counted in SQL."""
    keys = ", ".join(sql_name(c) for c in by)
    with scanning(data) as scan:
        got = scan.df(
            f"SELECT {keys}, {_type_sql(type_col)} AS type, count(*) AS n FROM records "
            f"WHERE {sql_name(type_col)} IS NOT NULL AND ({where}) GROUP BY ALL"
        )
    got.columns = [*by, "type", "n"]
    got = got[got["type"].isin(TYPES)]
    wide = got.set_index([*by, "type"])["n"].unstack("type", fill_value=0)
    wide = wide.reindex(columns=TYPES, fill_value=0).sort_index().astype("int64")
    wide.columns = pd.Index(TYPES)
    return wide


def confusion(
    df: Data, rows: str = "theory_type", cols: str = "numeric_type", where: str = "TRUE"
) -> pd.DataFrame:
    """Counts of one type column (rows) x another (columns), all types included.

    The default is theory x numeric; ``cols="audit_type"`` (on the audited rows of a
    spectrum-free run) compares with the spectral audit.  ``df`` is a DataFrame or a run
    directory (then ``where``, SQL, selects the records counted; rows with a null type are
    not counted either way).
    """
    if not isinstance(df, pd.DataFrame):
        with scanning(df) as scan:
            got = scan.df(
                f"SELECT {_type_sql(rows)} AS a, {_type_sql(cols)} AS b, count(*) AS n "
                f"FROM records WHERE ({where}) AND {not_null([rows, cols])} GROUP BY ALL"
            )
        table = pd.DataFrame(0, index=pd.Index(TYPES), columns=pd.Index(TYPES), dtype="int64")
        for a, b, n in got.itertuples(index=False):
            if a in TYPES and b in TYPES:
                table.loc[a, b] = int(n)
        table.index.name, table.columns.name = rows, cols
        return table
    a = pd.Categorical(df[rows].astype(str), categories=TYPES)
    b = pd.Categorical(df[cols].astype(str), categories=TYPES)
    table = pd.crosstab(a, b, dropna=False).reindex(index=TYPES, columns=TYPES, fill_value=0)
    table.index.name, table.columns.name = rows, cols
    return table


def disagreements(df: Data, limit: int = MAX_ROWS) -> pd.DataFrame:
    """Points where theory and numeric type differ or either says ``ambiguous``.

    With an ``audit_type`` column (spectrum-free runs), audited points whose spectral type
    differs from the numeric type (or is ambiguous) are included too.  Given a run
    directory, the first ``limit`` such records (all columns, in the order of
    :func:`mcland.load`) are returned and ``result.attrs["total"]`` counts them all.
    """
    if not isinstance(df, pd.DataFrame):
        with scanning(df) as scan:
            where = disagreement_sql(scan.has("audit_type"))
            total = scan.count(where)
            cols = ", ".join(f'{sql_name(c)} AS "{c}"' for c in scan.columns)
            out = scan.df(
                f"SELECT {cols} FROM records WHERE {where} ORDER BY _order LIMIT {int(limit)}"
            )
        out.attrs["total"] = total
        return out
    th, nu = df["theory_type"].astype(str), df["numeric_type"].astype(str)
    odd = (th != nu) | (th == "ambiguous") | (nu == "ambiguous")
    if "audit_type" in df.columns:
        audited = df["audit_type"].notna()
        au = df["audit_type"].astype(str)
        odd |= audited & ((au != nu) | (au == "ambiguous"))
    return df[odd.to_numpy()]


def disagreement_sql(audit: bool) -> str:
    """SQL condition of :func:`disagreements` (``audit``: the records have ``audit_type``);
    a null type reads as the text ``nan``, as ``astype(str)`` makes it."""
    th, nu = "coalesce(theory_type::VARCHAR, 'nan')", "coalesce(numeric_type::VARCHAR, 'nan')"
    odd = f"({th} <> {nu} OR {th} = 'ambiguous' OR {nu} = 'ambiguous')"
    if audit:
        au = "audit_type::VARCHAR"
        odd += f" OR (audit_type IS NOT NULL AND ({au} <> {nu} OR {au} = 'ambiguous'))"
    return f"({odd})"


def as_key(values: object) -> tuple[int, ...]:
    """A hashable tuple of ints from a list-column cell (``dims``, ``S``, ``ranks``)."""
    return tuple(int(v) for v in np.asarray(values).ravel())


def strata(
    df: Data,
    keys: Sequence[str] = ("dims", "S", "ranks"),
    limit: int = MAX_ROWS,
    flagged_only: bool = False,
) -> pd.DataFrame:
    """``n_neg`` / ``n_zero`` per stratum (architecture, index set, rank profile).

    Parameters
    ----------
    df : DataFrame or run directory
        Records with ``keys``, ``n_neg``, ``n_zero`` and ``numeric_type`` (rows with null
        inertia must have been dropped, see :func:`drop_null`), or a run directory (its
        records with an inertia are used).
    keys : sequence of str
        List columns defining a stratum.
    limit : int
        With a run directory: the number of strata returned (the largest first);
        ``result.attrs`` holds ``total`` (strata), ``multi`` (strata of two or more
        points) and ``flagged`` (strata that are not constant).
    flagged_only : bool
        With a run directory: return the non-constant strata only.

    Returns
    -------
    DataFrame
        One row per stratum, largest first: the keys (as tuples), ``n``, ``n_neg_min``,
        ``n_neg_max``, ``n_zero_min``, ``n_zero_max``, ``types`` (the numeric types seen,
        joined by ``/``) and ``constant`` (False when the inertia or the type varies).
        Equal sizes are ordered by ``types``, then by the first appearance of the stratum.
    """
    if not isinstance(df, pd.DataFrame):
        with scanning(df) as scan:
            return strata_tables(scan, list(keys), {"out": (limit, flagged_only)})["out"]
    keyed = pd.DataFrame({k: [as_key(v) for v in df[k]] for k in keys}, index=df.index)
    keyed["n_neg"] = df["n_neg"].astype(int)
    keyed["n_zero"] = df["n_zero"].astype(int)
    keyed["type"] = df["numeric_type"].astype(str)
    g = keyed.groupby(list(keys), sort=False)
    out = g.agg(
        n=("n_neg", "size"),
        n_neg_min=("n_neg", "min"),
        n_neg_max=("n_neg", "max"),
        n_zero_min=("n_zero", "min"),
        n_zero_max=("n_zero", "max"),
        types=("type", lambda t: "/".join(sorted(set(t)))),
    ).reset_index()
    out["constant"] = (
        (out["n_neg_min"] == out["n_neg_max"])
        & (out["n_zero_min"] == out["n_zero_max"])
        & ~out["types"].str.contains("/")
    )
    return out.sort_values(["n", "types"], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )


def strata_tables(
    scan: Scan, keys: Sequence[str], wanted: dict[str, tuple[int, bool]]
) -> dict[str, pd.DataFrame]:
    """:func:`strata` of a run directory, several views of one aggregation.

    The strata are aggregated once in DuckDB (a hash aggregate spilled to disk beyond its
    memory limit, so their number is not bounded by memory); ``wanted`` maps a name to
    ``(limit, flagged_only)``, and each view holds the first ``limit`` strata (all or the
    non-constant ones) in :func:`strata`'s order, with the totals in ``attrs``.
    """
    keys = list(keys)
    names = ["nan", *TYPES]  # astype(str) of a null type is "nan"
    sets = [
        (mask, "/".join(sorted(n for b, n in enumerate(names) if mask >> b & 1)))
        for mask in range(1, 1 << len(names))
    ]
    scan.add_table("_typesets", pd.DataFrame(sets, columns=["mask", "types"]))
    cols = ", ".join(sql_name(k) for k in keys)
    code = f"list_position({literal(TYPES)}, numeric_type::VARCHAR)"  # 1..5, null: "nan"
    scan.con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _strata AS
        WITH g AS (
            SELECT {cols}, count(*) AS n, min(n_neg) AS n_neg_min, max(n_neg) AS n_neg_max,
                   min(n_zero) AS n_zero_min, max(n_zero) AS n_zero_max,
                   bit_or(1 << coalesce({code}, 0)) AS mask, min(_order) AS first
            FROM records WHERE n_neg IS NOT NULL AND n_zero IS NOT NULL GROUP BY {cols})
        SELECT g.*, t.types,
               (n_neg_min = n_neg_max AND n_zero_min = n_zero_max
                AND NOT contains(t.types, '/')) AS constant
        FROM g JOIN _typesets t USING (mask)"""
    )
    total, multi, flagged = scan.one(
        "SELECT count(*), count(*) FILTER (n > 1), count(*) FILTER (NOT constant) FROM _strata"
    )
    head = ", ".join(f'{sql_name(k)} AS "{k}"' for k in keys)
    views = {}
    for name, (limit, flagged_only) in wanted.items():
        out = scan.df(
            f"""SELECT {head}, n, n_neg_min, n_neg_max, n_zero_min, n_zero_max, types, constant
            FROM _strata {"WHERE NOT constant" if flagged_only else ""}
            ORDER BY n DESC, types, first LIMIT {int(limit)}"""
        )
        for k in keys:
            out[k] = [as_key(v) for v in out[k]]
        out = out.astype({c: "int64" for c in out.columns[len(keys) : len(keys) + 5]})
        out.attrs.update(total=int(total), multi=int(multi), flagged=int(flagged))
        views[name] = out
    scan.con.execute("DROP TABLE _strata")
    scan.drop_table("_typesets")
    return views


def n_critical_values(d_y: int, r: int) -> int:
    """``sum_{k <= r} C(d_y, k)``: the number of index sets, hence of critical values."""
    return sum(comb(d_y, k) for k in range(min(r, d_y) + 1))


def match_critical_values(df: pd.DataFrame) -> pd.DataFrame:
    """Position of each point's loss in its enumerated set of critical values.

    Parameters
    ----------
    df : DataFrame
        Records with ``loss``, ``loss_tol``, ``critical_values`` (rows where it is null
        should be dropped first).

    Returns
    -------
    DataFrame
        Indexed like ``df``: ``n_values`` (size of the enumerated set), ``position``
        (0-based index of the nearest enumerated value in ascending order, 0 = global
        minimum), ``distance`` (``|loss - nearest value|``), ``n_within`` (number of values
        within ``loss_tol``: more than one when the set is finer than the loss resolution)
        and ``matched`` (``distance <= loss_tol``).
    """
    n = len(df)
    pos, size, within = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    dist = np.empty(n)
    rows = zip(df["loss"].to_numpy(), df["loss_tol"].to_numpy(), df["critical_values"], strict=True)
    for i, (loss, tol, values) in enumerate(rows):
        v = np.asarray(values, dtype=float)
        gaps = np.abs(v - loss)
        pos[i] = int(np.argmin(gaps))
        dist[i] = gaps[pos[i]]
        size[i] = v.size
        within[i] = int((gaps <= tol).sum())
    out = pd.DataFrame(
        {"n_values": size, "position": pos, "distance": dist, "n_within": within}, index=df.index
    )
    out["matched"] = out["distance"] <= df["loss_tol"].to_numpy()
    return out


def coverage(df: Data, by: Sequence[str] = ("d_y", "r")) -> pd.DataFrame:
    """Which enumerated critical values were reached, per group.

    Parameters
    ----------
    df : DataFrame or run directory
        Records with the ``by`` columns and the columns of :func:`match_critical_values`
        (``n_values``, ``position``, ``matched``); or a run directory, whose critical
        records with an enumerated set are matched in SQL (:func:`match_sql`).
    by : sequence of str
        Grouping, e.g. ``("d_y", "r")`` (the set's size depends only on them) or
        ``("dims",)`` after converting ``dims`` to tuples.

    Returns
    -------
    DataFrame
        ``by``, ``points``, ``n_values``, ``expected`` (``sum_{k<=r} C(d_y, k)`` when
        ``d_y`` and ``r`` are among the columns), ``reached`` (distinct matched
        positions), ``coverage`` (``reached / n_values``), ``unmatched``.
    """
    if not isinstance(df, pd.DataFrame):
        with scanning(df) as scan:
            return coverage_rows(coverage_groups(scan, by), by, expected=True)
    rows = []
    for key, g in df.groupby(list(by), sort=True, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key, strict=True))
        n_values = int(g["n_values"].max())
        reached = int(g.loc[g["matched"], "position"].nunique())
        row.update(points=len(g), n_values=n_values, reached=reached)
        if {"d_y", "r"} <= set(g.columns):
            row["expected"] = n_critical_values(int(g["d_y"].iloc[0]), int(g["r"].iloc[0]))
        row["coverage"] = reached / n_values if n_values else np.nan
        row["unmatched"] = int((~g["matched"]).sum())
        rows.append(row)
    return pd.DataFrame(rows)


CRITICAL = "is_critical AND critical_values IS NOT NULL"
"""SQL condition of the records matched to their critical values: critical, with an
enumerated set (``d_y`` small enough, docs/output-schema.md)."""


def match_sql(where: str = CRITICAL, columns: Sequence[str] = ()) -> str:
    """A SQL query: :func:`match_critical_values` of the records satisfying ``where``.

    Its rows: the record ``columns`` (SQL names), ``_order``, then ``n_values``,
    ``position``, ``distance``, ``n_within``, ``matched``, computed as in
    :func:`match_critical_values` (``|value - loss|`` in float64, the first nearest value).
    """
    cols = "".join(f"{c}, " for c in columns)
    return f"""
        SELECT {cols}_order, len(g) AS n_values,
               list_position(g, list_min(g)) - 1 AS position, list_min(g) AS distance,
               len(list_filter(g, lambda x: x <= _tol)) AS n_within,
               list_min(g) <= _tol AS matched, _tol
        FROM (SELECT {cols}_order, loss_tol AS _tol,
                     list_transform(critical_values, lambda v: abs(v - loss)) AS g
              FROM records WHERE {where})"""


def coverage_groups(
    scan: Scan,
    by: Sequence[str],
    where: str = CRITICAL,
    matched: str | None = None,
    weight: str | None = None,
) -> pd.DataFrame:
    """Per group of ``by`` (sorted): ``points``, ``n_values`` (largest set), ``reached``,
    ``unmatched`` and the ``d_y``, ``r`` of the group's first record.  ``matched``: a
    relation already holding :func:`match_sql` of the records (with the ``by`` columns,
    ``d_y`` and ``r``), instead of matching the records satisfying ``where``; ``weight``:
    its column counting the records each of its rows stands for (a relation aggregated
    over the records, ``_order`` the smallest of them), instead of one each."""
    keys = [sql_name(c) for c in by]
    cols = list(dict.fromkeys([*keys, "d_y", "r"]))
    source = matched if matched is not None else f"({match_sql(where, cols)})"
    count = f"sum({weight})" if weight else "count(*)"
    got = scan.df(
        f"""WITH m AS (SELECT * FROM {source})
        SELECT {", ".join(f'{k} AS "{c}"' for k, c in zip(keys, by, strict=True))},
               {count}::BIGINT AS points, max(n_values) AS n_values,
               count(DISTINCT position) FILTER (matched) AS reached,
               coalesce({count} FILTER (NOT matched), 0)::BIGINT AS unmatched,
               arg_min(d_y, _order) AS first_d_y, arg_min(r, _order) AS first_r
        FROM m GROUP BY ALL"""
    )
    return got


def coverage_rows(got: pd.DataFrame, by: Sequence[str], expected: bool) -> pd.DataFrame:
    """The rows of :func:`coverage` from :func:`coverage_groups` (groups sorted as
    ``groupby`` sorts them)."""
    got = got.copy()
    for c in by:
        if got[c].dtype == object:  # list keys (dims): tuples, as after converting them
            got[c] = [as_key(v) for v in got[c]]
    got = got.sort_values(list(by), kind="stable").reset_index(drop=True)
    rows = []
    for g in got.itertuples(index=False):
        row = {c: getattr(g, c) for c in by}
        n_values = int(g.n_values)
        row.update(points=int(g.points), n_values=n_values, reached=int(g.reached))
        if expected:
            row["expected"] = n_critical_values(int(g.first_d_y), int(g.first_r))
        row["coverage"] = int(g.reached) / n_values if n_values else np.nan
        row["unmatched"] = int(g.unmatched)
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class Verdict:
    """Outcome of checking one claim: a title, PASS/FAIL and the numbers behind it."""

    claim: str
    passed: bool = True
    lines: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        """Add an explanatory line."""
        self.lines.append(line)

    def require(self, ok: bool, line: str) -> None:
        """Add a line that must hold; a false ``ok`` fails the verdict."""
        self.lines.append(("ok    " if ok else "FAIL  ") + line)
        self.passed &= bool(ok)

    def render(self) -> str:
        """The verdict as text: the claim, the lines, then ``PASS`` or ``FAIL``."""
        head = f"claim: {self.claim}"
        return "\n".join([head, *(f"  {x}" for x in self.lines), "PASS" if self.passed else "FAIL"])

    def exit(self) -> int:
        """Print the verdict; return the exit status (0 pass, 1 fail)."""
        print(self.render(), flush=True)
        return 0 if self.passed else 1


def claim_modules(directory: str | Path) -> list[Any]:
    """The ``claim_*.py`` modules of ``directory`` (``analysis/``), loaded by path, in name
    order."""
    import importlib.util

    mods = []
    for path in sorted(Path(directory).glob("claim_*.py")):
        spec = importlib.util.spec_from_file_location(f"mcland_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mods.append(mod)
    return mods


def claim_verdicts(directory: str | Path, run_dir: str | Path) -> Iterator[tuple[str, Any, float]]:
    """Check every claim script of ``directory`` on ``run_dir``, in name order: yields
    ``("skip", text, 0)`` for a claim that does not apply (its ``not_applicable``) and
    ``("done", verdict, seconds)`` for the others."""
    import time

    for mod in claim_modules(directory):
        why = mod.not_applicable(str(run_dir)) if hasattr(mod, "not_applicable") else None
        if why:
            yield "skip", f"{mod.CLAIM} ({why})", 0.0
            continue
        t0 = time.perf_counter()
        verdict = mod.check(str(run_dir))
        yield "done", verdict, time.perf_counter() - t0


def claim_verdict_list(directory: str | Path, run_dir: str | Path) -> list[tuple[str, Any, float]]:
    """:func:`claim_verdicts` as a list (what a Dask worker sends back)."""
    return list(claim_verdicts(directory, run_dir))


def claim_main(
    check: Callable[..., Verdict],
    argv: Sequence[str],
    usage: str | None,
    outputs: bool = False,
) -> int:
    """Command-line driver of a claim script: ``check(RUN_DIR)``, print, exit status.

    With ``outputs``, the script also takes ``--tables DIR`` and ``--figures DIR`` and is
    called as ``check(RUN_DIR, tables, figures)`` (None for an option not given), writing its
    CSV tables and PNG figures there.

    Returns 0 when the claim holds, 1 when it fails and 2 on bad input (wrong arguments or
    a path that is not a run directory; the message goes to stderr).
    """
    if not outputs:
        if len(argv) != 1:
            print(usage or "usage: RUN_DIR", file=sys.stderr)
            return 2
        args: tuple = (argv[0],)
    else:
        import argparse

        ap = argparse.ArgumentParser(description=(usage or "").splitlines()[0] if usage else None)
        ap.add_argument("run_dir")
        ap.add_argument("--tables", type=Path, help="write the CSV tables here")
        ap.add_argument("--figures", type=Path, help="write the PNG figures here")
        ns = ap.parse_args(list(argv))
        args = (ns.run_dir, ns.tables, ns.figures)
    try:
        return check(*args).exit()
    except MclandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def dynamics_not_applicable(run_dir: str | Path, experiment: str) -> str | None:
    """Why a claim about the dynamics experiment ``experiment`` does not apply to
    ``run_dir`` (None when it does: a ``dynamics`` run of that experiment)."""
    m = read_manifest(run_dir)
    exp = (m.get("config") or {}).get("dynamics", {}).get("experiment")
    if m.get("kind") != "dynamics" or exp != experiment:
        return f"not a dynamics run of the {experiment!r} experiment"
    return None


def shard_frames(
    run_dir: str | Path, columns: Sequence[str], verify: str = "error"
) -> Iterator[pd.DataFrame]:
    """The records ``columns`` of each shard in turn, as :func:`mcland.load` gives them (the
    same checksum check, types and order): a run read one shard at a time, for analyses
    that reduce each shard before going on (the dynamics claims)."""
    import pyarrow.dataset as ds

    from mcland.rundir.files import verified_files
    from mcland.rundir.kinds import shard_schema

    schema = shard_schema(read_manifest(run_dir))
    for path in verified_files(run_dir, verify, stacklevel=3):
        table = ds.dataset([str(path)], format="parquet", schema=schema).to_table(
            columns=list(columns)
        )
        if "sample_id" in table.column_names:
            table = table.sort_by("sample_id")
        yield table.to_pandas()


def reduce_dynamics(
    run_dir: str | Path,
    experiment: str,
    columns: list[str],
    reduce: Callable[[pd.DataFrame], Any],
) -> list[Any]:
    """``reduce`` applied to the records ``columns`` of each shard of a dynamics run of
    ``experiment`` (MclandError for any other run), in shard order: a point's records are
    all in one shard, so per-point results are whole."""
    why = dynamics_not_applicable(run_dir, experiment)
    if why:
        raise MclandError(f"{run_dir}: {why}")
    return [reduce(df) for df in shard_frames(run_dir, columns)]


def load_dynamics(run_dir: str | Path, experiment: str, columns: list[str]) -> pd.DataFrame:
    """The records ``columns`` of a dynamics run of ``experiment``; MclandError for any other
    run (:func:`dynamics_not_applicable`)."""
    why = dynamics_not_applicable(run_dir, experiment)
    if why:
        raise MclandError(f"{run_dir}: {why}")
    return load(run_dir, columns=columns)
