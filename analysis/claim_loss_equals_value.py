"""Claim: the loss at every critical point equals its critical value.

Usage: python analysis/claim_loss_equals_value.py RUN_DIR

For every critical record (``is_critical``), ``critical_value = tr(Syy) - sum_{i in S}
lambda_i`` is computed from the data and the index set ``S`` read off the point, and the
loss from the weights. Passes when ``|loss - critical_value| <= loss_tol`` (the
rounding-error bound of docs/theory.md §4, relative to the point's scale) for all of them;
prints the largest error in units of ``loss_tol`` and relative to the loss.
"""

from __future__ import annotations

import sys

import numpy as np

from mcland import load
from mcland.stats import Verdict, claim_main

CLAIM = "the loss at every critical point equals its critical value"
COLUMNS = ["is_critical", "loss", "critical_value", "loss_tol"]


def check(run_dir: str) -> Verdict:
    """Check the claim on every record of ``run_dir``."""
    v = Verdict(CLAIM)
    df = load(run_dir, columns=COLUMNS)
    crit = df[df["is_critical"].to_numpy(bool)]
    v.require(len(crit) > 0, f"{len(crit)} critical points of {len(df)} in the run")
    if not len(crit):
        return v
    err = np.abs(crit["loss"].to_numpy() - crit["critical_value"].to_numpy())
    tol = crit["loss_tol"].to_numpy()
    bad = int((err > tol).sum())
    v.require(bad == 0, f"{bad} points with |loss - critical_value| > loss_tol")
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(crit["loss"].to_numpy() > 0, err / crit["loss"].to_numpy(), 0.0)
    v.note(
        f"largest |loss - critical_value| = {np.max(err / tol):.3g} x loss_tol "
        f"(median {np.median(err / tol):.3g} x); largest relative to the loss {np.max(rel):.3g}"
    )
    v.note(f"{int((err == 0).sum())} points with loss == critical_value exactly")
    return v


def main(argv: list[str]) -> int:
    """Run the check on ``argv = [RUN_DIR]``; return the exit status."""
    return claim_main(check, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
