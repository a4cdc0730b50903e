"""Analysis at any run size (issue 24): time and peak memory of ``mcland report`` and of
``analysis/run_claims.py`` on sample runs of two sizes, against a baseline.

Usage:
    python benchmarks/analysis_scale.py RUN_SMALL RUN_LARGE [--baseline-python PY
        --baseline-root DIR] [--out benchmarks/results/analysis_scale]
        [--only small|large|none] [--previous OUT1.json ...]

RUN_SMALL and RUN_LARGE are run directories of ``runs/quick.toml`` (``[output] spectrum =
false``), e.g. 2,000,000 and 20,000,000 points.  Each command runs in a child process
(``os.wait4`` gives its peak resident memory); the report is written to a temporary
directory.  With ``--baseline-python`` (an interpreter with another mcland, e.g. 0.7.1)
and ``--baseline-root`` (its checkout, for ``analysis/run_claims.py``), the same commands
are timed with it on RUN_SMALL only (the in-memory analysis of RUN_LARGE needs more memory
than a 24 GB machine has), in the same session, for the ratio per point.

``--only`` measures one size (``none``: nothing) and ``--previous`` adds the measurements
of earlier ``--only`` runs, so the sizes can be measured in separate sessions and the
verdicts computed once both are there.

The acceptance criteria printed (issue 24): peak memory at most 1 GB at both sizes and
within 10 % between them; time per point at most half of the baseline's; time linear in
the points (large / small within 15 % of the ratio of their sizes).  The machine's load
average is recorded: timings on a shared machine are indicative only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GB = 1 << 30


def points(run_dir: Path) -> int:
    """Records in a run directory (from the Parquet footers)."""
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(f).num_rows for f in sorted(run_dir.glob("part-*.parquet")))


def measure(cmd: list[str], cwd: Path) -> dict:
    """Run ``cmd``; its wall time, peak resident memory (bytes) and exit status."""
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    return {
        "cmd": " ".join(map(str, cmd)),
        "seconds": round(seconds, 2),
        "peak_bytes": usage.ru_maxrss * 1024,  # kilobytes on Linux
        "exit": os.waitstatus_to_exitcode(status),
        "load_before": load_before,  # 1-minute load average, before and after the command
        "load_after": os.getloadavg()[0],
        "tail": (out + err).strip().splitlines()[-1:] if (out + err).strip() else [],
    }


def commands(python: str, root: Path, run_dir: Path, out: Path) -> dict[str, list[str]]:
    """The report and the claims of ``run_dir`` with ``python`` and the checkout ``root``."""
    report = [python, "-c", "import sys; from mcland.cli import main; main(sys.argv[1:])"]
    return {
        "report": [*report, "report", str(run_dir), "--out", str(out)],
        "claims": [python, str(root / "analysis" / "run_claims.py"), str(run_dir)],
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("small", type=Path)
    ap.add_argument("large", type=Path)
    ap.add_argument("--baseline-python")
    ap.add_argument("--baseline-root", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "analysis_scale")
    ap.add_argument(
        "--only",
        choices=["small", "large", "none"],
        help="measure one size now (the other later); none: only the verdicts of --previous",
    )
    ap.add_argument(
        "--previous",
        type=Path,
        nargs="*",
        default=[],
        help="JSON outputs of earlier --only runs to complete",
    )
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="mcland-bench-"))
    rows = []
    sizes = {}
    for previous in args.previous:
        old = json.loads(previous.read_text())
        rows += old["measurements"]
        sizes.update(old["runs"]["points"])
    for size, run in (("small", args.small), ("large", args.large)):
        if args.only in (None, size):
            sizes[size] = points(run)
    try:
        plan = [("this", sys.executable, ROOT, "small"), ("this", sys.executable, ROOT, "large")]
        if args.baseline_python:
            plan.insert(0, ("baseline", args.baseline_python, args.baseline_root, "small"))
        plan = [step for step in plan if args.only in (None, step[3])]
        for who, python, root, size in plan:
            run = args.small if size == "small" else args.large
            for what, cmd in commands(python, root, run, tmp / f"{who}-{size}").items():
                m = measure(cmd, root)
                m.update(who=who, what=what, size=size, points=sizes[size])
                m["us_per_point"] = round(1e6 * m["seconds"] / sizes[size], 2)
                rows.append(m)
                print(
                    f"{who:8s} {what:7s} {sizes[size]:>11,} points: {m['seconds']:8.1f} s "
                    f"({m['us_per_point']:.2f} us/point), peak {m['peak_bytes'] / 2**20:7.0f} MiB, "
                    f"exit {m['exit']}, load {m['load_before']:.1f} -> {m['load_after']:.1f}",
                    flush=True,
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    verdicts = {}
    for what in ("report", "claims") if len(sizes) == 2 else ():
        got = {r["size"]: r for r in rows if r["who"] == "this" and r["what"] == what}
        base = [r for r in rows if r["who"] == "baseline" and r["what"] == what]
        peak = max(got["small"]["peak_bytes"], got["large"]["peak_bytes"])
        flat = got["large"]["peak_bytes"] / got["small"]["peak_bytes"]
        linear = (got["large"]["seconds"] / got["small"]["seconds"]) / (
            sizes["large"] / sizes["small"]
        )
        verdicts[what] = {
            "peak_at_most_1GB": peak <= GB,
            "peak_large_over_small": round(flat, 3),
            "peak_flat_within_10pct": abs(flat - 1) <= 0.10,
            "time_ratio_over_size_ratio": round(linear, 3),
            "time_linear_within_15pct": abs(linear - 1) <= 0.15,
        }
        if base:
            ratio = got["small"]["us_per_point"] / base[0]["us_per_point"]
            verdicts[what]["per_point_over_baseline"] = round(ratio, 3)
            verdicts[what]["at_most_half_of_baseline"] = ratio <= 0.5
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "note": "shared machine: the load average is recorded per command",
        },
        "runs": {"small": str(args.small), "large": str(args.large), "points": sizes},
        "measurements": rows,
        "verdicts": verdicts,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(verdicts, indent=2))
    return result


if __name__ == "__main__":
    main()
