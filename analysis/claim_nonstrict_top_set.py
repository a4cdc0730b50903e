"""Claim: non-strict saddles occur only for S = {1, ..., s} with s < r.

Usage: python analysis/claim_nonstrict_top_set.py RUN_DIR

Passes when every point called a non-strict saddle — by the theory or by the spectrum —
has a top index set ``S = [s]`` with ``s < r``. Also prints the converse view: how the
points with ``S = [s]``, ``s < r`` split into strict and non-strict (both occur: the
condition is necessary, not sufficient), and that no point with a non-top ``S`` is
non-strict.
"""

from __future__ import annotations

import sys

import numpy as np

from mcland import load
from mcland.stats import Verdict, claim_main

CLAIM = "non-strict saddles occur only for S = {1..s} with s < r"
COLUMNS = ["theory_type", "numeric_type", "S", "s", "r"]


def check(run_dir: str) -> Verdict:
    """Check the claim on every record of ``run_dir``."""
    v = Verdict(CLAIM)
    df = load(run_dir, columns=COLUMNS)
    v.require(len(df) > 0, f"{len(df)} points in the run")
    if not len(df):
        return v
    s = df["s"].to_numpy(int)
    top = np.array(
        [list(np.asarray(S, int)) == list(range(1, k + 1)) for S, k in zip(df["S"], s, strict=True)]
    )
    below = s < df["r"].to_numpy(int)
    th, nu = df["theory_type"].astype(str).to_numpy(), df["numeric_type"].astype(str).to_numpy()
    for name, t in (("theory", th), ("spectrum", nu)):
        ns = t == "non_strict_saddle"
        bad = int((ns & ~(top & below)).sum())
        v.require(
            bad == 0,
            f"{ns.sum()} non-strict saddles by the {name}: {int((ns & top & below).sum())} "
            f"with S = [s], s < r; {bad} otherwise",
        )
    cand = top & below
    for name, t in (("theory", th), ("spectrum", nu)):
        k_ns = int((cand & (t == "non_strict_saddle")).sum())
        k_st = int((cand & (t == "strict_saddle")).sum())
        v.note(
            f"{cand.sum()} points with S = [s], s < r, by the {name}: {k_st} strict, "
            f"{k_ns} non-strict, {cand.sum() - k_st - k_ns} other"
        )
    non_top = ~top
    v.note(
        f"{non_top.sum()} points with a non-top S: theory types "
        + ", ".join(
            f"{k} {c}" for k, c in zip(*np.unique(th[non_top], return_counts=True), strict=True)
        )
    )
    return v


def main(argv: list[str]) -> int:
    """Run the check on ``argv = [RUN_DIR]``; return the exit status."""
    return claim_main(check, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
