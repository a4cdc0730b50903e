"""The analysis of given points by the sampler's own kernel (:func:`analyze_points`, the
nogil batch loop :func:`mcland._kernels.given.classify_range` in worker threads), with the
rebalanced point analysed where the layers' scales differ (:func:`analyze_given`), and the
enumerated critical value nearest to each loss (:func:`nearest`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import comb

import numpy as np
import pyarrow as pa

from mcland._kernels import fields as f
from mcland._kernels import params as p
from mcland._kernels.bundles import RangeOutput
from mcland._kernels.given import classify_range
from mcland._kernels.structured_classify import classify_range_mixed
from mcland.classification.matrix_free import BOUND_COLUMNS, analyze_matrix_free, empty_bounds
from mcland.classification.rebalance import rebalance
from mcland.core.blas import one_blas_thread
from mcland.core.cost import (
    MATRIX_FREE_MODE,
    check_dense,
    choose_hessian,
    dense_cost,
    structured_cost,
)
from mcland.core.problem import Problem
from mcland.core.ragged import Ragged
from mcland.core.tolerances import Tolerances
from mcland.execution.threads import default_threads, thread_pool
from mcland.points.records import BatchOutput

NO_MAX_K = np.int64(2**62)  # the structured kernel's cap on k: the cost was checked before
MAX_DY_NEAREST = 20  # beyond, the 2**d_y critical values are not enumerated for the nearest one


@dataclass
class GivenOutput(BatchOutput):
    """:class:`mcland.points.records.BatchOutput` with the path of each row and the
    matrix-free bounds: ``bounds`` maps :data:`.matrix_free.BOUND_COLUMNS` and
    ``spectrum_method`` to (n,) arrays (:func:`.matrix_free.empty_bounds`)."""

    bounds: dict | None = None


def analyze_points(
    dims: Sequence[np.ndarray],
    w: Sequence[np.ndarray],
    problem: Problem,
    tol: Tolerances,
    threads: int | None = None,
    hessian: str = "auto",
) -> GivenOutput:
    """The kernel's outputs for the given points (architectures ``dims`` and flat weights
    ``w``: :class:`mcland.core.ragged.Ragged` or lists of arrays), in
    :class:`GivenOutput`, with the draw facts that apply filled in, computed in ``threads``
    worker threads; each point's spectrum from the path :func:`hessian_paths` chooses (the
    matrix-free rows one after the other, their products on ``threads`` threads:
    :func:`.matrix_free.analyze_matrix_free`)."""
    dims, w = Ragged.from_arrays(dims, np.int64), Ragged.from_arrays(w)
    paths = hessian_paths(dims, hessian, threads)
    structured = paths == "structured"
    free = paths == MATRIX_FREE_MODE
    n = len(dims)
    depth = dims.lengths - 1
    h_max = int(depth.max())
    n_max = int(w.lengths.max())
    width = spectrum_width(dims, w, structured, free)
    out = BatchOutput.allocate(n, h_max, problem.d_y, n_max, True, False, True, width)
    bounds = empty_bounds(paths)
    if free.all():
        pass
    elif free.any():  # the kernel on the other rows, then their rows scattered
        rest = np.flatnonzero(~free)
        sub = BatchOutput.allocate(rest.size, h_max, problem.d_y, n_max, True, False, True, width)
        _kernel_rows(dims.take(rest), w.take(rest), problem, tol, threads, structured[rest], sub)
        for name in BatchOutput.__dataclass_fields__:
            getattr(out, name)[rest] = getattr(sub, name)
    else:  # the loop of today's records, unchanged
        _kernel_rows(dims, w, problem, tol, threads, structured, out)
    for t in np.flatnonzero(free):
        cols = analyze_matrix_free(dims[t], w[t], problem, tol, threads, out, int(t))
        for name in BOUND_COLUMNS:
            bounds[name][t] = cols[name]
    # the draw facts that apply, for all points at once
    di = {name: i for i, name in enumerate(p.DRAW_INT_FIELDS)}
    dfl = {name: i for i, name in enumerate(p.DRAW_FLOAT_FIELDS)}
    dims.pad_into(out.dims)
    r = np.minimum.reduceat(dims.flat, dims.off[:-1])
    out.draw_int[:, di["H"]] = depth
    out.draw_int[:, di["d_x"]] = dims.flat[dims.off[:-1]]
    out.draw_int[:, di["d_y"]] = dims.flat[dims.off[1:] - 1]
    out.draw_int[:, di["r"]] = r
    out.draw_int[:, di["N"]] = w.lengths
    out.draw_int[:, di["draw_status"]] = p.STATUS_OK
    out.draw_float[:, dfl["min_rel_gap"]] = problem.min_rel_gap
    out.draw_float[:, dfl["sxx_rcond"]] = problem.sxx_rcond
    w.pad_into(out.weights)
    width = out.critical_values.shape[1]
    out.critical_values[:] = np.nan  # null unless the architecture's values fit the width
    for rank in np.unique(r) if width else ():
        if sum(comb(problem.d_y, k) for k in range(min(int(rank), problem.d_y) + 1)) <= width:
            values = problem.critical_values(int(rank))
            out.critical_values[np.flatnonzero(r == rank), : values.size] = values
    return GivenOutput(**vars(out), bounds=bounds)


def _kernel_rows(
    dims: Ragged,
    w: Ragged,
    problem: Problem,
    tol: Tolerances,
    threads: int | None,
    structured: np.ndarray,
    out: BatchOutput,
) -> None:
    """The dense and structured rows: the nogil batch kernels into ``out``, in threads."""
    n = len(dims)
    view = RangeOutput(**{name: getattr(out, name) for name in RangeOutput._fields})
    flags = np.int64(f.SPECTRUM)
    args = (dims.flat, dims.off, w.flat, w.off, problem.moments, tol.thresholds, flags, view)
    kernel = classify_range  # all dense: the loop of the sampler's records, unchanged
    if structured.any():
        kernel = classify_range_mixed
        args = (*args, structured, NO_MAX_K)
    with one_blas_thread(), thread_pool(threads) as pool:
        if pool is None:
            kernel(*args, 0, n, 1)
        else:
            k = min(n, pool.tasks)
            for task in [pool.submit(kernel, *args, j, n, k) for j in range(k)]:
                task.result()


def spectrum_width(
    dims: Ragged, w: Ragged, structured: np.ndarray, free: np.ndarray | None = None
) -> int:
    """Columns of the spectrum buffer: the longest stored spectrum, N of a dense point or
    ``k_bound`` of a structured one (which stores the k eigenvalues of K and
    ``spectrum_zeros``, docs/structured.md); none for a matrix-free one (``free``)."""
    dense = ~structured if free is None else ~structured & ~free
    width = int(w.lengths[dense].max()) if dense.any() else 0
    archs = {tuple(dims.flat[dims.off[t] : dims.off[t + 1]]) for t in np.flatnonzero(structured)}
    for d in archs:
        width = max(width, structured_cost(d).k)
    return width


def hessian_paths(dims: Ragged, hessian: str, threads: int | None) -> np.ndarray:
    """The path of each point (n,) object: ``"dense"``, ``"structured"`` or
    ``"matrix_free"`` under ``hessian`` (:data:`mcland.core.cost.HESSIAN_MODES`;
    :func:`mcland.core.cost.choose_hessian`, each worker thread holding one dense or
    structured point's arrays, a matrix-free point's products on all threads), refusing
    (:class:`mcland.core.errors.TooLarge`) before any work when a point cannot fit."""
    workers = max(1, threads if threads is not None else default_threads())
    chosen: dict[tuple[int, ...], str] = {}
    out = np.empty(len(dims), object)
    for t in range(len(dims)):
        key = tuple(int(d) for d in dims.flat[dims.off[t] : dims.off[t + 1]])
        if key not in chosen:
            chosen[key] = choose_hessian(
                hessian, key, "classify", workers=workers, matrix_free=True, threads=workers
            )
        out[t] = chosen[key]
    return out


def check_points(dims: Ragged, hessian: str, refine: bool, threads: int | None) -> None:
    """Refuse (:class:`mcland.core.errors.TooLarge`) before any work a request whose points
    cannot be analysed (:func:`hessian_paths`) or refined (``refine``: the dense Hessian,
    its upper-triangle copy and ``lstsq``'s two working copies, four N x N arrays)."""
    hessian_paths(dims, hessian, threads)
    if refine and len(dims):
        n_max = int(max(np.sum(d[1:] * d[:-1]) for d in dims))
        check_dense(
            dense_cost(n_max, matrices=4),
            "classify --refine (Gauss-Newton steps on the dense Hessian)",
            "classify the points without refine",
        )


def analyze_given(
    dims: Sequence[np.ndarray],
    w: Sequence[np.ndarray],
    problem: Problem,
    tol: Tolerances,
    threads: int | None,
    hessian: str = "auto",
) -> tuple[GivenOutput, np.ndarray, Ragged]:
    """:func:`analyze_points` (``hessian`` as there), with the badly scaled points analysed at their rebalanced
    form (:func:`rebalance`) when that form is critical; returns the outputs, which rows
    describe a rebalanced point (n,) bool, and the points the rows describe.

    Two cases get the record of the point as given instead:

    * the rebalanced form is not critical.  Criticality is judged relative to the
      gradient's scale, which is not invariant under the rescaling (a near-critical point
      with a layer of norm 1e-30 can have a large relative gradient once that layer is
      brought to norm 1);
    * the rebalanced analysis leaves an eigenvalue in the uncertain band (between
      ``-tol_neg`` and ``-tol_zero``: ``n_neg + n_zero + n_pos < N``) while the analysis
      as given, critical too, resolves every eigenvalue with at least as many negative and
      as many positive ones.  The rescaling is a congruence: it can shrink an eigenvalue
      whose eigenvector couples two layers scaled in opposite directions (by
      ``2**(k_a + k_b)``) while the floor barely moves, so it does not always help.
      Eigenvalues beyond the floors are signed correctly in either analysis, so the as-given
      counts are then the better-resolved reading of the same inertia (sample 32436 of
      ``runs/linnerud.toml``, docs/classify.md#speed).

    The ``weights`` column always holds the point as given.
    """
    dims, w = Ragged.from_arrays(dims, np.int64), Ragged.from_arrays(w)
    balanced, moved = rebalance(dims, w)
    out = analyze_points(dims, balanced, problem, tol, threads, hessian)
    if not moved.any():
        return out, moved, w
    ri = out.row_int
    # a matrix-free row has no counts (its bounds are invariant under the rescaling)
    unsure = (_counted(ri) < w.lengths) & (out.bounds["spectrum_method"] != MATRIX_FREE_MODE)
    back = np.flatnonzero(moved & ((ri[:, f.I_IS_CRITICAL] != 1) | unsure))
    if back.size:
        sub = analyze_points(dims.take(back), w.take(back), problem, tol, threads, hessian)
        sr = sub.row_int
        keep = (ri[back, f.I_IS_CRITICAL] == 1) & ~(  # rebalanced and critical, unless ...
            (sr[:, f.I_IS_CRITICAL] == 1)
            & (_counted(sr) == w.lengths[back])
            & (sr[:, f.I_N_NEG] >= ri[back, f.I_N_NEG])
            & (sr[:, f.I_N_POS] >= ri[back, f.I_N_POS])
        )  # ... the analysis as given resolves the inertia better
        back, take = back[~keep], np.flatnonzero(~keep)
        for name in BatchOutput.__dataclass_fields__:
            src, dst = getattr(sub, name), getattr(out, name)
            dst[back, : src.shape[1]] = src[take]
        for name, col in out.bounds.items():
            col[back] = sub.bounds[name][take]
        moved[back] = False
    rows = np.flatnonzero(moved)
    out.weights[rows] = w.take(rows).padded(out.weights.shape[1])
    analysed = Ragged(np.where(np.repeat(moved, w.lengths), balanced.flat, w.flat), w.off)
    return out, moved, analysed


def _counted(row_int: np.ndarray) -> np.ndarray:
    """``n_neg + n_zero + n_pos`` of each row: less than ``N`` when an eigenvalue fell in
    the uncertain band between ``-tol_neg`` and ``-tol_zero``."""
    return row_int[:, f.I_N_NEG] + row_int[:, f.I_N_ZERO] + row_int[:, f.I_N_POS]


def nearest_index(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``np.argmin(np.abs(values - x_i))`` for every ``x_i`` (the first index of the nearest
    value; 0 for NaN), for ascending ``values`` (m,) and ``x`` (k,), by bisection."""
    m = values.size
    i = np.searchsorted(values, x)
    lo, hi = np.clip(i - 1, 0, m - 1), np.clip(i, 0, m - 1)
    pick = np.where(np.abs(values[hi] - x) < np.abs(values[lo] - x), hi, lo)
    first = np.searchsorted(values, values[pick])  # the first of equal values, as argmin
    return np.where(np.isnan(x), 0, first)


def nearest(out: BatchOutput, dims_list: list[np.ndarray], problem: Problem) -> dict[str, pa.Array]:
    n = len(dims_list)
    value = np.full(n, np.nan)
    index = np.full(n, -1, np.int64)
    loss = out.row_float[:, f.F_LOSS]
    if problem.d_y <= MAX_DY_NEAREST and n:
        r_all = out.draw_int[:, p.DRAW_INT_FIELDS.index("r")]
        for r in np.unique(r_all):  # per bottleneck, all points at once
            rows = np.flatnonzero(r_all == r)
            cv = problem.critical_values(int(r))
            index[rows] = nearest_index(cv, loss[rows])
            value[rows] = cv[index[rows]]
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = np.abs(loss - value) / out.row_float[:, f.F_LOSS_TOL]
    missing = index < 0
    return {
        "nearest_critical_value": pa.array(value, pa.float64(), mask=missing),
        "nearest_critical_index": pa.array(index, pa.int32(), mask=missing),
        "nearest_critical_distance": pa.array(dist, pa.float64(), mask=missing),
    }
