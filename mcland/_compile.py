"""Compiling the sampler's kernels on a first run: two processes side by side.

Numba compiles a kernel on its first call and caches the machine code
(:mod:`mcland._jit`), so only the first run of an installation pays for it.  The
sampler's kernel :func:`~mcland._kernels.batch.process_range` calls two big kernels that
do not depend on each other: :func:`~mcland._kernels.batch.draw_point` and
:func:`~mcland._kernels.classify.analyze`.  On a first run, :func:`prepare_sampler`
compiles ``analyze`` in a child process (:func:`main`) while this
process compiles ``draw_point``; both land in the shared cache, and compiling
``process_range`` then loads them from it.  On 2 cores that takes the first run's compile
time from the sum of the two to about the larger (docs/performance.md "First run").

Compiling from the cache needs the exact signatures ``process_range`` calls them with;
:func:`analyze_signature` builds ``analyze``'s, and ``tests/test_compile.py`` checks that a
cold run loads it from the cache instead of compiling it again.  Whatever goes wrong in the
child only costs time: this process then compiles what is missing itself.  A dynamics run
compiles its integrator in a second child, started where ``prepare_sampler`` would only
wait for the first (its ``beside``; :mod:`mcland._compile_flow`).

Once ``process_range`` is cached, a stamp file beside the cache (``mcland-ready-sampler``,
holding the sources' fingerprint) tells later processes to skip all this and load lazily;
the stamp is removed with the cache when the sources change (:func:`mcland._jit.purge_stale_cache`).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np

from mcland import _jit
from mcland._kernels import fields as f
from mcland._kernels.batch import _product_error, draw_point, process_range
from mcland._kernels.bundles import Moments, PointOutput, RangeOutput, Sampler, Thresholds
from mcland._kernels.classify import analyze
from mcland._kernels.rng import audit_uniform
from mcland._kernels.theory import pair_curvature, swap_curvature
from mcland._kernels.whiten import critical_values_into, smallest_relative_gap

READY = "mcland-ready-sampler"
CHILD_TIMEOUT_S = 900.0  # a child compiling longer than this is stopped, not waited for


JOBS_ENV = "MCLAND_COMPILE_JOBS"  # "1": compile in this process only


def _parallel() -> bool:
    """Whether a child process may compile beside this one: more than one core and not
    switched off by ``MCLAND_COMPILE_JOBS=1``."""
    if os.environ.get(JOBS_ENV, "").strip() == "1":
        return False
    try:
        return len(os.sched_getaffinity(0)) > 1
    except AttributeError:  # pragma: no cover - not on Linux
        return (os.cpu_count() or 1) > 1


def analyze_signature() -> tuple:
    """Numba argument types of :func:`~mcland._kernels.classify.analyze` as
    ``process_range`` calls it (the shapes do not matter, only dtypes, ranks and layouts:
    the data's ``U`` and ``Vt`` come from LAPACK's SVD in Fortran order)."""
    f8 = np.zeros(2)
    f8_2 = np.zeros((2, 2))
    f8_2f = np.zeros((2, 2), order="F")  # (1, 1) would read as C-contiguous too
    i8 = np.zeros(2, np.int64)
    moments = Moments(f8_2, f8_2, 0.0, f8, f8_2, f8_2, f8, f8_2f, f8_2f)
    out = PointOutput(f8, i8, np.zeros(2, np.bool_), i8, f8, f8, f8)
    example = (i8, f8, moments, Thresholds(0.0, 0.0, 0.0), f.SPECTRUM, out, f8)
    return tuple(numba.typeof(a) for a in example)


def _compile_certificates() -> None:
    """Compile the theory's certificate kernels (``pair_curvature``, ``swap_curvature``)
    with the types ``analyze`` calls them with, first thing in this process: the child
    compiling ``analyze`` reaches them only after several seconds and then loads them from
    the cache instead of compiling them itself (if it gets there first, both compile the
    same code, which costs only time)."""
    table, dims = numba.types.float64[::1], numba.types.int64[::1]
    table_off = numba.types.int64[:, ::1]
    c2, f2 = numba.types.float64[:, ::1], numba.types.float64[::1, :]
    i8, f8, b1 = numba.types.int64, numba.types.float64, numba.types.boolean
    pair_curvature.compile((table, table_off, dims, c2, c2, i8, i8, f8, b1))
    s_in = numba.types.boolean[::1]
    swap_curvature.compile((table, table_off, dims, c2, c2, c2, f2, f2, s_in, b1))


def draw_point_signature(sampler: Sampler) -> tuple:
    """Numba argument types of :func:`~mcland._kernels.batch.draw_point` for ``sampler``."""
    return (numba.typeof(sampler), numba.types.int64)


def _compile_draw_side(sampler: Sampler) -> None:
    """Compile :func:`~mcland._kernels.batch.draw_point` for ``sampler``, then the smaller
    kernels ``process_range`` calls on a drawn point, with the exact types of that point
    (read off ``draw_point``'s compiled return type), so that compiling ``process_range``
    only has its own body left to do."""
    args = draw_point_signature(sampler)
    draw_point.compile(args)
    (point,) = [s.return_type for s in draw_point.nopython_signatures if s.args == args]
    field = dict(zip(point.fields, point.types, strict=True))
    moments = dict(zip(Moments._fields, field["moments"].types, strict=True))
    i8 = numba.types.int64
    row = numba.types.float64[::1]
    _product_error.compile(
        (
            field["w"],
            field["dims"],
            field["s_drawn"],
            moments["U"],
            moments["Syx"],
            moments["K_inv"],
        )
    )
    critical_values_into.compile((moments["lam"], moments["tr_syy"], i8, row))
    smallest_relative_gap.compile((moments["lam"],))
    audit_uniform.compile((i8, i8))


def _ready_stamp(name: str) -> Path | None:
    return None if _jit.CACHE_DIR is None else _jit.CACHE_DIR / name


def is_ready(name: str = READY) -> bool:
    """Whether an earlier process compiled and cached the kernels of the stamp ``name``
    (default: ``process_range``) for these sources."""
    stamp = _ready_stamp(name)
    try:
        return stamp is not None and stamp.read_text() == _jit.FINGERPRINT
    except OSError:
        return False


def mark_ready(name: str = READY) -> None:
    """Write the stamp ``name`` (if the cache is writable and it is not there yet)."""
    stamp = _ready_stamp(name)
    if stamp is not None and not is_ready(name):
        with contextlib.suppress(OSError):
            stamp.write_text(_jit.FINGERPRINT)


def spawn(argv: list[str]) -> subprocess.Popen | None:
    """Start a child Python running :func:`main` on ``argv`` with this process's environment
    and import path; ``None`` when it cannot start."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": root if not path else root + os.pathsep + path}
    code = f"import sys, mcland._compile as c; sys.exit(c.main({argv!r}))"
    try:
        return subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None


def wait(child: subprocess.Popen | None, timeout: float = CHILD_TIMEOUT_S) -> None:
    """Wait at most ``timeout`` seconds for ``child`` (if any) to end, then :func:`stop` it."""
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=timeout)
        stop(child)


def stop(child: subprocess.Popen | None) -> None:
    """Kill ``child`` if it is still running (what it compiled so far is only lost time)."""
    if child is not None and child.poll() is None:
        child.kill()
        child.wait()


def _empty_output() -> RangeOutput:
    i8 = np.zeros((0, 1), np.int64)
    f8 = np.zeros((0, 1))
    b1 = np.zeros((0, 1), np.bool_)
    return RangeOutput(i8, i8, f8, f8, i8, b1, b1, i8, f8, f8, f8, f8)


def prepare_sampler(
    sampler: Sampler,
    notify: Callable[[str], object] | None = None,
    beside: Callable[[], object] | None = None,
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
        :mod:`mcland._compile_flow`).
    """
    t0 = time.perf_counter()
    if not is_ready():
        if notify is not None:
            notify("compiling the kernels (first run of this installation, about half a minute)")
        child = spawn(["analyze"]) if _parallel() else None
        try:
            _compile_certificates()
            _compile_draw_side(sampler)
            if child is not None and beside is not None:
                beside()
            wait(child)
        finally:
            stop(child)
    ids = np.zeros(0, np.int64)
    process_range(sampler, ids, _empty_output(), 0, 0, 1)  # compiles or loads it
    mark_ready()
    return time.perf_counter() - t0


def main(argv: list[str]) -> int:
    """The children's entry point: ``["analyze"]`` compiles and caches ``analyze``,
    ``["flow", integrator]`` the integrator of :func:`mcland._compile_flow.compile_flow`."""
    if argv == ["analyze"]:
        analyze.compile(analyze_signature())
        return 0
    if len(argv) == 2 and argv[0] == "flow":
        from mcland import _compile_flow

        if argv[1] in _compile_flow.INTEGRATORS:
            _compile_flow.compile_flow(argv[1])
            return 0
    print("usage: main(['analyze']) or main(['flow', 'explicit' | 'rosenbrock'])", file=sys.stderr)
    return 2
