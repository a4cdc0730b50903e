"""Compiling the sampler's kernels on a first run: two processes side by side.

The sampler's loop (:func:`~mcland._kernels.batch.process_range`) calls two big kernels that
do not depend on each other, :func:`~mcland._kernels.batch.draw_point` and
:func:`~mcland._kernels.classify.analyze`, as first-class functions: through their
addresses, without linking their code in, so compiling the loop needs only their types
(:func:`~mcland._kernels.batch.range_loop`).  On a first run, :func:`prepare_sampler`
compiles ``analyze`` (with the theory's certificate kernels it calls) in a child process
(:func:`mcland._kernels.compile.child.main`) while this process compiles ``draw_point``,
then the loop with its small per-point kernels; both land in the shared cache, and the
loop's first call loads ``analyze`` from it.  On 2 cores that takes the first run's compile
time from the sum of the two sides to about the larger, and the two are about equal
(docs/performance.md "First run").

Loading from the cache needs the exact signature the loop calls ``analyze`` with;
:func:`analyze_signature` builds it, and ``tests/test_compile.py`` checks that a cold run
loads it from the cache instead of compiling it again.  A dynamics run compiles its
integrator in a second child, started where ``prepare_sampler`` would only wait for the
first (its ``beside``; :mod:`mcland._kernels.compile.flow`).  Once the loop is
cached, the stamp :data:`~.common.READY` lets later processes skip all this.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numba
import numpy as np

from mcland._kernels import fields as f
from mcland._kernels.batch import (
    draw_point,
    process_range,
    process_range_wide,
    range_loop,
)
from mcland._kernels.bundles import (
    HessianPaths,
    Moments,
    PointOutput,
    RangeOutput,
    Sampler,
    Thresholds,
)
from mcland._kernels.compile.common import (
    READY,
    is_ready,
    mark_ready,
    parallel,
    spawn,
    stop,
    wait,
)


def analyze_signature() -> tuple:
    """Numba argument types of :func:`~mcland._kernels.classify.analyze` as
    ``process_range`` calls it (the shapes do not matter, only dtypes, ranks and layouts:
    every array of the data's moments is C-contiguous, ``U`` and ``Vt`` included, as
    :func:`~mcland._kernels.lapack.svd` returns them; up to 0.7.1 they came from Numba's
    ``np.linalg.svd`` in Fortran order)."""
    f8 = np.zeros(2)
    f8_2 = np.zeros((2, 2))
    i8 = np.zeros(2, np.int64)
    moments = Moments(f8_2, f8_2, 0.0, f8, f8_2, f8_2, f8, f8_2, f8_2)
    out = PointOutput(f8, i8, np.zeros(2, np.bool_), i8, f8, f8, f8)
    example = (i8, f8, moments, Thresholds(0.0, 0.0, 0.0), f.SPECTRUM, out, f8)
    return tuple(numba.typeof(a) for a in example)


def draw_point_signature(sampler: Sampler) -> tuple:
    """Numba argument types of :func:`~mcland._kernels.batch.draw_point` for ``sampler``."""
    return (numba.typeof(sampler), numba.types.int64)


def _compile_draw_side(sampler: Sampler) -> None:
    """Compile :func:`~mcland._kernels.batch.draw_point` for ``sampler`` (with the whole
    draw: data, whitening, construction)."""
    draw_point.compile(draw_point_signature(sampler))


def _empty_output() -> RangeOutput:
    i8 = np.zeros((0, 1), np.int64)
    f8 = np.zeros((0, 1))
    b1 = np.zeros((0, 1), np.bool_)
    return RangeOutput(i8, i8, f8, f8, i8, b1, b1, i8, f8, f8, f8, f8, i8)


_NO_PATHS = HessianPaths(False, np.int64(0), np.int64(0))


def _compile_loop(sampler: Sampler, wide: bool) -> None:
    """Compile the sampler's loop (:func:`~mcland._kernels.batch.range_loop`; with ``wide``
    the structured analysis too), which calls ``analyze`` without linking it in, so it does
    not wait for the child compiling ``analyze``."""
    ids, out = np.zeros(0, np.int64), _empty_output()
    if wide:
        range_loop("wide", sampler, ids, out, _NO_PATHS)
    else:
        range_loop("dense", sampler, ids, out)


READY_WIDE = "mcland-ready-wide"  # the stamp of process_range_wide (plans with wide points)


def prepare_sampler(
    sampler: Sampler,
    notify: Callable[[str], object] | None = None,
    beside: Callable[[], object] | None = None,
    wide: bool = False,
) -> float:
    """Compile (first run) or load the sampler's kernels for ``sampler``; returns seconds.

    Parameters
    ----------
    sampler : Sampler
        The run's bundle (:class:`mcland._kernels.bundles.Sampler`); only its types matter.
    notify : callable, optional
        Called with one line before a first-run compilation starts (progress for a user
        who would otherwise wait half a minute in silence).
    beside : callable, optional
        Called on a first run with a child compiling ``analyze``, once this process has
        compiled its side: from then on this process mostly waits for the child, so a core
        is free for more work (a dynamics run starts compiling its integrator there,
        :mod:`mcland._kernels.compile.flow`).
    wide : bool
        The plan has structured points (:class:`mcland.points.plan.Plan`): compile
        :func:`~mcland._kernels.batch.process_range_wide` (which also holds the structured
        spectrum's kernels) instead of ``process_range``, under the stamp
        :data:`READY_WIDE`.  A plan without them never compiles the structured kernels.
    """
    t0 = time.perf_counter()
    stamp = READY_WIDE if wide else READY
    if not is_ready(stamp):
        if notify is not None:
            notify("compiling the kernels (first run of this installation, about half a minute)")
        child = spawn(["analyze"]) if parallel() else None
        try:
            _compile_draw_side(sampler)
            _compile_loop(sampler, wide)  # needs draw_point's types, not analyze's code
            if child is not None and beside is not None:
                beside()
            wait(child)
        finally:
            stop(child)
    ids = np.zeros(0, np.int64)
    if wide:  # loads what is compiled (all of it, unless a child failed)
        process_range_wide(sampler, ids, _empty_output(), _NO_PATHS, 0, 0, 1)
    else:
        process_range(sampler, ids, _empty_output(), 0, 0, 1)
    mark_ready(stamp)
    return time.perf_counter() - t0
