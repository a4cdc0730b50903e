"""The report's sections: each takes the run (a :class:`~mcland.rundir.scan.Scan`, queried in
DuckDB, never loaded) and writes its figures and CSVs.

Every ``*_section`` function returns a :class:`~mcland.report.html.Section`; figures and
CSV files go to ``out`` beside the HTML.  Per-point lists are written to their CSV file
batch by batch, up to :data:`MAX_CSV_ROWS` rows (the page says how many were left out).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from mcland import stats as an
from mcland.report import figures
from mcland.report.html import Section, details, esc, figure, link, note, p, pre, table
from mcland.rundir import runlog
from mcland.rundir.files import SHARD_GLOB
from mcland.rundir.scan import Scan, literal, sql_name

THEORY_DOC = "docs/theory.md in the mcland repository"
NOT_RECORDED = "not recorded (run written before run logs)"
MAX_SESSIONS = 50  # run-log sessions listed in the metadata
DESIGN_NOTE = (
    "Marginal fractions describe the sampling design (the recipe weights, the kill-layer "
    "weights and the architecture ranges of the configuration), not the landscape: another "
    "configuration gives other fractions. The strata (architecture, S, rank profile) describe "
    "the landscape."
)
MAX_LISTED = 1000
MAX_CSV_ROWS = 1_000_000  # rows of a per-point CSV list (disagreements, flagged strata)


def fmt_tuple(values: object, braces: bool = False) -> str:
    """``(3, 2, 4)`` or ``{1, 2}`` from a list-column cell or tuple."""
    inner = ", ".join(str(int(v)) for v in np.asarray(values).ravel())
    return "{" + inner + "}" if braces else "(" + inner + ")"


def _ci_pivot(tidy: pd.DataFrame, by: str) -> pd.DataFrame:
    """Rows ``by``, columns types: ``fraction [lo, hi] (count)``, plus the group total."""
    cell = tidy.apply(
        lambda r: f"{r['fraction']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] ({r['count']})", axis=1
    )
    piv = tidy.assign(cell=cell).pivot(index=by, columns="type", values="cell")
    piv = piv[[t for t in an.TYPES if t in piv.columns]]
    piv["points"] = tidy.groupby(by)["total"].first()
    return piv.reset_index()


def _percent(df: pd.DataFrame, col: str) -> pd.DataFrame:
    """``df`` with the fractions in ``col`` written as percentages."""
    return df.assign(**{col: df[col].map(lambda x: f"{x:.1%}")})


# ---------------------------------------------------------------------------------------
def wall_time(run_dir: Path) -> tuple[str, str]:
    """``(wall time, hosts)`` of the run as text, from its run log (:mod:`mcland.rundir.runlog`).

    The wall time is the sum over the recorded sessions (a fresh run and each resume).
    A run without a log (mcland 0.5.0 and earlier) gives :data:`NOT_RECORDED` for both.
    """
    if not runlog.log_path(run_dir).exists():
        return NOT_RECORDED, NOT_RECORDED
    entries = runlog.read(run_dir)
    if not entries:
        empty = f"not recorded ({runlog.LOG_FILE} holds no readable session)"
        return empty, empty
    log = runlog.summarise(entries)
    unfinished = log.sessions - log.completed
    wall = runlog.format_seconds(log.wall_seconds) + (
        f" ({log.sessions} sessions: the run and {log.sessions - 1} resume(s))"
        if log.sessions > 1
        else " (one session)"
    )
    if unfinished:
        wall += f"; {unfinished} session(s) did not complete"
    return wall, ", ".join(log.hosts) or "not recorded"


def _sessions_table(run_dir: Path) -> str:
    """The run log's sessions as a table (the last :data:`MAX_SESSIONS`)."""
    entries = runlog.read(run_dir)
    rows = [
        {
            "start (UTC)": str(e.get("start")),
            "end (UTC)": str(e.get("end")),
            "wall": runlog.format_seconds(float(e.get("wall_seconds") or 0.0)),
            "hosts": ", ".join(e.get("hosts") or [str(e.get("host"))]),
            "pid": str(e.get("pid")),
            "points": str(e.get("points")),
            "threads / workers": runlog.how_computed(e),
            "mcland": str(e.get("mcland_version")),
            "completed": "yes" if e.get("completed") else f"no ({e.get('error')})",
        }
        for e in entries[-MAX_SESSIONS:]
    ]
    shown = f"the last {MAX_SESSIONS} of {len(entries)}" if len(entries) > MAX_SESSIONS else ""
    return p(f"Sessions in {runlog.LOG_FILE} {shown}".rstrip() + ":") + table(pd.DataFrame(rows))


def metadata_section(
    run_dir: Path,
    manifest: dict[str, Any],
    n_rows: int,
    extra: tuple[tuple[str, object], ...] = (),
) -> Section:
    """Seed, versions, sizes, Parquet metadata, wall time and hosts, the configuration.

    ``n_rows`` counts the points present (a dynamics run's points, not its records);
    ``extra`` rows (item, value) of the run's kind go after the sizes."""
    sec = Section("metadata", "Run metadata")
    files = sorted(run_dir.glob(SHARD_GLOB))
    consistent, row_groups, size, first = 0, 0, 0, None
    for f in files:  # one footer at a time: thousands of shards stay cheap
        m = pq.read_metadata(f)
        first = first or m
        consistent += json.loads((m.metadata or {}).get(b"mcland", b"{}")) == manifest
        row_groups += m.num_row_groups
        size += f.stat().st_size
    wall_text, hosts_text = wall_time(run_dir)
    if wall_text == NOT_RECORDED and files:
        mtimes = [datetime.fromtimestamp(f.stat().st_mtime, UTC) for f in files]
        wall_text += (
            ". For orientation only: the shard files were last modified between "
            f"{min(mtimes):%Y-%m-%d %H:%M:%S} and {max(mtimes):%Y-%m-%d %H:%M:%S} UTC; resumes "
            "and copies change these times."
        )
    rows = [
        ("run directory", str(run_dir)),
        ("mcland version (run)", manifest.get("mcland_version")),
        ("seed", "none" if manifest.get("seed") is None else manifest.get("seed")),
        ("points planned (n)", manifest.get("n")),
        ("points present", n_rows),
        ("shards present / planned", f"{len(files)} / {manifest.get('shards')}"),
        ("shard size", manifest.get("shard_size")),
        ("bytes on disk (shards)", f"{size:,}"),
        *extra,
        (
            "data source",
            manifest.get("config", {}).get("data", {}).get("source")
            or "given with the points (mcland classify --data)",
        ),
        ("user data SHA-256", manifest.get("data_sha256") or "none (Gaussian data per point)"),
        ("Parquet writer", first.created_by if first else "—"),
        ("columns per shard", first.num_columns if first else "—"),
        ("row groups (all shards)", row_groups),
        ("shards whose Parquet metadata equals run.json", f"{consistent} of {len(files)}"),
        ("wall time", wall_text),
        ("hosts", hosts_text),
    ]
    meta = pd.DataFrame(rows, columns=["item", "value"]).astype(str)
    sec.add(table(meta, scroll=False))
    add_incomplete_note(sec, n_rows, manifest)
    if runlog.read(run_dir):
        sec.add(_sessions_table(run_dir))
    sec.add(
        details(
            "Resolved configuration (run.json) — click to show",
            pre(json.dumps(manifest.get("config"), indent=2)),
        )
    )
    return sec


# ---------------------------------------------------------------------------------------
def add_incomplete_note(sec: Section, n_points: int, manifest: dict[str, Any]) -> None:
    """A note on ``sec`` when the run holds fewer than the manifest's ``n`` points."""
    n_planned = int(manifest.get("n", n_points))
    if n_points < n_planned:
        sec.add(note(f"The run is incomplete: {n_points} of {n_planned} points present."))


def results_section(scan: Scan, manifest: dict[str, Any]) -> Section:
    """The counts (numeric type x theory type, with totals) and the agreement rate."""
    sec = Section("results", "Results: types and agreement")
    add_incomplete_note(sec, scan.count(), manifest)
    typed = an.not_null(["theory_type", "numeric_type"])
    n = scan.count(typed)
    dropped = scan.count() - n
    if dropped:
        sec.add(p(f"{dropped} points without a theory or numeric type are left out."))
    conf = an.confusion(scan, "numeric_type", "theory_type")
    agree = int(np.trace(conf.to_numpy()))
    keep = an.TYPES[:3] + [t for t in an.TYPES[3:] if conf.loc[t].sum() or conf[t].sum()]
    counts = conf.loc[keep, keep]
    counts["total"] = counts.sum(axis=1)
    counts["share"] = (counts["total"] / max(n, 1)).map(lambda x: f"{x:.2%}")
    counts.loc["total"] = [*counts[keep].sum(axis=0), n, "100.00%"]
    counts.index.name = "numeric type ↓ / theory type →"
    sec.add(
        f'<p class="big">Agreement: {agree} of {n} points ({agree / max(n, 1):.4%}).</p>',
        "<p>"
        + esc(
            "Rows: type from the loss and the whitened Hessian spectrum (numeric); columns: "
            "type from the theory (index set S and escape certificates). Off-diagonal cells "
            "are disagreements, listed under "
        )
        + link("confusion", "Disagreements and ambiguous points")
        + ".</p>",
        table(counts, index=True, scroll=False),
    )
    return sec


# ---------------------------------------------------------------------------------------
def fractions_section(scan: Scan, out: Path) -> Section:
    """Type fractions vs depth and vs r, with 95% Wilson intervals."""
    sec = Section("fractions", "Type fractions vs depth and bottleneck width")
    dropped = scan.count("numeric_type IS NULL")
    if dropped:
        sec.add(p(f"{dropped} points without a numeric type are left out."))
    by_h = an.type_fractions(scan, "H")
    by_r = an.type_fractions(scan, "r")
    figures.fractions(by_h, by_r, out / "fractions.png")
    sec.add(
        figure("fractions.png", "type fractions vs depth and vs r"),
        p(
            "Numeric type (from the Hessian spectrum and the loss). Bars and brackets are 95% "
            "Wilson score intervals of a binomial proportion."
        ),
        note(DESIGN_NOTE),
        p("By depth H: fraction [95% interval] (count)"),
        table(_ci_pivot(by_h, "H")),
        p("By bottleneck width r:"),
        table(_ci_pivot(by_r, "r")),
    )
    return sec


# ---------------------------------------------------------------------------------------
def write_csv(scan: Scan, query: str, path: Path, shape: Any, limit: int | None = None) -> int:
    """Write the first ``limit`` rows of ``query`` (default :data:`MAX_CSV_ROWS`) to the CSV
    file ``path``, batch by batch (``shape`` turns each batch, a DataFrame, into the rows
    written); returns the rows written.  The header is written even without rows."""
    limit = MAX_CSV_ROWS if limit is None else limit
    written, header = 0, True
    with open(path, "w", encoding="utf-8", newline="") as fh:
        for batch in scan.batches(f"SELECT * FROM ({query}) LIMIT {int(limit)}"):
            if not batch.num_rows:
                continue
            rows = shape(batch.to_pandas())
            rows.to_csv(fh, index=False, header=header)
            written, header = written + len(rows), False
        if header:
            shape(scan.df(f"SELECT * FROM ({query}) LIMIT 0")).to_csv(fh, index=False)
    return written


def _listed(cols: list[str]) -> Any:
    """The disagreements' columns as the page and disagreements.csv show them."""

    def shape(odd: pd.DataFrame) -> pd.DataFrame:
        listed = odd[[c for c in cols if c in odd.columns]].copy()
        listed["dims"] = listed["dims"].map(fmt_tuple)
        listed["S"] = listed["S"].map(lambda v: fmt_tuple(v, braces=True))
        for c in ("theory_type", "numeric_type", "audit_type"):
            if c in listed.columns:
                listed[c] = listed[c].astype(str).where(listed[c].notna(), "")
        return listed

    return shape


def confusion_section(scan: Scan, out: Path) -> Section:
    """Every disagreement or ambiguous point (the first :data:`MAX_CSV_ROWS` in
    disagreements.csv); the spectral audit of a spectrum-free run.

    The counts and the agreement rate are in :func:`results_section`.
    """
    sec = Section("confusion", "Disagreements and ambiguous points")
    typed = an.not_null(["theory_type", "numeric_type"])  # dropped: counted in the results
    audit = scan.has("audit_type")
    audited = scan.count(f"{typed} AND audit_type IS NOT NULL") if audit else 0
    if audited:
        sec.add(
            p(
                f"Spectrum-free run: {audited} audited points also have the full spectrum. "
                "Numeric type (shifted Cholesky, rows) x spectral audit type (columns):"
            ),
            table(an.confusion(scan, "numeric_type", "audit_type", where=typed), index=True),
        )
    cols = ["sample_id", "dims", "S", "theory_type", "numeric_type", "audit_type", "eig_min_w"]
    cols += ["noise_floor"]
    cols += ["tol_neg", "escape_curvature", "scale_x", "scale_y"]
    cols = [c for c in cols if scan.has(c)]
    where = f"{typed} AND {an.disagreement_sql(audit)}"
    total = scan.count(where)
    select = ", ".join(f'{sql_name(c)} AS "{c}"' for c in cols)
    query = f"SELECT {select} FROM records WHERE {where} ORDER BY _order"
    shape = _listed(cols)
    written = write_csv(scan, query, out / "disagreements.csv", shape)
    where_listed = (
        "all in disagreements.csv"
        if written == total
        else f"the first {written:,} by sample id in disagreements.csv"
    )
    sec.add(
        p(
            f"{total} points where theory and spectrum differ or either is ambiguous "
            f"({where_listed}). Redraw one with "
            "mcland.draw_point(config, sample_id) and classify it with mcland.inspect_point."
        )
    )
    if total:
        head = shape(scan.df(f"{query} LIMIT {MAX_LISTED}"))
        sec.add(table(head, max_rows=MAX_LISTED, floatfmt="{:.3e}", total=total))
    return sec


# ---------------------------------------------------------------------------------------
def _fixed_data_values(scan: Scan) -> pd.DataFrame:
    """Per r: each enumerated value, the points that reach it and their index sets (all
    points share the data, so the set of the first point of each r is that of all)."""
    first = scan.df(
        f"SELECT r, arg_min(critical_values, _order) AS cv FROM records WHERE {an.CRITICAL} "
        "GROUP BY r ORDER BY r"
    )
    hits = scan.df(
        "SELECT r, position, S_set AS S, sum(_n)::BIGINT AS n FROM _matched WHERE matched "
        "GROUP BY ALL"
    )
    rows = []
    for r, cv in zip(first["r"], first["cv"], strict=True):
        values = np.asarray(cv, float)
        mine = hits[hits["r"] == r]
        for k, v in enumerate(values):
            at = mine[mine["position"] == k]
            sets = sorted({fmt_tuple(S, braces=True) for S in at["S"]})
            rows.append(
                {
                    "r": r,
                    "position": k,
                    "critical value": v,
                    "points": int(at["n"].sum()),
                    "S": " ".join(sets),
                }
            )
    return pd.DataFrame(rows)


def critical_values_section(scan: Scan, out: Path, fixed_data: bool) -> Section:
    """Observed losses against the enumerated set of critical values, and coverage."""
    sec = Section("critical-values", "Critical values: observed vs enumerated")
    dropped = scan.count("is_critical AND critical_values IS NULL")
    if dropped:
        sec.add(p(f"{dropped} critical points carry no enumerated set (d_y > 12); left out."))
    n_crit = scan.count(an.CRITICAL)
    if not n_crit:
        sec.add(p("No critical point with an enumerated set of critical values."))
        return sec
    # the match, once, aggregated at once: a temporary table of one row per architecture,
    # index set and position reached (``_n`` records each, ``_order`` the first), whose
    # size depends on the configuration, not on the number of records
    scan.con.execute(
        "CREATE OR REPLACE TEMP TABLE _matched AS SELECT d_y, r, dims, S_set, n_values, "
        "position, matched, count(*) AS _n, min(_order) AS _order, "
        "max(distance / _tol) AS worst "
        f"FROM ({an.match_sql(an.CRITICAL, ['d_y', 'r', 'dims', 'S_set'])}) GROUP BY ALL"
    )
    cov = an.coverage_rows(
        an.coverage_groups(scan, ["d_y", "r"], matched="_matched", weight="_n"),
        ["d_y", "r"],
        expected=True,
    )
    matched, worst = scan.one(
        "SELECT coalesce(sum(_n) FILTER (matched), 0)::BIGINT, max(worst) FROM _matched"
    )
    positions = scan.df(
        "SELECT d_y, r, position, sum(_n)::BIGINT AS n FROM _matched WHERE matched GROUP BY ALL"
    )
    heat = np.full((len(cov), int(cov["n_values"].max())), np.nan)  # NaN: not in the set
    labels = []
    for i, row in enumerate(cov.itertuples(index=False)):
        g = positions[(positions["d_y"] == row.d_y) & (positions["r"] == row.r)]
        counts = np.zeros(row.n_values, np.int64)
        inside = g["position"].to_numpy() < row.n_values
        counts[g["position"].to_numpy()[inside]] = g["n"].to_numpy()[inside]
        heat[i, : row.n_values] = counts / max(int(g["n"].sum()), 1)  # 0: never reached
        labels.append(f"d_y={row.d_y}, r={row.r} (n={row.points})")
    heat = pd.DataFrame(heat, index=labels)
    figures.positions_heatmap(heat, out / "critical_values.png")
    sec.add(
        p(
            "Each point's loss is matched to the nearest value of its architecture's enumerated "
            "set {tr(Syy) − Σ_{i∈S} λ_i : |S| ≤ r} (ascending; position 0 is the global "
            "minimum L*); a match needs |loss − value| ≤ loss_tol. "
            f"{int(matched)} of {n_crit} losses match; the largest distance is "
            f"{_nan_float(worst):.3g} × loss_tol."
        ),
        figure("critical_values.png", "positions of matched critical values"),
        p(
            "Coverage per (d_y, r): the set has Σ_{k≤r} C(d_y, k) values ('expected'); "
            "'reached' counts the distinct positions matched by at least one point."
        ),
        table(_percent(cov, "coverage")),
    )
    sec.add(
        p("The 15 most frequent architectures:"),
        table(_percent(_top_architectures(scan, 15), "coverage")),
    )
    if fixed_data:
        vals = _fixed_data_values(scan)
    scan.con.execute("DROP TABLE _matched")
    if fixed_data:
        vals.to_csv(out / "critical_values.csv", index=False)
        sec.add(
            p(
                "Fixed data: every architecture with the same r shares one set. Each enumerated "
                "value, the points whose loss matches it and the index sets S read off them:"
            ),
            table(vals, floatfmt="{:.10g}"),
        )
    return sec


def _nan_float(x: object) -> float:
    """``x`` as a float, NaN for a SQL null."""
    return np.nan if x is None else float(x)


def value_counts(
    scan: Scan, expr: str, where: str = "TRUE", source: str = "records", weight: str | None = None
) -> pd.Series:
    """``Series.value_counts()`` of a SQL expression over the records (or ``source``):
    counts in decreasing order, ties in the order of first appearance (as pandas orders
    them).  ``weight``: the column of ``source`` counting the records each of its rows
    stands for (an aggregated relation, ``_order`` the first of them)."""
    memo = scan.__dict__.setdefault("_value_counts", {})
    if (expr, where, source, weight) in memo:
        return memo[(expr, where, source, weight)].copy()
    count = f"sum({weight})::BIGINT" if weight else "count(*)"
    got = scan.df(
        f"SELECT {expr} AS v, {count} AS n, min(_order) AS first FROM {source} "
        f"WHERE {where} GROUP BY ALL ORDER BY first"
    )
    keys = [an.as_key(v) if isinstance(v, np.ndarray) else v for v in got["v"]]
    counts = pd.Series(
        got["n"].to_numpy(np.int64), index=pd.Index(keys, tupleize_cols=False), name="count"
    )
    memo[(expr, where, source, weight)] = counts.sort_values(ascending=False, kind="stable")
    return memo[(expr, where, source, weight)].copy()


def _top_architectures(scan: Scan, k: int) -> pd.DataFrame:
    """Coverage of the ``k`` most frequent architectures among the matched points, by
    decreasing number of points."""
    counts = value_counts(scan, "dims", "TRUE", source="_matched", weight="_n")
    keys = [list(d) for d in counts.head(k).index]
    counts.index = [fmt_tuple(d) for d in counts.index]
    top = set(counts.head(k).index)
    # the coverage of those architectures only (its distinct positions per group are a
    # set each: for every architecture of a large run they would not fit a small limit)
    mine = (
        f"(SELECT * FROM _matched WHERE list_contains({literal(keys)}::BIGINT[][], dims::BIGINT[]))"
    )
    got = an.coverage_groups(scan, ["dims", "d_y", "r"], matched=mine, weight="_n")
    got["dims"] = [fmt_tuple(d) for d in got["dims"]]
    got = got[got["dims"].isin(top)]
    by_arch = an.coverage_rows(got, ["dims", "d_y", "r"], expected=True)
    return by_arch.sort_values("points", ascending=False)
