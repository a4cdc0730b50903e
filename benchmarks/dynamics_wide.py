"""A dynamics run at width (issue 21; ``runs/dynamics_wide.toml``), summarised: statuses
by the point's type and analysis path (dense up to 5,000 parameters, structured above),
escape times of strict saddles against the linearised prediction
``t_linear = ln(1/delta) / |eig_min_star|``, and what a row costs (the analyses of the
largest points timed again, one thread).

Usage::

    python benchmarks/dynamics_wide.py RUN_DIR [--config runs/dynamics_wide.toml] [--time 3]

RUN_DIR is a finished ``mcland dynamics`` run of the configuration (made with
``mcland dynamics CONFIG --out RUN_DIR``); the output of the committed run is in
``benchmarks/results/dynamics-wide.txt``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

import mcland
from mcland.flow import experiment
from mcland.flow.records import point_records
from mcland.flow.run import make_job


def _slopes(df: pd.DataFrame) -> pd.DataFrame:
    """Per strict saddle escaped at its two smallest and largest deltas: the escape time's
    growth between them over the prediction's, ``(t_esc(d2) - t_esc(d1)) / (ln(d1/d2) /
    |eig_min_star|)`` (1 when the linearisation holds: the additive constant cancels), and
    ``t_escape / t_linear`` at each delta."""
    rows = []
    strict = df[(df.theory_type == "strict_saddle") & df.t_escape.notna()]
    for sid, g in strict.groupby("sample_id"):
        g = g.sort_values("delta", ascending=False)
        if len(g) < 2:
            continue
        a, b = g.iloc[0], g.iloc[-1]
        predicted = np.log(a.delta / b.delta) / abs(a.eig_min_star)
        rows.append({
            "sample_id": sid, "N": a.N, "path": a.path,
            "gap_ratio": a.eig_max_star / abs(a.eig_min_star),
            "slope": (b.t_escape - a.t_escape) / predicted,
            "ratio_large_delta": a.t_escape / a.t_linear,
            "ratio_small_delta": b.t_escape / b.t_linear,
        })  # fmt: skip
    cols = [
        "sample_id",
        "N",
        "path",
        "gap_ratio",
        "slope",
        "ratio_large_delta",
        "ratio_small_delta",
    ]
    return pd.DataFrame(rows, columns=cols)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--config", default="runs/dynamics_wide.toml")
    ap.add_argument("--time", type=int, default=3, help="largest points to time again")
    args = ap.parse_args()
    pd.set_option("display.width", 200)
    df = mcland.load(args.run)
    df["path"] = np.where(df.spectrum_zeros > 0, "structured", "dense")
    print(
        f"{df.sample_id.nunique()} points, {len(df)} rows; N from {df.N.min():,} to {df.N.max():,}"
    )
    print("\npoints by analysis path and type (rows / 2 deltas)")
    print(pd.crosstab(df.path, df.theory_type, margins=True) // 2)
    print("\nrows by status and path")
    print(pd.crosstab(df.status, df.path, margins=True))
    print("\nsettled_type of the rows by path")
    print(pd.crosstab(df.settled_type, df.path, margins=True))
    print("\nreached_global by type")
    print(pd.crosstab(df.theory_type, df.reached_global, margins=True))
    s = _slopes(df)
    print(
        "\nstrict saddles escaped at both deltas: slope = growth of t_escape over that of t_linear"
    )
    print(s.round(3).to_string(index=False))
    print(
        s.groupby("path")[["slope", "ratio_large_delta", "ratio_small_delta"]].describe().round(3).T
    )
    print("\nevaluations per row (median, max) by path and status")
    print(df.groupby(["path", "status"]).n_evals.agg(["median", "max", "size"]))

    job = make_job(args.config)
    plan, settings = job.plan, job.settings
    spent: list[tuple[str, float]] = []
    analyze_flat = experiment.analyze_flat

    def timed(*a, hessian="dense", **k):
        t0 = time.perf_counter()
        out = analyze_flat(*a, hessian=hessian, **k)
        spent.append((hessian, time.perf_counter() - t0))
        return out

    experiment.analyze_flat = timed  # every analysis of the point's rows, timed
    big = df.drop_duplicates("sample_id").nlargest(args.time, "N")
    print(f"\nseconds per point, one thread, load {os.getloadavg()[0]:.2f}: its analyses (W*, "
          "the end of each flow; whitened and original spectra) and all of it")  # fmt: skip
    for sid in big.sample_id:
        spent.clear()
        t0 = time.perf_counter()
        rows = point_records(plan, settings, int(sid))
        total = time.perf_counter() - t0
        evals = sum(r["n_evals"] for r in rows)
        each = ", ".join(f"{t:.2f}" for _, t in spent)
        print(f"  point {sid}: dims {df[df.sample_id == sid].dims.iloc[0].tolist()}, "
              f"N = {int(df[df.sample_id == sid].N.iloc[0]):,}, {spent[0][0]}: analyses {each} s; "
              f"point ({len(rows)} rows, {evals:,} evaluations) {total:.2f} s")  # fmt: skip
    experiment.analyze_flat = analyze_flat


if __name__ == "__main__":
    main()
