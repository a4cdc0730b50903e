"""Claim: an architecture has sum_{k<=r} C(d_y, k) distinct critical values.

Usage: python analysis/claim_critical_value_count.py RUN_DIR

Three checks, all with the tolerance ``loss_tol`` of each point (the rounding-error bound
on its loss, relative to the point's scale — THEORY.md §4):

1. enumerated: the stored set ``critical_values`` (``tr(Syy) - sum_{i in S} lambda_i``
   over ``|S| <= r``) has exactly ``sum_{k<=r} C(d_y, k)`` elements, and they are
   distinct: consecutive values differ by more than ``2 loss_tol``, so a loss can match at
   most one of them;
2. observed: every critical point's loss matches one enumerated value
   (``|loss - value| <= loss_tol``);
3. distinct observed losses: with fixed user data (npz/csv/parquet), the losses observed
   per bottleneck r, merged within ``loss_tol``, number at most ``sum_{k<=r} C(d_y, k)``;
   with fresh Gaussian data per point every point has its own set, so the count is
   replaced by the positions (ascending) of the matched values, pooled per ``(d_y, r)``.
   Coverage (positions reached / set size) is printed; it describes the sampling design,
   it is not part of the claim.

Records with ``d_y > 12`` carry no enumerated set and are left out (the count is printed).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from mcland import MclandError, load
from mcland.analysis import Verdict, coverage, drop_null, match_critical_values, n_critical_values
from mcland.storage import read_manifest

CLAIM = "the number of distinct critical values is sum_{k<=r} C(d_y, k)"
COLUMNS = ["is_critical", "d_y", "r", "loss", "loss_tol", "critical_values"]


def distinct_losses(losses: np.ndarray, tol: np.ndarray) -> int:
    """Number of clusters of sorted ``losses`` whose neighbours are more than ``tol`` apart."""
    order = np.argsort(losses)
    gaps = np.diff(losses[order])
    return int(1 + (gaps > np.maximum(tol[order][1:], tol[order][:-1])).sum()) if losses.size else 0


def check(run_dir: str) -> Verdict:
    """Check the claim on the critical records of ``run_dir``."""
    v = Verdict(CLAIM)
    fixed = read_manifest(run_dir)["config"]["data"]["source"] != "gaussian"
    df = load(run_dir, columns=COLUMNS)
    df, dropped = drop_null(df[df["is_critical"].to_numpy(bool)], ["critical_values"])
    v.require(len(df) > 0, f"{len(df)} critical points with an enumerated set")
    if dropped:
        v.note(f"{dropped} critical points without an enumerated set (d_y > 12) left out")
    if not len(df):
        return v
    sizes = np.array([len(c) for c in df["critical_values"]])
    expected = np.array(
        [n_critical_values(int(a), int(b)) for a, b in zip(df["d_y"], df["r"], strict=True)]
    )
    v.require(
        bool((sizes == expected).all()),
        f"{int((sizes != expected).sum())} points whose enumerated set does not have "
        f"sum_(k<=r) C(d_y, k) elements (sizes {sizes.min()}..{sizes.max()})",
    )
    tol = df["loss_tol"].to_numpy()
    min_gap = np.array(
        [np.min(np.diff(c)) if len(c) > 1 else np.inf for c in df["critical_values"]]
    )
    ratio = min_gap / tol
    v.require(
        bool((ratio > 2).all()),
        f"{int((ratio <= 2).sum())} points whose enumerated values are not distinct at 2 loss_tol "
        f"(smallest gap {np.min(ratio):.3g} x loss_tol, median {np.median(ratio[np.isfinite(ratio)]):.3g} x)",
    )
    m = pd.concat([df[["d_y", "r"]], match_critical_values(df)], axis=1)
    v.require(
        bool(m["matched"].all()),
        f"{int((~m['matched']).sum())} of {len(m)} losses match no enumerated value within loss_tol",
    )
    cov = coverage(m, by=("d_y", "r"))
    if fixed:
        for r, g in df.groupby("r", sort=True):
            k = distinct_losses(g["loss"].to_numpy(), g["loss_tol"].to_numpy())
            e = n_critical_values(int(g["d_y"].iloc[0]), int(r))
            v.require(
                k <= e,
                f"r = {r}: {k} distinct observed losses of {e} critical values ({len(g)} points)",
            )
    else:
        v.note(
            "fresh Gaussian data per point: per (d_y, r), enumerated positions reached / set size"
        )
    for row in cov.itertuples(index=False):
        v.note(
            f"d_y = {row.d_y}, r = {row.r}: {row.points} points reach {row.reached} of "
            f"{row.n_values} values (sum_k<=r C = {row.expected}, coverage {row.coverage:.0%})"
        )
    return v


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return check(argv[0]).exit()
    except MclandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
