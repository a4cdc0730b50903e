"""Benchmarks: ``mcland bench`` (see :mod:`mcland.bench.measure` and
:mod:`mcland.bench.dynamics`) and the NumPy references.

The figures are a dictionary with one entry per sampling workload (``"small"``,
``"medium"``), each holding at least ``points_per_s``, ``points_per_s_1thread``,
``floor_ratio`` (pipeline time / floor time), ``baseline_speedup`` (baseline time / pipeline
time), ``thread_speedup``, ``compile_s``, ``second_process_first_point_s`` and
``peak_rss_mb``; ``"dynamics"``, the gradient-descent workload, with at least
``evals_per_s``, ``evals_per_s_1thread``, ``numpy_evals_per_s``, ``numpy_speedup``,
``thread_speedup`` and ``gd_compile_s``; plus ``"meta"``.
Ratios are medians over rounds of ratios formed within a round; ``<ratio>_range`` gives
their smallest and largest value.
"""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Callable

from mcland.bench import dynamics, measure
from mcland.core.version import __version__
from mcland.execution.threads import default_threads


def run_benchmark(
    *, quick: bool = False, threads: int | None = None, log: Callable[[str], None] = print
) -> dict[str, dict]:
    """Measure both workloads; ``quick`` uses tiny sizes and skips the child-process figures
    that take minutes (a smoke test, not a measurement)."""
    threads = threads or default_threads()
    sizes = measure.QUICK if quick else measure.FULL
    out: dict[str, dict] = {
        "meta": {
            "mcland_version": __version__,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "threads": threads,
            "machine": platform.machine(),
            "python": platform.python_version(),
            "quick": quick,
        }
    }
    log("start-up: compile time (empty cache) and a second process's first point ...")
    start = (
        {"compile_s": None, "second_process_first_point_s": None} if quick else measure.startup()
    )
    for name in measure.WORKLOADS:
        log(f"{name}: pipeline, floor, spectrum-free and baseline ({sizes[name].n} points) ...")
        fig = measure.throughput(name, sizes[name], threads)
        fig.update(start)
        log(f"{name}: peak memory of a run ...")
        if quick:
            fig["peak_rss_mb"] = None
        elif name == "small":
            fig["peak_rss_mb_20k"] = measure.peak_rss_mb(name, 20_000)
            fig["peak_rss_mb"] = fig["peak_rss_mb_200k"] = measure.peak_rss_mb(name, 200_000)
            fig["peak_rss_growth"] = fig["peak_rss_mb_200k"] / fig["peak_rss_mb_20k"]
        else:
            fig["peak_rss_mb"] = measure.peak_rss_mb(name, 2_000)
        out[name] = fig
    dyn = dynamics.QUICK if quick else dynamics.FULL
    log(f"dynamics: gradient descent, kernel and NumPy ({dynamics.TRAJECTORIES} trajectories) ...")
    out["dynamics"] = dynamics.throughput(dyn, threads, quick=quick)
    return out


def format_report(figures: dict[str, dict]) -> str:
    """The figures as plain-text tables: one column per sampling workload, then the
    dynamics workload."""
    names = [k for k in figures if k not in ("meta", "dynamics")]
    keys = [k for k in figures[names[0]] if k not in ("n", "threads", "rounds")]
    lines = [f"{'':34}" + "".join(f"{n:>14}" for n in names)]
    for k in keys:
        lines.append(f"{k:34}" + "".join(_cell(figures[n].get(k)) for n in names))
    if "dynamics" in figures:
        dyn = figures["dynamics"]
        lines.append("")
        lines.append(f"{'':34}{'dynamics':>14}")
        for k, v in dyn.items():
            if k not in ("threads", "rounds"):
                lines.append(f"{k:34}" + _cell(v))
    m = figures["meta"]
    lines.append(f"(mcland {m['mcland_version']}, {m['threads']} threads, {m['date']})")
    return "\n".join(lines)


def _cell(v: object) -> str:
    if v is None:
        return f"{'—':>14}"
    if isinstance(v, list):
        if len(v) == 2 and all(isinstance(x, float) for x in v):  # a ratio's range
            return f"{f'{v[0]:.3g}–{v[1]:.3g}':>14}"
        return " " + f"{','.join(f'{x:.3g}' for x in v):>13}"  # e.g. compile_s_runs
    return f"{v:>14.4g}"
