"""The sections of the report of a ``dynamics`` run (docs/dynamics.md): what is common to
both experiments (status counts, loss curves with the staircase of critical values, the
metadata) and the dispatch to :mod:`~mcland.report.escape` or
:mod:`~mcland.report.small_init`.

A dynamics run has one record per (point, delta) or (point, eps): the point's sample
record followed by the experiment's columns (:mod:`mcland.flow.schema`).
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


def sections(run_dir: Path, df: pd.DataFrame, manifest: dict[str, Any], out: Path) -> list[Section]:
    """All sections of a dynamics run's report, in page order."""
    experiment = experiment_of(manifest)
    secs = [status_section(df, manifest)]
    if experiment == "escape":
        secs += escape.sections(df, out)
    else:
        secs += small_init.sections(df, out)
    secs.append(curves_section(df, out, experiment))
    points = int(df["sample_id"].nunique())
    size = "delta" if experiment == "escape" else "eps"
    extra = (
        ("experiment", experiment),
        ("integrator", manifest["config"]["dynamics"].get("integrator", "explicit")),
        (f"records present (one per point and {size})", len(df)),
    )
    secs.append(metadata_section(run_dir, manifest, points, extra))
    return secs


def status_section(df: pd.DataFrame, manifest: dict[str, Any]) -> Section:
    """Runs per status and theory type of their point (budget hits flagged), and the points."""
    experiment = experiment_of(manifest)
    sec = Section("results", "Results: how the runs ended")
    points = df.drop_duplicates("sample_id")
    add_incomplete_note(sec, len(points), manifest)
    status = df["status"].astype(str)
    types = df["theory_type"].astype(str).where(df["theory_type"].notna(), "none")
    known = STATUSES[experiment]
    order = known + sorted(set(status) - set(known))
    counts = pd.crosstab(status, types).reindex(index=order, fill_value=0)
    counts = counts[[t for t in [*an.TYPES, "none"] if t in counts.columns]]
    counts["total"] = counts.sum(axis=1)
    counts.loc["total"] = counts.sum(axis=0)
    counts.index.name = "status ↓ / theory type of the point →"
    budget = int(status.isin(BUDGET).sum())
    by_type = points["theory_type"].astype(str).value_counts()
    by_type = by_type.rename_axis("theory type").rename("points").reset_index()
    sec.add(
        f'<p class="big">{len(df)} runs from {len(points)} points; {budget} hit a budget '
        f"({budget / len(df):.1%}).</p>",
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


def _pick(points: pd.DataFrame, k: int) -> list[int]:
    """Up to ``k`` sample ids: the first point of each theory type present (saddles
    first), then the next ones in id order."""
    chosen: list[int] = []
    types = points["theory_type"].astype(str)
    for t in ["non_strict_saddle", "strict_saddle", "global_minimizer", *an.TYPES[3:]]:
        ids = points.loc[(types == t).to_numpy(), "sample_id"]
        if len(ids) and len(chosen) < k:
            chosen.append(int(ids.iloc[0]))
    for i in points["sample_id"]:
        if len(chosen) >= k:
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    return sorted(chosen)


def curve_panels(df: pd.DataFrame, experiment: str, ids: list[int]) -> list:
    """The :class:`~mcland.report.dynamics_figures.CurvePanel` of each point of ``ids``."""
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


def curves_section(df: pd.DataFrame, out: Path, experiment: str) -> Section:
    """Loss curves of a few points, with their enumerated critical values as lines."""
    sec = Section("curves", "Loss curves and the staircase of critical values")
    ids = _pick(df.drop_duplicates("sample_id"), MAX_CURVE_POINTS)
    dynamics_figures.loss_curves(curve_panels(df, experiment, ids), out / "loss_curves.png")
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
