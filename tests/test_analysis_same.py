"""The bounded-memory analysis gives the answers of the in-memory one (mcland 0.7.1).

``tests/data/analysis071`` holds small run directories of every kind and what mcland 0.7.1
wrote for them (made by its ``make.py`` from commit 8317bb0): the report's HTML and CSV
lists, the claims' output and their tables.  The report and the claims of this version,
which never load a run into memory, must reproduce them byte for byte (paths and timings
aside).  The PNG figures are not compared: their bytes depend on the matplotlib build.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shutil
import sys
from pathlib import Path

import pytest

import mcland.stats
from mcland.report import build_report, dynamics_figures, figures, given_figures

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "analysis071"
RUNS = sorted(p.name for p in DATA.iterdir() if (p / "run").is_dir())
DYNAMICS_CLAIMS = ("claim_escape_linear", "claim_escape_nonstrict", "claim_small_init")
# claims added after 0.7.1 (no reference output): left out of the comparison, tested in
# tests/test_width_axis.py
NEW_CLAIMS = ("claim_depth2_index", "claim_minimizer_nullity", "claim_width_agreement")


@pytest.fixture(autouse=True)
def no_png(monkeypatch):
    """The figures are drawn but not rendered to PNG: their bytes are not compared here
    (tests/test_report*.py render them), and rendering is four fifths of a small run's
    report (4.8 s of CPU instead of 24 s for the ten reports)."""

    def save(fig, path: Path) -> None:
        Path(path).write_bytes(b"")

    for module in (figures, dynamics_figures, given_figures):
        monkeypatch.setattr(module, "_save", save)


def script(name: str):
    """``analysis/NAME.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"same_{name}", ROOT / "analysis" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def normalise(text: str, run_dir: Path) -> str:
    """As ``make.py`` does: the run directory's path and the timings as placeholders."""
    text = text.replace(str(run_dir), "{RUN_DIR}")
    text = re.sub(r"  \(\d+\.\d s\)\n", "  (TIME)\n", text)
    return re.sub(r"checked with mcland \S+", "checked with mcland VERSION", text)


FARTHEST = "points farthest from every critical value:</p>"


def ties_unordered(page: str) -> str:
    """``page`` with the rows of the classify report's farthest-points table sorted.

    0.7.1 sorted them with NumPy's quicksort, which orders equal distances (exact points,
    distance 0) as its SIMD implementation on the machine happens to; this version lists
    them by row.  The rows must be the same, in any order among ties (the order of the
    distances themselves is checked by :func:`test_farthest_points_are_ordered_by_row`).
    """
    if FARTHEST not in page:
        return page
    head, tail = page.split(FARTHEST, 1)
    start, end = tail.index("<tbody>") + 7, tail.index("</tbody>")
    rows = re.findall(r"<tr>.*?</tr>", tail[start:end])
    return head + FARTHEST + tail[:start] + "".join(sorted(rows)) + tail[end:]


@pytest.fixture(params=RUNS)
def run(request, tmp_path) -> tuple[str, Path]:
    """A writable copy of one reference run directory (the report goes beside it)."""
    dst = tmp_path / "run"
    shutil.copytree(DATA / request.param / "run", dst)
    return request.param, dst


def test_report_is_that_of_0_7_1(run, tmp_path):
    name, run_dir = run
    expected = DATA / name / "expected" / "report"
    page = build_report(run_dir, tmp_path / "report")
    got = ties_unordered(normalise(page.read_text(encoding="utf-8"), run_dir))
    assert got == ties_unordered((expected / "report.html").read_text(encoding="utf-8"))
    for csv in expected.glob("*.csv"):
        assert (page.parent / csv.name).read_text() == csv.read_text(), csv.name
    written = {p.name for p in page.parent.glob("*.csv")}
    assert written == {p.name for p in expected.glob("*.csv")}


def test_claims_are_those_of_0_7_1(run, tmp_path, monkeypatch):
    name, run_dir = run
    known = mcland.stats.claim_modules
    monkeypatch.setattr(
        mcland.stats,
        "claim_modules",
        lambda d: [m for m in known(d) if m.__name__.removeprefix("mcland_") not in NEW_CLAIMS],
    )
    expected = DATA / name / "expected"
    if not (expected / "claims.txt").exists():
        pytest.skip("0.7.1's run_claims failed on this kind (KeyError 'seed' of a classify run)")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = script("run_claims").main([str(run_dir)])
    got = normalise(buf.getvalue(), run_dir) + f"exit {code}\n"
    assert got == (expected / "claims.txt").read_text()
    if not (expected / "tables").is_dir():
        return
    for mod in DYNAMICS_CLAIMS:
        m = script(mod)
        if m.not_applicable(str(run_dir)) is None:
            with contextlib.redirect_stdout(io.StringIO()):
                m.main([str(run_dir), "--tables", str(tmp_path / "tables")])
    for csv in (expected / "tables").glob("*.csv"):
        assert (tmp_path / "tables" / csv.name).read_text() == csv.read_text(), csv.name


def test_farthest_points_are_ordered_by_row(tmp_path):
    """Equal distances are listed by row (deterministic, unlike 0.7.1's quicksort)."""
    run_dir = tmp_path / "run"
    shutil.copytree(DATA / "classify" / "run", run_dir)
    page = build_report(run_dir, tmp_path / "report").read_text(encoding="utf-8")
    tail = page.split(FARTHEST, 1)[1]
    body = tail[tail.index("<tbody>") : tail.index("</tbody>")]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr>.*?</tr>", body)]
    keys = [(-float(c[6]), int(c[0])) for c in cells]  # distance (descending), then row
    assert len(keys) == 16 and keys == sorted(keys)
    assert sum(k[0] == 0 for k in keys) == 5  # the exact points tie at 0


def test_the_reference_data_is_what_make_py_describes():
    assert set(RUNS) == {"classify", "escape", "escape_claim", "free", "linnerud", "refine",
                         "sample", "small_init", "small_init_claim", "tampered"}  # fmt: skip
    assert sys.version_info >= (3, 11)
