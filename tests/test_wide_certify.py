"""Certification of points too large for the exact evaluation (issue 21): no N x N exact
Hessian is formed above :data:`mcland.classification.certify.rows.EXACT_EVAL_MAX_N`; rows
keep their float64 verdict with the bound's stability, or are undecided."""

from __future__ import annotations

from certify_fixture import kill23

import mcland
from mcland.classification.certify import rows


def test_rows_above_the_exact_size_are_not_evaluated_exactly(monkeypatch):
    # W_2 = W_3 = 0-type points with tiny middle layers: float64 ambiguous, or non-strict
    # while exactly strict, and the exact non-strict saddle (all need the exact evaluation)
    cases = [(1e-13, 1e-20, 0), (1e-20, 1e-35, 0), (1e-13, 1e-20, 1), (1e-20, 1e-35, 2), (0, 0, 0)]
    pts = [kill23(a, b, seed)[0] for a, b, seed in cases]
    _, X, Y = kill23(0, 0)
    base = mcland.classify(pts, X, Y, threads=1)
    needed = base["decided_by"] != "float64"
    assert needed.all()

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
