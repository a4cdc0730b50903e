"""Width as a studied axis (issue 21): the report's width section and the claim
``analysis/claim_width_agreement.py``, on a small run whose hidden widths spread over
2-40 (log-uniform), checked against an independent pandas computation on the records."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sampled_run import tampered_copy

import mcland
from mcland import report
from mcland.report import width_figures
from mcland.report.html import Section
from mcland.report.width import (
    band_table,
    depth_band_counts,
    fractions_by_band,
    index_by_depth,
    width_section,
    width_spread,
)
from mcland.rundir.scan import Scan
from mcland.stats import wilson_interval

WIDE_ISH = {
    "n": 60,
    "seed": 7,
    "architecture": {"depth": [2, 3], "d_y": [1, 3], "d_x_extra": [0, 2], "hidden": [2, 40],
                     "hidden_log_uniform": True},
    "data": {"m": 30},
    "output": {"spectrum": True, "shard_size": 20},
}  # fmt: skip
NARROW = {**WIDE_ISH, "n": 20, "architecture": {**WIDE_ISH["architecture"], "hidden": [1, 4]}}
ANALYSIS = Path(__file__).resolve().parents[1] / "analysis"
CLAIM = ANALYSIS / "claim_width_agreement.py"
CLAIM2 = ANALYSIS / "claim_depth2_index.py"
CLAIM3 = ANALYSIS / "claim_minimizer_nullity.py"


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("width") / "wide"
    mcland.run(WIDE_ISH, out, progress=False)
    return out


@pytest.fixture(scope="module")
def claim():
    spec = importlib.util.spec_from_file_location("claim_width_agreement", CLAIM)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _records(run: Path) -> pd.DataFrame:
    """The records with their width and octave band, computed here in Python."""
    df = mcland.load(run)
    df["w"] = [int(max(d[1:-1])) for d in df["dims"]]
    df["band"] = [w.bit_length() - 1 for w in df["w"]]  # 2^k <= w < 2^(k+1)
    for c in ("theory_type", "numeric_type", "verdict"):
        df[c] = df[c].astype(str)
    return df


def test_band_table_matches_pandas(wide_run: Path, tmp_path: Path) -> None:
    df = _records(wide_run)
    with Scan(wide_run) as scan:
        assert width_spread(scan) is None
        got = band_table(scan)
        numeric = fractions_by_band(scan, "numeric_type")
        theory = fractions_by_band(scan, "theory_type")
        sec = width_section(scan, tmp_path)
        by_depth = depth_band_counts(scan)
        index = index_by_depth(scan)
    assert sec is not None and (tmp_path / "width.png").stat().st_size > 0
    assert sec.anchor == "width" and "width.png" in sec.render()
    g = df.groupby("band")
    strict = df[(df["numeric_type"] == "strict_saddle") & df["n_neg"].notna()].groupby("band")
    n = g.size()
    assert got["band"].tolist() == sorted(df["band"].unique()) and len(got) >= 4
    np.testing.assert_array_equal(got["points"], n)
    np.testing.assert_array_equal(got["N_median"], g["N"].median())
    agree = g.apply(lambda x: (x["theory_type"] == x["numeric_type"]).sum())
    amb = g.apply(lambda x: (x["verdict"] == "ambiguous").sum())
    np.testing.assert_allclose(got["agree"], agree / n, rtol=0, atol=0)
    np.testing.assert_allclose(got["ambiguous"], amb / n, rtol=0, atol=0)
    np.testing.assert_allclose(got["agree_lo"], wilson_interval(agree.to_numpy(), n.to_numpy())[0])
    idx = n.index
    np.testing.assert_array_equal(got["strict"], strict.size().reindex(idx, fill_value=0))
    np.testing.assert_array_equal(got["n_neg_median"], strict["n_neg"].median().reindex(idx))
    np.testing.assert_array_equal(got["n_neg_max"], strict["n_neg"].max().reindex(idx))
    frac = strict.apply(lambda x: (x["n_neg"] / x["N"]).median()).reindex(idx)
    per_w = strict.apply(lambda x: (x["n_neg"] / x["w"]).median()).reindex(idx)
    zero = g.apply(lambda x: (x["n_zero"] / x["N"]).median())
    np.testing.assert_allclose(got["index_fraction_median"], frac, rtol=1e-15)
    np.testing.assert_allclose(got["index_per_width_median"], per_w, rtol=1e-15)
    np.testing.assert_allclose(got["zero_fraction_median"], zero, rtol=1e-15)
    strict_all = df[(df["numeric_type"] == "strict_saddle") & df["n_neg"].notna()]
    per = strict_all.groupby(["H", "band"])["n_neg"].agg(["size", "median"]).reset_index()
    np.testing.assert_array_equal(index[["H", "band", "strict"]], per[["H", "band", "size"]])
    np.testing.assert_array_equal(index["n_neg_median"], per["median"])
    cross = pd.crosstab(df["H"].astype(int), df["band"])
    np.testing.assert_array_equal(by_depth.to_numpy(), cross.to_numpy())
    assert list(by_depth.columns) == [f"{2**k}-{2 ** (k + 1) - 1}" for k in cross.columns]
    for tidy, col in ((numeric, "numeric_type"), (theory, "theory_type")):
        counts = pd.crosstab(df["band"], df[col])
        for (k, t), c in counts.stack().items():
            row = tidy[(tidy["band"] == k) & (tidy["type"] == t)]
            assert int(row["count"].iloc[0]) == c and int(row["total"].iloc[0]) == n[k]


def test_section_only_where_widths_span(
    wide_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, claim
) -> None:
    narrow = tmp_path / "narrow"
    mcland.run(NARROW, narrow, progress=False)
    with Scan(narrow) as scan:
        why = width_spread(scan)
        assert why is not None and "needed" in why
        assert width_section(scan, tmp_path) is None
    assert why in claim.not_applicable(str(narrow))  # the claim skips the same runs
    # the page of a sample run carries the section (the other sections stubbed: cheap)
    for name in ("results", "fractions", "confusion", "critical_values", "spectra", "strata",
                 "metadata"):  # fmt: skip
        monkeypatch.setattr(report, f"{name}_section", lambda *a, _n=name: Section(_n, _n))
    monkeypatch.setattr(width_figures, "width_axis", lambda *a: None)  # drawn in the test above
    for run, shown in ((wide_run, True), (narrow, False)):
        page = report.build_report(run, tmp_path / f"report-{shown}").read_text("utf-8")
        assert ('id="width"' in page) is shown and ("width.png" in page) is shown
        assert 'id="fractions"' in page


def test_claim_known_values(wide_run: Path, tmp_path: Path, claim) -> None:
    df = _records(wide_run)
    assert claim.not_applicable(str(wide_run)) is None
    v = claim.check(str(wide_run))
    assert v.passed, v.render()
    with Scan(wide_run) as scan:
        c = claim.band_counts(scan)
    np.testing.assert_array_equal(c["points"], df.groupby("band").size())
    assert int(c["disagree"].sum()) == 0 and int(c["index_wrong"].sum()) == 0
    # the chi-square within depths, from the records: one table per depth, summed
    from scipy.stats import chi2, chi2_contingency

    three = df[df["theory_type"].isin(["global_minimizer", "strict_saddle", "non_strict_saddle"])]
    stat = dof = 0
    for _, g in three.groupby("H"):
        t = pd.crosstab(g["band"], g["theory_type"]).to_numpy()
        if min(t.shape) > 1:
            res = chi2_contingency(t, correction=False)
            stat, dof = stat + res.statistic, dof + res.dof
    with Scan(wide_run) as scan:
        p, s, d, _ = claim.homogeneity(scan)
    assert d == dof > 0 and s == pytest.approx(stat, rel=1e-12)
    assert p == pytest.approx(chi2.sf(stat, dof), rel=1e-12)
    # one theory strict saddle of the first shard (n_neg >= 1) relabelled a global
    # minimizer: a disagreement and a wrong index in its band, and only there
    first = df[df["sample_id"] < 20]
    pick = first[(first["theory_type"] == "strict_saddle") & (first["n_neg"] > 0)].iloc[0]

    def edit(d: pd.DataFrame) -> None:
        d.loc[d["sample_id"] == pick["sample_id"], "theory_type"] = "global_minimizer"

    bad = tampered_copy(wide_run, tmp_path / "bad", edit)
    v = claim.check(str(bad))
    assert not v.passed
    failed = [line for line in v.lines if line.startswith("FAIL")]
    label = f"w {2 ** pick['band']}-{2 ** (pick['band'] + 1) - 1} "
    assert len(failed) == 1 and label in failed[0], v.render()
    assert "1 of" in failed[0] and "index wrong on 1 of" in failed[0]


def predicted_index(d_1: int, d_y: int, S: object) -> int:
    """The depth-2 index, counted directly: per i not in S, the unused hidden units plus the
    units of S carrying a direction j > i (smaller eigenvalue)."""
    S = {int(j) for j in np.asarray(S)}
    return sum(d_1 - len(S) + sum(j > i for j in S) for i in range(1, d_y + 1) if i not in S)


def test_depth2_index_claim(wide_run: Path, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("claim_depth2_index", CLAIM2)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    df = _records(wide_run)
    h2 = df[(df["H"] == 2) & df["is_critical"] & (df["d_x"] >= df["d_y"])]
    pred = [
        predicted_index(int(d[1]), int(dy), S)
        for d, dy, S in zip(h2["dims"], h2["d_y"], h2["S"], strict=True)
    ]
    assert (h2["n_neg"].to_numpy() == np.array(pred)).all() and len(h2) >= 20
    assert max(pred) >= 2 * 32 - 2  # the wide bands reached: index ~ (d_y - s) d_1
    v = mod.check(str(wide_run))
    assert v.passed and f"{len(h2)} of {int((df['H'] == 2).sum())} depth-2" in v.lines[0]
    # one strict saddle's index off by one (as if an eigenvalue had fallen into the band)
    first = h2[(h2["sample_id"] < 20) & (h2["n_neg"] > 0)].iloc[0]

    def edit(d: pd.DataFrame) -> None:
        d.loc[d["sample_id"] == first["sample_id"], "n_neg"] -= 1

    v = mod.check(str(tampered_copy(wide_run, tmp_path / "bad", edit)))
    failed = [line for line in v.lines if line.startswith("FAIL")]
    label = f"d_1 {2 ** first['band']}-{2 ** (first['band'] + 1) - 1} "
    assert not v.passed and len(failed) == 1 and label in failed[0], v.render()


def test_minimizer_nullity_claim(wide_run: Path, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("claim_minimizer_nullity", CLAIM3)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    df = _records(wide_run)
    g = df[df["theory_type"] == "global_minimizer"]
    manifold = g["r"] * (g["d_x"] + g["d_y"] - g["r"])  # rank-r d_y x d_x matrices
    assert (g["n_pos"] == manifold).all() and (g["n_neg"] == 0).all() and len(g) >= 10
    assert ((g["n_zero"] + g["n_pos"]) == g["N"]).all() and (g["n_zero"] > 0).all()
    v = mod.check(str(wide_run))
    assert v.passed and f"{len(g)} of {len(g)} global minimizers" in v.lines[0], v.render()
    # one minimizer with one positive eigenvalue counted as zero
    first = g[g["sample_id"] < 20].iloc[0]

    def edit(d: pd.DataFrame) -> None:
        at = d["sample_id"] == first["sample_id"]
        d.loc[at, "n_pos"] -= 1
        d.loc[at, "n_zero"] += 1

    v = mod.check(str(tampered_copy(wide_run, tmp_path / "bad", edit)))
    failed = [line for line in v.lines if line.startswith("FAIL")]
    label = f"w {2 ** first['band']}-{2 ** (first['band'] + 1) - 1} "
    assert not v.passed and len(failed) == 1 and label in failed[0], v.render()
    assert "largest |n_pos - r (d_x + d_y - r)| 1" in failed[0]
