"""``mcland report``: the HTML report, its figures and lists, and the bad-input contract."""

from __future__ import annotations

import itertools
import re
import shutil
import socket
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import cli, refused
from sampled_run import SMALL_RUN_CONFIG, small_run, tampered_copy

import mcland
from mcland.report import REPORT_FILE, build_report
from mcland.rundir import runlog

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SECTIONS = [  # in page order: results first, metadata last
    "results",
    "fractions",
    "confusion",
    "critical-values",
    "spectra",
    "strata",
    "metadata",
]


class _Tables(HTMLParser):
    """The cell texts of every ``<table>`` of a page, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def tables(text: str) -> list[list[list[str]]]:
    parser = _Tables()
    parser.feed(text)
    return parser.tables


def metadata(text: str) -> dict[str, str]:
    """The report's metadata table: item -> value."""
    (meta,) = [t for t in tables(text) if t[0] == ["item", "value"]]
    return dict(meta[1:])


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


def test_report_leads_with_the_results_and_ends_with_the_configuration(report):
    text = report.read_text(encoding="utf-8")
    starts = [text.index(f'<section id="{anchor}">') for anchor in SECTIONS]
    assert starts == sorted(starts)
    first = text[: text.index('<section id="fractions">')]
    assert "Agreement:" in first and "numeric type ↓ / theory type →" in first
    assert "Resolved configuration (run.json)" not in first
    config = text.index("Resolved configuration (run.json)")
    assert text.rfind("<details>", 0, config) > text.index('<section id="metadata">')
    assert "THEORY.md" not in text and "docs/theory.md in the mcland repository" in text
    assert 'href="docs/' not in text and 'href="../' not in text


def test_report_counts_match_the_records(report, run_dir):
    df = mcland.load(run_dir, columns=["theory_type", "numeric_type"])
    results = report.read_text(encoding="utf-8").split('<section id="fractions">')[0]
    head, *rows = tables(results)[0]
    assert head[0] == "numeric type ↓ / theory type →"
    table = pd.DataFrame([r[1:] for r in rows], index=[r[0] for r in rows], columns=head[1:])
    counts = pd.crosstab(df["numeric_type"].astype(str), df["theory_type"].astype(str))
    for nu, th in itertools.product(counts.index, counts.columns):
        assert int(table.loc[nu, th]) == counts.loc[nu, th]
    assert int(table.loc["total", "total"]) == len(df)


def test_report_states_design_wall_time_and_sizes(report, run_dir):
    text = report.read_text(encoding="utf-8")
    assert "Marginal fractions describe the sampling design" in text
    assert "strata (architecture, S, rank profile) describe the landscape" in text
    (entry,) = runlog.read(run_dir)  # the fixture's run: one session
    wall = f"{runlog.format_seconds(entry['wall_seconds'])} (one session)"
    meta = metadata(text)
    assert (meta["wall time"], meta["hosts"]) == (wall, socket.gethostname())
    assert f"wall time {wall} on {socket.gethostname()}" in text  # the introduction
    assert "Sessions in runlog.jsonl" in text
    assert "3 / 3" in text  # shards present / planned
    assert str(run_dir) in text


def test_report_of_a_run_without_a_run_log(run_dir, tmp_path):
    old = tmp_path / "old"  # as written by mcland 0.5.0
    shutil.copytree(run_dir, old)
    (old / runlog.LOG_FILE).unlink()
    text = build_report(old, tmp_path / "out").read_text(encoding="utf-8")
    meta = metadata(text)
    assert meta["wall time"].startswith("not recorded (run written before run logs).")
    assert meta["hosts"] == "not recorded (run written before run logs)"
    assert "Sessions in runlog.jsonl" not in text
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in text


def test_report_sums_the_sessions_of_a_resumed_run(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "part-000002.parquet").unlink()
    mcland.run(SMALL_RUN_CONFIG, run, threads=1, progress=False)
    entries = runlog.read(run)
    assert len(entries) == 2
    total = runlog.format_seconds(sum(e["wall_seconds"] for e in entries))
    text = build_report(run, tmp_path / "out").read_text(encoding="utf-8")
    assert metadata(text)["wall time"] == f"{total} (2 sessions: the run and 1 resume(s))"


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
