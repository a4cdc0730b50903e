"""Compiling a dynamics run's integrator on a first run, beside the sampler's kernels.

``mcland dynamics`` integrates each point's gradient flow with
:func:`~mcland._kernels.flow.integrate_dense` or, for ``integrator = "rosenbrock"``,
:func:`~mcland._kernels.rosenbrock.integrate_stiff` (:func:`mcland.flow.gradient_flow.integrate`).
On a first run, :func:`prepare_dynamics` compiles the one the configuration uses in a
second child process (:func:`mcland._kernels.compile.child.main` with ``["flow", integrator]``), started
once this process has compiled its side of the sampler (:func:`mcland._kernels.compile.sampler.prepare_sampler`'s
``beside``): this process then only waits for the ``analyze`` child and compiles
``process_range``, so a core is free.  Starting it earlier would make three processes
compete for two cores and delay ``analyze``, the longest part (docs/performance.md
"First run").  This process then loads the integrator from the cache with the exact
signature :func:`flow_signature`; ``tests/test_compile.py`` checks that a cold dynamics run
does.  Whatever goes wrong in the child only costs time: the load compiles instead.

A stamp per integrator (``mcland-ready-flow-explicit``, ``mcland-ready-flow-rosenbrock``)
tells later processes to skip this and load lazily on the first point, like
:data:`mcland._kernels.compile.common.READY`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numba
import numpy as np

from mcland._kernels.bundles import FlowControl, FlowProblem, Sampler
from mcland._kernels.compile.common import is_ready, mark_ready, spawn, stop, wait
from mcland._kernels.compile.sampler import prepare_sampler
from mcland._kernels.flow import integrate_dense
from mcland._kernels.rosenbrock import integrate_stiff

INTEGRATORS = {"explicit": integrate_dense, "rosenbrock": integrate_stiff}
"""The kernel of each value of the ``[dynamics]`` section's ``integrator``."""


def ready_stamp(integrator: str) -> str:
    """Name of the stamp file beside the cache that marks ``integrator`` as compiled."""
    return f"mcland-ready-flow-{integrator}"


def flow_signature() -> tuple:
    """Numba argument types of both integrators as :func:`mcland.flow.gradient_flow.integrate`
    calls them: ``(problem, control, w, times, record, w_rec)``, every array float64 and
    C-contiguous but ``problem.dims`` (int64), every field of ``control`` float64 but its
    ``w_ref`` (N,)."""
    f8 = np.zeros(2)
    f8_2 = np.zeros((2, 2))
    problem = FlowProblem(np.zeros(2, np.int64), f8_2, f8_2, 0.0)
    control = FlowControl(*[0.0] * (len(FlowControl._fields) - 1), f8)
    example = (problem, control, f8, f8, f8, f8_2)
    return tuple(numba.typeof(a) for a in example)


def compile_flow(integrator: str) -> None:
    """Compile (or load from the cache) ``integrator``'s kernel with :func:`flow_signature`."""
    INTEGRATORS[integrator].compile(flow_signature())


def prepare_dynamics(
    sampler: Sampler, integrator: str, notify: Callable[[str], object] | None = None
) -> float:
    """Compile (first run) or load the sampler's kernels and ``integrator``'s; returns
    seconds.

    Parameters
    ----------
    sampler : Sampler
        As :func:`mcland._kernels.compile.sampler.prepare_sampler`.
    integrator : str
        ``"explicit"`` or ``"rosenbrock"`` (a key of :data:`INTEGRATORS`).
    notify : callable, optional
        As :func:`mcland._kernels.compile.sampler.prepare_sampler`.
    """
    t0 = time.perf_counter()
    stamp = ready_stamp(integrator)
    if is_ready(stamp):
        prepare_sampler(sampler, notify)
        return time.perf_counter() - t0
    children = []
    try:
        prepare_sampler(
            sampler, notify, beside=lambda: children.append(spawn(["flow", integrator]))
        )
        for child in children:  # none when the sampler was cached or compiles in one process
            wait(child)
    finally:
        for child in children:
            stop(child)
    compile_flow(integrator)  # loads what the child cached, or compiles it here
    mark_ready(stamp)
    return time.perf_counter() - t0
