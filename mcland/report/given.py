"""The sections of the report of a ``classify`` run (given points, :mod:`mcland.classification`).

Counts numeric type x theory type and the fraction critical; the distance from each loss
to the nearest enumerated critical value; with ``--refine``, how far the refinement moved
the points and how often it converged; the observed critical values (all points share one
data set); the run's metadata.  The run is queried (:class:`~mcland.rundir.scan.Scan`), not
loaded: the histogram is binned batch by batch, the scatter draws the first
:data:`MAX_SCATTER` points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mcland import stats as an
from mcland.report import given_figures
from mcland.report.html import Section, esc, figure, p, table
from mcland.report.landscape import MAX_SCATTER
from mcland.report.sections import (
    add_incomplete_note,
    critical_values_section,
    fmt_tuple,
    metadata_section,
)
from mcland.rundir.scan import Scan

COLUMNS = [
    "row", "grad_rel", "nearest_critical_value", "nearest_critical_index",
    "nearest_critical_distance", "input_loss", "input_grad_rel", "refine_distance",
    "refine_distance_rel", "refine_converged",
]  # fmt: skip
FAR_LISTED = 20  # farthest points listed in the page
MATCH = 1.0  # a loss within MATCH * loss_tol of an enumerated value matches it


def sections(scan: Scan, out: Path) -> list[Section]:
    """All sections of a classify run's report, in page order."""
    manifest = scan.manifest
    secs = [counts_section(scan, manifest), nearest_section(scan, out)]
    if manifest.get("refine"):
        secs.append(refine_section(scan, out))
    secs.append(critical_values_section(scan, out, True))
    extra = (
        ("points SHA-256 (as read)", manifest.get("points_sha256")),
        ("refine", manifest.get("refine")),
        ("key column", manifest.get("key") or "none (row = input index)"),
    )
    secs.append(metadata_section(scan.run_dir, manifest, scan.count(), extra))
    return secs


def counts_section(scan: Scan, manifest: dict[str, Any]) -> Section:
    """Numeric type x theory type (with totals), the fraction critical and the agreement."""
    sec = Section("results", "Results: types of the given points")
    n = scan.count()
    add_incomplete_note(sec, n, manifest)
    crit = scan.count("is_critical")
    lo, hi = an.wilson_interval(crit, n)
    n_typed = scan.count(an.not_null(["theory_type", "numeric_type"]))
    dropped = n - n_typed
    conf = an.confusion(scan, "numeric_type", "theory_type")
    keep = an.TYPES[:3] + [t for t in an.TYPES[3:] if conf.loc[t].sum() or conf[t].sum()]
    counts = conf.loc[keep, keep]
    counts["total"] = counts.sum(axis=1)
    counts.loc["total"] = [*counts[keep].sum(axis=0), n_typed]
    counts.index.name = "numeric type ↓ / theory type →"
    agree = int(np.trace(conf.to_numpy()))
    refined = scan.has("refine_converged") and scan.count("refine_converged IS NOT NULL") > 0
    sec.add(
        f'<p class="big">Critical: {crit} of {n} points '
        f"({crit / n:.2%}, 95% Wilson interval [{float(lo):.2%}, {float(hi):.2%}]).</p>",
        p(
            "A point is critical when its relative gradient grad_rel is at most grad_rtol "
            "(docs/numerics.md); the others are not_critical whatever they are near (next "
            "section)." + (" The record columns describe the refined points." if refined else "")
        ),
        p(
            f"Rows: numeric type (loss and whitened Hessian spectrum); columns: theory type "
            f"(index set S and escape certificates). They agree on {agree} of {n_typed} "
            "points."
        ),
        table(counts, index=True, scroll=False),
    )
    if dropped:
        sec.add(p(f"{dropped} points without a theory or numeric type are left out of the table."))
    return sec


def _distance_histogram(scan: Scan, where: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The bin edges of :func:`~mcland.report.given_figures.nearest_distance` and the counts
    per numeric type, binned batch by batch (the same counts as one ``np.histogram``)."""
    top = max(
        1.0, float(scan.scalar(f"SELECT max(nearest_critical_distance) FROM records WHERE {where}"))
    )
    edges = given_figures.distance_edges(top)
    counts: dict[str, np.ndarray] = {}
    query = (
        "SELECT numeric_type::VARCHAR AS t, nearest_critical_distance AS d "
        f"FROM records WHERE {where}"
    )
    for batch in scan.batches(query):
        t = batch.column("t").to_numpy(zero_copy_only=False).astype(str)
        d = np.maximum(batch.column("d").to_numpy(), given_figures.DISTANCE_FLOOR)
        for name in np.unique(t):
            h, _ = np.histogram(d[t == name], bins=edges)
            counts[name] = counts.get(name, 0) + h
    return edges, counts


def nearest_section(scan: Scan, out: Path) -> Section:
    """Distance of each loss to the nearest enumerated critical value (histogram, table)."""
    sec = Section("nearest", "Distance to the nearest critical value")
    have = an.not_null(["nearest_critical_distance", "numeric_type"])
    n_have = scan.count(have)
    dropped = scan.count() - n_have
    if dropped:
        sec.add(p(f"{dropped} points without an enumerated set (d_y > 20) are left out."))
    if not n_have:
        sec.add(p("No point with a nearest critical value."))
        return sec
    edges, counts = _distance_histogram(scan, have)
    given_figures.nearest_distance(edges, counts, out / "nearest_distance.png")
    rows = []
    for label, mask in (
        ("critical", "is_critical"),
        ("not critical", "NOT is_critical"),
        ("all", "TRUE"),
    ):
        where = f"{have} AND ({mask})"
        size, within, top = scan.one(
            f"SELECT count(*), count(*) FILTER (nearest_critical_distance <= {MATCH!r}), "
            f"max(nearest_critical_distance) FROM records WHERE {where}"
        )
        med = scan.medians("nearest_critical_distance", where)["median"].iloc[0]
        rows.append(
            {
                "points": label,
                "count": int(size),
                f"within {MATCH:g} loss_tol": int(within),
                "median": float(med) if size else np.nan,
                "max": float(top) if size else np.nan,
            }
        )
    far = scan.df(
        "SELECT row, dims, loss, grad_rel, nearest_critical_index, nearest_critical_value, "
        "nearest_critical_distance, numeric_type::VARCHAR AS numeric_type FROM records "
        f"WHERE {have} ORDER BY nearest_critical_distance DESC, _order LIMIT {FAR_LISTED}"
    )
    listed = far.copy()
    listed["dims"] = listed["dims"].map(fmt_tuple)
    listed["numeric_type"] = listed["numeric_type"].astype(str)
    if scan.count("nearest_critical_index IS NULL"):  # as pandas reads a column with nulls
        listed["nearest_critical_index"] = listed["nearest_critical_index"].astype(float)
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


def refine_by_decade(df: pd.DataFrame | Scan, where: str = "TRUE") -> pd.DataFrame:
    """Converged fraction per decade of ``input_grad_rel`` (zero gradients in the lowest
    decade present), with 95% Wilson intervals.

    ``df``: records with ``input_grad_rel`` and ``refine_converged``, or a run (then the
    records satisfying ``where``, SQL, are binned batch by batch).

    Returns
    -------
    DataFrame
        ``decade`` (floor of log10), ``count`` (converged), ``total``, ``fraction``,
        ``lo``, ``hi``; ascending.
    """
    if isinstance(df, pd.DataFrame):
        g = df["input_grad_rel"].to_numpy(float)
        pos = g[g > 0]
        low = np.floor(np.log10(pos.min())) if pos.size else -16.0
        batches = [(g, df["refine_converged"].to_numpy(bool))]
    else:
        smallest = df.scalar(
            f"SELECT min(input_grad_rel) FILTER (input_grad_rel > 0) FROM records WHERE {where}"
        )
        low = np.floor(np.log10(smallest)) if smallest is not None else -16.0
        query = f"SELECT input_grad_rel, refine_converged FROM records WHERE {where}"
        batches = (
            (b.column(0).to_numpy().astype(float), b.column(1).to_numpy(zero_copy_only=False))
            for b in df.batches(query)
        )
    conv_by: dict[int, int] = {}
    total_by: dict[int, int] = {}
    for g, conv in batches:
        decade = np.where(g > 0, np.floor(np.log10(np.where(g > 0, g, 1.0))), low).astype(int)
        for k in np.unique(decade):
            sel = decade == k
            conv_by[int(k)] = conv_by.get(int(k), 0) + int(conv[sel].astype(bool).sum())
            total_by[int(k)] = total_by.get(int(k), 0) + int(sel.sum())
    keys = sorted(total_by)
    tidy = pd.DataFrame(
        {
            "decade": np.array(keys, dtype=int),
            "count": np.array([conv_by[k] for k in keys], dtype=np.int64),
            "total": np.array([total_by[k] for k in keys], dtype=np.int64),
        }
    )
    lo, hi = an.wilson_interval(tidy["count"].to_numpy(), tidy["total"].to_numpy())
    return tidy.assign(fraction=tidy["count"] / tidy["total"], lo=lo, hi=hi)


def refine_section(scan: Scan, out: Path) -> Section:
    """Distance moved against the input gradient, and the converged fraction."""
    sec = Section("refine", "Refinement to nearby critical points")
    have = an.not_null(["input_grad_rel", "refine_distance_rel", "refine_converged"])
    n_have = scan.count(have)
    dropped = scan.count() - n_have
    if dropped:
        sec.add(p(f"{dropped} points without refinement figures are left out."))
    if not n_have:
        sec.add(p("No refined point."))
        return sec
    tidy = refine_by_decade(scan, have)
    conv_n, moved_n = scan.one(
        "SELECT count(*) FILTER (refine_converged), count(*) FILTER (refine_distance > 0) "
        f"FROM records WHERE {have}"
    )
    drawn = scan.df(
        "SELECT input_grad_rel, refine_distance_rel, refine_converged FROM records "
        f"WHERE {have} ORDER BY _order LIMIT {MAX_SCATTER}"
    )
    given_figures.refine(drawn, tidy, out / "refine.png", counts=(conv_n, n_have - conv_n))
    shown = tidy.assign(**{"input_grad_rel ≥": tidy["decade"].map(lambda k: f"1e{k}")})[
        ["input_grad_rel ≥", "count", "total", "fraction", "lo", "hi"]
    ].rename(columns={"count": "converged", "total": "points"})
    sec.add(
        f'<p class="big">Converged: {conv_n} of {n_have} points; '
        f"{moved_n} moved, {n_have - moved_n} left as given "
        f"(grad_rel ≤ 1e-12).</p>",
        p(
            "Levenberg–Marquardt on the gradient (docs/classify.md) moves each point with "
            "grad_rel above 1e-12 to a critical point nearby; 'converged' means the refined "
            "point is critical within grad_rtol. The distance moved is ‖w_refined − w‖ over "
            "‖w‖ (flat weights)."
            + (
                f" The scatter draws the first {MAX_SCATTER:,} points by row."
                if n_have > MAX_SCATTER
                else ""
            )
        ),
        figure("refine.png", "refinement: distance moved and converged fraction"),
        table(shown, scroll=False, floatfmt="{:.3f}"),
    )
    n_bad = n_have - conv_n
    if n_bad:
        bad = scan.df(
            "SELECT row, dims, input_grad_rel, grad_rel, refine_distance_rel FROM records "
            f"WHERE {have} AND NOT refine_converged ORDER BY _order LIMIT 100"
        )
        bad["dims"] = bad["dims"].map(fmt_tuple)
        sec.add(
            p(esc("Points the refinement did not bring to a critical point:")),
            table(bad, floatfmt="{:.3e}", max_rows=100, total=n_bad),
        )
    return sec
