"""Compiling a dynamics run's integrator on a first run, beside the sampler's kernels.

``mcland dynamics`` integrates each point's gradient flow with
:func:`~mcland._kernels.integrator.integrate_flow`, one kernel for every value of
``integrator`` (``auto``, ``explicit``, ``rosenbrock``: a run-time field of its control
bundle; :func:`mcland.flow.gradient_flow.integrate`).
On a first run, :func:`prepare_dynamics` compiles it in a
second child process (:func:`mcland._kernels.compile.child.main` with ``["flow", integrator]``), started
once this process has compiled its side of the sampler (:func:`mcland._kernels.compile.sampler.prepare_sampler`'s
``beside``): this process then only waits for the ``analyze`` child and compiles
``process_range``, so a core is free.  Starting it earlier would make three processes
compete for two cores and delay ``analyze``, the longest part (docs/performance.md
"First run").  This process then loads the integrator from the cache with the exact
signature :func:`flow_signature`; ``tests/test_compile.py`` checks that a cold dynamics run
does.  Whatever goes wrong in the child only costs time: the load compiles instead.

A stamp (``mcland-ready-flow``, the same for every value of ``integrator``) tells later
processes to skip this and load lazily on the first point, like
:data:`mcland._kernels.compile.common.READY`.  A run whose networks can take matrix-free
implicit steps (``krylov``) also compiles (or loads) the matrix-free integrator
:func:`~mcland._kernels.integrator.integrate_flow_krylov` in this process, after the
child, under its own stamp (``mcland-ready-flow-krylov``); other runs never compile it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numba
import numpy as np

from mcland._kernels.bundles import FlowControl, FlowMonitor, FlowProblem, Sampler
from mcland._kernels.compile.common import is_ready, mark_ready, spawn, stop, wait
from mcland._kernels.compile.sampler import prepare_sampler
from mcland._kernels.integrator import METHODS, integrate_flow, integrate_flow_krylov

INTEGRATORS = {name: integrate_flow for name in METHODS}
"""The kernel of each value of the ``[dynamics]`` section's ``integrator`` (one for all)."""


def ready_stamp(integrator: str = "auto", krylov: bool = False) -> str:
    """Name of the stamp file beside the cache that marks the integrator as compiled (the
    same for every ``integrator``: one kernel), and with ``krylov`` the matrix-free one."""
    return "mcland-ready-flow-krylov" if krylov else "mcland-ready-flow"


def flow_signature() -> tuple:
    """Numba argument types of the integrator as :func:`mcland.flow.gradient_flow.integrate`
    calls it: ``(problem, control, w, times, record, w_rec, monitor)``, every array
    float64 and C-contiguous but ``problem.dims`` and ``monitor.mask`` (int64), every
    field of ``control`` float64 but its ``w_ref`` (N,), ``monitor.rate_threshold``
    float64."""
    f8 = np.zeros(2)
    f8_2 = np.zeros((2, 2))
    problem = FlowProblem(np.zeros(2, np.int64), f8_2, f8_2, 0.0)
    control = FlowControl(*[0.0] * (len(FlowControl._fields) - 1), f8)
    monitor = FlowMonitor(f8_2, f8_2, 0.0, np.zeros(2, np.int64), f8_2, f8_2)
    example = (problem, control, f8, f8, f8, f8_2, monitor)
    return tuple(numba.typeof(a) for a in example)


def compile_flow(integrator: str = "auto") -> None:
    """Compile (or load from the cache) the integrator's kernel with :func:`flow_signature`."""
    INTEGRATORS[integrator].compile(flow_signature())


def compile_flow_krylov() -> None:
    """Compile (or load from the cache) the matrix-free integrator with
    :func:`flow_signature` and its two settings (``fraction`` float64, ``max_iter``
    int64)."""
    integrate_flow_krylov.compile((*flow_signature(), numba.float64, numba.int64))


def prepare_dynamics(
    sampler: Sampler,
    integrator: str,
    notify: Callable[[str], object] | None = None,
    *,
    wide: bool = False,
    krylov: bool = False,
) -> float:
    """Compile (first run) or load the sampler's kernels and ``integrator``'s; returns
    seconds.

    Parameters
    ----------
    sampler : Sampler
        As :func:`mcland._kernels.compile.sampler.prepare_sampler`.
    integrator : str
        ``"auto"``, ``"explicit"`` or ``"rosenbrock"`` (a key of :data:`INTEGRATORS`).
    notify : callable, optional
        As :func:`mcland._kernels.compile.sampler.prepare_sampler`.
    wide : bool
        The plan has structured points: the sampler's wide kernels, as
        :func:`~mcland._kernels.compile.sampler.prepare_sampler`'s ``wide``.
    krylov : bool
        The run draws networks wide enough for the matrix-free implicit steps
        (:data:`mcland.flow.gradient_flow.DENSE_STIFF_MAX_N`): with ``integrator`` other
        than ``"explicit"``, compile those too.
    """
    t0 = time.perf_counter()
    krylov = krylov and integrator != "explicit"
    stamp = ready_stamp(integrator, krylov)
    if is_ready(stamp):
        prepare_sampler(sampler, notify, wide=wide)
        return time.perf_counter() - t0
    children = []
    try:
        prepare_sampler(
            sampler,
            notify,
            beside=lambda: children.append(spawn(["flow", integrator])),
            wide=wide,
        )
        for child in children:  # none when the sampler was cached or compiles in one process
            wait(child)
    finally:
        for child in children:
            stop(child)
    compile_flow(integrator)  # loads what the child cached, or compiles it here
    if krylov:
        compile_flow_krylov()
    mark_ready(stamp)
    return time.perf_counter() - t0
