"""``mcland report``: the HTML report, its figures and lists, and the bad-input contract."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import cli, refused
from sampled_run import SMALL_RUN_CONFIG, small_run, tampered_copy

import mcland
from mcland.report import REPORT_FILE, build_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SECTIONS = ["metadata", "fractions", "confusion", "critical-values", "spectra", "strata"]


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    return small_run(tmp_path_factory)


@pytest.fixture(scope="session")
def report(run_dir, tmp_path_factory) -> Path:
    return build_report(run_dir, tmp_path_factory.mktemp("report"))


def test_report_has_every_section_and_its_figures(report):
    text = report.read_text(encoding="utf-8")
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in text
    images = re.findall(r'<img src="([^"]+)"', text)
    expected = {"fractions", "critical_values", "inertia", "spectral_density", "escape"}
    assert {Path(i).stem for i in images} == expected
    for name in images:
        data = (report.parent / name).read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 10_000  # a drawn figure, not an empty canvas


def test_report_states_design_wall_time_and_sizes(report, run_dir):
    text = report.read_text(encoding="utf-8")
    assert "Marginal fractions describe the sampling design" in text
    assert "strata (architecture, S, rank profile) describe the landscape" in text
    assert "wall time" in text and "unknown" in text  # the run directory does not record it
    assert "3 / 3" in text  # shards present / planned
    assert str(run_dir) in text


def test_report_agreement_matches_the_records(report, run_dir):
    df = mcland.load(run_dir, columns=["theory_type", "numeric_type"])
    agree = int((df["theory_type"].astype(str) == df["numeric_type"].astype(str)).sum())
    assert f"Agreement: {agree} of {len(df)} points" in report.read_text(encoding="utf-8")


def test_report_lists_disagreements_and_flags_varying_strata(run_dir, tmp_path):
    picked: dict[str, int] = {}

    def edit(df: pd.DataFrame) -> None:
        i = df.index[df["numeric_type"] == "strict_saddle"][0]
        df.loc[i, "numeric_type"] = "ambiguous"
        picked["odd"] = int(df.loc[i, "sample_id"])
        a, b = df.index[[0, 1]]  # make point b share a's stratum with another index
        for col in ("dims", "S", "ranks"):  # whole-column assignment keeps the list cells
            cells = zip(df.index, df[col], strict=True)
            df[col] = [df.at[a, col] if i == b else v for i, v in cells]
        df.loc[b, "n_neg"] = df.loc[a, "n_neg"] + 1

    bad = tampered_copy(run_dir, tmp_path / "bad", edit)
    path = build_report(bad, tmp_path / "out")
    odd = pd.read_csv(path.parent / "disagreements.csv")
    assert odd["sample_id"].tolist() == [picked["odd"]]
    assert f"<td>{picked['odd']}</td>" in path.read_text(encoding="utf-8")
    flagged = pd.read_csv(path.parent / "strata_flagged.csv")
    assert len(flagged) >= 1
    assert (flagged["n_neg_max"] > flagged["n_neg_min"]).any()


def test_cli_report_default_out_is_inside_the_run(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    code, out, err = cli(capsys, "report", run)
    assert code == 0, err
    assert (run / "report" / REPORT_FILE).is_file()
    assert out.strip() == f"wrote {run / 'report' / REPORT_FILE}"


def test_cli_report_out_option(run_dir, tmp_path, capsys):
    code, out, err = cli(capsys, "report", run_dir, "--out", tmp_path / "r")
    assert code == 0, err
    assert (tmp_path / "r" / REPORT_FILE).is_file()


def test_cli_report_refuses_what_is_not_a_run(tmp_path, capsys):
    refused(capsys, tmp_path, "report", tmp_path / "missing", fragments=("not a directory",))
    (tmp_path / "plain").mkdir()
    msg = refused(capsys, tmp_path, "report", tmp_path / "plain")
    assert "not an mcland run directory" in msg


def test_cli_report_refuses_an_empty_run(run_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(run_dir / "run.json", empty / "run.json")
    refused(capsys, tmp_path, "report", empty, fragments=("no records",))


def test_representative_architectures_prefer_distinct_depths():
    from mcland.report.landscape import representative_architectures

    dims = [np.array([3, 4, 3])] * 12 + [np.array([3, 2, 3])] * 11 + [np.array([3, 4, 4, 3])] * 10
    picks = representative_architectures(pd.DataFrame({"dims": dims}), k=2)
    assert picks == [(3, 4, 3), (3, 4, 4, 3)]


def test_report_on_a_spectrum_free_run_states_what_it_left_out(tmp_path):
    cfg = {**SMALL_RUN_CONFIG, "classify": {"spectrum_free": True, "audit_fraction": 0.2}}
    run = tmp_path / "free"
    mcland.run(cfg, run, progress=False)
    df = mcland.load(run, columns=["n_neg", "audit_type"])
    unaudited, audited = int(df["n_neg"].isna().sum()), int(df["audit_type"].notna().sum())
    assert unaudited > 0 and audited > 0
    text = build_report(run, tmp_path / "out").read_text(encoding="utf-8")
    assert f"{unaudited} points have no inertia" in text
    assert f"Spectrum-free run: {audited} audited points" in text
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in text
