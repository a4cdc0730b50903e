"""The dynamics workload of ``mcland bench``: gradient evaluations per second of plain
gradient descent, the compiled kernel against a NumPy loop on the same trajectories.

Task (:func:`task`): architecture ``(3, 4, 4, 4, 2)``, Gaussian data as in
``runs/quick.toml`` (``X ~ N(0, 1)``, ``Y = T X + 0.5 Z``, m = 40 samples), 64
trajectories from ``W_h = G_h / sqrt(d_{h-1})`` (Gaussian ``G_h``), a fixed step ``eta``
half the stable step at the largest curvature among the starting points.  One gradient
evaluation (loss and gradient) is the unit, as in the adaptive integrator.

* **kernel** -- :func:`descend`: :func:`mcland._kernels.gd.descend_range` with the
  trajectories dealt to the threads (task j takes trajectories j, j + k, ...), with 1 thread
  and with all threads;
* **numpy** -- :func:`mcland.core.naive.gd_moments` (the same formulas in NumPy, one call
  per step) on the first few trajectories, fewer steps, 1 thread;
* **compile** -- a child process with an empty Numba cache: import and first call of the
  kernel (compilation of :mod:`mcland._kernels.gd`).

As for the other workloads, ratios are formed within a round from timings taken back to
back and their median over the rounds is reported, with the range.
"""

from __future__ import annotations

import resource
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from mcland._kernels.bundles import FlowProblem, GDRun
from mcland._kernels.gd import LANES, descend_range
from mcland.core import naive
from mcland.core.blas import one_blas_thread
from mcland.execution.threads import default_threads, thread_pool

SEED = 20261130
ARCHITECTURE = (3, 4, 4, 4, 2)
TRAJECTORIES = 64


@dataclass(frozen=True)
class DynSizes:
    """Steps of the kernel's trajectories; trajectories and steps of the NumPy loop; rounds."""

    n_steps: int
    numpy_trajectories: int
    numpy_steps: int
    rounds: int


FULL = DynSizes(n_steps=20000, numpy_trajectories=4, numpy_steps=1000, rounds=7)
QUICK = DynSizes(n_steps=50, numpy_trajectories=2, numpy_steps=20, rounds=1)


@dataclass(frozen=True)
class Task:
    """A batch of gradient-descent trajectories: the loss, the starting points and the step."""

    problem: FlowProblem
    w0: np.ndarray  # (T, N)
    eta: float


def task(
    dims: tuple[int, ...] = ARCHITECTURE,
    trajectories: int = TRAJECTORIES,
    seed: int = SEED,
    m: int = 40,
    noise: float = 0.5,
) -> Task:
    """The benchmark's task on the architecture ``dims`` (``(d_0, ..., d_H)``), seeded."""
    rng = np.random.default_rng([seed, *dims])
    d_x, d_y = dims[0], dims[-1]
    X = rng.standard_normal((d_x, m))
    Y = rng.standard_normal((d_y, d_x)) @ X + noise * rng.standard_normal((d_y, m))
    Sxx, Syx, Syy = naive.moments(X, Y)
    problem = FlowProblem(
        np.array(dims, np.int64), np.ascontiguousarray(Sxx), np.ascontiguousarray(Syx),
        float(np.trace(Syy)),
    )  # fmt: skip
    layers = [
        [rng.standard_normal((dims[h], dims[h - 1])) / np.sqrt(dims[h - 1]) for h in range(1, len(dims))]
        for _ in range(trajectories)
    ]  # fmt: skip
    w0 = np.array([naive.ravel_weights(W) for W in layers])
    lam = max(np.linalg.eigvalsh(naive.hessian(W, X, Y))[-1] for W in layers)
    return Task(problem, w0, 0.5 / lam)


def descend(t: Task, n_steps: int, threads: int | None = 1) -> tuple[np.ndarray, np.ndarray]:
    """``n_steps`` steps of plain gradient descent from every start of ``t``, the
    trajectories dealt to ``threads`` threads; returns the final weights (T, N) and the
    losses before every step (T, n_steps).  Bit-identical whatever ``threads``."""
    T = t.w0.shape[0]
    run = GDRun(float(t.eta), np.int64(n_steps), t.w0.copy(), np.empty((T, n_steps)))
    blocks = -(-T // LANES)
    with thread_pool(threads) as pool:
        if pool is None:
            descend_range(t.problem, run, 0, blocks, 1)
        else:
            k = min(blocks, pool.threads)
            tasks = [pool.submit(descend_range, t.problem, run, j, blocks, k) for j in range(k)]
            for f in tasks:
                f.result()
    return run.w, run.losses


def descend_numpy(t: Task, trajectories: int, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The NumPy loop (:func:`mcland.core.naive.gd_moments`) on the first ``trajectories``
    starts of ``t``: final weights and losses, as :func:`descend`."""
    p = t.problem
    dims = tuple(int(d) for d in p.dims)
    ws, losses = [], []
    for w in t.w0[:trajectories]:
        W, L = naive.gd_moments(
            naive.unravel_weights(w, dims), p.Sxx, p.Syx, p.tr_syy, t.eta, n_steps
        )
        ws.append(naive.ravel_weights(W))
        losses.append(L)
    return np.array(ws), np.array(losses)


_COMPILE = """
import json, time
t0 = time.perf_counter()
from mcland.bench.dynamics import descend, task
t = task(trajectories=2)
t1 = time.perf_counter()
descend(t, 2)
print(json.dumps({"first_call_s": time.perf_counter() - t1}))
"""


def compile_seconds() -> float:
    """Seconds of the first call of the kernel in a new process with an empty Numba cache
    (compilation of :mod:`mcland._kernels.gd`, import excluded)."""
    from mcland.bench.measure import _child

    with tempfile.TemporaryDirectory() as cache:
        return float(_child(_COMPILE, {"NUMBA_CACHE_DIR": cache})[1]["first_call_s"])


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _seconds(fn, cpu: list[float] | None = None) -> float:
    """Wall seconds of ``fn()``; the process's CPU seconds appended to ``cpu``."""
    c0 = _cpu()
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    if cpu is not None:
        cpu.append(_cpu() - c0)
    return wall


def throughput(sizes: DynSizes, threads: int, quick: bool = False) -> dict[str, object]:
    """The dynamics workload's figures (see the module docstring)."""
    t = task()
    T, N = t.w0.shape
    descend(t, 2, 1)  # load the compiled code before timing
    descend(t, 2, threads)
    n_np = min(sizes.numpy_trajectories, T)
    w_np, loss_np = descend_numpy(t, n_np, sizes.numpy_steps)
    w_k, loss_k = descend(t, sizes.numpy_steps, 1)
    scale = np.abs(w_np).max()
    agree = float(np.abs(w_k[:n_np] - w_np).max() / scale)
    evals = T * sizes.n_steps
    evals_np = n_np * sizes.numpy_steps
    r: dict[str, list[float]] = {"kernel_1": [], "kernel": [], "numpy": []}
    cpu: dict[str, list[float]] = {"kernel_1": [], "kernel": []}
    with one_blas_thread():
        for _ in range(sizes.rounds):
            for key, k in (("kernel_1", 1), ("kernel", threads)):
                wall = _seconds(lambda k=k: descend(t, sizes.n_steps, k), cpu[key])
                r[key].append(wall / evals)
            r["numpy"].append(
                _seconds(lambda: descend_numpy(t, n_np, sizes.numpy_steps)) / evals_np
            )
    a = {k: np.array(v) for k, v in r.items()}  # seconds per gradient evaluation
    paired = {
        "numpy_speedup": a["numpy"] / a["kernel_1"],
        "thread_speedup": a["kernel_1"] / a["kernel"],
    }
    return {
        "architecture": list(ARCHITECTURE),
        "N": int(N),
        "trajectories": int(T),
        "n_steps": sizes.n_steps,
        "numpy_trajectories": n_np,
        "numpy_steps": sizes.numpy_steps,
        "threads": threads,
        "rounds": sizes.rounds,
        "eta": float(t.eta),
        "evals_per_s": float(1.0 / a["kernel"].min()),
        "evals_per_s_1thread": float(1.0 / a["kernel_1"].min()),
        "numpy_evals_per_s": float(1.0 / a["numpy"].min()),
        **{k: float(np.median(v)) for k, v in paired.items()},
        **{f"{k}_range": [float(v.min()), float(v.max())] for k, v in paired.items()},
        # the cores the OS gave: process CPU time / wall time (threads for an idle machine),
        # and CPU time of 1 thread / of all threads (1: threading costs no extra work)
        "cpu_per_wall_1thread": float(
            np.median(np.array(cpu["kernel_1"]) / (a["kernel_1"] * evals))
        ),
        "cpu_per_wall": float(np.median(np.array(cpu["kernel"]) / (a["kernel"] * evals))),
        "thread_cpu_efficiency": float(
            np.median(np.array(cpu["kernel_1"]) / np.array(cpu["kernel"]))
        ),
        "numpy_max_rel_diff": agree,
        "gd_compile_s": None if quick else compile_seconds(),
    }


def main(argv: list[str] | None = None) -> None:
    """This workload alone, its figures as JSON on stdout (``mcland bench`` runs it with
    the others): ``python -c "from mcland.bench.dynamics import main; main()" [--threads
    T] [--quick]``."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description="The dynamics workload of mcland bench alone.")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    threads = a.threads or default_threads()
    print(json.dumps(throughput(QUICK if a.quick else FULL, threads, quick=a.quick), indent=2))
