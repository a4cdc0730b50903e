"""Check every claim of the paper on one run directory.

Usage: python analysis/run_claims.py RUN_DIR [--scheduler ADDRESS | --workers N]

Runs the ``claim_*.py`` scripts beside this file (in name order) on RUN_DIR, prints each
verdict and a summary, and exits with status 1 if any claim fails (2 on bad input). A
script may define ``not_applicable(run_dir) -> str | None``: when it returns a reason (the
dynamics claims on a run of another kind or experiment), the claim is listed as skipped,
with the reason, and not counted.  With ``--scheduler`` (or ``--workers``) the claims are
checked on a worker of that Dask cluster, where the data is (RUN_DIR and this directory as
the workers see them); the verdicts are printed here, as in process.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

from mcland import MclandError, __version__
from mcland.rundir.files import read_manifest
from mcland.stats import claim_modules as _claim_modules
from mcland.stats import claim_verdict_list, claim_verdicts

HERE = Path(__file__).resolve().parent


def claim_modules() -> list[ModuleType]:
    """The ``claim_*.py`` modules of this directory, loaded by path, in name order."""
    return _claim_modules(HERE)


def main(argv: list[str]) -> int:
    """Check every claim on ``argv = [RUN_DIR, --scheduler ADDRESS | --workers N]``; return
    the exit status."""
    scheduler = workers = None
    args = list(argv)
    try:
        for opt in ("--scheduler", "--workers"):
            if opt in args:
                i = args.index(opt)
                value = args[i + 1]
                del args[i : i + 2]
                if opt == "--scheduler":
                    scheduler = value
                else:
                    workers = int(value)
    except (IndexError, ValueError):
        args = []
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    run_dir = args[0]
    try:
        manifest = read_manifest(run_dir)
        print(
            f"run {run_dir}: n = {manifest['n']}, seed = {manifest.get('seed')}, written by mcland "
            f"{manifest['mcland_version']}; checked with mcland {__version__}\n"
        )
        if scheduler is not None or workers is not None:
            from mcland.execution.cluster import on_cluster

            outcomes = on_cluster(
                claim_verdict_list, str(HERE), run_dir, scheduler=scheduler, workers=workers
            )
        else:
            outcomes = claim_verdicts(HERE, run_dir)
        results, skipped = [], []
        for what, item, seconds in outcomes:
            if what == "skip":
                skipped.append(item)
                continue
            print(item.render(), f"  ({seconds:.1f} s)\n", sep="\n", flush=True)
            results.append(item)
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
