"""The sections of the report of an ``escape`` dynamics run: escape time against delta by
the point's theory type, and for strict saddles the escape rate against the curvature
``|eig_min_star|`` and the linearised prediction ``t_linear``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mcland.report import dynamics_figures
from mcland.report.html import Section, figure, p, table
from mcland.stats import median_interval

SADDLES = ("strict_saddle", "non_strict_saddle")


def sections(df: pd.DataFrame, out: Path) -> list[Section]:
    """The escape experiment's sections, in page order."""
    return [times_section(df, out), rates_section(df, out)]


def censored_steps(df: pd.DataFrame) -> np.ndarray:
    """``gd_steps`` of each run, ``+inf`` for a run that never crossed the escape level
    (status ``budget``: its time is beyond the budget), NaN for a failed run."""
    steps = df["gd_steps"].to_numpy(float).copy()
    status = df["status"].astype(str).to_numpy()
    steps[np.isnan(steps) & (status == "budget")] = np.inf
    return steps


def medians(df: pd.DataFrame) -> pd.DataFrame:
    """Per (theory type, delta) of the saddles' runs: runs, escaped, budget hits and the
    median escape time in plain-GD steps with its 95% interval (:func:`median_interval`).

    A run that hit the budget before escaping counts as an escape time of ``+inf``: the
    median stays exact while fewer than half the runs are censored (infinite otherwise),
    and an interval end beyond the budget is ``inf``.
    """
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
    return pd.DataFrame(
        rows, columns=["theory_type", "delta", "runs", "escaped", "budget", "median", "lo", "hi"]
    )


def times_section(df: pd.DataFrame, out: Path) -> Section:
    """Escape time against delta (log-log, by theory type), with the medians' table."""
    sec = Section("escape-times", "Escape time against the perturbation size")
    tidy = medians(df)
    mins = df[df["theory_type"].astype(str) == "global_minimizer"]
    back = int(mins["relaxed_back"].astype(bool).sum())
    if len(mins):
        sec.add(
            p(
                f"Global minimizers: {back} of {len(mins)} perturbed runs relaxed back to "
                "their own value (no escape time)."
            )
        )
    runs = df[df["theory_type"].astype(str).isin(SADDLES) & np.isfinite(df["gd_steps"])]
    if not len(tidy):
        sec.add(p("No saddle among the points: no escape time."))
        return sec
    drawn = tidy[np.isfinite(tidy["median"])].copy()
    drawn["hi"] = np.where(np.isfinite(drawn["hi"]), drawn["hi"], drawn["median"])
    if len(runs):
        dynamics_figures.escape_times(runs, drawn, out / "escape_times.png")
        plot = figure("escape_times.png", "escape time against delta")
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


def rates_section(df: pd.DataFrame, out: Path) -> Section:
    """Strict saddles: escape rate against |eig_min_star|, t_escape against t_linear."""
    sec = Section("escape-rates", "Strict saddles: escape rate against curvature")
    strict = df[
        (df["theory_type"].astype(str) == "strict_saddle")
        & np.isfinite(df["t_escape"])
        & np.isfinite(df["t_linear"])
        & (df["eig_min_star"] < 0)
    ]
    if not len(strict):
        sec.add(p("No strict saddle with an escape time."))
        return sec
    dynamics_figures.escape_rates(strict, out / "escape_rates.png")
    ratio = strict["t_escape"] / strict["t_linear"]
    rows = []
    for delta, r in ratio.groupby(strict["delta"], sort=True):
        med, lo, hi = median_interval(r.to_numpy())
        rows.append(
            {
                "delta": f"{delta:.0e}",
                "runs": len(r),
                "median t_escape / t_linear": med,
                "95% interval": f"[{lo:.3g}, {hi:.3g}]",
            }
        )
    sec.add(
        p(
            "The linearised flow leaves a saddle along the eigenvector of eig_min_star in "
            "time t_linear = ln(1/delta) / |eig_min_star| up to an additive constant, so the "
            "rate 1/t_escape should grow with |eig_min_star| and t_escape / t_linear tend to a "
            "constant as delta → 0. Colour: delta."
        ),
        figure("escape_rates.png", "escape rate against eig_min_star"),
        table(pd.DataFrame(rows), scroll=False, floatfmt="{:.3g}"),
    )
    return sec
