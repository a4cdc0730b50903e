"""Claim: at W = 0 with depth H >= 3 the escape time grows like delta^-(H-2).

Usage: python analysis/claim_escape_nonstrict.py RUN_DIR [--tables DIR] [--figures DIR]

RUN_DIR is a dynamics run of the ``escape`` experiment (``mcland dynamics``;
docs/dynamics.md), read one shard at a time (only the non-strict saddles' records are
kept). At a non-strict saddle the Hessian gives no exponential escape: the
flow leaves a ball of radius delta in a time polynomial in ``1/delta``. At ``W = 0`` the
lowest nonzero term of the loss around 0 is of order H in W, hence ``t_escape ~
delta^-(H-2)``.

What is measured: for every theory-non-strict saddle, the exponent ``p`` of the per-point
least-squares fit ``ln t_escape = c - p ln delta`` over the rows with ``delta <=
DELTA_MAX`` whose escape was timed (``t_escape`` not null), for points with at least
``MIN_DELTAS`` such rows; and the local exponent between the two smallest timed deltas
(``p_last``, closest to the small-delta limit). Points are grouped in strata: depth ``H``,
number of zero complement blocks ``n_kill`` (the sample record's), ``s = |S|``, and whether
``W = 0``. ``W = 0`` is read off the sample record: every single-layer rank ``rk W_{h:h}``
in ``ranks`` is 0 (as in ``claim_zero_nonstrict.py``; with ``s = 0`` and ``n_kill = H`` the
construction gives the same set, checked below). Per stratum: the mean ``p`` with a 95%
bootstrap interval over points, its range, and how many points had too few timed rows
(censored: the budget was hit first; their escape is slower than the budget).

Passes when, at every depth with at least ``MIN_POINTS`` fitted ``W = 0`` points, the 95%
interval of the mean ``p`` lies within ``H - 2 +- P_TOL``, and at least one depth has that
many. The other strata are reported next to the prediction ``p = n_kill - 2`` (measured
for ``S`` empty; derived for ``S`` non-empty in docs/theory.md §5, "Escape time from a
non-strict saddle of this family"), with whether the interval lies within ``P_TOL`` of it
and whether it contains it, not judged: a failed prediction is a result, not an error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mcland.stats import Verdict, claim_main, dynamics_not_applicable, reduce_dynamics

CLAIM = "non-strict saddles: t_escape ~ delta^-p, and p = H - 2 at W = 0"
EXPERIMENT = "escape"
COLUMNS = ["sample_id", "H", "s", "n_kill", "ranks", "theory_type", "numeric_type", "delta",
           "t_escape", "status", "t_end", "eta"]  # fmt: skip
DELTA_MAX = 1e-2  # rows with larger delta are outside the small-delta regime
MIN_DELTAS = 3  # timed rows per point needed for an exponent
MIN_POINTS = 5  # fitted W = 0 points per depth needed for a verdict at that depth
P_TOL = 0.05  # the exponent's 95% interval must lie within H - 2 +- P_TOL
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


def is_zero(ranks: object, H: int) -> bool:
    """Every single-layer rank ``rk W_{h:h}``, h = 1..H, of a ``ranks`` cell is 0."""
    r = np.asarray(ranks, dtype=int)
    return not r[[a * (a - 1) // 2 + a - 1 for a in range(1, H + 1)]].any()


def point_exponents(df: pd.DataFrame) -> pd.DataFrame:
    """Per-point exponents of ``t_escape ~ delta^-p``.

    Parameters
    ----------
    df : DataFrame
        Rows with ``sample_id``, ``H``, ``s``, ``n_kill``, ``W0``, ``delta``, ``t_escape``
        (restricted to the non-strict saddles and the fit range).

    Returns
    -------
    DataFrame
        One row per point: the stratum columns, ``n_timed`` (timed rows), ``p`` and
        ``p_last`` (NaN when fewer than ``MIN_DELTAS`` timed rows), ``rms`` (residual of
        ``ln t_escape``), ``steps_unescaped`` (the longest flow time, in units of ``eta``,
        reached by a row that did not escape: a lower bound on its escape time; NaN if
        none).
    """
    out = []
    for sid, g in df.groupby("sample_id", sort=True):
        first = g.iloc[0]
        key = (sid, int(first["H"]), int(first["n_kill"]), int(first["s"]), bool(first["W0"]))
        t = g.dropna(subset=["t_escape"]).sort_values("delta")
        p = p_last = rms = np.nan
        if len(t) >= MIN_DELTAS:
            x = np.log(t["delta"].to_numpy(float))
            y = np.log(t["t_escape"].to_numpy(float))
            slope, c = np.polyfit(x, y, 1)
            p, rms = -slope, float(np.sqrt(np.mean((y - slope * x - c) ** 2)))
            p_last = -(y[1] - y[0]) / (x[1] - x[0])
        u = g[g["t_escape"].isna()]
        steps = float((u["t_end"] / u["eta"]).max()) if len(u) else np.nan
        out.append((*key, len(t), p, p_last, rms, steps))
    cols = ["sample_id", "H", "n_kill", "s", "W0", "n_timed", "p", "p_last", "rms",
            "steps_unescaped"]  # fmt: skip
    return pd.DataFrame(out, columns=cols)


def stratum_table(pts: pd.DataFrame) -> pd.DataFrame:
    """Per stratum (H, n_kill, s, W0): fitted and censored points, mean p with its 95%
    bootstrap interval, range of p, mean p_last, and the prediction where there is one."""
    rng = np.random.default_rng(SEED)
    rows = []
    for (H, nk, s, w0), g in pts.groupby(["H", "n_kill", "s", "W0"], sort=True):
        p = g["p"].dropna().to_numpy(float)
        lo, hi = bootstrap_mean(p, rng) if len(p) else (np.nan, np.nan)
        rows.append((H, nk, s, w0, len(p), int(g["p"].isna().sum()),
                     float(p.mean()) if len(p) else np.nan, lo, hi,
                     float(p.min()) if len(p) else np.nan, float(p.max()) if len(p) else np.nan,
                     float(g["p_last"].mean()) if len(p) else np.nan,
                     H - 2 if w0 else nk - 2,
                     float(g.loc[g["p"].isna(), "steps_unescaped"].median())))  # fmt: skip
    cols = ["H", "n_kill", "s", "W0", "points", "censored", "p_mean", "ci_lo", "ci_hi", "p_min",
            "p_max", "p_last_mean", "predicted", "censored_steps_median"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def analyse(df: pd.DataFrame) -> tuple[Verdict, pd.DataFrame, pd.DataFrame]:
    """The verdict, the per-point exponents and the per-stratum table of an escape run."""
    v = Verdict(CLAIM)
    ns = df[df["theory_type"].astype(str) == "non_strict_saddle"].copy()
    ns["W0"] = [is_zero(rk, int(H)) for rk, H in zip(ns["ranks"], ns["H"], strict=True)]
    first = ns.drop_duplicates("sample_id")
    by_construction = (first["s"] == 0) & (first["n_kill"] == first["H"])
    v.note(
        f"{len(first)} theory-non-strict saddles "
        f"({int((first['numeric_type'].astype(str) == 'non_strict_saddle').sum())} non-strict by "
        f"the spectrum too), {int(first['W0'].sum())} of them W = 0; fit on delta <= {DELTA_MAX:g}"
    )
    v.require(bool((first["W0"] == by_construction).all()),
              f"W = 0 by the ranks agrees with s = 0 and n_kill = H on every point "
              f"({int((first['W0'] != by_construction).sum())} disagree)")  # fmt: skip
    rows = ns[ns["delta"] <= DELTA_MAX]
    bad = rows[rows["t_escape"].isna()]["status"].astype(str).value_counts()
    if len(bad):
        v.note(
            "rows in range without an escape time: " + ", ".join(f"{k} {n}" for k, n in bad.items())
        )
    late = rows[rows["t_escape"].notna() & (rows["status"].astype(str) == "failed")]
    if len(late):
        v.note(f"{len(late)} rows crossed the escape level, then failed (kept: the crossing time "
               "is measured before the failure)")  # fmt: skip
    pts = point_exponents(rows)
    table = stratum_table(pts)
    v.note("per stratum (H, n_kill, s): exponent p of t_escape ~ delta^-p, mean [95% bootstrap "
           "CI] (range), mean local exponent at the two smallest deltas, points with too few "
           "timed deltas (censored)")  # fmt: skip
    judged = 0
    for t in table.itertuples():
        head = f"H = {t.H}, n_kill = {t.n_kill}, s = {t.s}{' (W = 0)' if t.W0 else ''}"
        if t.points == 0:
            v.note(f"{head}: 0 points fitted, {t.censored} censored (no escape within a median "
                   f"{t.censored_steps_median:.3g} eta of flow time)")  # fmt: skip
            continue
        line = (f"{head}: {t.points} points, p = {t.p_mean:.4f} [{t.ci_lo:.4f}, {t.ci_hi:.4f}] "
                f"({t.p_min:.3f}..{t.p_max:.3f}), p_last {t.p_last_mean:.4f}; {t.censored} censored")  # fmt: skip
        if t.W0 and t.H >= 3 and t.points >= MIN_POINTS:
            judged += 1
            v.require(t.ci_lo >= t.H - 2 - P_TOL and t.ci_hi <= t.H - 2 + P_TOL,
                      line + f" (predicted H - 2 = {t.H - 2} +- {P_TOL})")  # fmt: skip
        elif t.W0:
            v.note(line + f" — predicted {t.H - 2}; fewer than {MIN_POINTS} points, not judged")
        else:
            kind = "S empty, W != 0" if t.s == 0 else "S non-empty, [derived]"
            v.note(line + f" — {kind}: predicted n_kill - 2 = {t.n_kill - 2}; " + _against(t))
    v.require(judged > 0, f"{judged} depths with at least {MIN_POINTS} fitted W = 0 points")
    return v, pts, table


def nonstrict_rows(run_dir: str) -> pd.DataFrame:
    """The records of the theory-non-strict saddles (all :func:`analyse` uses), read one
    shard at a time: the run is never loaded whole."""
    parts = reduce_dynamics(
        run_dir, EXPERIMENT, COLUMNS,
        lambda d: d[d["theory_type"].astype(str) == "non_strict_saddle"],
    )  # fmt: skip
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)


def _against(t) -> str:
    """How a stratum's interval stands against its prediction ``n_kill - 2`` (reported)."""
    pred = t.n_kill - 2
    within = t.ci_lo >= pred - P_TOL and t.ci_hi <= pred + P_TOL
    contains = t.ci_lo <= pred <= t.ci_hi
    return (f"CI {'within' if within else 'NOT within'} +-{P_TOL} of it, "
            f"{'contains' if contains else 'excludes'} it")  # fmt: skip


def check(run_dir: str, tables: Path | None = None, figures: Path | None = None) -> Verdict:
    """Check the claim on the escape records of ``run_dir``; with ``tables`` /
    ``figures``, write the CSV tables and the figure (PNG) there."""
    df = nonstrict_rows(run_dir)
    v, pts, table = analyse(df)
    if tables:
        tables.mkdir(parents=True, exist_ok=True)
        table.to_csv(tables / "escape_nonstrict_strata.csv", index=False, float_format="%.6g")
        pts.to_csv(tables / "escape_nonstrict_points.csv", index=False, float_format="%.6g")
    if figures and len(pts):
        figures.mkdir(parents=True, exist_ok=True)
        figure(df, pts, figures / "escape_nonstrict.png")
    return v


def figure(df: pd.DataFrame, pts: pd.DataFrame, path: Path) -> None:
    """t_escape against delta (log-log) at the W = 0 points, one colour per depth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    zero = pts[pts["W0"]]
    colours = {}
    for p in zero.itertuples():
        r = df[df["sample_id"] == p.sample_id].dropna(subset=["t_escape"])
        (line,) = ax.loglog(r["delta"], r["t_escape"], ".-", lw=0.5, ms=3, alpha=0.6,
                            color=colours.get(p.H), label=None if p.H in colours else f"H = {p.H}")  # fmt: skip
        colours.setdefault(p.H, line.get_color())
    ax.set_xlabel("delta")
    ax.set_ylabel("t_escape")
    ax.set_title("escape from W = 0 (slope -(H-2) expected)")
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
