"""The sections of the report of a ``dynamics`` run (docs/dynamics.md): what is common to
both experiments (status counts, loss curves with the staircase of critical values, the
metadata) and the dispatch to :mod:`~mcland.report.escape` or
:mod:`~mcland.report.small_init`.

A dynamics run has one record per (point, delta) or (point, eps): the point's sample
record followed by the experiment's columns (:mod:`mcland.flow.schema`).  The run is
queried (:class:`~mcland.rundir.scan.Scan`), never loaded whole: counts and exact medians in
DuckDB, scatter plots from the first :data:`~mcland.report.landscape.MAX_SCATTER` runs,
loss curves from the few points drawn (loaded by sample id).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mcland import stats as an
from mcland.flow.schema import record_schema
from mcland.report import dynamics_figures, escape, small_init
from mcland.report.html import Section, figure, p, table
from mcland.report.sections import add_incomplete_note, fmt_tuple, metadata_section
from mcland.rundir.files import load
from mcland.rundir.scan import Scan

MAX_CURVE_POINTS = 6  # points whose loss curves are drawn
BUDGET = ("budget", "escaped_budget")  # statuses of runs that hit a budget
STATUSES = {
    "escape": ["escaped", "escaped_budget", "relaxed", "budget", "failed"],
    "small_init": ["global", "settled", "budget", "failed"],
}


def experiment_of(manifest: dict[str, Any]) -> str:
    """The run's experiment (``escape`` or ``small_init``)."""
    return str(manifest["config"]["dynamics"]["experiment"])


def columns(manifest: dict[str, Any]) -> list[str]:
    """The experiment's columns (all of them: the report uses most)."""
    return list(record_schema(experiment_of(manifest)).names)


def sections(scan: Scan, out: Path) -> list[Section]:
    """All sections of a dynamics run's report, in page order."""
    manifest = scan.manifest
    experiment = experiment_of(manifest)
    secs = [status_section(scan, manifest)]
    if experiment == "escape":
        secs += escape.sections(scan, out)
    else:
        secs += small_init.sections(scan, out)
    secs.append(curves_section(scan, out, experiment))
    points = n_points(scan)
    size = "delta" if experiment == "escape" else "eps"
    extra = (
        ("experiment", experiment),
        ("integrator", manifest["config"]["dynamics"].get("integrator", "explicit")),
        (f"records present (one per point and {size})", scan.count()),
    )
    secs.append(metadata_section(scan.run_dir, manifest, points, extra))
    return secs


def n_points(scan: Scan) -> int:
    """The number of distinct points (sample ids) of a dynamics run."""
    return int(scan.scalar("SELECT count(DISTINCT sample_id) FROM records"))


FIRST_ROWS = """(SELECT sample_id, min(_order) AS _order,
    arg_min(coalesce(theory_type::VARCHAR, 'nan'), _order) AS theory_type
    FROM records GROUP BY sample_id)"""
"""The first record of each point (``drop_duplicates("sample_id")``): its sample id, position
and theory type as text (``nan`` when null)."""


def status_section(scan: Scan, manifest: dict[str, Any]) -> Section:
    """Runs per status and theory type of their point (budget hits flagged), and the points."""
    experiment = experiment_of(manifest)
    sec = Section("results", "Results: how the runs ended")
    n_runs, points = scan.count(), n_points(scan)
    add_incomplete_note(sec, points, manifest)
    got = scan.df(
        "SELECT status::VARCHAR AS status, coalesce(theory_type::VARCHAR, 'none') AS type, "
        "count(*) AS n FROM records GROUP BY ALL"
    )
    known = STATUSES[experiment]
    order = known + sorted(set(got["status"]) - set(known))
    counts = got.pivot_table(index="status", columns="type", values="n", aggfunc="sum",
                             fill_value=0).reindex(index=order, fill_value=0)  # fmt: skip
    counts = counts[[t for t in [*an.TYPES, "none"] if t in counts.columns]].astype("int64")
    counts["total"] = counts.sum(axis=1)
    counts.loc["total"] = counts.sum(axis=0)
    counts.index.name = "status ↓ / theory type of the point →"
    budget = int(got.loc[got["status"].isin(BUDGET), "n"].sum())
    first = scan.df(
        f"SELECT theory_type AS t, count(*) AS n, min(_order) AS o FROM {FIRST_ROWS} "
        "GROUP BY ALL ORDER BY o"
    )
    by_type = pd.Series(first["n"].to_numpy(np.int64), index=pd.Index(first["t"], name="theory_type"),
                        name="count").sort_values(ascending=False, kind="stable")  # fmt: skip
    by_type = by_type.rename_axis("theory type").rename("points").reset_index()
    sec.add(
        f'<p class="big">{n_runs} runs from {points} points; {budget} hit a budget '
        f"({budget / n_runs:.1%}).</p>",
        p(_STATUS_TEXT[experiment]),
        table(counts, index=True, scroll=False, flag=[s in BUDGET for s in counts.index]),
        p("The points (one each, whatever the number of runs), by theory type:"),
        table(by_type, scroll=False),
    )
    return sec


_STATUS_TEXT = {
    "escape": (
        "Each run starts at W* + delta ‖W*‖_F V. escaped: crossed the escape level "
        "L(W*) − f (L(W*) − c_next) and settled; escaped_budget: crossed it, then a budget "
        "ended the run before it settled; relaxed: a perturbed global minimizer, back at its "
        "value; budget: never crossed the level within the budget (gradient evaluations or "
        "flow time; a record, not an error); failed: non-finite loss or step underflow. "
        "Budget rows are highlighted."
    ),
    "small_init": (
        "Each run starts at W_h(0) = eps a G_h. global: settled at the global minimum value; "
        "settled: settled elsewhere; budget: a budget ended the run first (a record, not an "
        "error); failed: non-finite loss or step underflow. Budget rows are highlighted."
    ),
}


def _pick(scan: Scan, k: int) -> list[int]:
    """Up to ``k`` sample ids: the first point of each theory type present (saddles
    first), then the next ones in id order."""
    chosen: list[int] = []
    firsts = scan.df(
        f"SELECT theory_type AS t, arg_min(sample_id, _order) AS i FROM {FIRST_ROWS} GROUP BY ALL"
    )
    first = dict(zip(firsts["t"], firsts["i"], strict=True))
    for t in ["non_strict_saddle", "strict_saddle", "global_minimizer", *an.TYPES[3:]]:
        if t in first and len(chosen) < k:
            chosen.append(int(first[t]))
    ids = scan.df(f"SELECT sample_id FROM {FIRST_ROWS} ORDER BY _order LIMIT {2 * k}")
    for i in ids["sample_id"]:
        if len(chosen) >= k:
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    return sorted(chosen)


def curve_panels(df: pd.DataFrame, experiment: str, ids: list[int]) -> list:
    """The :class:`~mcland.report.dynamics_figures.CurvePanel` of each point of ``ids``
    (``df``: their records)."""
    size = "delta" if experiment == "escape" else "eps"
    panels = []
    for i in ids:
        g = df[df["sample_id"] == i]
        first = g.iloc[0]
        curves = [
            (
                f"{size} = {r[size]:.0e} ({r['status']})",
                np.asarray(r["t_curve"], float) / r["eta"],
                np.asarray(r["loss_curve"], float),
            )
            for _, r in g.iterrows()
        ]
        marks = {}
        if experiment == "escape":
            marks["L(W*)"] = float(first["loss_star"])
            if pd.notna(first["loss_escape"]):
                marks["escape level"] = float(first["loss_escape"])
        values = first["critical_values"]
        title = (
            f"point {i}: dims {fmt_tuple(first['dims'])}, S = {fmt_tuple(first['S'], True)}, "
            f"{first['theory_type']}"
        )
        panels.append(
            dynamics_figures.CurvePanel(
                title, curves, np.asarray([] if values is None else values, float), marks
            )
        )
    return panels


CURVE_COLUMNS = ["sample_id", "delta", "eps", "status", "t_curve", "eta", "loss_curve",
                 "loss_star", "loss_escape", "critical_values", "dims", "S", "theory_type"]  # fmt: skip


def curves_section(scan: Scan, out: Path, experiment: str) -> Section:
    """Loss curves of a few points, with their enumerated critical values as lines."""
    sec = Section("curves", "Loss curves and the staircase of critical values")
    ids = _pick(scan, MAX_CURVE_POINTS)
    rows = load(
        scan.run_dir,
        columns=[c for c in CURVE_COLUMNS if scan.has(c)],
        filters=[("sample_id", "in", ids)],
        verify="off",  # the scan checked the shards
    )
    dynamics_figures.loss_curves(curve_panels(rows, experiment, ids), out / "loss_curves.png")
    sec.add(
        p(
            f"Points {', '.join(map(str, ids))} (one of each theory type present, then the "
            "first ones): the loss stored at n_record log-spaced times (t_curve, loss_curve), "
            "time in units of the run's eta. Grey horizontal lines are the point's enumerated "
            "critical values {tr(Syy) − Σ_{i∈S} λ_i : |S| ≤ r} within the panel's range: "
            "a trajectory that lingers near a saddle runs along one of them."
        ),
        figure("loss_curves.png", "loss curves with critical values"),
    )
    return sec
