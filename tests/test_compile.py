"""First-run compilation (mcland._kernels.compile) and the kernels' cache (mcland._kernels.jit).

These tests compile the sampler's kernels from an empty cache in child processes, three
times (once in one process, once in two, once with a dynamics run's integrator in a third),
so they take about two minutes: that is what a user's first run costs, and it is what they
guard.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest

from mcland._kernels import jit
from mcland._kernels.compile import common
from mcland._kernels.compile.common import READY
from mcland._kernels.compile.sampler import analyze_signature

ROOT = Path(__file__).resolve().parents[1]

# Runs in a child with its own NUMBA_CACHE_DIR; prints what it compiled and loaded.
_SAMPLE = """
import hashlib, json
from numba.core.registry import CPUDispatcher
import mcland
from mcland._kernels.compile.common import is_ready
from mcland._kernels import batch, bundles, classify, dense, draw, hessian, rng, theory, whiten
from mcland._kernels import structured, structured_classify
ready_before = is_ready()
df = mcland.sample({cfg!r}, n=40, threads=1)
kernels = {{}}
for module in (batch, classify, dense, draw, hessian, rng, theory, whiten, structured,
               structured_classify):
    for name, obj in vars(module).items():
        if isinstance(obj, CPUDispatcher) and obj.__module__ == module.__name__:
            kernels[module.__name__ + "." + name] = len(obj.signatures)
def stats(d):
    return [sum(d.stats.cache_hits.values()), sum(d.stats.cache_misses.values())]
loops = {{kind: loop for (kind, _), (loop, _) in batch._LOOPS.items()}}
kernels["mcland._kernels.batch.process_range"] = len(loops["dense"].signatures)
kernels["mcland._kernels.batch.process_range_wide"] = int("wide" in loops)
defined = [line for ir in loops["dense"].inspect_llvm().values() for line in ir.splitlines()
           if line.startswith("define")]
print(json.dumps({{
    "ready_before": ready_before,
    "ready_after": is_ready(),
    "signatures": kernels,
    "analyze": stats(classify.analyze),
    "process_range": stats(loops["dense"]),
    "draw_point": stats(batch.draw_point),
    # functions defined in the loop's module: draw_point and analyze are called
    # first-class, not linked in (a cached loop's IR is not available: None then)
    "linked": None if ready_before else [
        name for name in ("draw_point", "analyze")
        if any(name in line for line in defined)
    ],
    "point_kernels": {{k.__name__: stats(k) for k in (batch._product_error,
                      whiten.critical_values_into, rng.audit_uniform)}},
    "records": hashlib.sha256(df.to_csv().encode()).hexdigest(),
}}))
"""

CONFIG = {"n": 40, "seed": 7, "architecture": {"depth": [2, 4], "hidden": [1, 4]}}


# A dynamics run in a child with its own NUMBA_CACHE_DIR; prints how the integrator came.
_DYNAMICS = """
import hashlib, json
from numba.core.registry import CPUDispatcher
from mcland._kernels import batch, integrator, structured, structured_classify
from mcland._kernels.compile.common import is_ready
from mcland._kernels.compile.flow import ready_stamp
from mcland.flow.run import dynamics
stamp = ready_stamp("auto")
ready_before = is_ready(stamp)
df = dynamics({cfg!r}, threads=1)
print(json.dumps({{
    "ready_before": ready_before,
    "ready_after": is_ready(stamp) and is_ready(),
    "integrate_flow": [
        sum(integrator.integrate_flow.stats.cache_hits.values()),
        sum(integrator.integrate_flow.stats.cache_misses.values()),
    ],
    "records": hashlib.sha256(df.to_csv().encode()).hexdigest(),
    "structured": sum(kind == "wide" for kind, _ in batch._LOOPS) + sum(
        len(obj.signatures) for module in (structured, structured_classify)
        for obj in vars(module).values()
        if isinstance(obj, CPUDispatcher) and obj.__module__ == module.__name__
    ),
}}))
"""

DYNAMICS = {**CONFIG, "n": 3, "dynamics": {"deltas": [1e-3], "max_evals": 2000}}


def _child(cache: Path, jobs: str | None = None, code: str = _SAMPLE, cfg=CONFIG) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    env.pop(common.JOBS_ENV, None)
    if jobs is not None:
        env[common.JOBS_ENV] = jobs
    proc = subprocess.run(
        [sys.executable, "-c", code.format(cfg=cfg)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """A first run compiled in one process (MCLAND_COMPILE_JOBS=1)."""
    return _child(tmp_path_factory.mktemp("cache-serial"), jobs="1")


@pytest.fixture(scope="module")
def parallel_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache-parallel")


@pytest.fixture(scope="module")
def parallel(parallel_cache):
    """A first run compiled in two processes (the default on more than one core)."""
    return _child(parallel_cache)


@pytest.mark.slow
def test_every_kernel_compiles_once_for_the_sampler(serial):
    # a second specialisation (a literal argument, another array layout) costs compile
    # time, and two processes compiling different ones of one kernel at the same time
    # could clash in Numba's cache index
    assert serial["signatures"], "no kernel found"
    twice = {name: n for name, n in serial["signatures"].items() if n > 1}
    assert not twice
    assert serial["signatures"]["mcland._kernels.batch.process_range"] == 1
    assert serial["linked"] == []  # draw_point and analyze called, not linked in
    assert not serial["ready_before"] and serial["ready_after"]
    # the structured path (issue 21) is compiled only by plans with points above the dense
    # limit: a default first run does not pay for it
    wide = {name: n for name, n in serial["signatures"].items() if "structured" in name}
    assert wide and not any(wide.values()), wide
    assert serial["signatures"]["mcland._kernels.batch.process_range_wide"] == 0


@pytest.mark.slow
@pytest.mark.skipif(not common.parallel(), reason="one core: no second process to compile in")
def test_the_child_compiles_analyze_with_the_samplers_signature(parallel, serial):
    hits, misses = parallel["analyze"]
    assert (hits, misses) == (1, 0)  # loaded what the child compiled, not compiled again
    # the loop's small per-point kernels: compiled once, in this process, with the loop
    assert parallel["point_kernels"] == {
        "_product_error": [0, 1],
        "critical_values_into": [0, 1],
        "audit_uniform": [0, 1],
    }
    assert parallel["records"] == serial["records"]


@pytest.mark.slow
def test_a_shared_cache_spares_the_second_process_all_compiling(parallel, parallel_cache):
    # what a cluster's workers do with NUMBA_CACHE_DIR on a shared filesystem
    second = _child(parallel_cache)
    assert second["ready_before"]
    assert second["process_range"] == [1, 0]
    # called first-class by the loop: looked up (loaded) when the loop is called
    assert second["analyze"] == [1, 0]
    assert second["draw_point"] == [1, 0]
    assert second["records"] == parallel["records"]


@pytest.mark.slow
@pytest.mark.skipif(not common.parallel(), reason="one core: no second process to compile in")
def test_a_first_dynamics_run_loads_the_integrator_its_child_compiled(tmp_path):
    cold = _child(tmp_path, code=_DYNAMICS, cfg=DYNAMICS)
    assert not cold["ready_before"] and cold["ready_after"]
    assert cold["integrate_flow"] == [1, 0]  # the child's, loaded before the first point
    assert cold["structured"] == 0  # a dense dynamics plan compiles no structured kernel
    warm = _child(tmp_path, code=_DYNAMICS, cfg=DYNAMICS)
    assert warm["ready_before"]
    assert warm["integrate_flow"] == [1, 0]  # loaded lazily on the first point
    assert warm["records"] == cold["records"]


def test_analyze_signature_has_the_layouts_of_the_data_moments():
    # the moments the sampler hands analyze come from whiten.problem: the declared
    # signature must have their layouts (U and Vt are C-contiguous since mcland's own SVD;
    # Numba's np.linalg.svd, up to 0.7.1, gave them in Fortran order), or analyze and the
    # certificate kernels compile twice
    import numpy as np

    from mcland._kernels.whiten import problem

    rng = np.random.default_rng(0)
    real = numba.typeof(problem(rng.standard_normal((3, 7)), rng.standard_normal((2, 7))))
    declared = analyze_signature()[2]
    layouts = [str(t.layout) for t in declared.types if hasattr(t, "layout")]
    assert layouts == [str(t.layout) for t in real.types if hasattr(t, "layout")]
    assert layouts == ["C"] * 8


def test_a_stale_cache_is_emptied_wherever_numba_keeps_it(tmp_path):
    code = "from mcland._kernels import jit; print(jit.CACHE_DIR)"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    run = lambda: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.strip()
    cache = Path(run())
    assert cache.is_relative_to(tmp_path)
    assert (cache / jit.STAMP).read_text() == jit.fingerprint()
    leftovers = [cache / "classify.analyze-1.py311.nbi", cache / READY]
    for f in leftovers:
        f.write_text("x")
    assert run() == str(cache)
    assert all(f.exists() for f in leftovers)  # same sources: kept
    (cache / jit.STAMP).write_text("built from other sources")
    run()
    assert not any(f.exists() for f in leftovers)
    assert (cache / jit.STAMP).read_text() == jit.fingerprint()
