"""Wall time of one run in-process (2 threads) vs on a 2-worker Dask LocalCluster.

Usage: python benchmarks/dask_vs_local.py [--config runs/quick.toml] [--n 100000]
       [--workdir /tmp/mcland-bench]

Both runs are ``mcland sample`` subprocesses timed from start to exit (including Python
start-up and, for Dask, starting the cluster); the records are then compared byte for
byte.  Prints one JSON object.  The in-process run directory is kept as the reference of
``kill_resume.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from compare import compare


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, proc.stdout.splitlines()[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="runs/quick.toml")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/mcland-bench"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    local, dask = args.workdir / "inprocess", args.workdir / "dask"
    for d in (local, dask):
        shutil.rmtree(d, ignore_errors=True)
    base = [sys.executable, "-m", "mcland.cli", "sample", args.config, "--n", str(args.n)]
    cmd_local = [*base, "--out", str(local), "--threads", "2", "--no-progress"]
    cmd_dask = [*base, "--out", str(dask), "--workers", "2", "--no-progress"]
    t_local, line_local = timed(cmd_local)
    t_dask, line_dask = timed(cmd_dask)
    result = {
        "commands": [" ".join(cmd_local[1:]), " ".join(cmd_dask[1:])],
        "wall_seconds": {
            "in_process_2_threads": round(t_local, 1),
            "dask_2_workers": round(t_dask, 1),
        },
        "summaries": [line_local, line_dask],
        "comparison": compare(local, dask),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
