"""``mcland bench``: throughput of the pipeline against its LAPACK floor and a NumPy baseline.

Every figure is measured in one process on the same points and thread counts, so ratios
are meaningful on a busy machine where single timings are not.  Each quantity is timed once
per round, over several rounds; a ratio is formed within each round from timings taken back
to back (the floor is timed just before and just after the pipeline and averaged), and its
median over the rounds is reported, with its range.  Throughputs (points/s) are the
fastest round's.

* **pipeline** -- what ``mcland sample`` does for a shard: draw, analyse, build the Arrow
  tables batch by batch and encode them as one Parquet file (in memory);
* **floor** -- only LAPACK ``dsyevd`` (eigenvalues only, in place, the pipeline's call) on
  the pipeline's already-assembled whitened Hessians, from a compiled loop scheduled like
  the pipeline;
* **baseline** -- :mod:`mcland.bench.baseline`, a Python loop over points in plain NumPy,
  on a subsample, one thread (as is the pipeline it is compared with);
* **spectrum-free** -- the pipeline with ``classify.spectrum_free = true``;
* compile time, start-up of a second process and peak memory -- in child processes.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from mcland._kernels.bench import eigvalsh_range, point_hessian
from mcland.bench import baseline
from mcland.core.blas import one_blas_thread
from mcland.execution.compute import compute_table
from mcland.execution.threads import thread_pool
from mcland.points.plan import BATCH, Plan, make_plan
from mcland.points.records import PARQUET_OPTIONS
from mcland.sampling.run import draw_point

SEED = 20261127
WORKLOADS: dict[str, dict] = {
    "small": {"depth": [2, 5], "d_y": [1, 4], "d_x_extra": [0, 2], "hidden": [1, 6]},
    "medium": {"depth": [2, 6], "d_y": [2, 6], "d_x_extra": [0, 3], "hidden": [2, 14]},
}


@dataclass(frozen=True)
class Sizes:
    """Points per measurement: pipeline and floor, baseline subsample, timing rounds."""

    n: int
    n_baseline: int
    rounds: int


FULL = {"small": Sizes(4000, 400, 7), "medium": Sizes(600, 100, 7)}
QUICK = {"small": Sizes(200, 10, 1), "medium": Sizes(20, 2, 1)}


def workload_config(name: str, **classify: object) -> dict:
    """The run configuration of a benchmark workload (fixed seed, default data and output)."""
    return {"seed": SEED, "architecture": WORKLOADS[name], "classify": dict(classify)}


def _best(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _pipeline(plan: Plan, ids: np.ndarray, threads: int) -> None:
    """What ``mcland sample`` does for a shard of ``ids``: compute its table batch by batch
    and encode it as one Parquet file (in memory)."""
    with thread_pool(threads) as pool:
        table = compute_table(plan, ids, pool)
    pq.write_table(table, io.BytesIO(), **PARQUET_OPTIONS)


def _hessians(plan: Plan, ids: np.ndarray) -> tuple[np.ndarray, ...]:
    mats = [point_hessian(plan.sampler, int(i)) for i in ids]
    sizes = np.array([m.shape[0] for m in mats], np.int64)
    offsets = np.zeros(sizes.size, np.int64)
    np.cumsum(sizes[:-1] ** 2, out=offsets[1:])
    packed = np.concatenate([m.ravel() for m in mats])
    return packed, offsets, sizes


def _floor(hess: tuple[np.ndarray, ...], threads: int) -> float:
    """Seconds for LAPACK alone on the Hessians ``hess``: every matrix is decomposed in
    place, as in the pipeline, on a fresh copy made before the clock starts."""
    packed, offsets, sizes = hess
    work = packed.copy()
    out = np.empty(sizes.size)
    with one_blas_thread(), thread_pool(threads) as pool:
        t0 = time.perf_counter()
        if pool is None:
            eigvalsh_range(work, offsets, sizes, out, 0, sizes.size, 1)
        else:  # the pipeline's tasks (_start), all queued at once
            tasks = []
            for a in range(0, sizes.size, BATCH):
                b = min(a + BATCH, sizes.size)
                k = min(b - a, pool.tasks)
                args = (work, offsets, sizes, out)
                tasks += [pool.submit(eigvalsh_range, *args, a + j, b, k) for j in range(k)]
            for task in tasks:
                task.result()
        return time.perf_counter() - t0


def _child(code: str, env: dict[str, str] | None = None) -> tuple[float, dict]:
    """Run ``code`` in a fresh interpreter; wall time and the JSON it prints last."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return time.perf_counter() - t0, json.loads(proc.stdout.strip().splitlines()[-1])


_FIRST_POINT = """
import json, time
t0 = time.perf_counter()
import mcland
t1 = time.perf_counter()
mcland.sample({cfg!r}, n=1, threads=1)
print(json.dumps({{"import_s": t1 - t0, "first_call_s": time.perf_counter() - t1}}))
"""

# VmHWM belongs to the process image; getrusage's ru_maxrss would carry over the parent's
# peak through fork + exec on Linux (the benchmark process itself holds hundreds of MB).
_PEAK_RSS = """
import json, resource, tempfile
import mcland
with tempfile.TemporaryDirectory() as d:
    mcland.run({cfg!r}, d + "/run", n={n}, progress=False)
try:
    with open("/proc/self/status") as f:
        kb = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
except OSError:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"peak_rss_mb": kb / 1024}}))
"""


COMPILE_RUNS = 3  # first runs timed for compile_s (the median is reported)
QUICK_TOML = Path(__file__).resolve().parents[2] / "runs" / "quick.toml"  # in a source tree


def first_run(
    config: Path,
    cache: Path,
    out: Path,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
) -> float:
    """Wall time of ``mcland sample CONFIG --n 100 --out OUT`` in a new process of the
    interpreter ``python`` (another installation's, for comparisons) with the Numba cache at
    ``cache`` (empty: a first run, compilation included) and ``env`` added to the
    environment.  It runs in ``out``'s parent folder: started from a source tree, ``-c``
    would import that tree's mcland instead of ``python``'s."""
    out.parent.mkdir(parents=True, exist_ok=True)
    python = os.path.abspath(python) if os.sep in python else python  # cwd changes below
    t0 = time.perf_counter()
    subprocess.run(
        [
            *(python, "-c", "from mcland.cli import main; main()", "sample"),
            *(str(config), "--n", "100", "--out", str(out), "--no-progress"),
        ],
        capture_output=True,
        env={**os.environ, **(env or {}), "NUMBA_CACHE_DIR": str(cache)},
        cwd=out.parent,
        check=True,
    )
    return time.perf_counter() - t0


def startup(name: str = "small", runs: int = COMPILE_RUNS) -> dict[str, object]:
    """``compile_s``: median wall time of ``mcland sample runs/quick.toml --n 100 --out DIR``
    with an empty Numba cache over ``runs`` first runs (the first-run figure of
    docs/performance.md; ``None`` outside a source checkout, which has no ``runs/``), and a
    second process's time to its first point (warm cache, interpreter start included)."""
    cfg = workload_config(name)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(runs if QUICK_TOML.is_file() else 0):
            times.append(first_run(QUICK_TOML, Path(tmp) / f"cache{k}", Path(tmp) / f"out{k}"))
    _child(_FIRST_POINT.format(cfg=cfg))  # make sure the regular cache is warm
    wall, _ = _child(_FIRST_POINT.format(cfg=cfg))
    return {
        "compile_s": float(np.median(times)) if times else None,
        "compile_s_runs": times,
        "second_process_first_point_s": wall,
    }


def peak_rss_mb(name: str, n: int) -> float:
    """Peak resident memory of a child process running ``n`` points of a workload to disk."""
    return _child(_PEAK_RSS.format(cfg=workload_config(name), n=n))[1]["peak_rss_mb"]


def throughput(name: str, sizes: Sizes, threads: int) -> dict[str, float]:
    """Pipeline, floor, baseline and spectrum-free timings of one workload."""
    plan = make_plan(workload_config(name))
    free = make_plan(workload_config(name, spectrum_free=True))
    ids = np.arange(sizes.n, dtype=np.int64)
    hess = _hessians(plan, ids)
    _pipeline(plan, ids[:2], 1)  # load the compiled code before timing
    _pipeline(free, ids[:2], 1)
    _floor(hess, 1)
    sub = ids[: sizes.n_baseline]
    weights = [draw_point(plan.config, int(i))[0] for i in sub]
    dims = [(W[0].shape[1], *(Wh.shape[0] for Wh in W)) for W in weights]

    def base() -> float:
        with one_blas_thread():
            return _best(lambda: baseline.run(plan.config, sub, dims), 1) / sub.size * ids.size

    # Every ratio is formed within one round, from timings taken back to back (the floor
    # on both sides of the pipeline), and the median over rounds is reported: the load of
    # a shared machine changes between rounds far more than within one.
    t: dict[str, list[float]] = {
        k: [] for k in ("pipeline", "floor", "free", "pipeline_1", "floor_1", "baseline")
    }
    for _ in range(sizes.rounds):
        before = _floor(hess, threads)
        t["pipeline"].append(_best(lambda: _pipeline(plan, ids, threads), 1))
        t["floor"].append((before + _floor(hess, threads)) / 2)
        t["free"].append(_best(lambda: _pipeline(free, ids, threads), 1))
        before = _floor(hess, 1)
        t["pipeline_1"].append(_best(lambda: _pipeline(plan, ids, 1), 1))
        t["floor_1"].append((before + _floor(hess, 1)) / 2)
        t["baseline"].append(base())
    r = {k: np.array(v) for k, v in t.items()}
    paired = {
        "floor_ratio": r["pipeline"] / r["floor"],
        "floor_ratio_1thread": r["pipeline_1"] / r["floor_1"],
        "baseline_speedup": r["baseline"] / r["pipeline_1"],
        "thread_speedup": r["pipeline_1"] / r["pipeline"],
        "spectrum_free_speedup": r["pipeline"] / r["free"],
        "spectrum_free_vs_floor": r["floor"] / r["free"],
    }
    best = {k: v.min() for k, v in r.items()}
    return {
        "n": int(ids.size),
        "threads": threads,
        "rounds": sizes.rounds,
        "mean_N": float(hess[2].mean()),
        "points_per_s": ids.size / best["pipeline"],
        "points_per_s_1thread": ids.size / best["pipeline_1"],
        "floor_points_per_s": ids.size / best["floor"],
        "baseline_points_per_s": ids.size / best["baseline"],
        "spectrum_free_points_per_s": ids.size / best["free"],
        **{k: float(np.median(v)) for k, v in paired.items()},
        **{f"{k}_range": [float(v.min()), float(v.max())] for k, v in paired.items()},
    }
