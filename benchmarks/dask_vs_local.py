"""Wall time of one run in-process (2 threads) vs on a 2-worker Dask LocalCluster.

Usage: python benchmarks/dask_vs_local.py [--config runs/quick.toml] [--n 100000]
       [--workdir /tmp/mcland-bench]

Both runs are ``mcland sample`` subprocesses timed from start to exit (including Python
start-up and, for Dask, starting the cluster); the records are then compared byte for
byte.  With ``--repeat R`` the pair is run R times, alternating which goes first (the
machine may be shared; the 1-minute load average before each run is recorded).  Prints
one JSON object.  The in-process run directory is kept as the reference of
``kill_resume.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mcland.rundir.compare import compare_runs as compare


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, proc.stdout.splitlines()[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="runs/quick.toml")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/mcland-bench"))
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    local, dask = args.workdir / "inprocess", args.workdir / "dask"
    base = [sys.executable, "-m", "mcland.cli", "sample", args.config, "--n", str(args.n)]
    cmds = {
        "in_process_2_threads": [*base, "--out", str(local), "--threads", "2", "--no-progress"],
        "dask_2_workers": [*base, "--out", str(dask), "--workers", "2", "--no-progress"],
    }
    runs = []
    for r in range(args.repeat):
        order = list(cmds) if r % 2 == 0 else list(cmds)[::-1]
        for name in order:
            shutil.rmtree(local if name.startswith("in_") else dask, ignore_errors=True)
            load = os.getloadavg()[0]
            seconds, line = timed(cmds[name])
            runs.append({"run": name, "wall_seconds": round(seconds, 1), "load_before": load})
            runs[-1]["summary"] = line
    result = {
        "commands": [" ".join(c[1:]) for c in cmds.values()],
        "runs": runs,
        "comparison": compare(local, dask),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
