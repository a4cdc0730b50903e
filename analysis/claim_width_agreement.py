"""Claim: the theory's type and Morse index hold at every width (docs/theory.md: no width
enters the classification).

Usage: python analysis/claim_width_agreement.py RUN_DIR

The width of a point is its largest hidden width ``w = max(d_1, …, d_{H−1})``, grouped in
octave bands ``2^k <= w < 2^(k+1)`` (:mod:`mcland.report.width`, the report's width
section).  In every band:

* no point where theory and spectrum are both decided (neither ``ambiguous``) and differ;
* the index of the whitened Hessian is the theory's: ``n_neg = 0`` at the theory's global
  minimizers and non-strict saddles, ``n_neg >= 1`` at its strict saddles — on every point
  with a decided theory type and an inertia, the numerically ambiguous ones included
  (there the index is not what decided the numeric type, so the check is not circular).

Ambiguous verdicts are a legitimate answer, not a failure: their fraction per band is
reported with a 95% Wilson interval, as is the index (median ``n_neg`` of the strict
saddles, and ``n_neg / w``), and a chi-square test of whether the theory's type fractions
depend on the band within each depth (under a design whose weights do not depend on width,
as ``runs/wide.toml``, they should not; across depths they do by design, since the largest
of ``H − 1`` hidden widths grows with ``H`` and only ``H >= 3`` has non-strict saddles).  Applies to ``sample`` runs whose widths span enough
for the report's width section (:func:`mcland.report.width.width_spread`).  Aggregated in
DuckDB, never loaded.
"""

from __future__ import annotations

import sys

import numpy as np

from mcland.report.width import BAND_SQL, WIDTH_SQL, band_label, width_spread
from mcland.rundir.scan import Scan
from mcland.stats import Verdict, claim_main, wilson_interval

CLAIM = "theory and spectrum agree on the type and the index at every width"
DECIDED = ("global_minimizer", "strict_saddle", "non_strict_saddle", "not_critical")
TH, NU = "theory_type::VARCHAR", "numeric_type::VARCHAR"
ZERO_INDEX = f"{TH} IN ('global_minimizer', 'non_strict_saddle')"


def not_applicable(run_dir: str) -> str | None:
    """Why the claim does not apply to ``run_dir`` (another kind, widths too narrow)."""
    with Scan(run_dir) as scan:
        if scan.kind != "sample":
            return f"a {scan.kind} run, not a sample run"
        why = width_spread(scan)
    return None if why is None else f"the run's widths do not span enough: {why}"


def band_counts(scan: Scan) -> dict[str, np.ndarray]:
    """Per band (ascending ``band``): the counts the claim is decided on."""
    decided = ", ".join(f"'{t}'" for t in DECIDED)
    got = scan.df(
        f"SELECT {BAND_SQL} AS band, min({WIDTH_SQL})::BIGINT AS w_min, "
        f"max({WIDTH_SQL})::BIGINT AS w_max, count(*) AS points, "
        f"count(*) FILTER ({TH} IN ({decided}) AND {NU} IN ({decided})) AS both_decided, "
        f"count(*) FILTER ({TH} IN ({decided}) AND {NU} IN ({decided}) AND {TH} <> {NU}) "
        "AS disagree, "
        f"count(*) FILTER ({TH} = 'ambiguous' OR {NU} = 'ambiguous') AS ambiguous, "
        f"count(*) FILTER ({TH} IN ('global_minimizer', 'strict_saddle', 'non_strict_saddle') "
        "AND n_neg IS NOT NULL) AS indexed, "
        f"count(*) FILTER (n_neg IS NOT NULL AND (({ZERO_INDEX} AND n_neg > 0) OR "
        f"({TH} = 'strict_saddle' AND n_neg = 0))) AS index_wrong, "
        f"count(*) FILTER ({TH} = 'strict_saddle') AS th_strict, "
        f"count(*) FILTER ({TH} = 'global_minimizer') AS th_global, "
        f"count(*) FILTER ({TH} = 'non_strict_saddle') AS th_nonstrict "
        "FROM records WHERE H >= 2 GROUP BY band ORDER BY band"
    )
    out = {c: got[c].to_numpy() for c in got.columns}
    strict = f"H >= 2 AND {TH} = 'strict_saddle' AND n_neg IS NOT NULL"
    for name, value in (("n_neg_median", "n_neg::DOUBLE"),
                        ("n_neg_per_w_median", f"n_neg::DOUBLE / {WIDTH_SQL}")):  # fmt: skip
        m = scan.medians(value, strict, by=[BAND_SQL])
        med = dict(zip(m["g0"].astype(int), m["median"].astype(float), strict=True))
        out[name] = np.array([med.get(int(k), np.nan) for k in out["band"]])
    return out


def homogeneity(scan: Scan) -> tuple[float, float, int, int]:
    """Chi-square test that, within each depth, the theory's type fractions (minimizer,
    strict, non-strict) are the same in every band: the statistics of the depths (bands x
    types tables, empty rows and columns dropped) summed, as independent strata.

    Returns ``(p-value, statistic, degrees of freedom, depths tested)``; approximate where
    expected counts are small (few points per band)."""
    from scipy.stats import chi2, chi2_contingency

    got = scan.df(
        f"SELECT H, {BAND_SQL} AS band, {TH} AS t, count(*) AS n FROM records WHERE H >= 2 "
        f"AND {TH} IN ('global_minimizer', 'strict_saddle', 'non_strict_saddle') GROUP BY ALL"
    )
    stat, dof, depths = 0.0, 0, 0
    for _, g in got.groupby("H"):
        table = g.pivot(index="band", columns="t", values="n").fillna(0).to_numpy()
        table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
        if table.shape[0] < 2 or table.shape[1] < 2:
            continue
        res = chi2_contingency(table, correction=False)
        stat, dof, depths = stat + float(res.statistic), dof + int(res.dof), depths + 1
    return (float(chi2.sf(stat, dof)) if dof else 1.0), stat, dof, depths


def check(run_dir: str) -> Verdict:
    """Check the claim on ``run_dir``, band by band."""
    v = Verdict(CLAIM)
    v.note(
        "per band of the largest hidden width w: disagreements among the points both decide; "
        "index wrong: n_neg > 0 at a theory minimizer or non-strict saddle, n_neg = 0 at a "
        "theory strict saddle"
    )
    with Scan(run_dir) as scan:
        why = width_spread(scan)
        c = band_counts(scan)
        pval, stat, dof, depths = homogeneity(scan)
    if why is not None:
        v.note(f"widths do not span enough for a width study ({why}); bands shown anyway")
    lo, hi = wilson_interval(c["ambiguous"], c["points"])
    for i, k in enumerate(c["band"]):
        head = f"w {band_label(int(k))} ({c['w_min'][i]}-{c['w_max'][i]} present), {c['points'][i]} points"
        ok = int(c["disagree"][i]) == 0 and int(c["index_wrong"][i]) == 0
        v.require(
            ok,
            f"{head}: {c['disagree'][i]} of {c['both_decided'][i]} decided by both disagree; "
            f"index wrong on {c['index_wrong'][i]} of {c['indexed'][i]}",
        )
        v.note(
            f"      ambiguous {c['ambiguous'][i]} ({c['ambiguous'][i] / c['points'][i]:.3f} "
            f"[{lo[i]:.3f}, {hi[i]:.3f}]); theory strict/global/non-strict "
            f"{c['th_strict'][i]}/{c['th_global'][i]}/{c['th_nonstrict'][i]}; strict saddles' "
            f"n_neg median {c['n_neg_median'][i]:.4g}, n_neg / w median "
            f"{c['n_neg_per_w_median'][i]:.3g}"
        )
    total, amb = int(c["points"].sum()), int(c["ambiguous"].sum())
    a_lo, a_hi = wilson_interval(amb, total)
    v.note(
        f"all bands: ambiguous {amb} of {total} ({amb / max(total, 1):.3f} "
        f"[{float(a_lo):.3f}, {float(a_hi):.3f}])"
    )
    v.note(
        f"theory's type fractions across bands within each depth (chi-square, {depths} depths, "
        f"{dof} dof, statistic {stat:.3g}): p = {pval:.3g}. The design's weights do not depend "
        "on width, so a small p would say the types do anyway; across depths the bands differ "
        "by design (the largest of H - 1 hidden widths grows with H, and only H >= 3 has "
        "non-strict saddles)"
    )
    return v


def main(argv: list[str]) -> int:
    """Run the check on ``argv = [RUN_DIR]``; return the exit status."""
    return claim_main(check, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
