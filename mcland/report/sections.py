"""The report's sections: each takes the loaded records and writes its figures and CSVs.

Every ``*_section`` function returns a :class:`~mcland.report.html.Section`; figures and
CSV files go to ``out`` beside the HTML.
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
    metas = [pq.read_metadata(f) for f in files]
    kv = [json.loads((m.metadata or {}).get(b"mcland", b"{}")) for m in metas]
    consistent = sum(k == manifest for k in kv)
    size = sum(f.stat().st_size for f in files)
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
        ("Parquet writer", metas[0].created_by if metas else "—"),
        ("columns per shard", metas[0].num_columns if metas else "—"),
        ("row groups (all shards)", sum(m.num_row_groups for m in metas)),
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


def results_section(df: pd.DataFrame, manifest: dict[str, Any]) -> Section:
    """The counts (numeric type x theory type, with totals) and the agreement rate."""
    sec = Section("results", "Results: types and agreement")
    add_incomplete_note(sec, len(df), manifest)
    df, dropped = an.drop_null(df, ["theory_type", "numeric_type"])
    if dropped:
        sec.add(p(f"{dropped} points without a theory or numeric type are left out."))
    conf = an.confusion(df, "numeric_type", "theory_type")
    agree = int(np.trace(conf.to_numpy()))
    keep = an.TYPES[:3] + [t for t in an.TYPES[3:] if conf.loc[t].sum() or conf[t].sum()]
    counts = conf.loc[keep, keep]
    counts["total"] = counts.sum(axis=1)
    counts["share"] = (counts["total"] / max(len(df), 1)).map(lambda x: f"{x:.2%}")
    counts.loc["total"] = [*counts[keep].sum(axis=0), len(df), "100.00%"]
    counts.index.name = "numeric type ↓ / theory type →"
    sec.add(
        f'<p class="big">Agreement: {agree} of {len(df)} points '
        f"({agree / max(len(df), 1):.4%}).</p>",
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
def fractions_section(df: pd.DataFrame, out: Path) -> Section:
    """Type fractions vs depth and vs r, with 95% Wilson intervals."""
    sec = Section("fractions", "Type fractions vs depth and bottleneck width")
    df, dropped = an.drop_null(df, ["numeric_type"])
    if dropped:
        sec.add(p(f"{dropped} points without a numeric type are left out."))
    by_h = an.type_fractions(df, "H")
    by_r = an.type_fractions(df, "r")
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
def confusion_section(df: pd.DataFrame, out: Path) -> Section:
    """Every disagreement or ambiguous point; the spectral audit of a spectrum-free run.

    The counts and the agreement rate are in :func:`results_section`.
    """
    sec = Section("confusion", "Disagreements and ambiguous points")
    df, _ = an.drop_null(df, ["theory_type", "numeric_type"])  # counted in the results
    if "audit_type" in df.columns and df["audit_type"].notna().any():
        audited = df[df["audit_type"].notna()]
        sec.add(
            p(
                f"Spectrum-free run: {len(audited)} audited points also have the full spectrum. "
                "Numeric type (shifted Cholesky, rows) x spectral audit type (columns):"
            ),
            table(an.confusion(audited, "numeric_type", "audit_type"), index=True),
        )
    odd = an.disagreements(df)
    cols = ["sample_id", "dims", "S", "theory_type", "numeric_type", "audit_type", "eig_min_w"]
    cols += ["noise_floor"]
    cols += ["tol_neg", "escape_curvature", "scale_x", "scale_y"]
    listed = odd[[c for c in cols if c in odd.columns]].copy()
    listed["dims"] = listed["dims"].map(fmt_tuple)
    listed["S"] = listed["S"].map(lambda v: fmt_tuple(v, braces=True))
    for c in ("theory_type", "numeric_type", "audit_type"):
        if c in listed.columns:
            listed[c] = listed[c].astype(str).where(listed[c].notna(), "")
    listed.to_csv(out / "disagreements.csv", index=False)
    sec.add(
        p(
            f"{len(listed)} points where theory and spectrum differ or either is ambiguous "
            "(all in disagreements.csv). Redraw one with "
            "mcland.draw_point(config, sample_id) and classify it with mcland.inspect_point."
        )
    )
    if len(listed):
        sec.add(table(listed, max_rows=MAX_LISTED, floatfmt="{:.3e}"))
    return sec


# ---------------------------------------------------------------------------------------
def _fixed_data_values(df: pd.DataFrame, m: pd.DataFrame) -> pd.DataFrame:
    """Per r: each enumerated value, the points that reach it and their index sets."""
    rows = []
    for r, g in df.groupby("r", sort=True):
        values = np.asarray(g["critical_values"].iloc[0], float)
        mg = m.loc[g.index]
        for k, v in enumerate(values):
            hit = g[(mg["position"] == k).to_numpy() & mg["matched"].to_numpy()]
            sets = sorted({fmt_tuple(s, braces=True) for s in hit["S"]})
            rows.append(
                {
                    "r": r,
                    "position": k,
                    "critical value": v,
                    "points": len(hit),
                    "S": " ".join(sets),
                }
            )
    return pd.DataFrame(rows)


def critical_values_section(df: pd.DataFrame, out: Path, fixed_data: bool) -> Section:
    """Observed losses against the enumerated set of critical values, and coverage."""
    sec = Section("critical-values", "Critical values: observed vs enumerated")
    crit, dropped = an.drop_null(df[df["is_critical"].to_numpy(bool)], ["critical_values"])
    if dropped:
        sec.add(p(f"{dropped} critical points carry no enumerated set (d_y > 12); left out."))
    if not len(crit):
        sec.add(p("No critical point with an enumerated set of critical values."))
        return sec
    m = an.match_critical_values(crit)
    mm = pd.concat([crit[["d_y", "r"]], m], axis=1)
    cov = an.coverage(mm, by=("d_y", "r"))
    heat = np.full((len(cov), int(cov["n_values"].max())), np.nan)  # NaN: not in the set
    labels = []
    for i, row in enumerate(cov.itertuples(index=False)):
        g = mm[(mm["d_y"] == row.d_y) & (mm["r"] == row.r) & mm["matched"]]
        counts = np.bincount(g["position"].to_numpy(), minlength=row.n_values)[: row.n_values]
        heat[i, : row.n_values] = counts / max(len(g), 1)  # 0: in the set, never reached
        labels.append(f"d_y={row.d_y}, r={row.r} (n={row.points})")
    heat = pd.DataFrame(heat, index=labels)
    figures.positions_heatmap(heat, out / "critical_values.png")
    sec.add(
        p(
            "Each point's loss is matched to the nearest value of its architecture's enumerated "
            "set {tr(Syy) − Σ_{i∈S} λ_i : |S| ≤ r} (ascending; position 0 is the global "
            "minimum L*); a match needs |loss − value| ≤ loss_tol. "
            f"{int(m['matched'].sum())} of {len(m)} losses match; the largest distance is "
            f"{(m['distance'] / crit['loss_tol']).max():.3g} × loss_tol."
        ),
        figure("critical_values.png", "positions of matched critical values"),
        p(
            "Coverage per (d_y, r): the set has Σ_{k≤r} C(d_y, k) values ('expected'); "
            "'reached' counts the distinct positions matched by at least one point."
        ),
        table(_percent(cov, "coverage")),
    )
    dims = crit["dims"].map(fmt_tuple)
    mm = mm.assign(dims=dims.to_numpy())
    top = dims.value_counts().head(15).index
    by_arch = an.coverage(mm[mm["dims"].isin(top)], by=("dims", "d_y", "r"))
    sec.add(
        p("The 15 most frequent architectures:"),
        table(_percent(by_arch.sort_values("points", ascending=False), "coverage")),
    )
    if fixed_data:
        vals = _fixed_data_values(crit, m)
        vals.to_csv(out / "critical_values.csv", index=False)
        sec.add(
            p(
                "Fixed data: every architecture with the same r shares one set. Each enumerated "
                "value, the points whose loss matches it and the index sets S read off them:"
            ),
            table(vals, floatfmt="{:.10g}"),
        )
    return sec
