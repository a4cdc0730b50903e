"""Kill a long run with SIGKILL at random moments, resume it, compare with an uninterrupted run.

Usage: python benchmarks/kill_resume.py --reference DIR [--config runs/quick.toml]
       [--n 100000] [--kills 6] [--seed 1] [--workdir /tmp/mcland-bench]

``DIR`` is an uninterrupted run of the same configuration (e.g. the in-process run of
``dask_vs_local.py``).  The script starts ``mcland sample`` on a fresh directory, kills it
with SIGKILL after a random delay (uniform in [--min-delay, --max-delay] seconds), records
what the directory held (shards done, temporary files of an interrupted write), and
restarts the same command, ``--kills`` times; then lets the last run finish and compares
the records with ``DIR`` byte for byte.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from mcland.rundir.compare import compare_runs as compare


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", type=Path, required=True)
    ap.add_argument("--config", default="runs/quick.toml")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-delay", type=float, default=3.0)
    ap.add_argument("--max-delay", type=float, default=25.0)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/mcland-bench"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out = args.workdir / "killed"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "mcland.cli", "sample", args.config, "--n", str(args.n)]
    cmd += ["--out", str(out), "--threads", "2", "--no-progress"]
    kills = []
    t0 = time.perf_counter()
    while len(kills) < args.kills:
        delay = rng.uniform(args.min_delay, args.max_delay)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            names = sorted(p.name for p in out.iterdir()) if out.exists() else []
            kills.append(
                {
                    "after_seconds": round(delay, 2),
                    "shards_present": sum(n.startswith("part-") for n in names),
                    "temporary_files": [n for n in names if n.startswith(".tmp-")],
                    "manifest_present": "run.json" in names,
                }
            )
            continue
        raise SystemExit(f"the run finished before kill {len(kills) + 1}; lower --max-delay")
    final = subprocess.run(cmd, capture_output=True, text=True, check=True)
    total = time.perf_counter() - t0
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".tmp-")]
    result = {
        "command": " ".join(cmd[1:]),
        "kills": len(kills),
        "killed_at": kills,
        "final_summary": final.stdout.splitlines()[0],
        "leftovers_after_resume": leftovers,
        "shards_after_resume": len(list(out.glob("part-*.parquet"))),
        "total_wall_seconds": round(total, 1),
        "comparison_with_uninterrupted": compare(out, args.reference),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
