"""Claim: depth 2 has no non-strict saddles (docs/theory.md §3: every saddle of H = 2 is strict).

Usage: python analysis/claim_depth2_strict.py RUN_DIR

Reads only the H = 2 records (predicate pushdown). Passes when no H = 2 point is a
non-strict saddle by the theory or by the spectrum and none is ambiguous; prints the
counts, how clearly negative the smallest whitened eigenvalue of the candidate saddles
(S = [s], s < r, the only ones that could be non-strict) is, and a 95% upper bound on
their non-strict fraction.  The run is aggregated in DuckDB (:class:`mcland.rundir.scan.Scan`),
never loaded.
"""

from __future__ import annotations

import sys

import numpy as np

from mcland.report.sections import value_counts
from mcland.rundir.scan import Scan
from mcland.stats import Verdict, claim_main, wilson_interval

CLAIM = "depth 2 has no non-strict saddles"
COLUMNS = ["theory_type", "numeric_type", "s", "r", "S", "eig_min_w", "tol_neg"]
TOP = "S_set::BIGINT[] = range(1, s::BIGINT + 1)"  # S = {1, ..., s} (is_top_set in SQL)


def is_top_set(S: object, s: int) -> bool:
    """True when the index set ``S`` is ``{1, ..., s}``."""
    return list(np.asarray(S, dtype=int)) == list(range(1, s + 1))


def check(run_dir: str) -> Verdict:
    """Check the claim on the H = 2 records of ``run_dir``."""
    v = Verdict(CLAIM)
    with Scan(run_dir) as scan:
        h2 = "H = 2"
        n = scan.count(h2)
        v.require(n > 0, f"{n} points of depth 2 in the run")
        if not n:
            return v
        th, nu = "coalesce(theory_type::VARCHAR, 'nan')", "coalesce(numeric_type::VARCHAR, 'nan')"
        counts = value_counts(scan, nu, h2)
        v.note("numeric types: " + ", ".join(f"{k} {c}" for k, c in counts.items() if c))
        th_ns, nu_ns, amb = scan.one(
            f"SELECT count(*) FILTER ({th} = 'non_strict_saddle'), "
            f"count(*) FILTER ({nu} = 'non_strict_saddle'), "
            f"count(*) FILTER ({th} = 'ambiguous' OR {nu} = 'ambiguous') FROM records WHERE {h2}"
        )
        v.require(th_ns == 0, f"{th_ns} non-strict saddles by the theory")
        v.require(nu_ns == 0, f"{nu_ns} non-strict saddles by the spectrum")
        v.require(amb == 0, f"{amb} ambiguous points")
        cand = f"{h2} AND {TOP} AND s < r"
        n_cand, k, dropped = scan.one(
            f"SELECT count(*), count(*) FILTER ({nu} = 'non_strict_saddle'), "
            f"count(*) FILTER (eig_min_w IS NULL OR tol_neg IS NULL) FROM records WHERE {cand}"
        )
        hi = float(wilson_interval(k, n_cand)[1])
        v.note(
            f"{n_cand} candidate saddles (S = [s], s < r): {k} non-strict, "
            f"95% upper bound on the non-strict fraction {hi:.2e}"
        )
        cand_w = f"{cand} AND eig_min_w IS NOT NULL AND tol_neg IS NOT NULL AND tol_neg > 0"
        if dropped:
            v.note(
                f"{dropped} candidates without a stored spectrum (eig_min_w null) left out below"
            )
        ratio = "-eig_min_w / tol_neg"
        if scan.count(cand_w):
            smallest = scan.scalar(f"SELECT min({ratio}) FROM records WHERE {cand_w}")
            median = scan.medians(ratio, cand_w)["median"].iloc[0]
            v.note(
                f"their smallest whitened eigenvalue is at least {smallest:.3g} x tol_neg below "
                f"zero (median {median:.3g} x; tol_neg = 10 noise floors)"
            )
    return v


def main(argv: list[str]) -> int:
    """Run the check on ``argv = [RUN_DIR]``; return the exit status."""
    return claim_main(check, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
