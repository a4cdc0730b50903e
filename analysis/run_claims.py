"""Check every claim of the paper on one run directory.

Usage: python analysis/run_claims.py RUN_DIR

Runs the ``claim_*.py`` scripts beside this file (in name order) on RUN_DIR, prints each
verdict and a summary, and exits with status 1 if any claim fails (2 on bad input). A
script may define ``not_applicable(run_dir) -> str | None``: when it returns a reason (the
dynamics claims on a run of another kind or experiment), the claim is listed as skipped,
with the reason, and not counted.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

from mcland import MclandError, __version__
from mcland.rundir.files import read_manifest

HERE = Path(__file__).resolve().parent


def claim_modules() -> list[ModuleType]:
    """The ``claim_*.py`` modules of this directory, loaded by path, in name order."""
    mods = []
    for path in sorted(HERE.glob("claim_*.py")):
        spec = importlib.util.spec_from_file_location(f"mcland_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mods.append(mod)
    return mods


def main(argv: list[str]) -> int:
    """Check every claim on ``argv = [RUN_DIR]``; return the exit status."""
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    run_dir = argv[0]
    try:
        manifest = read_manifest(run_dir)
        print(
            f"run {run_dir}: n = {manifest['n']}, seed = {manifest['seed']}, written by mcland "
            f"{manifest['mcland_version']}; checked with mcland {__version__}\n"
        )
        results, skipped = [], []
        for mod in claim_modules():
            why = mod.not_applicable(run_dir) if hasattr(mod, "not_applicable") else None
            if why:
                skipped.append(f"{mod.CLAIM} ({why})")
                continue
            t0 = time.perf_counter()
            verdict = mod.check(run_dir)
            print(verdict.render(), f"  ({time.perf_counter() - t0:.1f} s)\n", sep="\n", flush=True)
            results.append(verdict)
    except MclandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("summary")
    for v in results:
        print(f"  {'PASS' if v.passed else 'FAIL'}  {v.claim}")
    for line in skipped:
        print(f"  skip  {line}")
    failed = sum(not v.passed for v in results)
    print(f"{len(results) - failed} of {len(results)} claims pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
