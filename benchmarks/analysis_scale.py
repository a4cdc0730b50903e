"""Analysis at any run size (issue 24): time and peak memory of ``mcland report`` and of
``analysis/run_claims.py`` on sample runs of two sizes, against a baseline.

Usage:
    python benchmarks/analysis_scale.py RUN [RUN ...] [--baseline-python PY
        --baseline-root DIR [--baseline-only]] [--previous OUT.json ...]
        [--out benchmarks/results/analysis_scale]

The RUNs are run directories of ``runs/quick.toml`` (``[output] spectrum = false``) of
growing sizes, e.g. 2,000,000, 6,000,000 and 20,000,000 points.  Each command runs in a
child process (``os.wait4`` gives its peak resident memory); the report is written to a
temporary directory.  With ``--baseline-python`` (an interpreter with another mcland, e.g.
0.7.1) and ``--baseline-root`` (its checkout, for ``analysis/run_claims.py``), the same
commands are timed with it on the smallest RUN only (the in-memory analysis of the larger
ones needs more memory than a 24 GB machine has); ``--baseline-only`` times nothing else.
``--previous`` merges the measurements of earlier invocations (sizes or the baseline
measured separately), and the verdicts are computed on all of them.

The acceptance criteria printed (issue 24): peak memory at most 1 GB at every size and the
largest peak within 10 % of the smallest; time linear in the points (a least-squares fit
``fixed + per_point * points`` whose largest residual is within 15 % of the time); time
per point at most half of the baseline's (both at the smallest size and the fit's marginal
cost per point).  The machine's load average is recorded: timings on a shared machine are
indicative only; peak memory does not depend on the load.
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


def fit_linear(sizes: list[int], seconds: list[float]) -> dict:
    """Least-squares ``seconds = fixed + per_point * points`` over the sizes, with the
    largest relative residual (how far from linear the measurements are)."""
    import numpy as np

    n, t = np.asarray(sizes, float), np.asarray(seconds, float)
    a = np.vstack([np.ones_like(n), n]).T
    (fixed, per), *_ = np.linalg.lstsq(a, t, rcond=None)
    resid = t - (fixed + per * n)
    return {
        "fixed_s": round(float(fixed), 2),
        "per_point_us": round(1e6 * float(per), 3),
        "max_rel_residual": round(float(np.max(np.abs(resid) / t)), 3),
    }


def verdicts_of(rows: list[dict]) -> dict:
    """The issue's acceptance criteria from the measurements ``rows``."""
    out = {}
    for what in ("report", "claims"):
        got = sorted(
            (r for r in rows if r["who"] == "this" and r["what"] == what), key=lambda r: r["points"]
        )
        if len(got) < 2:
            continue
        small, large = got[0], got[-1]
        base = [r for r in rows if r["who"] == "baseline" and r["what"] == what]
        peaks = [r["peak_bytes"] for r in got]
        v = {
            "points": [r["points"] for r in got],
            "peak_mib": [round(b / 2**20, 1) for b in peaks],
            "peak_at_most_1GB": max(peaks) <= GB,
            "peak_largest_over_smallest_size": round(large["peak_bytes"] / small["peak_bytes"], 3),
            "peak_max_over_min": round(max(peaks) / min(peaks), 3),
            "peak_flat_within_10pct": max(peaks) / min(peaks) <= 1.10,
            "seconds": [r["seconds"] for r in got],
            "fit": fit_linear([r["points"] for r in got], [r["seconds"] for r in got]),
        }
        v["time_linear_within_15pct"] = v["fit"]["max_rel_residual"] <= 0.15
        if base:
            b = base[0]
            same = [r for r in got if r["points"] == b["points"]]
            if same:
                v["per_point_over_baseline"] = round(same[0]["us_per_point"] / b["us_per_point"], 3)
            v["marginal_per_point_over_baseline"] = round(
                v["fit"]["per_point_us"] / b["us_per_point"], 3
            )
            v["at_most_half_of_baseline"] = (
                max(v.get("per_point_over_baseline", 0), v["marginal_per_point_over_baseline"])
                <= 0.5
            )
        out[what] = v
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="*", help="run directories, smallest first")
    ap.add_argument("--baseline-python")
    ap.add_argument("--baseline-root", type=Path)
    ap.add_argument(
        "--baseline-only", action="store_true", help="time the baseline (smallest run) only"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "analysis_scale")
    ap.add_argument(
        "--previous", type=Path, nargs="*", default=[], help="JSON outputs of earlier runs to merge"
    )
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="mcland-bench-"))
    rows: list[dict] = []
    for previous in args.previous:
        rows += json.loads(previous.read_text())["measurements"]
    sizes = {run: points(run) for run in args.runs}
    try:
        plan = [] if args.baseline_only else [("this", sys.executable, ROOT, r) for r in args.runs]
        if args.baseline_python and args.runs:
            plan.insert(0, ("baseline", args.baseline_python, args.baseline_root, args.runs[0]))
        for who, python, root, run in plan:
            for what, cmd in commands(python, root, run, tmp / f"{who}-{run.name}").items():
                m = measure(cmd, root)
                m.update(who=who, what=what, run=str(run), points=sizes[run])
                m["us_per_point"] = round(1e6 * m["seconds"] / sizes[run], 2)
                rows.append(m)
                print(
                    f"{who:8s} {what:7s} {sizes[run]:>11,} points: {m['seconds']:8.1f} s "
                    f"({m['us_per_point']:.2f} us/point), peak {m['peak_bytes'] / 2**20:7.0f} MiB, "
                    f"exit {m['exit']}, load {m['load_before']:.1f} -> {m['load_after']:.1f}",
                    flush=True,
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    verdicts = verdicts_of(rows)
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "memory_limit": os.environ.get("MCLAND_ANALYSIS_MEMORY", "default"),
            "note": "shared machine: the load average is recorded per command",
        },
        "measurements": rows,
        "verdicts": verdicts,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(verdicts, indent=2))
    return result


if __name__ == "__main__":
    main()
