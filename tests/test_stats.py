"""Analysis helpers (mcland.stats), load pushdown and the claim scripts of analysis/."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from itertools import combinations
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from sampled_run import small_run, tampered_copy
from scipy.stats import binomtest

import mcland
from mcland import stats as an

ROOT = Path(__file__).resolve().parents[1]
ANALYSIS = ROOT / "analysis"


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    return small_run(tmp_path_factory)


def script(name: str) -> ModuleType:
    """Load ``analysis/NAME.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"analysis_{name}", ANALYSIS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --- loading with pushdown --------------------------------------------------------------
def test_load_depth_reads_only_that_depth_and_the_asked_columns(run_dir):
    full = mcland.load(run_dir, columns=["sample_id", "H"])
    assert full["H"].nunique() == 3  # the run spans depths 2-4
    for H in (2, 3, 4):
        got = mcland.load_depth(run_dir, H, columns=["sample_id", "H", "n_neg"])
        assert list(got.columns) == ["sample_id", "H", "n_neg"]
        assert (got["H"] == H).all()
        expected = full.loc[full["H"] == H, "sample_id"].to_numpy()
        np.testing.assert_array_equal(got["sample_id"].to_numpy(), expected)


def test_load_filters_on_sample_ids_across_shards(run_dir):
    ids = [3, 150, 299]  # one per shard of 100
    got = mcland.load(run_dir, columns=["sample_id"], filters=[("sample_id", "in", ids)])
    assert got["sample_id"].tolist() == ids


# --- binomial intervals and fractions ------------------------------------------------------
@pytest.mark.parametrize("n", [1, 7, 50, 1000])
def test_wilson_interval_matches_scipy(n):
    ks = np.unique(np.linspace(0, n, 6).round().astype(int))
    lo, hi = mcland.wilson_interval(ks, np.full(ks.size, n))
    for k, a, b in zip(ks, lo, hi, strict=True):
        ref = binomtest(int(k), n).proportion_ci(confidence_level=0.95, method="wilson")
        assert a == pytest.approx(ref.low, abs=1e-12)
        assert b == pytest.approx(ref.high, abs=1e-12)


def test_wilson_interval_without_trials_is_uninformative():
    lo, hi = mcland.wilson_interval(0, 0)
    assert (float(lo), float(hi)) == (0.0, 1.0)


def test_type_fractions_counts_every_type_per_group():
    df = pd.DataFrame(
        {
            "H": [2, 2, 2, 3, 3],
            "numeric_type": [
                "global_minimizer",
                "strict_saddle",
                "strict_saddle",
                "non_strict_saddle",
                "ambiguous",
            ],
        }
    )
    tidy = mcland.type_fractions(df, "H")
    assert len(tidy) == 2 * len(an.TYPES)
    row = tidy[(tidy["H"] == 2) & (tidy["type"] == "strict_saddle")].iloc[0]
    assert (row["count"], row["total"]) == (2, 3)
    assert row["fraction"] == pytest.approx(2 / 3)
    assert row["lo"] < 2 / 3 < row["hi"]
    absent = tidy[(tidy["H"] == 3) & (tidy["type"] == "global_minimizer")].iloc[0]
    assert absent["count"] == 0 and absent["lo"] == 0.0 and absent["hi"] > 0
    np.testing.assert_allclose(tidy.groupby("H")["fraction"].sum(), 1.0)


def test_type_fractions_by_two_columns(run_dir):
    df = mcland.load(run_dir, columns=["H", "r", "theory_type"])
    tidy = mcland.type_fractions(df, ["H", "r"], type_col="theory_type")
    totals = tidy.groupby(["H", "r"])["count"].sum()
    expected = df.groupby(["H", "r"]).size()
    pd.testing.assert_series_equal(totals, expected, check_names=False)


# --- confusion, disagreements, strata -----------------------------------------------------
def test_confusion_and_disagreements():
    df = pd.DataFrame(
        {
            "theory_type": ["strict_saddle", "strict_saddle", "ambiguous", "global_minimizer"],
            "numeric_type": ["strict_saddle", "non_strict_saddle", "ambiguous", "global_minimizer"],
        }
    )
    conf = an.confusion(df)
    assert conf.shape == (len(an.TYPES), len(an.TYPES))
    assert conf.loc["strict_saddle", "non_strict_saddle"] == 1
    assert conf.to_numpy().sum() == 4
    assert an.disagreements(df).index.tolist() == [1, 2]


def test_disagreements_include_failed_audits():
    df = pd.DataFrame(
        {
            "theory_type": ["strict_saddle"] * 3,
            "numeric_type": ["strict_saddle"] * 3,
            "audit_type": [None, "strict_saddle", "non_strict_saddle"],
        }
    )
    assert an.disagreements(df).index.tolist() == [2]
    conf = an.confusion(df.dropna(), "numeric_type", "audit_type")
    assert conf.loc["strict_saddle", "non_strict_saddle"] == 1
    assert conf.columns.name == "audit_type"


def test_strata_flags_only_varying_strata():
    a, b = np.array([2, 3, 2]), np.array([3, 3, 2])
    df = pd.DataFrame(
        {
            "dims": [a, a, a, b, b],
            "S": [np.array([1]), np.array([1]), np.array([], int), np.array([1]), np.array([1])],
            "ranks": [np.array([1, 1, 1])] * 5,
            "n_neg": [0, 0, 2, 1, 1],
            "n_zero": [4, 5, 0, 3, 3],
            "numeric_type": ["non_strict_saddle"] * 2 + ["strict_saddle"] * 3,
        }
    )
    st = an.strata(df)
    assert len(st) == 3
    flagged = st[~st["constant"]]
    assert len(flagged) == 1
    row = flagged.iloc[0]
    assert (row["dims"], row["S"], row["n"]) == ((2, 3, 2), (1,), 2)
    assert (row["n_zero_min"], row["n_zero_max"]) == (4, 5)


def test_strata_flag_a_varying_type():
    df = pd.DataFrame(
        {
            "dims": [(1, 1, 1)] * 2,
            "S": [()] * 2,
            "ranks": [(0, 0, 0)] * 2,
            "n_neg": [0, 0],
            "n_zero": [1, 1],
            "numeric_type": ["non_strict_saddle", "ambiguous"],
        }
    )
    assert not an.strata(df)["constant"].iloc[0]


def test_drop_null_counts_rows():
    df = pd.DataFrame({"a": [1.0, None, 3.0], "b": [1, 2, None]})
    kept, dropped = an.drop_null(df, ["a", "b"])
    assert dropped == 2 and kept.index.tolist() == [0]


# --- critical values ------------------------------------------------------------------------
@pytest.mark.parametrize(("d_y", "r"), [(1, 1), (3, 1), (4, 2), (5, 5), (5, 9)])
def test_n_critical_values_counts_index_sets(d_y, r):
    sets = [S for k in range(min(r, d_y) + 1) for S in combinations(range(d_y), k)]
    assert an.n_critical_values(d_y, r) == len(sets)


def test_match_critical_values_within_loss_tol():
    df = pd.DataFrame(
        {
            "loss": [1.0 + 1e-12, 5.0, 3.5],
            "loss_tol": [1e-10, 1e-10, 1e-10],
            "critical_values": [np.array([1.0, 2.0, 5.0])] * 3,
        }
    )
    m = an.match_critical_values(df)
    assert m["position"].tolist() == [0, 2, 1]  # 3.5 is nearest to 2.0 (ties go to the first)
    assert m["matched"].tolist() == [True, True, False]
    assert m["n_within"].tolist() == [1, 1, 0]
    assert m["n_values"].tolist() == [3, 3, 3]


def test_match_critical_values_counts_values_closer_than_the_tolerance():
    df = pd.DataFrame(
        {"loss": [2.0], "loss_tol": [0.1], "critical_values": [np.array([1.0, 1.95, 2.05])]}
    )
    m = an.match_critical_values(df)
    assert m["n_within"].tolist() == [2] and m["matched"].all()


def test_coverage_counts_reached_positions():
    df = pd.DataFrame(
        {
            "d_y": [2, 2, 2],
            "r": [1, 1, 1],
            "n_values": [3, 3, 3],
            "position": [0, 0, 2],
            "matched": [True, True, False],
        }
    )
    cov = an.coverage(df)
    row = cov.iloc[0]
    assert (row["points"], row["reached"], row["expected"], row["unmatched"]) == (3, 1, 3, 1)
    assert row["coverage"] == pytest.approx(1 / 3)


# --- claim scripts ------------------------------------------------------------------------------
def test_every_claim_passes_on_a_sampled_run(run_dir, capsys):
    code = script("run_claims").main([str(run_dir)])
    out = capsys.readouterr().out
    # the dynamics claims (analysis/claim_escape_*.py, claim_small_init.py) skip a sample run,
    # and claim_width_agreement.py one of hidden widths 1-4
    mods = script("run_claims").claim_modules()
    n_claims = sum(not getattr(m, "not_applicable", lambda _: None)(str(run_dir)) for m in mods)
    assert n_claims == 7
    assert code == 0, out
    assert f"{n_claims} of {n_claims} claims pass" in out
    assert out.count("\nPASS") == n_claims


def test_claims_fail_on_a_tampered_run(run_dir, tmp_path, capsys):
    def edit(df: pd.DataFrame) -> None:
        h2 = df.index[df["H"] == 2][0]
        df.loc[h2, "numeric_type"] = "non_strict_saddle"  # depth 2 and top-set claims
        crit = df.index[df["is_critical"]][0]
        df.loc[crit, "loss"] = df.loc[crit, "critical_value"] + 10 * df.loc[crit, "loss_tol"]

    bad = tampered_copy(run_dir, tmp_path / "bad", edit)
    verdicts = {
        name: script(name).check(str(bad))
        for name in ("claim_depth2_strict", "claim_loss_equals_value", "claim_critical_value_count")
    }
    for name, v in verdicts.items():
        assert not v.passed, name
        assert "FAIL" in v.render()
    assert script("run_claims").main([str(bad)]) == 1
    assert "claims pass" in capsys.readouterr().out


def test_claims_read_a_classify_run_as_one_data_set():
    """A classify run has no ``config`` in its manifest: its points share the users' data,
    so the critical-value claim takes its fixed-data branch (distinct observed losses per
    ``r``) instead of failing with KeyError (it did until 0.9.x)."""
    run = ROOT / "tests" / "data" / "analysis071" / "classify" / "run"
    v = script("claim_critical_value_count").check(str(run))
    text = v.render()
    assert v.passed, text
    df = mcland.load(run, columns=["is_critical", "r"])
    per_r = df[df["is_critical"]].groupby("r").size()
    assert len(per_r) > 1
    for r, count in per_r.items():  # one line per r, counted from the records here
        assert re.search(rf"r = {r}: \d+ distinct observed losses .*\({count} points\)", text)


def test_claim_script_exit_status_and_usage(run_dir):
    ok = subprocess.run(
        [sys.executable, str(ANALYSIS / "claim_nonstrict_top_set.py"), str(run_dir)],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.rstrip().endswith("PASS")
    usage = subprocess.run(
        [sys.executable, str(ANALYSIS / "claim_nonstrict_top_set.py")], capture_output=True
    )
    assert usage.returncode == 2


def test_type_table_script_runs(run_dir, capsys):
    script("type_table").main(str(run_dir))
    assert "points where theory and spectrum differ" in capsys.readouterr().out


# --- real-data example ---------------------------------------------------------------------
def test_linnerud_data_meet_the_assumptions(capsys):
    code = script("check_assumptions").main(str(ROOT / "runs" / "linnerud.toml"))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "m = 20 samples, d_x = 3, d_y = 3" in out
    assert "verdict       PASS" in out


def test_check_assumptions_fails_on_collinear_features(tmp_path, capsys):
    frame = pd.read_csv(ROOT / "runs" / "data" / "linnerud.csv")
    frame["Jumps"] = 2 * frame["Chins"]  # Sxx singular
    frame.to_csv(tmp_path / "bad.csv", index=False)
    cfg = (ROOT / "runs" / "linnerud.toml").read_text().replace("data/linnerud.csv", "bad.csv")
    (tmp_path / "bad.toml").write_text(cfg)
    assert script("check_assumptions").main(str(tmp_path / "bad.toml")) == 1
    assert "verdict       FAIL" in capsys.readouterr().out


def test_exported_linnerud_matches_scikit_learn(tmp_path):
    pytest.importorskip("sklearn")
    script("export_linnerud").main(tmp_path / "l.csv")
    assert (tmp_path / "l.csv").read_bytes() == (ROOT / "runs/data/linnerud.csv").read_bytes()
