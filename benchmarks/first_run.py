"""First-run time of ``mcland sample runs/quick.toml --n 100`` for several installations
or options, interleaved: the figure of docs/performance.md "First run".

Each variant is ``LABEL=PYTHON`` (an interpreter whose environment has mcland installed,
e.g. a checkout of an older version with its own venv), optionally ``LABEL=PYTHON:VAR=VALUE``
for an environment variable (``MCLAND_COMPILE_JOBS=1``).  Round r runs every variant once,
each with an empty ``NUMBA_CACHE_DIR``, in the order given; the median over rounds is
reported, with every time, and the median of the paired differences to the first variant
(same round, so the same load, roughly).  Each line also shows the CPU time of the run
(user + system of the process and of the compile children it waited for: what a loaded
machine moves much less than the wall time) and the 1-minute load average when the run
ended: a shared machine's load moves the times by seconds.

    python benchmarks/first_run.py v0.5.0=/tmp/v050/.venv/bin/python \\
        serial=.venv/bin/python:MCLAND_COMPILE_JOBS=1 default=.venv/bin/python --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
from pathlib import Path

from mcland.bench.measure import QUICK_TOML, first_run


def parse_variant(text: str) -> tuple[str, str, dict[str, str]]:
    """``LABEL=PYTHON[:VAR=VALUE,...]`` -> (label, python, env)."""
    label, _, rest = text.partition("=")
    python, _, assignments = rest.partition(":")
    env = dict(a.split("=", 1) for a in assignments.split(",") if a)
    if not label or not python:
        raise SystemExit(f"first_run.py: error: variant {text!r} is not LABEL=PYTHON[:VAR=VALUE]")
    return label, python, env


def _children_cpu() -> float:
    """User + system CPU seconds of the ended children (and their waited-for children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="+", help="LABEL=PYTHON[:VAR=VALUE,...]")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    variants = [parse_variant(v) for v in a.variants]
    times: dict[str, list[float]] = {label: [] for label, _, _ in variants}
    cpus: dict[str, list[float]] = {label: [] for label, _, _ in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for label, python, env in variants:
                where = Path(tmp) / f"{label}-{r}"
                c0 = _children_cpu()
                t = first_run(QUICK_TOML, where / "cache", where / "out", python, env)
                cpu = _children_cpu() - c0
                times[label].append(t)
                cpus[label].append(cpu)
                load = os.getloadavg()[0]
                print(
                    f"round {r + 1}: {label:12s} {t:6.1f} s   cpu {cpu:6.1f} s   (load {load:.2f})",
                    flush=True,
                )
    first = variants[0][0]
    for what, values in (("wall", times), ("CPU", cpus)):
        print(f"median {what} time of a first run (empty Numba cache), s:")
        for label, ts in values.items():
            line = f"  {label:12s} {statistics.median(ts):6.1f}   ({', '.join(f'{t:.1f}' for t in ts)})"
            if label != first:
                diffs = [t - t0 for t, t0 in zip(ts, values[first], strict=True)]
                line += f"   paired - {first}: median {statistics.median(diffs):+.1f}"
            print(line)
    if a.json:
        Path(a.json).write_text(json.dumps({"wall": times, "cpu": cpus}, indent=1))


if __name__ == "__main__":
    main()
