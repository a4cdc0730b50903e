"""Claim: from a small initialisation, gradient flow visits the saddles S = {}, {1}, {1,2},
... in order, each plateau sits at an enumerated critical value, and the plateaus last
~ ln(1/eps) at depth 2 and ~ eps^-(H-2) at depth H >= 3.

Usage: python analysis/claim_small_init.py RUN_DIR [--tables DIR] [--figures DIR]

RUN_DIR is a dynamics run of the ``small_init`` experiment (``mcland dynamics``;
docs/dynamics.md), read one shard at a time: each shard is reduced to its plateaus, first
drops and a few scalar columns before the next is read (the loss curves are not kept).
The runs: ``W_h(0) = eps a G_h``, plateaus detected on a log-spaced time grid by
``t ||grad L||^2 <= plateau_threshold lambda_r``, ``S`` read off each plateau's point of
smallest gradient. Four parts, each measured on the rows with ``eps <= EPS_SMALL`` (the
small-initialisation regime; larger eps are tabulated for contrast):

1. **Order.** The saddles the flow visited — ``visited_S``: the sets of the visits where
   the flow dwelt (``t ||grad L||^2 <= plateau_threshold lambda_r`` somewhere inside:
   slowed down near a critical point), then the final S, consecutive repeats merged; a
   *transit*, a set the reading ``S(t) = {i : z_i > 1/2}`` passes during a fast drop, is
   not a visit of a saddle (its ``z_i`` need not be monotone there) — form a *staircase*
   when every entry is a top set ``[k] = {1..k}`` and k increases; *complete* when k
   increases by one each time from ``[]``. Fractions with Wilson intervals, per depth;
   rows that hit the budget are included (their last S is read mid-run). A staircase with
   skips is a row where the flow learned two or more modes in one drop without dwelling at
   the set between (at depth 2 the time between the drops of modes k and k+1 grows like
   ``ln(1/eps)`` times the relative gap of ``lambda_k / lambda_{k+1}``, so close
   eigenvalues merge drops at moderate eps): reported per eps with the median eigenvalue
   ratio at the skipped and at the dwelt steps, and whether the transits passed the
   skipped sets in order. Reported beside it, not judged: every visit, transits included.
   Runs of 0.8.0 (``visited_S`` = every visit, no ``visits.dwell``): the dwelt sets are
   the plateaus; runs up to 0.7 (no ``visits``): ``visited_S`` as stored.
2. **Plateau values.** The distance from each plateau's loss to the nearest enumerated
   critical value, in units of the range of the point's critical values (``tr(Syy) - L* =
   lambda_1 + ... + lambda_r``): a match is ``<= MATCH_TOL``. Also shown in units of the
   smallest gap between two distinct critical values (near-degenerate ``lambda_i`` make
   it tiny) and of ``loss_tol`` (the record's ``dist_tol``: large, since a plateau is near
   a saddle, not at it).
3. **Type of the visited saddles, by the local spectrum.** The Hessian's smallest
   eigenvalue at each plateau point, ``eig_min``, per (point, plateau S) across eps: the
   exponent ``q`` of ``|eig_min| ~ eps^q``. A strict saddle keeps a negative curvature as
   eps -> 0 (``q ~ 0``); near a non-strict one it vanishes (``q > 0``). The theory
   (docs/theory.md §3) says: depth 2, every saddle is strict; depth >= 3, the saddles of
   the small-initialisation path (``S = [k]``, every complement block zero) are
   non-strict — the only pair with ``G != 0`` is ``(1, H)`` and its middle product has the
   rank ``k`` of the outer ones.
4. **Durations.** The first plateau (``S = []``, from ``t = 0``) ends at ``t_1(eps)``,
   as detected (``t_end``), and, independently of the plateau detector, the first drop
   ``t_drop``: the first time of the stored loss curve at which the loss is below
   ``c_max - (c_max - c_2) / 2``, ``c_max = tr(Syy)`` the largest critical value (``S =
   []``) and ``c_2 = tr(Syy) - lambda_1`` the next one (``S = {1}``).
   Only eps <= EPS_SMALL enter the fits. Depth 2: per point, least squares ``t_1 = a + b ln(1/eps)`` and its R^2. Depth H >= 3:
   per point, the exponent ``q`` of ``t_1 ~ eps^-q`` (prediction ``H - 2``). Means over
   points with 95% bootstrap intervals. The durations ``t_end - t_start`` of the later
   plateaus are tabulated the same way.

Passes when (1) every small-eps row is a staircase (the issue 22 target, a complete
staircase in at least ``COMPLETE_MIN`` of the rows at every depth, is reported, not judged), (2) every plateau of the small-eps rows
matches a critical value, (4) for both ``t_end`` and ``t_drop``: at depth 2 the median R^2
is at least ``R2_MIN`` and at each depth H >= 3 with at least ``MIN_POINTS`` points the 95%
interval of the mean exponent lies within ``H - 2 +- Q_TOL``. Part (3) is reported, not
judged.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mcland.core.config import Dynamics
from mcland.rundir.files import read_manifest
from mcland.stats import (
    Verdict,
    claim_main,
    dynamics_not_applicable,
    reduce_dynamics,
    wilson_interval,
)

CLAIM = "small init: staircase S = [], [1], [1,2], ... at critical values; durations"
EXPERIMENT = "small_init"
COLUMNS = ["sample_id", "H", "r", "d_y", "eps", "status", "visited_S", "plateaus",
           "critical_values", "t_curve", "loss_curve"]  # fmt: skip
EPS_SMALL = 1e-2  # rows with eps <= EPS_SMALL are judged
COMPLETE_MIN = 0.95  # issue 22's target for the fraction of complete staircases per depth
MATCH_TOL = 1e-3  # a plateau matches a value within MATCH_TOL x the range of the values
MIN_EPS = 3  # plateaus (eps values) per point needed for a duration fit
MIN_POINTS = 5  # fitted points per depth needed for a verdict at that depth
Q_TOL = 0.1  # depth >= 3: the exponent's 95% interval must lie within H - 2 +- Q_TOL
R2_MIN = 0.99  # depth 2: median R^2 of the ln(1/eps) fits
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


def top_size(S: object) -> int | None:
    """``k`` when ``S`` is the top set ``[k] = {1..k}``, else None."""
    s = [int(i) for i in S]
    return len(s) if s == list(range(1, len(s) + 1)) else None


def merged(sets: object) -> list[list[int]]:
    """``sets`` sorted, consecutive repeats merged."""
    out: list[list[int]] = []
    for S in sets:
        S = sorted(int(i) for i in S)
        if not out or out[-1] != S:
            out.append(S)
    return out


def dwelt_sets(visits: object, threshold: float) -> list[list[int]]:
    """The S of the visits where the flow dwelt (``rate_min <= threshold``, the run's
    ``plateau_threshold``), then the last visit's S, consecutive repeats merged: the
    saddles visited (``visited_S`` since issue 22's dwell reading; 0.8.0 stored every
    visit there, so the claim re-reads it from ``visits``)."""
    visits = list(visits)
    return merged(
        vis["S"] for j, vis in enumerate(visits)
        if vis["rate_min"] <= threshold or j == len(visits) - 1
    )  # fmt: skip


def eigenvalues(values: object) -> np.ndarray:
    """The eigenvalues ``lambda_1 >= lambda_2 >= ...`` of ``Sigma`` from a record's
    ``critical_values`` (``tr(Syy) - sum_{i in S} lambda_i`` over ``|S| <= r``): each is
    the smallest drop ``max - value`` not a sum of at most ``r`` smaller ones found
    before (relative tolerance 1e-9)."""
    v = np.asarray(values, dtype=float)
    sums = np.sort(v.max() - v)
    sums = sums[sums > 1e-12 * max(float(v.max()), 1.0)]
    lam: list[float] = []
    for x in sums:
        made = {0.0}
        for y in lam:
            made |= {m + y for m in made}
        if not any(abs(x - m) <= 1e-9 * x for m in made):
            lam.append(float(x))
    return np.array(sorted(lam, reverse=True))


def step_ratios(visited: object, values: object) -> tuple[list[float], list[float]]:
    """For a staircase ``visited``: ``lambda_k / lambda_{k+1}`` at each step ``k`` of the
    staircase it dwelt at (``[k]`` visited, ``k >= 1``) and at each it skipped."""
    ks = [top_size(S) for S in visited]
    if any(k is None for k in ks):
        return [], []
    lam = eigenvalues(values)
    dwelt, skipped = [], []
    for a, b in itertools.pairwise(ks):
        for k in range(a + 1, b):
            if k < lam.size:
                skipped.append(float(lam[k - 1] / lam[k]))
        if a >= 1 and a < lam.size and b > a:
            dwelt.append(float(lam[a - 1] / lam[a]))
    return dwelt, skipped


X_BINS = (0.0, 4.0, 8.0, 12.0, 16.0, 24.0, np.inf)  # bins of the separation x (depth 2)


def step_separations(visited: object, values: object, eps: float) -> list[tuple[float, bool]]:
    """For a staircase ``visited`` ending at ``[K]``: per intermediate saddle ``[k]``, ``1 <=
    k < K``, the separation ``x = 2 ln(1/eps) (1 - sqrt(lambda_{k+1} / lambda_k))`` and
    whether the flow dwelt there.  Depth 2, whitened data, to leading order in
    ``ln(1/eps)``: mode ``i`` is learned at ``t_i ~ 2 ln(1/eps) / (4 m s_i)``, ``s_i ~
    sqrt(lambda_i)``, so when mode ``k`` is learned mode ``k + 1`` is still ``~ e^-x`` of
    its final size: ``x`` large, a saddle the flow waits at; ``x`` of order one, the two
    drops merge."""
    ks = [top_size(S) for S in visited]
    if not ks or any(k is None for k in ks):
        return []
    lam = eigenvalues(values)
    out = []
    for k in range(1, min(ks[-1], lam.size)):
        x = 2.0 * np.log(1.0 / eps) * (1.0 - np.sqrt(lam[k] / lam[k - 1]))
        out.append((float(x), k in ks))
    return out


def order_kind(visited: object) -> str:
    """``complete`` (``[], [1], [1,2], ...`` by steps of one), ``staircase`` (top sets,
    increasing) or ``other``."""
    ks = [top_size(S) for S in visited]
    if any(k is None for k in ks) or any(b <= a for a, b in itertools.pairwise(ks)):
        return "other"
    steps = all(b == a + 1 for a, b in itertools.pairwise(ks))
    return "complete" if steps and ks and ks[0] == 0 else "staircase"


def plateau_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per plateau: ``sample_id``, ``H``, ``eps``, ``j`` (its rank in the run),
    ``k`` (top-set size of its S, -1 if not a top set), ``t_start``, ``t_end``, ``loss``,
    ``value``, ``rel_range`` (``|loss - value|`` over the range of the critical values),
    ``rel_gap`` (over their smallest gap), ``dist_tol``, ``eig_min``."""
    out = []
    for row in df.itertuples():
        vals = np.unique(np.asarray(row.critical_values, dtype=float))
        gap = float(np.diff(vals).min()) if vals.size > 1 else np.nan
        span = float(vals[-1] - vals[0]) if vals.size > 1 else np.nan
        for j, p in enumerate(row.plateaus):
            k = top_size(p["S"])
            out.append((row.sample_id, row.H, row.eps, j, -1 if k is None else k,
                        p["t_start"], p["t_end"], p["loss"], p["value"],
                        abs(p["loss"] - p["value"]) / span, abs(p["loss"] - p["value"]) / gap,
                        p["dist_tol"], p["eig_min"]))  # fmt: skip
    cols = ["sample_id", "H", "eps", "j", "k", "t_start", "t_end", "loss", "value", "rel_range",
            "rel_gap", "dist_tol", "eig_min"]  # fmt: skip
    return pd.DataFrame(out, columns=cols)


def first_drops(df: pd.DataFrame) -> pd.DataFrame:
    """The first drop of each row's stored loss curve, as a plateau table of ``S = []``
    plateaus (``k = 0``, ``t_start = 0``, ``t_end = t_drop``, ``eig_min`` NaN): the first
    ``t_curve`` time with ``loss <= c_max - (c_max - c_2) / 2``; rows that never drop (or
    whose loss starts below that level) are left out."""
    out = []
    for row in df.itertuples():
        vals = np.unique(np.asarray(row.critical_values, dtype=float))
        if vals.size < 2:
            continue
        level = vals[-1] - 0.5 * (vals[-1] - vals[-2])
        loss = np.asarray(row.loss_curve, dtype=float)
        below = np.flatnonzero(loss <= level)
        if below.size and below[0] > 0:
            out.append(
                (row.sample_id, row.H, row.eps, 0, 0, 0.0, float(row.t_curve[below[0]]), np.nan)
            )
    cols = ["sample_id", "H", "eps", "j", "k", "t_start", "t_end", "eig_min"]
    return pd.DataFrame(out, columns=cols)


def duration_fits(pl: pd.DataFrame) -> pd.DataFrame:
    """Per (point, plateau S = [k]): fits of the plateau's length against eps.

    ``k = 0`` uses ``t_end`` (the plateau starts at 0), ``k >= 1`` ``t_end - t_start``.
    Columns: ``sample_id``, ``H``, ``k``, ``n_eps``, ``b`` and ``r2`` of ``length = a + b
    ln(1/eps)``, ``q`` of ``length ~ eps^-q``, ``q_eig`` of ``|eig_min| ~ eps^q_eig``
    (NaN where some ``eig_min >= 0``).
    """
    out = []
    ok = pl[pl["k"] >= 0]
    for (sid, k), g in ok.groupby(["sample_id", "k"], sort=True):
        g = g.drop_duplicates("eps")  # a run revisiting the same S: its first plateau
        if len(g) < MIN_EPS:
            continue
        length = (g["t_end"] - (0 if k == 0 else g["t_start"])).to_numpy(float)
        if np.any(length <= 0):
            continue
        x = np.log(1.0 / g["eps"].to_numpy(float))
        b, a = np.polyfit(x, length, 1)
        res = length - (a + b * x)
        ss = float(np.sum((length - length.mean()) ** 2))
        r2 = 1 - float(np.sum(res**2)) / ss if ss > 0 else np.nan
        q = np.polyfit(x, np.log(length), 1)[0]
        e = g["eig_min"].to_numpy(float)
        q_eig = -np.polyfit(x, np.log(-e), 1)[0] if np.all(e < 0) else np.nan
        out.append((sid, int(g["H"].iloc[0]), k, len(g), b, r2, q, q_eig))
    cols = ["sample_id", "H", "k", "n_eps", "b", "r2", "q", "q_eig"]
    return pd.DataFrame(out, columns=cols)


# what analyse needs besides pl, drops (and ``visits`` in runs since issue 22)
LIGHT = ["sample_id", "H", "eps", "status", "visited_S", "critical_values"]


def reduce_shard(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One shard's records reduced to what :func:`analyse` needs: their light columns,
    their plateau table and the first drops of their small-eps rows (the loss curves and
    plateaus are not kept)."""
    light = [*LIGHT, "visits"] if "visits" in df.columns else LIGHT
    return df[light], plateau_table(df), first_drops(df[df["eps"] <= EPS_SMALL])


def analyse(
    df: pd.DataFrame,
    pl: pd.DataFrame | None = None,
    drops: pd.DataFrame | None = None,
    threshold: float = Dynamics().plateau_threshold,
) -> tuple[Verdict, dict[str, pd.DataFrame]]:
    """The verdict and its tables (order, plateaus, durations) from a small_init run.

    ``pl`` and ``drops``, when given, are :func:`plateau_table` of ``df`` and
    :func:`first_drops` of its rows with eps <= EPS_SMALL, computed beforehand (shard by
    shard, :func:`reduce_shard`); ``df`` then needs only the columns of :data:`LIGHT`.
    ``threshold``: the run's ``plateau_threshold`` (the dwell criterion)."""
    v = Verdict(CLAIM)
    rng = np.random.default_rng(SEED)
    df = df.copy()
    # since issue 22 (visits present): the transits are in visits; 0.8.0's visited_S is every
    # visit (no visits.dwell), so the dwelt sets are re-read from the visits in every case
    transits = "visits" in df.columns and bool(df["visits"].notna().all())
    if transits:
        df["all_order"] = [order_kind(merged(v["S"] for v in vs)) for vs in df["visits"]]
        df["visited_S"] = [dwelt_sets(vs, threshold) for vs in df["visits"]]
    df["order"] = [order_kind(vs) for vs in df["visited_S"]]
    small = df[df["eps"] <= EPS_SMALL]
    st = df["status"].astype(str).value_counts()
    v.note(f"{df['sample_id'].nunique()} points, {len(df)} rows (status "
           + ", ".join(f"{k} {n}" for k, n in st.items())
           + f"); judged: the {len(small)} rows with eps <= {EPS_SMALL:g}")  # fmt: skip

    # 1. order
    order = (df.groupby(["H", "eps", "order"]).size().unstack(fill_value=0)
             .reindex(columns=["complete", "staircase", "other"], fill_value=0).reset_index())  # fmt: skip
    what = "the saddles visited (dwells, then the final S)" if transits else "visited_S"
    v.note(f"1. order of {what}: complete staircase / staircase with skips / other, per depth "
           "(eps <= EPS_SMALL; fraction of staircases with 95% Wilson interval)")  # fmt: skip
    for H, g in small.groupby("H"):
        n, c = len(g), int((g["order"] == "complete").sum())
        s = int((g["order"] == "staircase").sum())
        lo, hi = wilson_interval(c + s, n)
        bad = g[g["order"] == "other"]
        ex = f"; e.g. point {bad['sample_id'].iloc[0]} eps {bad['eps'].iloc[0]:g}: " \
             f"{[list(map(int, S)) for S in bad['visited_S'].iloc[0]]}" if len(bad) else ""  # fmt: skip
        v.require(len(bad) == 0, f"H = {H}: {n} rows: {c} complete, {s} with skips, {len(bad)} "
                  f"other (staircase fraction {(c + s) / n:.3f} [{float(lo):.3f}, {float(hi):.3f}]){ex}")  # fmt: skip
    if transits:  # runs since issue 22 (0.7 runs: the claim's output as in 0.7)
        for H, g in small.groupby("H"):
            n, c = len(g), int((g["order"] == "complete").sum())
            lo, hi = wilson_interval(c, n)
            met = "met" if c >= COMPLETE_MIN * n else "NOT met"
            v.note(f"   complete staircases, H = {H}: {c} of {n} ({c / n:.3f} [{float(lo):.3f}, "
                   f"{float(hi):.3f}]); target >= {COMPLETE_MIN:g}: {met}")  # fmt: skip
        skips = small[small["order"] == "staircase"]
        for H, g in skips.groupby("H"):
            rows = small[small["H"] == H].groupby("eps").size()
            per_eps = ", ".join(f"{e:g}: {k}/{rows[e]}" for e, k in
                                g.groupby("eps").size().sort_index(ascending=False).items())  # fmt: skip
            in_order = int((g["all_order"] == "complete").sum())
            v.note(f"   with skips (drops merged, no dwell between), H = {H}, by eps: {per_eps}; "
                   f"the transits passed the skipped sets in order in {in_order} of {len(g)}")  # fmt: skip
        ratios = [(H, *step_ratios(vs, cv)) for H, vs, cv in
                  zip(small["H"], small["visited_S"], small["critical_values"], strict=True)]  # fmt: skip
        for H in sorted({r[0] for r in ratios}):
            dw = [x for r in ratios if r[0] == H for x in r[1]]
            sk = [x for r in ratios if r[0] == H for x in r[2]]
            if sk:
                v.note(f"   lambda_k / lambda_(k+1) at the steps, H = {H}: dwelt at [k] {len(dw)} "
                       f"steps, median {np.median(dw) if dw else np.nan:.3g}; skipped {len(sk)}, "
                       f"median {np.median(sk):.3g}")  # fmt: skip
                steps = pd.DataFrame(
                    [x for h, vs, cv, e in zip(small["H"], small["visited_S"],
                                              small["critical_values"], small["eps"], strict=True)
                     if h == H for x in step_separations(vs, cv, e)], columns=["x", "dwelt"],
                )  # fmt: skip
                binned = steps.groupby(pd.cut(steps["x"], X_BINS), observed=True)["dwelt"]
                v.note(f"   dwelt at [k] by x = 2 ln(1/eps) (1 - sqrt(lambda_(k+1) / lambda_k)), "
                       f"H = {H}: " + ", ".join(
                           f"x in ({b.left:g}, {b.right:g}]: {int(g.sum())}/{len(g)}"
                           for b, g in binned))  # fmt: skip
        for H, g in small.groupby("H"):
            c = g["all_order"].value_counts()
            v.note(f"   every visit (transits included), H = {H}: {c.get('complete', 0)} "
                   f"complete, {c.get('staircase', 0)} with skips, {c.get('other', 0)} other "
                   f"of {len(g)}")  # fmt: skip
    big = df[(df["eps"] > EPS_SMALL) & (df["order"] == "other")]
    if len(big):
        v.note(f"contrast, eps > {EPS_SMALL:g}: {len(big)} of {int((df['eps'] > EPS_SMALL).sum())} "
               "rows visit a non-top set or go back")  # fmt: skip

    # 2. plateau values
    pl = plateau_table(df) if pl is None else pl
    pls = pl[pl["eps"] <= EPS_SMALL]
    v.note(f"2. {len(pl)} plateaus ({len(pls)} at eps <= {EPS_SMALL:g}); distance of the "
           "plateau loss to the nearest critical value")  # fmt: skip
    if len(pls):
        miss = pls[~(pls["rel_range"] <= MATCH_TOL)]
        v.require(len(miss) == 0, f"{len(pls) - len(miss)} of {len(pls)} plateaus within "
                  f"{MATCH_TOL:g} x the range of a critical value (median "
                  f"{pls['rel_range'].median():.2e}, max {pls['rel_range'].max():.2e}); in units "
                  f"of the smallest gap median {pls['rel_gap'].median():.2e}, max "
                  f"{pls['rel_gap'].max():.2e}; in loss_tol units median {pls['dist_tol'].median():.3g}")  # fmt: skip
        if len(miss):
            worst = miss.sort_values("rel_range").iloc[-1]
            v.note("unmatched plateaus by depth and eps: "
                   + ", ".join(f"H={h} eps={e:g}: {n}" for (h, e), n in miss.groupby(["H", "eps"]).size().items())
                   + f"; worst: point {worst['sample_id']} eps {worst['eps']:g}, plateau {worst['j']} "
                   f"(S = [{worst['k']}], t {worst['t_start']:.3g}..{worst['t_end']:.3g}), "
                   f"{worst['rel_range']:.2e} x range off")  # fmt: skip
        nt = int((pls["k"] < 0).sum())
        v.note(f"{nt} of these plateaus have an S that is not a top set")
    else:
        v.require(False, "no plateau at small eps")

    # 3. local spectrum and 4. durations
    fits = duration_fits(pls)
    v.note("3. local spectrum: exponent q_eig of |eig_min| ~ eps^q_eig at the plateaus of one "
           "S across eps (0: negative curvature stays, strict; > 0: vanishes, non-strict-like); "
           "median (IQR) per depth and S = [k]")  # fmt: skip
    for (H, k), g in fits.groupby(["H", "k"]):
        qe = g["q_eig"].dropna()
        if len(qe):
            q1, q2, q3 = np.quantile(qe, [0.25, 0.5, 0.75])
            v.note(f"H = {H}, S = [{k}]: {len(qe)} points, q_eig {q2:.3f} ({q1:.3f}-{q3:.3f})")
    v.note("4. plateau lengths against eps: first plateau (S = []) t_end as detected, and the "
           "first drop t_drop read off the loss curve; later plateaus t_end - t_start. Depth 2: "
           "slope b of length = a + b ln(1/eps) and R^2; depth >= 3: exponent q of length ~ "
           "eps^-q (predicted H - 2 for S = [])")  # fmt: skip
    drops = first_drops(small) if drops is None else drops
    drop_fits = duration_fits(drops)
    judged = 0
    rows = []
    for measure, table in (("t_end", fits), ("t_drop", drop_fits)):
        for (H, k), g in table.groupby(["H", "k"]):
            q = g["q"].to_numpy(float)
            lo, hi = bootstrap_mean(q, rng)
            bl, bh = bootstrap_mean(g["b"].to_numpy(float), rng)
            r2 = float(g["r2"].median())
            rows.append((measure, H, k, len(g), float(q.mean()), lo, hi, float(g["b"].mean()),
                         bl, bh, r2))  # fmt: skip
            base = (f"{measure}, H = {H}, S = [{k}]: {len(g)} points, q = {q.mean():.3f} "
                    f"[{lo:.3f}, {hi:.3f}], b = {g['b'].mean():.4g} [{bl:.4g}, {bh:.4g}], "
                    f"median R^2 {r2:.4f}")  # fmt: skip
            if k == 0 and len(g) >= MIN_POINTS:
                judged += 1
                if H == 2:
                    v.require(r2 >= R2_MIN, base + f" (depth 2: R^2 >= {R2_MIN})")
                else:
                    v.require(lo >= H - 2 - Q_TOL and hi <= H - 2 + Q_TOL,
                              base + f" (predicted q = {H - 2} +- {Q_TOL})")  # fmt: skip
            else:
                v.note(base + ("" if k else f" — fewer than {MIN_POINTS} points, not judged"))
    v.require(
        judged > 0, f"{judged} (measure, depth) pairs with at least {MIN_POINTS} first-plateau fits"
    )
    durations = pd.DataFrame(rows, columns=["measure", "H", "k", "points", "q_mean", "q_lo",
                                            "q_hi", "b_mean", "b_lo", "b_hi", "r2_median"])  # fmt: skip
    return v, {"order": order, "plateaus": pl, "fits": fits, "durations": durations}


def check(run_dir: str, tables: Path | None = None, figures: Path | None = None) -> Verdict:
    """Check the claim on the small_init records of ``run_dir``; with ``tables`` /
    ``figures``, write the CSV tables and the figure (PNG) there."""
    try:  # runs since issue 22 have the visits column
        parts = reduce_dynamics(run_dir, EXPERIMENT, [*COLUMNS, "visits"], reduce_shard)
    except Exception:  # an older run: visited_S holds the sets dwelt at
        parts = reduce_dynamics(run_dir, EXPERIMENT, COLUMNS, reduce_shard)
    parts = parts or [reduce_shard(pd.DataFrame(columns=COLUMNS))]
    df, pl, drops = (pd.concat([part[k] for part in parts], ignore_index=True) for k in range(3))
    settings = (read_manifest(run_dir).get("config") or {}).get("dynamics", {})
    threshold = float(settings.get("plateau_threshold", Dynamics().plateau_threshold))
    v, out = analyse(df, pl, drops, threshold)
    if tables:
        tables.mkdir(parents=True, exist_ok=True)
        for name in ("order", "durations"):
            out[name].to_csv(tables / f"small_init_{name}.csv", index=False, float_format="%.6g")
    if figures and len(out["plateaus"]):
        figures.mkdir(parents=True, exist_ok=True)
        figure(out["plateaus"], figures / "small_init.png")
    return v


def figure(pl: pd.DataFrame, path: Path) -> None:
    """First-plateau end time against 1/eps (log-log), by depth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    first = pl[(pl["k"] == 0) & (pl["j"] == 0)]
    for H, g in first.groupby("H"):
        ax.loglog(1 / g["eps"], g["t_end"], ".", ms=3, alpha=0.5, label=f"H = {H}")
    ax.set_xlabel("1/eps")
    ax.set_ylabel("end of the first plateau (S = [])")
    ax.set_title("small initialisation: first plateau")
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
