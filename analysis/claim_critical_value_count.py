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
The run is aggregated in DuckDB (:class:`mcland.rundir.scan.Scan`), never loaded; with fixed data,
equal losses are ordered by their position in the run (0.7.1 used NumPy's quicksort, whose
order among exact ties is unspecified; it matters only when tied losses carry different
tolerances at a cluster boundary).
"""

from __future__ import annotations

import sys

import numpy as np

from mcland.rundir.scan import Scan
from mcland.stats import (
    CRITICAL,
    Verdict,
    claim_main,
    coverage_groups,
    coverage_rows,
    match_sql,
    n_critical_values,
)

VALUE_RTOL = 8 * np.finfo(float).eps
CLAIM = "the number of distinct critical values is sum_{k<=r} C(d_y, k)"
COLUMNS = ["is_critical", "d_y", "r", "loss", "loss_tol", "critical_values"]
SCALE = "list_max(list_transform(critical_values, lambda c: abs(c)))"
MIN_GAP = (
    "CASE WHEN len(critical_values) > 1 THEN list_min(list_transform("
    "list_slice(critical_values, 2, len(critical_values)), lambda x, i: x - critical_values[i])) "
    "ELSE 'inf'::DOUBLE END"
)  # the smallest consecutive difference (np.diff), inf for a single value


def distinct_losses(losses: np.ndarray, tol: np.ndarray) -> int:
    """Number of clusters of sorted ``losses`` whose neighbours are more than ``tol`` apart."""
    order = np.argsort(losses)
    gaps = np.diff(losses[order])
    return int(1 + (gaps > np.maximum(tol[order][1:], tol[order][:-1])).sum()) if losses.size else 0


def check(run_dir: str) -> Verdict:
    """Check the claim on the critical records of ``run_dir``."""
    v = Verdict(CLAIM)
    with Scan(run_dir) as scan:
        _check(scan, v)
    return v


def _check(scan: Scan, v: Verdict) -> None:
    """The checks of :func:`check` on an open run."""
    # one data set for every point: a classify run (its users' data) or a sample run of
    # fixed data; fresh Gaussian data per point otherwise
    source = scan.manifest.get("config", {}).get("data", {}).get("source", "given")
    fixed = source != "gaussian"
    n = scan.count(CRITICAL)
    dropped = scan.count("is_critical AND critical_values IS NULL")
    v.require(n > 0, f"{n} critical points with an enumerated set")
    if dropped:
        v.note(f"{dropped} critical points without an enumerated set (d_y > 12) left out")
    if not n:
        return
    # every per-record quantity, in one pass over the lists, aggregated at once: a small
    # table of (d_y, r, set size, position, matched) groups, never a row per record
    per_record = f"""SELECT m.*, {MIN_GAP} AS min_gap, {SCALE} AS scale,
               ({float(VALUE_RTOL)!r} * (d_y + 1)) * {SCALE} AS value_tol
        FROM ({match_sql(CRITICAL, ["d_y", "r", "loss", "critical_values"])}) m"""
    scan.con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _cv AS
        SELECT d_y, r, n_values, position, matched, count(*) AS _n, min(_order) AS _order,
               count(*) FILTER (min_gap <= value_tol) AS close_n,
               min(min_gap / scale) AS smallest,
               count(*) FILTER (n_within > 1) AS n_close,
               min(min_gap / scale) FILTER (n_within > 1) AS close_lo,
               max(min_gap / scale) FILTER (n_within > 1) AS close_hi
        FROM ({per_record}) GROUP BY ALL"""
    )
    pairs = scan.df("SELECT DISTINCT d_y, r FROM _cv")
    pairs["e"] = [
        n_critical_values(int(a), int(b)) for a, b in zip(pairs["d_y"], pairs["r"], strict=True)
    ]
    scan.add_table("_expected", pairs)
    wrong, lo, hi = scan.one(
        "SELECT coalesce(sum(_n) FILTER (n_values <> e), 0), min(n_values), max(n_values) "
        "FROM _cv JOIN _expected USING (d_y, r)"
    )
    v.require(
        wrong == 0,
        f"{wrong} points whose enumerated set does not have "
        f"sum_(k<=r) C(d_y, k) elements (sizes {lo}..{hi})",
    )
    # distinct: consecutive values differ by more than the rounding of the values themselves
    # (tr(Syy) - sum of eigenvalues, tr(Syy) being the largest value, S = {})
    close_n, smallest = scan.one("SELECT sum(close_n), min(smallest) FROM _cv")
    gap = f"(SELECT {MIN_GAP} / {SCALE} AS q FROM records WHERE {CRITICAL})"
    median = scan.medians("q", "isfinite(q)", source=gap)  # exact, a few counting passes
    v.require(
        close_n == 0,
        f"{close_n} points with two enumerated values closer than "
        f"{VALUE_RTOL:.1e} (d_y + 1) tr(Syy) (smallest gap {smallest:.3g} tr(Syy), "
        f"median {median['median'].iloc[0]:.3g} tr(Syy))",
    )
    unmatched, n_close, close_lo, close_hi = scan.one(
        "SELECT coalesce(sum(_n) FILTER (NOT matched), 0), sum(n_close), min(close_lo), "
        "max(close_hi) FROM _cv"
    )
    v.require(
        unmatched == 0, f"{unmatched} of {n} losses match no enumerated value within loss_tol"
    )
    if n_close:
        v.note(
            f"{n_close} losses lie within loss_tol of two enumerated values: the "
            f"values differ by {close_lo:.2g}..{close_hi:.2g} tr(Syy), less than those "
            "points' loss resolution (S, read off the weights, tells which one is reached)"
        )
    cov = coverage_rows(
        coverage_groups(scan, ["d_y", "r"], matched="_cv", weight="_n"), ["d_y", "r"], True
    )
    if fixed:
        clusters = scan.df(
            f"""SELECT r, count(*) AS points, 1 + count(*) FILTER (gap > greatest(loss_tol, prev_tol)) AS k,
                       arg_min(d_y, _order) AS d_y
            FROM (SELECT r, d_y, _order, _tol AS loss_tol,
                         loss - lag(loss) OVER w AS gap, lag(_tol) OVER w AS prev_tol
                  FROM ({per_record}) WINDOW w AS (PARTITION BY r ORDER BY loss, _order))
            GROUP BY r ORDER BY r"""
        )
        for r, k, d_y, points in zip(clusters["r"], clusters["k"], clusters["d_y"], clusters["points"], strict=True):  # fmt: skip
            e = n_critical_values(int(d_y), int(r))
            v.require(
                k <= e,
                f"r = {r}: {k} distinct observed losses of {e} critical values ({points} points)",
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


def main(argv: list[str]) -> int:
    """Run the check on ``argv = [RUN_DIR]``; return the exit status."""
    return claim_main(check, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
