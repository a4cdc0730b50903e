"""The ``sample`` job (:class:`Plan`): drawing points from a configuration and computing
their records, batch by batch in worker threads.

Every point is drawn from its own random stream, seeded by ``(seed, sample_id)``
(:mod:`mcland._kernels.rng`), so a record does not depend on the batch, the thread or the
process that computed it.  The ``sample`` kind (:mod:`mcland.sampling`) writes these
records; the ``dynamics`` kind (:mod:`mcland.flow`) draws the same points and adds its
experiments' columns.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from mcland._kernels.batch import process_range, process_range_wide
from mcland._kernels.bundles import HessianPaths, RangeOutput, Sampler
from mcland._kernels.compile.sampler import prepare_sampler
from mcland.core.config import Config, as_config, config_from_dict
from mcland.core.cost import (
    DENSE_AUTO_MAX_N,
    MATRIX_FREE,
    check_dense,
    check_structured,
    dense_cost,
    fits,
    memory_limit,
    structured_cost,
)
from mcland.core.datasource import load_data
from mcland.core.problem import Problem
from mcland.execution.job import notifier
from mcland.execution.threads import ThreadPool
from mcland.points.records import BatchOutput, to_table

BATCH = 512  # points per table (the next one computes while one is written); results do not depend on it
# points per table of a plan with structured points (slow: seconds to minutes each), so
# that the progress bar moves and SIGTERM is honoured between a few of them
WIDE_BATCH = 4
NO_MAX_K = np.int64(2**62)  # the structured kernel's cap on k: the plan's cost was checked


@dataclass(frozen=True)
class Plan:
    """A ``sample`` job: everything a batch of drawn points needs besides the sample ids.

    Attributes
    ----------
    config : Config
        The validated configuration (``n`` and ``seed`` overrides applied).
    kernel_params : ndarray
        The flat parameter vector of :mod:`mcland._kernels.params`
        (:meth:`mcland.core.config.Config.kernel_params`).
    kill_weights : ndarray
        ``points.kill_weights``: weight of drawing 1, 2, ... zero complement blocks.
    fixed_x, fixed_y : ndarray
        The user data ``X (d_x, m)``, ``Y (d_y, m)`` of a file source; ``(0, 0)`` arrays
        for Gaussian data (drawn per point).
    h_max, dy_max, n_max : int
        Largest depth, output width and parameter count of any point: the sizes of the
        output buffers.
    structured : str
        ``"none"``: every point by the dense kernel (:func:`process_range`, the records of
        0.8); ``"above"``: the points of more than ``dense_max_n`` parameters by the
        structured spectrum (``hessian = "auto"`` with points above
        :data:`DENSE_AUTO_MAX_N`); ``"all"``: every point (``hessian = "structured"``, or
        ``auto`` when even the dense analysis of the smaller points cannot fit).  The last
        two run :func:`process_range_wide`.
    spectrum_width : int
        Columns of the spectrum buffers: the longest stored spectrum, ``n_max`` when no
        point is structured, else the largest dense ``N`` or ``k_bound`` of the largest
        architecture (docs/structured.md §2), whichever is larger.
    slots : int
        Points that may be analysed at the same time within the memory limit (0: no limit,
        the dense plans; the dense check is per point as in 0.8).
    dense_max_n : int
        With ``structured = "above"``, the largest N analysed densely.
    """

    config: Config
    kernel_params: np.ndarray
    kill_weights: np.ndarray
    fixed_x: np.ndarray
    fixed_y: np.ndarray
    h_max: int
    dy_max: int
    n_max: int
    structured: str = "none"
    spectrum_width: int = 0
    slots: int = 0
    dense_max_n: int = DENSE_AUTO_MAX_N

    @property
    def sampler(self) -> Sampler:
        """What drawing a point takes besides its id, as the kernels' bundle
        (:class:`mcland._kernels.bundles.Sampler`)."""
        return Sampler(self.seed, self.kernel_params, self.kill_weights, self.fixed_x, self.fixed_y)

    kind = "sample"

    @property
    def batch(self) -> int:
        """Points per table: :data:`BATCH`, or :data:`WIDE_BATCH` with structured points."""
        return BATCH if self.structured == "none" else WIDE_BATCH

    @property
    def paths(self) -> HessianPaths:
        """The kernel's bundle saying which points are structured."""
        return HessianPaths(self.structured == "all", np.int64(self.dense_max_n), NO_MAX_K)

    @property
    def n(self) -> int:
        return self.config.n

    @property
    def seed(self) -> int:
        return self.config.seed

    def manifest(self) -> dict:
        """The configuration, seed and (for user data) the data's SHA-256."""
        return {
            "seed": self.seed,
            "config": self.config.resolved(),
            # user data is part of the run: resuming on changed data is refused
            "data_sha256": hashlib.sha256(
                self.fixed_x.tobytes() + self.fixed_y.tobytes()
            ).hexdigest()
            if self.fixed_x.size
            else None,
        }

    def load_kernels(self, progress: bool = False) -> float:
        """Compile (first run of an installation: two processes side by side, see
        :mod:`mcland._kernels.compile`) or load the sampler's kernels; returns the seconds it took.
        With ``progress``, a first-run compilation is announced on stderr."""
        return prepare_sampler(self.sampler, notifier(progress), wide=self.structured != "none")

    def hessian(self, n_params: int) -> str:
        """The analysis path of a point of ``n_params`` parameters: ``"structured"`` or
        ``"dense"``, as :func:`process_range_wide` takes it for the point's record (a
        dynamics run's flows analyse their points, and the ends of their flows, the same
        way)."""
        if self.structured == "all" or (self.structured == "above" and n_params > self.dense_max_n):
            return "structured"
        return "dense"

    def slot(self) -> AbstractContextManager:
        """A context holding one of the :attr:`slots` points of this process that may be
        analysed at once (the gate of the structured batches, :func:`_gated`); nothing to
        hold for a dense plan.  A dynamics run's flows take one per point."""
        return nullcontext() if self.structured == "none" else _gate(self.slots)

    def start(self, ids: np.ndarray, pool: ThreadPool | None) -> _Started:
        """:func:`_start`."""
        return _start(self, ids, pool)

    def finish(self, started: _Started) -> pa.Table:
        """:func:`_finish`."""
        return _finish(self, started)


def make_plan(
    config: Config | dict | str | Path,
    n: int | None = None,
    seed: int | None = None,
    *,
    analyse: bool = True,
    run: str = "sample",
    flow_vectors: int = 0,
) -> Plan:
    """Validate the configuration and the data and size the output buffers; with
    ``analyse`` (default) choose the analysis paths of ``classify.hessian`` and refuse
    (:class:`mcland.core.errors.TooLarge`) a configuration whose largest point cannot be
    analysed within the memory limit (:func:`_paths`, :mod:`mcland.core.cost`); without it
    the plan is only for drawing points (:func:`mcland.draw_point`, benchmarks).

    ``run`` names the request in a refusal (``"sample"``, ``"dynamics"``);
    ``flow_vectors``: float64 vectors of ``N`` a point holds besides its analysis (a
    dynamics run's flows: :func:`mcland.flow.run.make_job`), counted in the memory of a
    point when the plan has structured points (with dense ones only, the dense check is
    per point as in 0.8: these vectors are ``O(N)`` against its ``O(N^2)``).  A dynamics
    run's flows analyse their points on the plan's paths (:meth:`Plan.hessian`)."""
    cfg = as_config(config)
    if n is not None or seed is not None:
        cfg = config_from_dict(
            {
                **cfg.resolved(),
                **({"n": n} if n is not None else {}),
                **({"seed": seed} if seed is not None else {}),
            },
            source="overrides",
            base_dir=cfg.base_dir,
        )
    data, arch = cfg.data, cfg.architecture
    if data.source == "gaussian":
        fixed_x = fixed_y = np.zeros((0, 0))
        dx_max, dy_max = arch.d_y[1] + arch.d_x_extra[1], arch.d_y[1]
    else:
        path = Path(cfg.base_dir) / str(data.path)
        X, Y = load_data(data.source, path, data.x_columns, data.y_columns)
        problem = Problem.from_data(  # checks the data's assumptions before any point
            X, Y, gap_rtol=cfg.classify.gap_rtol, sxx_rcond=cfg.classify.sxx_rcond
        )
        fixed_x = np.ascontiguousarray(X, np.float64)
        fixed_y = np.ascontiguousarray(Y, np.float64)
        dx_max, dy_max = problem.d_x, problem.d_y
    h_max, hidden = arch.depth[1], arch.hidden[1]
    n_max = dx_max * hidden + (h_max - 2) * hidden * hidden + hidden * dy_max
    kernel_params, kill_weights = cfg.kernel_params(fixed_data=data.source != "gaussian")
    plan = Plan(cfg, kernel_params, kill_weights, fixed_x, fixed_y, h_max, dy_max, n_max)
    if not analyse:
        return plan
    widest = (dx_max, *([hidden] * (h_max - 1)), dy_max)
    return _paths(plan, cfg.classify.hessian, widest, run, flow_vectors)


def _paths(
    plan: Plan, mode: str, widest: tuple[int, ...], run: str = "sample", flow_vectors: int = 0
) -> Plan:
    """``plan`` with its analysis paths and spectrum width for ``classify.hessian = mode``,
    refusing (:class:`mcland.core.errors.TooLarge`, one line) what cannot fit: the dense
    analysis of the largest dense point (``"dense"``: of the largest point, as 0.8), the
    structured spectrum of the largest architecture ``widest`` (its ``k_bound``) with the
    batch's output buffers and ``flow_vectors`` vectors of ``N`` per point, at least one
    point at a time (more run in parallel only while they fit: :attr:`Plan.slots`)."""
    cfg = plan.config
    n_max = plan.n_max
    what = f"{run} (architecture.hidden, depth at their maxima)"
    original = cfg.output.original_spectrum
    # analyze()'s N x N arrays per point (a dynamics run's flows analyse in both coordinates)
    matrices = 3 if original or run == "dynamics" else 2
    structured = {"dense": "none", "structured": "all"}.get(mode, "none")
    n_dense = 0 if structured == "all" else n_max
    if mode == "auto" and n_max > DENSE_AUTO_MAX_N:
        structured, n_dense = "above", DENSE_AUTO_MAX_N
    dense = dense_cost(n_dense, matrices=matrices, decompositions=matrices - 1)
    if mode == "auto" and not fits(dense):
        structured, n_dense = "all", 0  # as choose_hessian: the path that fits
    if n_dense:
        alternative = (
            'lower architecture.hidden or depth, or set classify.hessian = "structured" '
            "(no N x N matrix)"
        )
        if run == "sample":  # a dynamics run needs the spectrum (eig_min_star, eig_max_star)
            alternative += f", or {MATRIX_FREE}"
        check_dense(
            dense,
            what if structured == "none" else f"{run} (points of up to {n_dense:,} parameters)",
            alternative,
        )
    if structured == "none":
        return plan
    st = structured_cost(widest)
    width = max(n_dense, st.k)
    lists = int(cfg.output.spectrum) * (1 + int(original))
    # two batches in flight (one computing, one written), their spectra and weights
    buffers = 2 * WIDE_BATCH * 8 * (lists * width + int(cfg.output.weights) * n_max)
    # one point in flight: a structured one's K and factors, or a dense one's N x N arrays,
    # with the drawn weights and their copies (and a dynamics point's flows' vectors)
    point = max(st.bytes, dense.bytes if n_dense else 0) + 8 * (4 + flow_vectors) * n_max
    if flow_vectors:
        what = what[:-1] + f"; with the flows' {flow_vectors} vectors of N per point)"
    check_structured(
        st, what, "lower architecture.hidden or depth", point_bytes=point, extra_bytes=buffers
    )  # the whitened and original K are formed one after the other
    slots = max(1, (memory_limit() - buffers) // max(point, 1))
    return dataclasses.replace(
        plan, structured=structured, spectrum_width=width, slots=slots, dense_max_n=n_dense
    )


class _Started(NamedTuple):
    """A batch being computed: its output buffers, its ids, the tasks computing it (none
    when it was computed in the calling thread)."""

    out: BatchOutput
    ids: np.ndarray
    tasks: list[Future]


def _start(plan: Plan, ids: np.ndarray, pool: ThreadPool | None) -> _Started:
    """Allocate a batch's outputs and start computing it: in ``pool`` if given, else right
    here.

    The batch is dealt to ``k = TASKS_PER_THREAD * threads`` tasks, task j taking points
    j, j + k, j + 2k, ...: interleaving balances the tasks (costs grow with the network),
    and few tasks mean few returns to Python.  A thread that finishes a task needs the GIL
    to start the next one, and while the main thread converts a batch it holds the GIL for
    up to ``sys.getswitchinterval()`` (5 ms).  With the earlier chunks of 8 points per task,
    lowering that interval to 0.2 ms took the small benchmark's pipeline/floor ratio from
    2.64 to 2.30 (medians of 5 paired rounds), which is what the waits were costing.
    """
    output = plan.config.output
    out = BatchOutput.allocate(
        ids.size,
        plan.h_max,
        plan.dy_max,
        plan.n_max,
        output.spectrum,
        output.original_spectrum,
        output.weights,
        plan.spectrum_width if plan.structured != "none" else None,
    )
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    # the same arrays, named for the kernel (BatchOutput's fields carry the kernel's names)
    view = RangeOutput(**{name: getattr(out, name) for name in RangeOutput._fields})
    if plan.structured == "none":
        kernel, args = process_range, (plan.sampler, ids, view)
    else:
        kernel, args = _gated, (plan.slots, plan.sampler, ids, view, plan.paths)
    if pool is None:
        kernel(*args, 0, ids.size, 1)
        return _Started(out, ids, [])
    k = min(ids.size, pool.tasks)
    tasks = [pool.submit(kernel, *args, j, ids.size, k) for j in range(k)]
    return _Started(out, ids, tasks)


_GATES: dict[int, threading.BoundedSemaphore] = {}
_GATES_LOCK = threading.Lock()


def _gate(slots: int) -> threading.BoundedSemaphore:
    """The process's semaphore of ``slots`` points (one per value of ``slots``)."""
    with _GATES_LOCK:
        return _GATES.setdefault(slots, threading.BoundedSemaphore(slots))


def _gated(slots: int, *args) -> None:
    """:func:`process_range_wide` on ``args`` while at most ``slots`` such calls of this
    process run (the structured plan's memory check allows ``slots`` points at a time)."""
    with _gate(slots):
        process_range_wide(*args)


def _finish(plan: Plan, started: _Started) -> pa.Table:
    """Wait for the batch ``started`` and return its records."""
    for task in started.tasks:
        task.result()  # raises what the task raised
    return to_table(started.out, started.ids, plan.seed)
