"""The architecture of docs/architecture.md holds: the import-linter contracts of
pyproject.toml are kept (layers whose imports only point down, function-local imports
included; no cycle between the modules of any package), the contracts fail on an upward
import, and no module imports the package's root."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("import-linter is not installed (pip install -e '.[test]')")
    return subprocess.run(
        [exe, "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(root), "PATH": str(Path(sys.executable).parent)},
        check=False,
    )


def test_the_contracts_are_kept():
    proc = _lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 kept, 0 broken" in proc.stdout, proc.stdout[-2000:]


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # the run-directory layer reaching up into a kind of run, inside a function
        (
            "mcland/rundir/kinds.py",
            "def _up():\n    from mcland.classification.schema import record_schema\n",
            "The folders are the layers",
        ),
        # one kind importing another
        (
            "mcland/flow/plateaus.py",
            "from mcland.sampling import run\n",
            "The folders are the layers",
        ),
        # a cycle inside a package
        ("mcland/core/errors.py", "from mcland.core import config\n", "No import cycle"),
    ],
)
def test_the_contracts_catch_what_they_forbid(tmp_path, module, line, broken):
    shutil.copytree(
        ROOT / "mcland", tmp_path / "mcland", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text(encoding="utf-8") + "\n\n" + line, encoding="utf-8")
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert f"{broken}" in proc.stdout and "BROKEN" in proc.stdout, proc.stdout[-2000:]


def test_no_module_imports_the_package_root():
    """``mcland/__init__.py`` is the top: a module importing ``mcland`` itself would reach
    above every layer (import-linter's layers cannot name the root)."""
    graph = grimp.build_graph("mcland")
    assert not graph.find_modules_that_directly_import("mcland")


def test_the_kinds_are_registered_only_at_the_top():
    """The run-directory layer learns the kinds of run from ``mcland/__init__.py`` alone."""
    callers = sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "mcland").rglob("*.py")
        if ".register(" in p.read_text(encoding="utf-8")
    )
    assert callers == ["mcland/__init__.py"]
