"""``mcland report`` on classify and dynamics run directories: the sections and figures of
each kind, and the numbers of the page against the records."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import cli
from sampled_run import tampered_copy
from test_report import PNG_MAGIC, metadata, tables
from test_report_browser import open_in_chromium, problems

import mcland
from mcland.classification import run as classify_run
from mcland.flow import run as dynamics_run
from mcland.points.inspect import split_layers
from mcland.report import REPORT_FILE, build_report
from mcland.report.small_init import in_order, sequence_text
from mcland.stats import median_interval

ROOT = Path(__file__).resolve().parents[1]
LINNERUD = {
    "n": 16,
    "seed": 7,
    "architecture": {"depth": [2, 3], "hidden": [1, 3]},
    "data": {
        "source": "csv",
        "path": str(ROOT / "runs" / "data" / "linnerud.csv"),
        "x_columns": ["Chins", "Situps", "Jumps"],
        "y_columns": ["Weight", "Waist", "Pulse"],
    },
    "output": {"weights": True},
}
# relative perturbations of the 16 drawn points: exact, near-critical, far from any
SIZES = [0, 0, 0, 0, 1e-8, 1e-6, 1e-4, 1e-3, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 0.3, 1.0]
# seed 5: strict and non-strict saddles, one point that hits the budget (escape; with the
# explicit integrator, which the stiff point holds by stability: auto would escape);
# seed 4: budget hits and several visited-S sequences (small_init); ~0.1 s each once compiled
DYNAMICS = {
    "n": 4,
    "architecture": {"depth": [2, 3], "d_y": [2, 3], "hidden": [1, 3]},
    "points": {"weight_global": 0.2},
    "data": {"source": "gaussian", "m": 20},
}
ESCAPE = {
    **DYNAMICS,
    "seed": 5,
    "dynamics": {
        "experiment": "escape",
        "deltas": [1e-2, 1e-4],
        "max_evals": 5000,
        "n_record": 32,
        "integrator": "explicit",
    },
}
SMALL_INIT = {
    **DYNAMICS,
    "seed": 4,
    "dynamics": {
        "experiment": "small_init",
        "eps": [1e-2, 1e-4],
        "max_evals": 5000,
        "n_record": 32,
    },
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Run directories: classify without and with refine, escape, small_init."""
    root = tmp_path_factory.mktemp("kinds")
    df = mcland.sample(LINNERUD, threads=1)
    rng = np.random.default_rng(1)
    points = [
        [
            W + s * np.linalg.norm(W) * rng.standard_normal(W.shape) / np.sqrt(W.size)
            for W in split_layers(np.asarray(w), np.asarray(d, np.int64))
        ]
        for w, d, s in zip(df.weights, df.dims, SIZES, strict=True)
    ]
    _, X, Y = mcland.draw_point(LINNERUD, 0)
    out = {}
    for name, refine in (("classify", False), ("refine", True)):
        out[name] = root / name
        classify_run.run(points, X, Y, out[name], refine=refine, shard_size=10, progress=False)
    for name, cfg in (("escape", ESCAPE), ("small_init", SMALL_INIT)):
        out[name] = root / name
        dynamics_run.run(cfg, out[name], progress=False)
    return out


@pytest.fixture(scope="module")
def reports(runs, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reports")
    return {name: build_report(run, root / name) for name, run in runs.items()}


def _sections(text: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)">', text)


def _table(text: str, *head: str) -> dict[str, dict[str, str]]:
    """The table whose header starts with ``head``: row label -> column -> cell."""
    (found,) = [t for t in tables(text) if t[0][: len(head)] == list(head)]
    head = found[0]
    return {row[0]: dict(zip(head[1:], row[1:], strict=True)) for row in found[1:]}


def _figures_exist(report: Path, text: str) -> list[str]:
    srcs = re.findall(r'<img src="([^"]+)"', text)
    for src in srcs:
        assert (report.parent / src).read_bytes()[:8] == PNG_MAGIC, src
    return srcs


SECTIONS = {
    "classify": ["results", "nearest", "critical-values", "metadata"],
    "refine": ["results", "nearest", "refine", "critical-values", "metadata"],
    "escape": ["results", "escape-times", "escape-rates", "curves", "metadata"],
    "small_init": ["results", "plateau-values", "visited", "durations", "curves", "metadata"],
}
FIGURES = {
    "classify": {"nearest_distance.png", "critical_values.png"},
    "refine": {"nearest_distance.png", "refine.png", "critical_values.png"},
    "escape": {"escape_times.png", "escape_rates.png", "loss_curves.png"},
    "small_init": {"plateau_values.png", "visited.csv", "plateau_durations.png", "loss_curves.png"},
}


@pytest.mark.parametrize("name", list(SECTIONS))
def test_each_kind_has_its_sections_and_figures(reports, name):
    text = reports[name].read_text(encoding="utf-8")
    assert _sections(text) == SECTIONS[name]
    srcs = _figures_exist(reports[name], text)
    written = {p.name for p in reports[name].parent.iterdir()}
    assert FIGURES[name] <= written
    assert {s for s in FIGURES[name] if s.endswith(".png")} <= set(srcs)


def test_classify_counts_match_the_records(reports, runs):
    text = reports["classify"].read_text(encoding="utf-8")
    df = mcland.load(runs["classify"])
    crit = int(df.is_critical.sum())
    assert f"Critical: {crit} of {len(df)} points" in text
    assert 0 < crit < len(df)  # both kinds present: the check can fail
    counts = _table(text, "numeric type ↓ / theory type →")
    want = pd.crosstab(df.numeric_type.astype(str), df.theory_type.astype(str))
    for num in want.index:
        for theo in want.columns:
            assert int(counts[num][theo]) == want.loc[num, theo], (num, theo)
    assert int(counts["total"]["total"]) == len(df)
    near = _table(text, "points")
    d = df.nearest_critical_distance
    assert int(near["all"]["within 1 loss_tol"]) == int((d <= 1).sum())
    assert int(near["not critical"]["count"]) == len(df) - crit
    assert "refine" not in _sections(text)


def test_refine_section_matches_the_records(reports, runs):
    text = reports["refine"].read_text(encoding="utf-8")
    df = mcland.load(runs["refine"])
    conv = int(df.refine_converged.astype(bool).sum())
    moved = int((df.refine_distance > 0).sum())
    assert f"Converged: {conv} of {len(df)} points; {moved} moved" in text
    by = _table(text, "input_grad_rel ≥")
    assert sum(int(r["points"]) for r in by.values()) == len(df)
    assert sum(int(r["converged"]) for r in by.values()) == conv
    assert "The record columns describe the refined points." in text


def test_escape_status_counts_match_the_records(reports, runs):
    text = reports["escape"].read_text(encoding="utf-8")
    df = mcland.load(runs["escape"])
    status = df.status.astype(str)
    budget = int(status.isin(["budget", "escaped_budget"]).sum())
    assert budget > 0  # the fixture hits the budget on purpose
    assert f"{len(df)} runs from {df.sample_id.nunique()} points; {budget} hit a budget" in text
    counts = _table(text, "status ↓ / theory type of the point →")
    want = pd.crosstab(status, df.theory_type.astype(str))
    for st in want.index:
        for t in want.columns:
            assert int(counts[st][t]) == want.loc[st, t], (st, t)
    assert int(counts["total"]["total"]) == len(df)
    assert '<tr class="flag"><td class="l">budget</td>' in text  # budget rows highlighted
    meta = metadata(text)
    assert (meta["experiment"], meta["integrator"]) == ("escape", "explicit")
    assert int(meta["points present"]) == df.sample_id.nunique() == ESCAPE["n"]
    assert int(meta["records present (one per point and delta)"]) == len(df)


def test_escape_medians_match_the_records(reports, runs):
    text = reports["escape"].read_text(encoding="utf-8")
    df = mcland.load(runs["escape"])
    (medians,) = [t for t in tables(text) if t[0][:3] == ["theory_type", "delta", "runs"]]
    head = medians[0]
    rows = [dict(zip(head, r, strict=True)) for r in medians[1:]]
    types = {str(t) for t in df.theory_type} & {"strict_saddle", "non_strict_saddle"}
    assert {r["theory_type"] for r in rows} == types == {"strict_saddle", "non_strict_saddle"}
    for r in rows:
        g = df[
            (df.theory_type.astype(str) == r["theory_type"])
            & np.isclose(df.delta, float(r["delta"]))
        ]
        steps = np.where(g.status.astype(str) == "budget", np.inf, g.gd_steps)
        assert int(r["runs"]) == len(g)
        assert int(r["budget"]) == int(np.isinf(steps).sum())
        assert float(r["median"]) == pytest.approx(np.median(steps), rel=1e-3)


def test_small_init_plateaus_and_sequences_match_the_records(reports, runs):
    text = reports["small_init"].read_text(encoding="utf-8")
    df = mcland.load(runs["small_init"])
    plateaus = _table(text, "plateau", "count")
    assert int(plateaus["all"]["count"]) == int(df.n_plateaus.sum()) > 0
    seqs = _table(text, "visited S")
    want = df.visited_S.map(sequence_text).value_counts()
    assert len(want) > 1
    assert {k: int(v["runs"]) for k, v in seqs.items()} == want.to_dict()
    n_order = int(df.visited_S.map(in_order).sum())
    assert f"{n_order} of {len(df)} runs visit top sets" in text
    csv = pd.read_csv(reports["small_init"].parent / "visited.csv")
    assert csv["runs"].sum() == len(df)


@pytest.mark.parametrize(
    ("visited", "ordered"),
    [
        ([[], [1], [1, 2]], True),
        ([[1], [1, 2, 3]], True),
        ([[]], True),
        ([[], [2]], False),
        ([[1, 2], [1]], False),
        ([[1], [1]], False),
    ],
)
def test_in_order_reads_the_staircase(visited, ordered):
    assert in_order([np.array(s, np.int8) for s in visited]) is ordered


def test_median_interval_is_the_order_statistic_interval():
    # the textbook distribution-free 95% intervals: n = 10 -> (x_2, x_9); n = 100 -> (x_40, x_61)
    assert median_interval(np.arange(1.0, 11.0)) == (5.5, 2.0, 9.0)
    assert median_interval(np.arange(100.0, 0.0, -1.0)) == (50.5, 40.0, 61.0)
    assert median_interval(np.array([3.0, 1.0, 2.0])) == (2.0, 1.0, 3.0)  # n <= 5: the range
    assert median_interval(np.array([1.0, np.inf, np.inf])) == (np.inf, 1.0, np.inf)
    assert all(np.isnan(median_interval(np.array([]))))


def test_cli_report_on_a_dynamics_run(runs, tmp_path, capsys):
    code, out, err = cli(capsys, "report", runs["small_init"], "--out", tmp_path / "r")
    assert code == 0, err
    assert (tmp_path / "r" / REPORT_FILE).exists()
    assert "Sequences of visited index sets S" in (tmp_path / "r" / REPORT_FILE).read_text()


@pytest.mark.parametrize("name", ["refine", "escape", "small_init"])
def test_kinds_open_cleanly_in_chromium(reports, name, tmp_path):
    verdict, console = open_in_chromium(reports[name], tmp_path)
    assert problems(verdict, console) == []
    srcs = re.findall(r'<img src="([^"]+)"', reports[name].read_text(encoding="utf-8"))
    assert [i["src"] for i in verdict["images"]] == srcs and len(srcs) >= 3
    assert len(verdict["links"]) >= len(SECTIONS[name])  # the table of contents at least


def _degenerate(df: pd.DataFrame) -> None:
    """In place: every run hit the budget at once (no escape, plateau or recorded loss)."""
    df["status"] = "budget"
    nan = [np.full(len(c), np.nan) for c in df["loss_curve"]]
    df["loss_curve"] = pd.Series(nan, index=df.index, dtype=object)
    for col in ("t_escape", "gd_steps", "t_linear"):
        if col in df:
            df[col] = np.nan
    if "plateaus" in df:
        df["plateaus"] = pd.Series([[] for _ in range(len(df))], index=df.index, dtype=object)
        df["n_plateaus"] = 0


@pytest.mark.parametrize("name", ["escape", "small_init"])
def test_dynamics_report_of_runs_that_all_hit_the_budget(runs, name, tmp_path):
    run = tampered_copy(runs[name], tmp_path / "run", _degenerate)
    df = mcland.load(run)
    assert (df.status == "budget").all() and df.loss_curve.map(lambda c: np.isnan(c).all()).all()
    text = build_report(run, tmp_path / "report").read_text(encoding="utf-8")
    assert f"{len(df)} runs from {df.sample_id.nunique()} points; {len(df)} hit a budget" in text
    if name == "escape":
        assert "∞ (budget)" in text and "No strict saddle with an escape time." in text
    else:
        assert "No plateau was detected in any run." in text


def test_incomplete_note_counts_points_against_the_plan():
    from mcland.report.html import Section
    from mcland.report.sections import add_incomplete_note

    sec = Section("x", "x")
    add_incomplete_note(sec, 5, {"n": 5})
    assert not sec.parts
    add_incomplete_note(sec, 3, {"n": 5})
    assert "incomplete: 3 of 5 points present" in sec.render()
