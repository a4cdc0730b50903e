"""The sections of the report of an ``escape`` dynamics run: escape time against delta by
the point's theory type, and for strict saddles the escape rate against the curvature
``|eig_min_star|`` and the linearised prediction ``t_linear``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mcland.report import dynamics_figures
from mcland.report.html import Section, figure, p, table
from mcland.report.landscape import MAX_SCATTER
from mcland.rundir.scan import Scan
from mcland.stats import median_interval, median_intervals

SADDLES = ("strict_saddle", "non_strict_saddle")


def sections(scan: Scan, out: Path) -> list[Section]:
    """The escape experiment's sections, in page order."""
    return [times_section(scan, out), rates_section(scan, out)]


SADDLE_ROWS = f"theory_type::VARCHAR IN {tuple(SADDLES)!r}"
STEPS = (
    "CASE WHEN gd_steps IS NULL OR isnan(gd_steps) THEN "
    "(CASE WHEN status = 'budget' THEN 'inf'::DOUBLE END) ELSE gd_steps END"
)
"""SQL of :func:`censored_steps`: ``gd_steps``, ``+inf`` for a budget run without an escape
time, null (left out) for a failed one."""


def censored_steps(df: pd.DataFrame) -> np.ndarray:
    """``gd_steps`` of each run, ``+inf`` for a run that never crossed the escape level
    (status ``budget``: its time is beyond the budget), NaN for a failed run."""
    steps = df["gd_steps"].to_numpy(float).copy()
    status = df["status"].astype(str).to_numpy()
    steps[np.isnan(steps) & (status == "budget")] = np.inf
    return steps


def medians(df: pd.DataFrame | Scan) -> pd.DataFrame:
    """Per (theory type, delta) of the saddles' runs: runs, escaped, budget hits and the
    median escape time in plain-GD steps with its 95% interval (:func:`median_interval`).

    A run that hit the budget before escaping counts as an escape time of ``+inf``: the
    median stays exact while fewer than half the runs are censored (infinite otherwise),
    and an interval end beyond the budget is ``inf``.  ``df``: the records, or a run
    (exact order statistics in DuckDB).
    """
    cols = ["theory_type", "delta", "runs", "escaped", "budget", "median", "lo", "hi"]
    if isinstance(df, Scan):
        by = ["theory_type::VARCHAR", "delta"]
        counts = df.df(
            f"SELECT theory_type::VARCHAR AS g0, delta AS g1, count(*) AS runs, "
            f"count(*) FILTER (isfinite({STEPS})) AS escaped, "
            f"count(*) FILTER (isinf({STEPS})) AS budget FROM records WHERE {SADDLE_ROWS} "
            "GROUP BY ALL ORDER BY ALL"
        )
        med = median_intervals(df, STEPS, SADDLE_ROWS, by)
        got = counts.merge(med.drop(columns=["n"]), on=["g0", "g1"], how="left")
        got = got.rename(columns={"g0": "theory_type", "g1": "delta"})
        return pd.DataFrame(
            [
                {
                    "theory_type": r.theory_type,
                    "delta": float(r.delta),
                    "runs": int(r.runs),
                    "escaped": int(r.escaped),
                    "budget": int(r.budget),
                    "median": float(r.median),
                    "lo": float(r.lo),
                    "hi": float(r.hi),
                }
                for r in got.itertuples(index=False)
            ],
            columns=cols,
        )
    rows = []
    saddles = df[df["theory_type"].astype(str).isin(SADDLES)]
    steps = censored_steps(saddles)
    for (t, delta), idx in saddles.groupby(
        [saddles["theory_type"].astype(str), "delta"], sort=True
    ).indices.items():
        x = steps[idx]
        x = x[~np.isnan(x)]
        med, lo, hi = median_interval(x)
        rows.append(
            {
                "theory_type": t,
                "delta": delta,
                "runs": len(idx),
                "escaped": int(np.isfinite(x).sum()),
                "budget": int(np.isinf(x).sum()),
                "median": med,
                "lo": lo,
                "hi": hi,
            }
        )
    return pd.DataFrame(rows, columns=cols)


def times_section(scan: Scan, out: Path) -> Section:
    """Escape time against delta (log-log, by theory type), with the medians' table."""
    sec = Section("escape-times", "Escape time against the perturbation size")
    tidy = medians(scan)
    mins = "theory_type = 'global_minimizer'"
    back, n_mins = scan.one(
        f"SELECT count(*) FILTER (relaxed_back), count(*) FROM records WHERE {mins}"
    )
    if n_mins:
        sec.add(
            p(
                f"Global minimizers: {back} of {n_mins} perturbed runs relaxed back to "
                "their own value (no escape time)."
            )
        )
    finite = f"{SADDLE_ROWS} AND isfinite(gd_steps)"
    n_runs = scan.count(finite)
    if not len(tidy):
        sec.add(p("No saddle among the points: no escape time."))
        return sec
    drawn = tidy[np.isfinite(tidy["median"])].copy()
    drawn["hi"] = np.where(np.isfinite(drawn["hi"]), drawn["hi"], drawn["median"])
    if n_runs:
        runs = scan.df(
            "SELECT theory_type::VARCHAR AS theory_type, delta, gd_steps FROM records "
            f"WHERE {finite} ORDER BY _order LIMIT {MAX_SCATTER}"
        )
        dynamics_figures.escape_times(runs, drawn, out / "escape_times.png")
        plot = figure("escape_times.png", "escape time against delta")
        if n_runs > MAX_SCATTER:
            plot += p(f"Faint dots: the first {MAX_SCATTER:,} of the {n_runs:,} escaped runs.")
    else:
        plot = p("No saddle's run escaped within the budget: no figure.")
    shown = tidy.assign(
        median=tidy["median"].map(_steps),
        interval=[
            f"[{_steps(a)}, {_steps(b)}]" for a, b in zip(tidy["lo"], tidy["hi"], strict=True)
        ],
    ).drop(columns=["lo", "hi"])
    sec.add(
        p(
            "t_escape is the first flow time with L ≤ L(W*) − f (L(W*) − c_next); shown as "
            "t_escape / eta, plain-GD steps at the stable rate 1/λ_max(∇²L(W*)). Linearised "
            "theory: at a strict saddle t_escape grows like ln(1/delta) / |eig_min|; at a "
            "non-strict saddle polynomially in 1/delta (at W = 0 like delta^−(H−2)). Faint "
            "dots are runs; bold, the median per delta with a distribution-free 95% interval "
            "(order statistics; the range for 5 runs or fewer). Runs that hit the budget "
            "before escaping count as +∞ (a medians table entry of ∞ means half or more did)."
        ),
        plot,
        table(shown, scroll=False, floatfmt="{:.0e}"),
    )
    return sec


def _steps(x: float) -> str:
    """A GD-step count for the tables: 4 significant digits, ``∞`` beyond the budget."""
    if np.isnan(x):
        return ""
    return "∞ (budget)" if np.isinf(x) else f"{x:.4g}"


def rates_section(scan: Scan, out: Path) -> Section:
    """Strict saddles: escape rate against |eig_min_star|, t_escape against t_linear."""
    sec = Section("escape-rates", "Strict saddles: escape rate against curvature")
    strict = (
        "theory_type = 'strict_saddle' AND isfinite(t_escape) AND isfinite(t_linear) "
        "AND eig_min_star < 0"
    )
    n = scan.count(strict)
    if not n:
        sec.add(p("No strict saddle with an escape time."))
        return sec
    drawn = scan.df(
        "SELECT delta, t_escape, t_linear, eig_min_star FROM records "
        f"WHERE {strict} ORDER BY _order LIMIT {MAX_SCATTER}"
    )
    d_lo, d_hi, t_lo, t_hi = scan.one(
        "SELECT min(delta), max(delta), "
        "least(min(t_linear) FILTER (t_linear > 0), min(t_escape) FILTER (t_escape > 0)), "
        "greatest(max(t_linear) FILTER (t_linear > 0), max(t_escape) FILTER (t_escape > 0)) "
        f"FROM records WHERE {strict}"
    )
    dynamics_figures.escape_rates(
        drawn, out / "escape_rates.png", deltas=(d_lo, d_hi), times=(t_lo, t_hi)
    )
    med = median_intervals(scan, "t_escape / t_linear", strict, ["delta"])
    rows = [
        {
            "delta": f"{delta:.0e}",
            "runs": int(k),
            "median t_escape / t_linear": m,
            "95% interval": f"[{lo:.3g}, {hi:.3g}]",
        }
        for delta, k, m, lo, hi in zip(med["g0"], med["n"], med["median"], med["lo"], med["hi"], strict=True)
    ]  # fmt: skip
    sampled = (
        f" The scatter draws the first {MAX_SCATTER:,} of {n:,} runs." if n > MAX_SCATTER else ""
    )
    sec.add(
        p(
            "The linearised flow leaves a saddle along the eigenvector of eig_min_star in "
            "time t_linear = ln(1/delta) / |eig_min_star| up to an additive constant, so the "
            "rate 1/t_escape should grow with |eig_min_star| and t_escape / t_linear tend to a "
            "constant as delta → 0. Colour: delta." + sampled
        ),
        figure("escape_rates.png", "escape rate against eig_min_star"),
        table(pd.DataFrame(rows), scroll=False, floatfmt="{:.3g}"),
    )
    return sec
