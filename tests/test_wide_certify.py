"""Certification of points too large for the exact evaluation (issue 21): no N x N exact
Hessian is formed above :data:`mcland.classification.certify.rows.EXACT_EVAL_MAX_N`; rows
keep their float64 verdict with the bound's stability, or are undecided."""

from __future__ import annotations

from certify_fixture import lm_points

import mcland
from mcland.classification.certify import rows


def test_rows_above_the_exact_size_are_not_evaluated_exactly(monkeypatch):
    pts, X, Y = lm_points(8)
    base = mcland.classify(pts, X, Y, threads=1)
    needed = base["decided_by"] != "float64"
    assert needed.any() and (~needed).any()  # both kinds of rows in the fixture

    def refuse(*a, **k):
        raise AssertionError("exact evaluation above EXACT_EVAL_MAX_N")

    monkeypatch.setattr(rows, "exact_certificate", refuse)
    monkeypatch.setattr(rows, "EXACT_EVAL_MAX_N", 0)  # every row is "too large"
    df = mcland.classify(pts, X, Y, threads=1)
    same = ["exact_type", "decided_by", "stability", "stability_bound", "verdict"]
    # rows float64 decided are unchanged
    assert df.loc[~needed, same].equals(base.loc[~needed, same])
    # the others: their float64 verdict with the bound's stability, or undecided
    crit = df["is_critical"]
    agreeing = (df.numeric_type == df.theory_type) & (df.numeric_type != "ambiguous")
    kept = needed & crit & agreeing
    undecided = needed & crit & ~agreeing
    assert kept.any() and undecided.any()
    assert (df.loc[kept, "decided_by"] == "float64").all()
    assert (df.loc[kept, "exact_type"] == df.loc[kept, "numeric_type"]).all()
    assert (df.loc[undecided, "decided_by"] == "undecided").all()
    assert df.loc[undecided, "exact_type"].isna().all()
    assert (df.loc[undecided, "verdict"] == "ambiguous").all()
    assert (df.loc[undecided, "stability"] == "undecided").all()
    assert (
        df.loc[needed & crit, "stability_rel"] == base.loc[needed & crit, "stability_rel"]
    ).all()
