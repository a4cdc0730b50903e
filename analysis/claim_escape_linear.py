"""Claim: near a strict saddle, the escape time grows like ln(1/delta) / |eig_min|.

Usage: python analysis/claim_escape_linear.py RUN_DIR [--tables DIR] [--figures DIR]

RUN_DIR is a dynamics run of the ``escape`` experiment (``mcland dynamics``;
docs/dynamics.md), read one shard at a time (only the strict saddles' scalar columns are
kept). Linearised at a strict saddle ``W*``, a perturbation of size delta grows
like ``delta exp(|eig_min| t)`` along the Hessian's most negative direction (original
coordinates, ``eig_min_star``), so the time to reach a fixed loss drop is

    t_escape = ln(1/delta) / |eig_min_star| + c_point,

``c_point`` depending on the point, its direction ``V`` and the escape level, not on delta.

What is measured: for every theory-strict saddle with ``eig_min_star < 0``, the per-point
least-squares slope ``b`` of ``|eig_min_star| t_escape`` against ``ln(1/delta)`` over the
rows with ``delta <= DELTA_MAX`` (the linear regime) whose escape was timed (``t_escape``
not null), for points with at least ``MIN_DELTAS`` such rows; the prediction is ``b = 1``.
Per depth H: the mean of ``b`` over points with a 95% bootstrap interval (resampling
points), the median and interquartile range of ``b`` (the scatter between points), and the
root-mean-square residual of the per-point fits in units of ``1/|eig_min_star|`` (the
scatter about the straight line within a point), the points whose slope is more than 10%
off, and the mean local slope between each point's two smallest timed deltas (closest to
the linear regime). Rows whose escape was not timed (budget)
are counted, not fitted.

Passes when, at every depth with at least ``MIN_POINTS`` fitted points, the 95% interval
of the mean slope lies within ``1 +- SLOPE_TOL``, and at least one depth has that many.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mcland.stats import Verdict, claim_main, dynamics_not_applicable, reduce_dynamics

CLAIM = "strict saddles: t_escape = ln(1/delta) / |eig_min| + const (slope 1)"
EXPERIMENT = "escape"
COLUMNS = ["sample_id", "H", "theory_type", "numeric_type", "delta", "t_escape",
           "eig_min_star", "status"]  # fmt: skip
DELTA_MAX = 1e-2  # rows with larger delta are outside the linear regime
MIN_DELTAS = 3  # timed rows per point needed for a slope
MIN_POINTS = 5  # fitted points per depth needed for a verdict at that depth
SLOPE_TOL = 0.05  # the slope's 95% interval must lie within 1 +- SLOPE_TOL
N_BOOT = 2000
SEED = 20210728


def not_applicable(run_dir: str) -> str | None:
    """Why this claim does not apply to ``run_dir`` (None when it does)."""
    return dynamics_not_applicable(run_dir, EXPERIMENT)


def bootstrap_mean(x: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of ``x`` (resampling its entries)."""
    idx = rng.integers(0, len(x), size=(N_BOOT, len(x)))
    lo, hi = np.quantile(x[idx].mean(axis=1), [0.025, 0.975])
    return float(lo), float(hi)


def point_slopes(df: pd.DataFrame) -> pd.DataFrame:
    """Per-point fits of ``|eig_min_star| t_escape`` against ``ln(1/delta)``.

    Parameters
    ----------
    df : DataFrame
        Rows of one experiment with ``sample_id``, ``H``, ``delta``, ``t_escape``,
        ``eig_min_star`` (already restricted to the strict saddles and the fit range).

    Returns
    -------
    DataFrame
        One row per point with at least ``MIN_DELTAS`` timed rows: ``sample_id``, ``H``,
        ``eig_min_star``, ``n_deltas``, ``slope``, ``slope_last`` (between the two smallest
        timed deltas), ``intercept`` (units ``1/|eig|``), ``rms`` (residual, same units).
    """
    out = []
    for sid, g in df.dropna(subset=["t_escape"]).groupby("sample_id", sort=True):
        if len(g) < MIN_DELTAS:
            continue
        lam = abs(float(g["eig_min_star"].iloc[0]))
        g = g.sort_values("delta", ascending=False)
        x = np.log(1.0 / g["delta"].to_numpy(float))
        y = lam * g["t_escape"].to_numpy(float)
        slope, intercept = np.polyfit(x, y, 1)
        rms = float(np.sqrt(np.mean((y - (slope * x + intercept)) ** 2)))
        last = (y[-1] - y[-2]) / (x[-1] - x[-2])
        out.append((sid, int(g["H"].iloc[0]), -lam, len(g), slope, last, intercept, rms))
    cols = ["sample_id", "H", "eig_min_star", "n_deltas", "slope", "slope_last", "intercept",
            "rms"]  # fmt: skip
    return pd.DataFrame(out, columns=cols)


def depth_table(fits: pd.DataFrame, censored: pd.Series) -> pd.DataFrame:
    """Per depth: points fitted, censored points, mean slope and its 95% bootstrap
    interval, median and quartiles of the slopes, median residual."""
    rng = np.random.default_rng(SEED)
    rows = []
    for H in sorted(set(fits["H"]) | set(censored.index)):
        b = fits.loc[fits["H"] == H, "slope"].to_numpy(float)
        lo, hi = bootstrap_mean(b, rng) if len(b) else (np.nan, np.nan)
        q = np.quantile(b, [0.25, 0.5, 0.75]) if len(b) else [np.nan] * 3
        rms = float(np.median(fits.loc[fits["H"] == H, "rms"])) if len(b) else np.nan
        bl = fits.loc[fits["H"] == H, "slope_last"].to_numpy(float)
        llo, lhi = bootstrap_mean(bl, rng) if len(bl) else (np.nan, np.nan)
        far = int(np.sum(np.abs(b - 1) > 0.1))
        rows.append((H, len(b), int(censored.get(H, 0)), float(np.mean(b)) if len(b) else np.nan,
                     lo, hi, q[0], q[1], q[2], rms, far,
                     float(np.mean(bl)) if len(bl) else np.nan, llo, lhi))  # fmt: skip
    cols = ["H", "points", "censored_rows", "slope_mean", "ci_lo", "ci_hi", "slope_q25",
            "slope_median", "slope_q75", "rms_median", "points_off_10pct", "slope_last_mean",
            "last_ci_lo", "last_ci_hi"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def analyse(df: pd.DataFrame) -> tuple[Verdict, pd.DataFrame, pd.DataFrame]:
    """The verdict, the per-point fits and the per-depth table from an escape run's rows."""
    v = Verdict(CLAIM)
    strict = df[df["theory_type"].astype(str) == "strict_saddle"]
    pts = strict.drop_duplicates("sample_id")
    v.note(
        f"{len(pts)} theory-strict saddles ({int((pts['numeric_type'].astype(str) == 'strict_saddle').sum())} "
        f"strict by the spectrum too), {len(strict)} rows; fit on delta <= {DELTA_MAX:g}"
    )
    flat = strict["eig_min_star"] >= 0
    if flat.any():
        v.note(f"{strict.loc[flat, 'sample_id'].nunique()} of them have eig_min_star >= 0 "
               "(no negative original-coordinate eigenvalue): not fitted")  # fmt: skip
    rows = strict[~flat & (strict["delta"] <= DELTA_MAX)]
    untimed = rows[rows["t_escape"].isna()]
    censored = untimed.groupby("H").size()
    if len(untimed):
        v.note(f"{len(untimed)} rows in range never crossed the escape level (status "
               f"{', '.join(f'{k} {n}' for k, n in untimed['status'].astype(str).value_counts().items())}): "
               "not fitted (censored)")  # fmt: skip
    fits = point_slopes(rows)
    table = depth_table(fits, censored)
    v.note("per depth: slope b of |eig_min| t_escape against ln(1/delta) (prediction 1); "
           "mean [95% bootstrap CI], median (IQR), residual rms in 1/|eig_min| units")  # fmt: skip
    judged = 0
    for t in table.itertuples():
        line = (f"H = {t.H}: {t.points} points, b = {t.slope_mean:.4f} [{t.ci_lo:.4f}, {t.ci_hi:.4f}], "
                f"median {t.slope_median:.4f} ({t.slope_q25:.4f}-{t.slope_q75:.4f}), rms {t.rms_median:.3g}"
                f"; {t.points_off_10pct} points with |b - 1| > 0.1; local slope at the two smallest "
                f"deltas {t.slope_last_mean:.4f} [{t.last_ci_lo:.4f}, {t.last_ci_hi:.4f}]"
                f"; {t.censored_rows} censored rows")  # fmt: skip
        if t.points >= MIN_POINTS:
            judged += 1
            v.require(t.ci_lo >= 1 - SLOPE_TOL and t.ci_hi <= 1 + SLOPE_TOL,
                      line + f" (interval within 1 +- {SLOPE_TOL})")  # fmt: skip
        else:
            v.note(line + f" — fewer than {MIN_POINTS} points, not judged")
    v.require(judged > 0, f"{judged} depths with at least {MIN_POINTS} fitted points")
    return v, fits, table


def strict_rows(run_dir: str) -> pd.DataFrame:
    """The records of the theory-strict saddles (all :func:`analyse` uses), read one
    shard at a time: the run is never loaded whole."""
    parts = reduce_dynamics(
        run_dir, EXPERIMENT, COLUMNS, lambda d: d[d["theory_type"].astype(str) == "strict_saddle"]
    )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)


def check(run_dir: str, tables: Path | None = None, figures: Path | None = None) -> Verdict:
    """Check the claim on the escape records of ``run_dir``; with ``tables`` /
    ``figures``, write the CSV tables and the figure (PNG) there."""
    df = strict_rows(run_dir)
    v, fits, table = analyse(df)
    if tables:
        tables.mkdir(parents=True, exist_ok=True)
        table.to_csv(tables / "escape_linear_depths.csv", index=False, float_format="%.6g")
        fits.to_csv(tables / "escape_linear_points.csv", index=False, float_format="%.6g")
    if figures and len(fits):
        figures.mkdir(parents=True, exist_ok=True)
        figure(fits, df, figures / "escape_linear.png")
    return v


def figure(fits: pd.DataFrame, df: pd.DataFrame, path: Path) -> None:
    """|eig_min| t_escape minus each point's intercept against ln(1/delta), by depth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    strict = df[(df["theory_type"].astype(str) == "strict_saddle") & (df["delta"] <= DELTA_MAX)]
    for H, g in fits.groupby("H"):
        xs, ys = [], []
        for p in g.itertuples():
            r = strict[(strict["sample_id"] == p.sample_id)].dropna(subset=["t_escape"])
            xs.append(np.log(1 / r["delta"].to_numpy(float)))
            ys.append(abs(p.eig_min_star) * r["t_escape"].to_numpy(float) - p.intercept)
        ax.plot(np.concatenate(xs), np.concatenate(ys), ".", ms=3, alpha=0.5, label=f"H = {H}")
    x = np.linspace(0, np.log(1 / strict["delta"].min()), 2)
    ax.plot(x, x, "k-", lw=1, label="slope 1")
    ax.set_xlabel("ln(1/delta)")
    ax.set_ylabel("|eig_min| t_escape - intercept of the point")
    ax.set_title("escape from strict saddles")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> int:
    """Run the check on ``argv = [RUN_DIR, --tables DIR, --figures DIR]``; return the exit
    status."""
    return claim_main(check, argv, __doc__, outputs=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
