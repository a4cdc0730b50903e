"""Bounded-memory queries over a run directory: SQL on the shards with DuckDB.

:class:`Scan` opens a run directory of any kind (the shards :func:`mcland.load` would
read, checked against their checksums the same way) as the DuckDB view ``records``.  The
analysis (``mcland report``, :mod:`mcland.stats`, the claim scripts of ``analysis/``)
asks it for aggregates — counts, minima, maxima, exact order statistics, top-k lists,
samples — never for the run itself, so its memory does not grow with the number of
records: DuckDB reads only the columns a query names (projection and predicate pushdown
on the Parquet row groups, as ``mcland.load`` does), and every hash table and sort it
builds stays within :data:`MEMORY_LIMIT`, spilling to a temporary directory beyond it.
No query of the report or the claims holds a row per record: exact order statistics are
a radix selection in counting passes (:mod:`mcland.rundir.select`), not a sort, and
per-record tables are aggregated as they are made.

Record columns keep their names in SQL except those that differ from another only in
case (SQL names are case-insensitive): ``S`` is ``S_set`` and ``S_drawn`` is
``S_drawn_set`` (:data:`SQL_ALIAS`, :func:`sql_name`).  Type columns (``theory_type``,
``numeric_type``, ...) are text.

Results come back as pandas DataFrames (small: one row per group) or, for per-point
output written to files or drawn in histograms, as a stream of batches
(:meth:`Scan.batches`).  Every aggregate used is exact and independent of the order of
the rows (integer counts, minima, maxima, bitwise or, order statistics), so answers do not
depend on DuckDB's threads.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mcland.core.errors import MclandError
from mcland.rundir import files as storage
from mcland.rundir import kinds
from mcland.rundir.select import Selection

MEMORY_LIMIT = os.environ.get("MCLAND_ANALYSIS_MEMORY", "128MB")
"""DuckDB's memory limit for one :class:`Scan` (environment variable
``MCLAND_ANALYSIS_MEMORY``, DuckDB's syntax: ``"128MB"``, ``"2GB"``).  Hash tables and
sorts beyond it spill to a temporary directory; the process's own footprint (Python,
NumPy, pandas, matplotlib, DuckDB's code) comes on top, about 200 MB."""
BATCH_ROWS = 1 << 16  # rows per batch of Scan.batches
SQL_ALIAS = {"S": "S_set", "S_drawn": "S_drawn_set"}
"""Record columns whose SQL name differs from the column name (``s`` and ``S`` are one
identifier in SQL)."""


def sql_name(column: str) -> str:
    """The name of the record column ``column`` in the view ``records``."""
    return SQL_ALIAS.get(column, column)


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def literal(value: object) -> str:
    """A SQL literal for a number, a string, a bool or a sequence of them (a list)."""
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return repr(float(value)) if np.isfinite(value) else f"'{float(value)}'::DOUBLE"
    if isinstance(value, Sequence | np.ndarray):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    raise TypeError(f"no SQL literal for {value!r}")


_VERIFIED: dict[tuple, list[Path]] = {}  # (run, stat of every shard and checksum) -> files


def _verified_files(run_dir: Path, verify: str) -> list[Path]:
    """:func:`mcland.rundir.files.verified_files`, remembered for this process while no shard or
    checksum file of the run changes (size and modification time): the claims of
    ``run_claims.py`` open the run five times and check its bytes once."""
    if verify != "error":  # "skip" warns about each bad shard every time; "off" is free
        return storage.verified_files(run_dir, verify, stacklevel=4)
    files = sorted(run_dir.glob(storage.SHARD_GLOB))

    def stat(path: Path) -> tuple:
        try:
            st = path.stat()
        except FileNotFoundError:
            return (str(path), None)
        return (str(path), st.st_size, st.st_mtime_ns, st.st_ino)

    key = (str(run_dir.resolve()), *(stat(f) + stat(storage.checksum_path(f)) for f in files))
    if key not in _VERIFIED:
        _VERIFIED.clear()  # one run remembered at a time
        _VERIFIED[key] = storage.verified_files(run_dir, verify, stacklevel=4)
    return list(_VERIFIED[key])


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:  # pragma: no cover - a declared dependency
        raise MclandError("the analysis needs DuckDB: pip install duckdb") from None
    return duckdb


def _to_table(rel: Any) -> pa.Table:
    """A DuckDB relation's rows as an Arrow table (DuckDB 2 and 1.x spellings)."""
    return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()


def _to_reader(rel: Any, rows: int) -> pa.RecordBatchReader:
    """A DuckDB relation's rows as a stream of Arrow batches of at most ``rows`` rows."""
    if hasattr(rel, "to_arrow_reader"):
        return rel.to_arrow_reader(rows)
    return rel.fetch_arrow_reader(rows)  # pragma: no cover - DuckDB 1.x


class Scan:
    """A run directory opened for bounded-memory queries (a context manager).

    Parameters
    ----------
    run_dir : path
        A run directory of any kind.
    verify : {"error", "skip", "off"}
        The checksum check of :func:`mcland.load` (default: a corrupt shard raises).
    memory_limit : str, optional
        DuckDB's memory limit (default :data:`MEMORY_LIMIT`).
    threads : int, optional
        DuckDB's threads (default: all cores).

    Attributes
    ----------
    run_dir : Path
    manifest : dict
    kind : str
        ``sample``, ``classify`` or ``dynamics``.
    files : list of Path
        The shards read (after the checksum check).
    columns : list of str
        The record columns (the kind's schema).
    """

    def __init__(
        self,
        run_dir: str | Path,
        verify: str = "error",
        memory_limit: str | None = None,
        threads: int | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.manifest = storage.read_manifest(self.run_dir)
        self.kind = kinds.kind_of(self.manifest)
        self.files = _verified_files(self.run_dir, verify)
        self.schema = kinds.shard_schema(self.manifest)
        self.columns = list(self.schema.names)
        self._tmp = tempfile.mkdtemp(prefix="mcland-scan-")
        duckdb = _duckdb()
        self.con = duckdb.connect(config={"memory_limit": memory_limit or MEMORY_LIMIT})
        self.con.execute(f"SET temp_directory = {quote(self._tmp)}")
        self.con.execute("SET preserve_insertion_order = false")
        self.con.execute("SET enable_progress_bar = false")
        with contextlib.suppress(Exception):  # a DuckDB without the setting
            # no Python variable is ever read as a table by name
            self.con.execute("SET python_enable_replacements = false")
        if threads is not None:
            self.con.execute(f"SET threads = {int(threads)}")
        self._create_view()

    # ------------------------------------------------------------------ set-up
    def _create_view(self) -> None:
        """The view ``records``: every shard, columns under their SQL names."""
        names = [sql_name(c) for c in self.columns]
        lower = [n.lower() for n in names]
        if len(set(lower)) != len(lower):  # a new schema column differing only in case
            raise MclandError(f"record columns collide in SQL: {sorted(names)}")
        if not self.files:
            empty = pa.schema([pa.field(sql_name(f.name), f.type) for f in self.schema])
            self.add_table("_empty", empty.empty_table())
            self.con.execute("CREATE VIEW records AS SELECT *, 0::BIGINT AS _order FROM _empty")
            return
        src = f"read_parquet({self._file_list()}, file_row_number = true)"
        got = [r[0] for r in self.con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
        got = [g for g in got if g != "file_row_number"]
        # the shards' own column names, in DuckDB's order (DuckDB renames columns that
        # differ only in case, so match them by position within the first shard's schema)
        own = pq.read_schema(self.files[0]).names
        if len(got) != len(own):
            raise MclandError(f"{self.run_dir}: DuckDB reads {len(got)} columns of {len(own)}")
        in_files = dict(zip(own, got, strict=True))
        select = []
        for field, name in zip(self.schema, names, strict=True):
            if field.name in in_files:
                select.append(f'"{in_files[field.name]}" AS "{name}"')
            else:  # a column added after the run was written: its default or null, as in load
                default = storage.column_default(field)
                value = "NULL" if default is None else repr(default)
                select.append(f'{value}::{self._sql_type(field)} AS "{name}"')
        select_sql = ", ".join(select)
        self.con.execute(f"CREATE VIEW records AS SELECT {select_sql}, {self._order()} FROM {src}")

    def _file_list(self) -> str:
        """SQL of the shards read: the run directory's glob when the run is complete (all
        the shards its manifest counts, no other to appear between two queries) and they
        are all those the glob matches (DuckDB then keeps one pattern instead of a list:
        5 KB less per shard, 20 MB on 4,000 shards, in every query), else the list of the
        verified files."""
        pattern = self.run_dir / storage.SHARD_GLOB
        plain = not any(c in str(self.run_dir) for c in "*?[]{}\\")
        complete = self.manifest.get("shards") == len(self.files)
        if plain and complete and self.files == sorted(self.run_dir.glob(storage.SHARD_GLOB)):
            return quote(str(pattern))
        return "[" + ", ".join(quote(str(f)) for f in self.files) + "]"

    def _sql_type(self, field: pa.Field) -> str:
        """DuckDB's type of a record column (a type column, dictionary-encoded: text)."""
        if pa.types.is_dictionary(field.type):
            return "VARCHAR"
        return str(self.con.from_arrow(pa.schema([field]).empty_table()).types[0])

    def _order(self) -> str:
        """SQL of ``_order``: the position of a record in :func:`mcland.load`'s frame, for
        first-appearance rules and ties.  Records are sorted by the key their kind names
        (:class:`mcland.rundir.kinds.Kind`; ``sample_id`` for a sample or dynamics run,
        ``row`` for a classify run); the ``R`` records of one id (a dynamics run: one per
        delta or eps, in the order of the ``[dynamics]`` list) follow each other in a shard,
        so ``_order = key * R + file_row_number mod R``.  A kind without an integer key (a
        classify run keyed by a user column) keeps its records in shard order:
        ``_order = file_index * 2**40 + file_row_number``."""
        key = self.key
        per = kinds.rows_per_id(self.manifest)
        if key is None:
            return "file_index::BIGINT * 1099511627776 + file_row_number AS _order"
        if per == 1:
            return f'"{key}"::BIGINT AS _order'
        return f'"{key}"::BIGINT * {per} + file_row_number % {per} AS _order'

    def close(self) -> None:
        """Close the connection and remove the spill directory."""
        self.con.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Scan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ queries
    @property
    def key(self) -> str | None:
        """The column that orders the records as :func:`mcland.load` returns them, as the
        run's kind names it (``sample_id``; ``row`` for a classify run); None for a kind
        whose ids are a user's column (shard order)."""
        return kinds.of(self.manifest).key(self.manifest)

    def has(self, column: str) -> bool:
        """Whether the run's records have ``column``."""
        return column in self.columns

    def table(self, query: str) -> pa.Table:
        """The (small) result of ``query`` as an Arrow table."""
        return _to_table(self.con.sql(query))

    def df(self, query: str) -> pd.DataFrame:
        """The (small) result of ``query`` as a DataFrame (list columns hold NumPy arrays,
        as in :func:`mcland.load`)."""
        return self.table(query).to_pandas()

    def one(self, query: str) -> tuple:
        """The single row of ``query``."""
        rows = self.con.sql(query).fetchall()
        if len(rows) != 1:
            raise ValueError(f"expected one row, got {len(rows)}: {query}")
        return rows[0]

    def scalar(self, query: str) -> Any:
        """The single value of ``query``."""
        return self.one(query)[0]

    def count(self, where: str = "TRUE") -> int:
        """Records satisfying ``where`` (SQL)."""
        return int(self.scalar(f"SELECT count(*) FROM records WHERE {where}"))

    def batches(self, query: str, rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """The rows of ``query`` as a stream of Arrow record batches (bounded memory)."""
        reader = _to_reader(self.con.sql(query), rows)
        yield from reader

    def add_table(self, name: str, frame: pd.DataFrame | pa.Table) -> None:
        """Make a small table available to queries under ``name`` (a view on it)."""
        rel = self.con.from_arrow(frame) if isinstance(frame, pa.Table) else self.con.from_df(frame)
        rel.create_view(name, replace=True)

    def drop_table(self, name: str) -> None:
        """Forget the table :meth:`add_table` made available under ``name``."""
        self.con.execute(f'DROP VIEW IF EXISTS "{name}"')

    # ------------------------------------------------------------------ order statistics
    def order_statistics(
        self,
        value: str,
        where: str,
        by: Sequence[str],
        ranks: pd.DataFrame,
        source: str = "records",
    ) -> pd.DataFrame:
        """The values of given ranks in each group, sorted as :func:`numpy.sort` sorts.

        Parameters
        ----------
        value : str
            SQL expression of the value (float).
        where : str
            SQL condition of the rows.
        by : sequence of str
            SQL expressions of the groups (their output columns are named ``g0``, ``g1``, ...).
        ranks : DataFrame
            Columns ``g0``, ... and ``i``: the 1-based ranks wanted per group.
        source : str
            The relation queried (default the records).

        Returns
        -------
        DataFrame
            ``g0``, ..., ``i``, ``x``, in the order of ``ranks``: the ``i``-th smallest
            value of the group (NaN and null last, after ``+inf``, as in NumPy, both given
            as NaN; NaN for a rank beyond the group).  Exact, in memory that does not
            depend on the number of rows (:class:`mcland.rundir.select.Selection`: a few
            counting passes, no sort of the rows).
        """
        keys = [f"g{k}" for k in range(len(by))]
        sel = Selection(self, value, where, by, source)
        wanted = [tuple(r) for r in ranks[[*keys, "i"]].itertuples(index=False)]
        got = sel.values(wanted)
        out = ranks[[*keys, "i"]].reset_index(drop=True).astype({"i": "int64"})
        out["x"] = np.array([got[w] for w in wanted], dtype=float)
        return out

    def medians(
        self, value: str, where: str = "TRUE", by: Sequence[str] = (), source: str = "records"
    ) -> pd.DataFrame:
        """Per group: ``n`` (rows), ``median`` as :func:`numpy.median` gives it (the mean
        of the two middle values for even ``n``; NaN when a value is NaN or ``n = 0``).

        Parameters as :meth:`order_statistics`; the result has ``g0``, ..., ``n``,
        ``median``, ascending in the groups.
        """
        return self.quantile_ranks(value, where, by, lambda n: [], source)

    def quantile_ranks(
        self,
        value: str,
        where: str,
        by: Sequence[str],
        extra: Callable[[int], Sequence[int]],
        source: str = "records",
    ) -> pd.DataFrame:
        """:meth:`medians` and, per group of ``n`` rows, the values of the 1-based ranks
        ``extra(n)`` (columns ``x1``, ``x2``, ... in that order).  Exact, in bounded
        memory, as :meth:`order_statistics`."""
        sel = Selection(self, value, where, by, source)
        counts = sel.counts
        if not by and not len(counts):  # no row at all: one group of none, as count(*)
            counts = pd.DataFrame({"n": [0], "nan": [0]}).astype("int64")
        wanted, plan = [], []
        for row in counts.itertuples(index=False):
            n = int(row.n)
            key = tuple(row[: len(by)])
            mid = [(n + 1) // 2, n // 2 + 1] if n else []
            more = [int(i) for i in extra(n)] if n else []
            plan.append((key, n, int(row.nan), mid, more))
            wanted += [(*key, i) for i in sorted(set(mid + more))]
        values = sel.values(wanted) if wanted else {}
        med, cols = [], []
        for key, n, nan, mid, more in plan:
            if n == 0 or nan:
                med.append(np.nan)
            else:
                a, b = values[(*key, mid[0])], values[(*key, mid[1])]
                med.append(float(np.mean([a, b])) if n % 2 == 0 else a)
            cols.append([values[(*key, i)] for i in more])
        out = counts.drop(columns=["nan"]).assign(median=med)
        width = max((len(c) for c in cols), default=0)
        for k in range(width):
            out[f"x{k + 1}"] = [c[k] if k < len(c) else np.nan for c in cols]
        return out

    def group_counts(
        self, value: str, where: str, by: Sequence[str], source: str = "records"
    ) -> pd.DataFrame:
        """Per group (``g0``, ...): ``n`` rows and ``nan`` of them with a NaN ``value``."""
        keys = [f"g{k}" for k in range(len(by))]
        groups = ", ".join(f"{e} AS {k}" for e, k in zip(by, keys, strict=True))
        head = f"{groups}, " if keys else ""
        tail = f"GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}" if keys else ""
        return self.df(
            f"SELECT {head}count(*) AS n, count(*) FILTER (isnan(({value})::DOUBLE)) AS nan "
            f"FROM {source} WHERE {where} {tail}"
        )


def median_of_counts(values: np.ndarray, counts: np.ndarray) -> float:
    """:func:`numpy.median` of the multiset holding ``counts[i]`` copies of ``values[i]``
    (non-NaN values; NaN for an empty multiset): exact, from the distinct values only."""
    values, counts = np.asarray(values, float), np.asarray(counts, np.int64)
    keep = counts > 0
    values, counts = values[keep], counts[keep]
    if not counts.size:
        return np.nan
    order = np.argsort(values, kind="stable")
    values, cum = values[order], np.cumsum(counts[order])
    n = int(cum[-1])

    def at(rank: int) -> float:  # the rank-th smallest (1-based)
        return float(values[np.searchsorted(cum, rank)])

    if n % 2:
        return at((n + 1) // 2)
    return float(np.mean([at(n // 2), at(n // 2 + 1)]))


def open_scan(data: str | Path | Scan, **kwargs: Any) -> tuple[Scan, bool]:
    """``(scan, owned)``: ``data`` itself if it is a :class:`Scan`, else a new one on the
    run directory ``data`` (``owned``: the caller closes it)."""
    if isinstance(data, Scan):
        return data, False
    return Scan(data, **kwargs), True


__all__ = [
    "MEMORY_LIMIT", "SQL_ALIAS", "Scan", "literal", "open_scan", "quote", "sql_name",
]  # fmt: skip
