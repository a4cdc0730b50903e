"""Claim: a global minimizer's Hessian has ``n_pos = r (d_x + d_y − r)`` positive
eigenvalues and none negative, at every width (the rest, ``N − r (d_x + d_y − r)``, are zero).

Usage: python analysis/claim_minimizer_nullity.py RUN_DIR

The loss depends on the weights only through the product ``W_{H:1}``, whose values near a
global minimizer (rank ``r``) form the manifold of rank-``r`` matrices ``d_y × d_x``, of
dimension ``r (d_x + d_y − r)``.  The minimum on that manifold is non-degenerate (the
eigenvalues of ``Sigma`` are distinct, docs/theory.md §1), and the loss is constant along
the fibre of the product (the rescalings ``W_{h+1} G⁻¹, G W_h`` and the directions a
bottleneck leaves free): the Hessian is positive on ``r (d_x + d_y − r)`` directions and
zero on the other ``N − r (d_x + d_y − r)`` — so the zero fraction ``n_zero / N`` tends to 1
as the hidden widths grow, while ``n_pos`` does not depend on them.  Checked on every
theory global minimizer with an inertia, per octave band of the largest hidden width
(:mod:`mcland.report.width`), against the spectrum's ``n_neg``, ``n_zero`` and ``n_pos``
(eigenvalues below ``−tol_neg``, within ``tol_zero``, above it).  Aggregated in DuckDB,
never loaded.
"""

from __future__ import annotations

import sys

from mcland.report.width import BAND_SQL, WIDTH_SQL, band_label
from mcland.rundir.scan import Scan
from mcland.stats import Verdict, claim_main

CLAIM = "global minimizers: n_neg = 0, n_pos = r (d_x + d_y - r), the rest zero, at every width"
PREDICTED = "r::BIGINT * (d_x + d_y - r)"
"""SQL of the predicted ``n_pos``: the dimension of the rank-``r`` matrices ``d_y × d_x``."""
WHERE = (
    "H >= 2 AND theory_type::VARCHAR = 'global_minimizer' AND n_neg IS NOT NULL "
    "AND n_zero IS NOT NULL AND n_pos IS NOT NULL"
)


def not_applicable(run_dir: str) -> str | None:
    """Why the claim does not apply to ``run_dir``: another kind, or no global minimizer."""
    with Scan(run_dir) as scan:
        if scan.kind != "sample":
            return f"a {scan.kind} run, not a sample run"
        if not scan.count("theory_type::VARCHAR = 'global_minimizer'"):
            return "no global minimizer"
    return None


def check(run_dir: str) -> Verdict:
    """Check the claim on the global minimizers of ``run_dir``, band by band."""
    v = Verdict(CLAIM)
    with Scan(run_dir) as scan:
        n, left = scan.one(
            f"SELECT count(*), count(*) FILTER (NOT ({WHERE})) FROM records "
            "WHERE theory_type::VARCHAR = 'global_minimizer'"
        )
        v.require(n - left > 0, f"{n - left} of {n} global minimizers (theory) checked")
        if left:
            v.note(f"{left} left out (no inertia: spectrum-free, not audited)")
        got = scan.df(
            f"SELECT {BAND_SQL} AS band, min({WIDTH_SQL})::BIGINT AS w_min, "
            f"max({WIDTH_SQL})::BIGINT AS w_max, count(*) AS points, "
            f"count(*) FILTER (n_neg = 0 AND n_pos = {PREDICTED} AND n_zero = N - n_pos) "
            "AS match, count(*) FILTER (n_neg > 0) AS negative, "
            f"max(abs(n_pos - {PREDICTED})) AS worst, min(n_zero::DOUBLE / N) AS zero_min, "
            "max(n_zero::DOUBLE / N) AS zero_max, max(N) AS N_max "
            f"FROM records WHERE {WHERE} GROUP BY band ORDER BY band"
        )
    for row in got.itertuples(index=False):
        v.require(
            int(row.match) == int(row.points),
            f"w {band_label(int(row.band))} ({row.w_min}-{row.w_max} present): inertia as "
            f"predicted on {row.match} of {row.points} ({row.negative} with n_neg > 0, "
            f"largest |n_pos - r (d_x + d_y - r)| {row.worst}); n_zero / N "
            f"{row.zero_min:.4g} to {row.zero_max:.4g} (N up to {row.N_max:,})",
        )
    return v


def main(argv: list[str]) -> int:
    """Run the check on ``argv = [RUN_DIR]``; return the exit status."""
    return claim_main(check, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
