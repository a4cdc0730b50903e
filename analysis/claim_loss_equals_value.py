"""Claim: the loss at every critical point equals its critical value.

Usage: python analysis/claim_loss_equals_value.py RUN_DIR

For every critical record (``is_critical``), ``critical_value = tr(Syy) - sum_{i in S}
lambda_i`` is computed from the data and the index set ``S`` read off the point, and the
loss from the weights. Passes when ``|loss - critical_value| <= loss_tol`` (the
rounding-error bound of docs/theory.md §4, relative to the point's scale) for all of them;
prints the largest error in units of ``loss_tol`` and relative to the loss.  The run is
aggregated in DuckDB (:class:`mcland.rundir.scan.Scan`), never loaded: memory does not grow with it.
"""

from __future__ import annotations

import sys

from mcland.rundir.scan import Scan
from mcland.stats import Verdict, claim_main

CLAIM = "the loss at every critical point equals its critical value"
COLUMNS = ["is_critical", "loss", "critical_value", "loss_tol"]
ERR = "abs(loss - critical_value)"


def check(run_dir: str) -> Verdict:
    """Check the claim on every record of ``run_dir``."""
    v = Verdict(CLAIM)
    with Scan(run_dir) as scan:
        n, n_crit = scan.one("SELECT count(*), count(*) FILTER (is_critical) FROM records")
        v.require(n_crit > 0, f"{n_crit} critical points of {n} in the run")
        if not n_crit:
            return v
        bad, worst, rel, exact = scan.one(
            f"SELECT count(*) FILTER ({ERR} > loss_tol), max({ERR} / loss_tol), "
            f"max(CASE WHEN loss > 0 THEN {ERR} / loss ELSE 0.0 END), "
            f"count(*) FILTER ({ERR} = 0) FROM records WHERE is_critical"
        )
        median = scan.medians(f"{ERR} / loss_tol", "is_critical")["median"].iloc[0]
    v.require(bad == 0, f"{bad} points with |loss - critical_value| > loss_tol")
    v.note(
        f"largest |loss - critical_value| = {worst:.3g} x loss_tol "
        f"(median {median:.3g} x); largest relative to the loss {rel:.3g}"
    )
    v.note(f"{exact} points with loss == critical_value exactly")
    return v


def main(argv: list[str]) -> int:
    """Run the check on ``argv = [RUN_DIR]``; return the exit status."""
    return claim_main(check, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
