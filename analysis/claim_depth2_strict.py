"""Claim: depth 2 has no non-strict saddles (docs/theory.md §3: every saddle of H = 2 is strict).

Usage: python analysis/claim_depth2_strict.py RUN_DIR

Reads only the H = 2 records (predicate pushdown). Passes when no H = 2 point is a
non-strict saddle by the theory or by the spectrum and none is ambiguous; prints the
counts, how clearly negative the smallest whitened eigenvalue of the candidate saddles
(S = [s], s < r, the only ones that could be non-strict) is, and a 95% upper bound on
their non-strict fraction.
"""

from __future__ import annotations

import sys

import numpy as np

from mcland.stats import Verdict, claim_main, drop_null, load_depth, wilson_interval

CLAIM = "depth 2 has no non-strict saddles"
COLUMNS = ["theory_type", "numeric_type", "s", "r", "S", "eig_min_w", "tol_neg"]


def is_top_set(S: object, s: int) -> bool:
    """True when the index set ``S`` is ``{1, ..., s}``."""
    return list(np.asarray(S, dtype=int)) == list(range(1, s + 1))


def check(run_dir: str) -> Verdict:
    """Check the claim on the H = 2 records of ``run_dir``."""
    v = Verdict(CLAIM)
    df = load_depth(run_dir, 2, columns=COLUMNS)
    v.require(len(df) > 0, f"{len(df)} points of depth 2 in the run")
    if not len(df):
        return v
    th, nu = df["theory_type"].astype(str), df["numeric_type"].astype(str)
    v.note("numeric types: " + ", ".join(f"{k} {c}" for k, c in nu.value_counts().items() if c))
    v.require(
        (th == "non_strict_saddle").sum() == 0,
        f"{(th == 'non_strict_saddle').sum()} non-strict saddles by the theory",
    )
    v.require(
        (nu == "non_strict_saddle").sum() == 0,
        f"{(nu == 'non_strict_saddle').sum()} non-strict saddles by the spectrum",
    )
    amb = int(((th == "ambiguous") | (nu == "ambiguous")).sum())
    v.require(amb == 0, f"{amb} ambiguous points")
    top = np.array([is_top_set(S, s) for S, s in zip(df["S"], df["s"], strict=True)])
    cand = df[top & (df["s"] < df["r"]).to_numpy()]
    k = int((cand["numeric_type"].astype(str) == "non_strict_saddle").sum())
    hi = float(wilson_interval(k, len(cand))[1])
    v.note(
        f"{len(cand)} candidate saddles (S = [s], s < r): {k} non-strict, "
        f"95% upper bound on the non-strict fraction {hi:.2e}"
    )
    cand_w, dropped = drop_null(cand, ["eig_min_w", "tol_neg"])
    cand_w = cand_w[cand_w["tol_neg"] > 0]
    if dropped:
        v.note(f"{dropped} candidates without a stored spectrum (eig_min_w null) left out below")
    if len(cand_w):
        ratio = (-cand_w["eig_min_w"] / cand_w["tol_neg"]).to_numpy()
        v.note(
            f"their smallest whitened eigenvalue is at least {np.min(ratio):.3g} x tol_neg below "
            f"zero (median {np.median(ratio):.3g} x; tol_neg = 10 noise floors)"
        )
    return v


def main(argv: list[str]) -> int:
    """Run the check on ``argv = [RUN_DIR]``; return the exit status."""
    return claim_main(check, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
