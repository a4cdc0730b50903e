"""The sections of the report of a ``classify`` run (given points, :mod:`mcland.classification`).

Counts numeric type x theory type and the fraction critical; the distance from each loss
to the nearest enumerated critical value; with ``--refine``, how far the refinement moved
the points and how often it converged; the observed critical values (all points share one
data set); the run's metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mcland import stats as an
from mcland.report import given_figures
from mcland.report.html import Section, esc, figure, p, table
from mcland.report.sections import (
    add_incomplete_note,
    critical_values_section,
    fmt_tuple,
    metadata_section,
)

COLUMNS = [
    "row", "grad_rel", "nearest_critical_value", "nearest_critical_index",
    "nearest_critical_distance", "input_loss", "input_grad_rel", "refine_distance",
    "refine_distance_rel", "refine_converged",
]  # fmt: skip
FAR_LISTED = 20  # farthest points listed in the page
MATCH = 1.0  # a loss within MATCH * loss_tol of an enumerated value matches it


def sections(run_dir: Path, df: pd.DataFrame, manifest: dict[str, Any], out: Path) -> list[Section]:
    """All sections of a classify run's report, in page order."""
    secs = [counts_section(df, manifest), nearest_section(df, out)]
    if manifest.get("refine"):
        secs.append(refine_section(df, out))
    secs.append(critical_values_section(df, out, True))
    extra = (
        ("points SHA-256 (as read)", manifest.get("points_sha256")),
        ("refine", manifest.get("refine")),
        ("key column", manifest.get("key") or "none (row = input index)"),
    )
    secs.append(metadata_section(run_dir, manifest, len(df), extra))
    return secs


def counts_section(df: pd.DataFrame, manifest: dict[str, Any]) -> Section:
    """Numeric type x theory type (with totals), the fraction critical and the agreement."""
    sec = Section("results", "Results: types of the given points")
    add_incomplete_note(sec, len(df), manifest)
    crit = int(df["is_critical"].astype(bool).sum())
    lo, hi = an.wilson_interval(crit, len(df))
    typed, dropped = an.drop_null(df, ["theory_type", "numeric_type"])
    conf = an.confusion(typed, "numeric_type", "theory_type")
    keep = an.TYPES[:3] + [t for t in an.TYPES[3:] if conf.loc[t].sum() or conf[t].sum()]
    counts = conf.loc[keep, keep]
    counts["total"] = counts.sum(axis=1)
    counts.loc["total"] = [*counts[keep].sum(axis=0), len(typed)]
    counts.index.name = "numeric type ↓ / theory type →"
    agree = int(np.trace(conf.to_numpy()))
    refined = "refine_converged" in df and bool(df["refine_converged"].notna().any())
    sec.add(
        f'<p class="big">Critical: {crit} of {len(df)} points '
        f"({crit / len(df):.2%}, 95% Wilson interval [{float(lo):.2%}, {float(hi):.2%}]).</p>",
        p(
            "A point is critical when its relative gradient grad_rel is at most grad_rtol "
            "(docs/numerics.md); the others are not_critical whatever they are near (next "
            "section)." + (" The record columns describe the refined points." if refined else "")
        ),
        p(
            f"Rows: numeric type (loss and whitened Hessian spectrum); columns: theory type "
            f"(index set S and escape certificates). They agree on {agree} of {len(typed)} "
            "points."
        ),
        table(counts, index=True, scroll=False),
    )
    if dropped:
        sec.add(p(f"{dropped} points without a theory or numeric type are left out of the table."))
    return sec


def nearest_section(df: pd.DataFrame, out: Path) -> Section:
    """Distance of each loss to the nearest enumerated critical value (histogram, table)."""
    sec = Section("nearest", "Distance to the nearest critical value")
    have, dropped = an.drop_null(df, ["nearest_critical_distance", "numeric_type"])
    if dropped:
        sec.add(p(f"{dropped} points without an enumerated set (d_y > 20) are left out."))
    if not len(have):
        sec.add(p("No point with a nearest critical value."))
        return sec
    given_figures.nearest_distance(have, out / "nearest_distance.png")
    d = have["nearest_critical_distance"].to_numpy(float)
    crit = have["is_critical"].to_numpy(bool)
    rows = []
    for label, mask in (("critical", crit), ("not critical", ~crit), ("all", np.ones_like(crit))):
        x = d[mask]
        rows.append(
            {
                "points": label,
                "count": int(x.size),
                f"within {MATCH:g} loss_tol": int((x <= MATCH).sum()),
                "median": float(np.median(x)) if x.size else np.nan,
                "max": float(x.max()) if x.size else np.nan,
            }
        )
    far = have.sort_values("nearest_critical_distance", ascending=False).head(FAR_LISTED)
    listed = far[
        [
            "row",
            "dims",
            "loss",
            "grad_rel",
            "nearest_critical_index",
            "nearest_critical_value",
            "nearest_critical_distance",
            "numeric_type",
        ]
    ].copy()
    listed["dims"] = listed["dims"].map(fmt_tuple)
    listed["numeric_type"] = listed["numeric_type"].astype(str)
    sec.add(
        p(
            "Each loss against the ascending list of the enumerated critical values "
            "{tr(Syy) − Σ_{i∈S} λ_i : |S| ≤ r}: the nearest value, in units of the point's "
            "loss_tol. About 1 or less: the loss sits at that critical value; far above: the "
            "point is near none of them, whatever its gradient."
        ),
        figure("nearest_distance.png", "distance to the nearest critical value"),
        table(pd.DataFrame(rows), scroll=False, floatfmt="{:.3g}"),
        p(f"The {len(listed)} points farthest from every critical value:"),
        table(listed, floatfmt="{:.4g}"),
    )
    return sec


def refine_by_decade(df: pd.DataFrame) -> pd.DataFrame:
    """Converged fraction per decade of ``input_grad_rel`` (zero gradients in the lowest
    decade present), with 95% Wilson intervals.

    Returns
    -------
    DataFrame
        ``decade`` (floor of log10), ``count`` (converged), ``total``, ``fraction``,
        ``lo``, ``hi``; ascending.
    """
    g = df["input_grad_rel"].to_numpy(float)
    pos = g[g > 0]
    low = np.floor(np.log10(pos.min())) if pos.size else -16.0
    decade = np.where(g > 0, np.floor(np.log10(np.where(g > 0, g, 1.0))), low)
    conv = df["refine_converged"].to_numpy(bool)
    tidy = (
        pd.DataFrame({"decade": decade.astype(int), "conv": conv})
        .groupby("decade", sort=True)["conv"]
        .agg(count="sum", total="size")
        .reset_index()
    )
    lo, hi = an.wilson_interval(tidy["count"].to_numpy(), tidy["total"].to_numpy())
    return tidy.assign(fraction=tidy["count"] / tidy["total"], lo=lo, hi=hi)


def refine_section(df: pd.DataFrame, out: Path) -> Section:
    """Distance moved against the input gradient, and the converged fraction."""
    sec = Section("refine", "Refinement to nearby critical points")
    have, dropped = an.drop_null(df, ["input_grad_rel", "refine_distance_rel", "refine_converged"])
    if dropped:
        sec.add(p(f"{dropped} points without refinement figures are left out."))
    if not len(have):
        sec.add(p("No refined point."))
        return sec
    tidy = refine_by_decade(have)
    given_figures.refine(have, tidy, out / "refine.png")
    conv = have["refine_converged"].to_numpy(bool)
    moved = have["refine_distance"].to_numpy(float) > 0
    shown = tidy.assign(**{"input_grad_rel ≥": tidy["decade"].map(lambda k: f"1e{k}")})[
        ["input_grad_rel ≥", "count", "total", "fraction", "lo", "hi"]
    ].rename(columns={"count": "converged", "total": "points"})
    sec.add(
        f'<p class="big">Converged: {int(conv.sum())} of {len(have)} points; '
        f"{int(moved.sum())} moved, {int((~moved).sum())} left as given "
        f"(grad_rel ≤ 1e-12).</p>",
        p(
            "Levenberg–Marquardt on the gradient (docs/classify.md) moves each point with "
            "grad_rel above 1e-12 to a critical point nearby; 'converged' means the refined "
            "point is critical within grad_rtol. The distance moved is ‖w_refined − w‖ over "
            "‖w‖ (flat weights)."
        ),
        figure("refine.png", "refinement: distance moved and converged fraction"),
        table(shown, scroll=False, floatfmt="{:.3f}"),
    )
    if (~conv).any():
        bad = have.loc[
            ~conv, ["row", "dims", "input_grad_rel", "grad_rel", "refine_distance_rel"]
        ].copy()
        bad["dims"] = bad["dims"].map(fmt_tuple)
        sec.add(
            p(esc("Points the refinement did not bring to a critical point:")),
            table(bad, floatfmt="{:.3e}", max_rows=100),
        )
    return sec
