"""Claim: an architecture has sum_{k<=r} C(d_y, k) distinct critical values.

Usage: python analysis/claim_critical_value_count.py RUN_DIR

Three checks; losses are compared with the tolerance ``loss_tol`` of each point (the
rounding-error bound on its loss, relative to the point's scale — docs/theory.md §4):

1. enumerated: the stored set ``critical_values`` (``tr(Syy) - sum_{i in S} lambda_i``
   over ``|S| <= r``) has exactly ``sum_{k<=r} C(d_y, k)`` elements, and they are
   distinct: consecutive values differ by more than their own rounding error,
   ``8 eps (d_y + 1) tr(Syy)`` (``tr(Syy)`` is the largest value, ``S = {}``);
2. observed: every critical point's loss matches an enumerated value
   (``|loss - value| <= loss_tol``); losses within ``loss_tol`` of two values (values
   closer than that point's loss resolution) are counted and reported;
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

from mcland import load
from mcland.rundir.files import read_manifest
from mcland.stats import (
    Verdict,
    claim_main,
    coverage,
    drop_null,
    match_critical_values,
    n_critical_values,
)

VALUE_RTOL = 8 * np.finfo(float).eps
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
    # distinct: consecutive values differ by more than the rounding of the values themselves
    # (tr(Syy) - sum of eigenvalues, tr(Syy) being the largest value, S = {})
    scale = np.array([np.max(np.abs(c)) for c in df["critical_values"]])
    value_tol = VALUE_RTOL * (df["d_y"].to_numpy() + 1) * scale
    min_gap = np.array(
        [np.min(np.diff(c)) if len(c) > 1 else np.inf for c in df["critical_values"]]
    )
    rel = min_gap / scale
    v.require(
        bool((min_gap > value_tol).all()),
        f"{int((min_gap <= value_tol).sum())} points with two enumerated values closer than "
        f"{VALUE_RTOL:.1e} (d_y + 1) tr(Syy) (smallest gap {np.min(rel):.3g} tr(Syy), "
        f"median {np.median(rel[np.isfinite(rel)]):.3g} tr(Syy))",
    )
    m = pd.concat([df[["d_y", "r"]], match_critical_values(df)], axis=1)
    v.require(
        bool(m["matched"].all()),
        f"{int((~m['matched']).sum())} of {len(m)} losses match no enumerated value within loss_tol",
    )
    close = m["n_within"] > 1
    if close.any():
        gaps = rel[close.to_numpy()]
        v.note(
            f"{int(close.sum())} losses lie within loss_tol of two enumerated values: the "
            f"values differ by {gaps.min():.2g}..{gaps.max():.2g} tr(Syy), less than those "
            "points' loss resolution (S, read off the weights, tells which one is reached)"
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
    """Run the check on ``argv = [RUN_DIR]``; return the exit status."""
    return claim_main(check, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
