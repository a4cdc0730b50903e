"""Claim: at depth 2 the Morse index is ``n_neg = Σ_{i ∉ S} (d_1 − #{j ∈ S : j < i})`` at
every width.

Usage: python analysis/claim_depth2_index.py RUN_DIR

At a critical point ``W_2 W_1`` of depth 2 with index set ``S`` (``s = |S|``; ``i`` ranges
over ``1..d_y``, the eigenvalues ``λ_1 > … > λ_{d_y} > 0`` of ``Sigma``, so ``d_x >= d_y``),
each index ``i ∉ S`` (a direction of ``Sigma`` the product leaves out) brings one negative
direction of the Hessian

* per hidden unit that the point does not use (``d_1 − s`` of them: put ``u_i`` on it), and
* per ``j ∈ S`` with ``j > i`` (``λ_j < λ_i``: turn the unit carrying ``u_j`` towards ``u_i``),

``d_1 − s + #{j ∈ S : j > i} = d_1 − #{j ∈ S : j < i}`` in all; a global minimizer
(``S = [r]``, ``r = d_1`` when ``d_1 < d_y``) has none.  So the index grows linearly in the
width, ``n_neg / d_1 → d_y − s``, while ``N = d_1 (d_x + d_y)``: the index fraction
``n_neg / N`` does not depend on the width, to first order.  Checked on every depth-2
critical point with ``d_x >= d_y`` and an inertia, per octave band of ``d_1``
(:mod:`mcland.report.width`), against the spectrum's ``n_neg`` (eigenvalues below
``−tol_neg``).  Aggregated in DuckDB, never loaded.
"""

from __future__ import annotations

import sys

from mcland.report.width import BAND_SQL, WIDTH_SQL, band_label
from mcland.rundir.scan import Scan
from mcland.stats import Verdict, claim_main

CLAIM = "depth 2: n_neg = sum over i not in S of (d_1 - #{j in S: j < i}) at every width"
PREDICTED = (
    "list_sum(list_transform(range(1, d_y::BIGINT + 1), lambda i: CASE WHEN "
    "list_contains(S_set::BIGINT[], i) THEN 0 ELSE dims[2]::BIGINT - "
    "len(list_filter(S_set::BIGINT[], lambda j: j < i)) END))"
)
"""SQL of the predicted index of a depth-2 record (``dims[2] = d_1``, ``S_set`` = ``S``)."""
WHERE = "H = 2 AND is_critical AND d_x >= d_y AND n_neg IS NOT NULL"


def not_applicable(run_dir: str) -> str | None:
    """Why the claim does not apply to ``run_dir``: another kind, or no depth-2 point."""
    with Scan(run_dir) as scan:
        if scan.kind != "sample":
            return f"a {scan.kind} run, not a sample run"
        if not scan.count("H = 2"):
            return "no point of depth 2"
    return None


def check(run_dir: str) -> Verdict:
    """Check the claim on the depth-2 records of ``run_dir``, band by band of ``d_1``."""
    v = Verdict(CLAIM)
    with Scan(run_dir) as scan:
        n2, left = scan.one(
            f"SELECT count(*), count(*) FILTER (NOT ({WHERE})) FROM records WHERE H = 2"
        )
        v.require(n2 - left > 0, f"{n2 - left} of {n2} depth-2 points checked")
        if left:
            v.note(f"{left} left out (not critical, d_x < d_y, or no inertia)")
        got = scan.df(
            f"SELECT {BAND_SQL} AS band, min({WIDTH_SQL})::BIGINT AS w_min, "
            f"max({WIDTH_SQL})::BIGINT AS w_max, count(*) AS points, "
            f"count(*) FILTER (n_neg = {PREDICTED}) AS match, "
            f"count(*) FILTER (theory_type::VARCHAR = 'strict_saddle') AS strict, "
            f"max(abs(n_neg - {PREDICTED})) AS worst, max(n_neg) AS n_neg_max, "
            f"avg(n_neg::DOUBLE / dims[2]) FILTER (theory_type::VARCHAR = 'strict_saddle') "
            "AS per_width, "
            "avg((d_y - s)::DOUBLE) FILTER (theory_type::VARCHAR = 'strict_saddle') AS missing "
            f"FROM records WHERE {WHERE} GROUP BY band ORDER BY band"
        )
    for row in got.itertuples(index=False):
        v.require(
            int(row.match) == int(row.points),
            f"d_1 {band_label(int(row.band))} ({row.w_min}-{row.w_max} present): index as "
            f"predicted on {row.match} of {row.points} ({row.strict} strict saddles; largest "
            f"n_neg {row.n_neg_max}, largest |n_neg - predicted| {row.worst})",
        )
        if row.strict:
            v.note(
                f"      strict saddles: mean n_neg / d_1 {row.per_width:.4g}, mean d_y - s "
                f"{row.missing:.4g}"
            )
    return v


def main(argv: list[str]) -> int:
    """Run the check on ``argv = [RUN_DIR]``; return the exit status."""
    return claim_main(check, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
