"""The code passes the project's ruff configuration (pyproject.toml)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args", [["check"], ["format", "--check"]])
def test_ruff(args):
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed (pip install -e '.[test]')")
    proc = subprocess.run(
        [ruff, *args, "mcland", "tests", "analysis"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _mcland_imports(path: Path) -> list[tuple[str, bool]]:
    """``(module, inside a function)`` of every ``mcland`` import in the file ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nested = {
        id(node)
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(fn)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mcland"):
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("mcland")]
        else:
            continue
        found += [(name, id(node) in nested) for name in names]
    return found


def test_the_pipeline_has_no_import_cycle():
    """pipeline.py imports neither of the modules built on it, which import it (and the
    version) at module level, not inside functions."""
    pkg = ROOT / "mcland"
    users = {"mcland.sampling", "mcland.distributed"}
    assert not [m for m, _ in _mcland_imports(pkg / "pipeline.py") if m in users]
    for name in ("sampling.py", "distributed.py", "runlog.py", "bench/__init__.py"):
        late = [m for m, inside in _mcland_imports(pkg / name) if inside]
        assert not late, f"{name} imports {late} inside a function"
