"""What a dense Hessian would cost, checked before it is formed (issue 21, item 5).

Every path that forms the dense ``N x N`` Hessian (the analysis kernel
:func:`mcland._kernels.classify.analyze` behind ``sample``, ``dynamics``, ``inspect`` and
``classify``; the exact and float64 matrices of ``groundtruth``) calls :func:`check_dense`
first with the largest ``N`` the request can reach.  A request whose estimate exceeds the
limits is refused by :class:`mcland.core.errors.TooLarge` (one line, exit status 2 from
the command line), naming the estimate, the limit and the alternative, before anything
is allocated or written.

Limits
------
* **Memory**: :data:`MEMORY_FRACTION` (one half) of the physical RAM, read with
  ``os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")``; the environment variable
  ``MCLAND_MEMORY_LIMIT`` (bytes) replaces it.  Half, because the machine is shared with
  the interpreter, the data, the output buffers and other processes, and a request that
  plans to use all of it swaps or is killed instead of failing cleanly.
* **Time**: no limit by default (:data:`FLOP_BUDGET` ``None``: a long run shows
  progress); the estimate is still part of the message.  ``MCLAND_FLOP_BUDGET`` (flops per
  point) sets one.

Estimates
---------
The analysis kernel keeps ``2 N^2`` float64 per point in flight (the whitened Hessian and
the Cholesky factor's scratch, ``analyze``'s ``work``), plus ``N^2`` for the
original-coordinate Hessian when its spectrum is asked for; each worker thread has its
own.  Its leading flop count is ``(4/3) N^3`` per symmetric eigenvalue decomposition
(Householder tridiagonalisation, the ``dsyevd`` values-only count of Golub & Van Loan) and
``N^3 / 3`` per Cholesky factorisation.  LAPACK's values-only workspace is ``O(N)`` and
left out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from mcland.core.errors import MclandError, TooLarge

MEMORY_FRACTION = 0.5  # of the physical RAM that one request may plan to use
MEMORY_ENV = "MCLAND_MEMORY_LIMIT"  # bytes; replaces MEMORY_FRACTION * physical RAM
FLOP_BUDGET: float | None = None  # flops per point; None: no time limit
FLOP_ENV = "MCLAND_FLOP_BUDGET"


def physical_memory() -> int:
    """Bytes of physical RAM (``os.sysconf``)."""
    return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))


def memory_limit() -> int:
    """Bytes one request may plan to use: ``$MCLAND_MEMORY_LIMIT`` if set, else
    :data:`MEMORY_FRACTION` of :func:`physical_memory`."""
    env = os.environ.get(MEMORY_ENV)
    if env:
        return int(float(env))
    return int(MEMORY_FRACTION * physical_memory())


def flop_budget() -> float | None:
    """Flops one point may take: ``$MCLAND_FLOP_BUDGET`` if set, else :data:`FLOP_BUDGET`."""
    env = os.environ.get(FLOP_ENV)
    return float(env) if env else FLOP_BUDGET


@dataclass(frozen=True)
class DenseCost:
    """Predicted cost of the dense analysis of one point of ``N`` parameters:
    ``bytes`` peak memory (all ``workers``), ``flops`` per point."""

    N: int
    bytes: int
    flops: float


def dense_cost(
    N: int, *, matrices: int = 2, decompositions: int = 1, workers: int = 1
) -> DenseCost:
    """The estimate of the module docstring: ``workers * matrices * 8 N^2`` bytes and
    ``decompositions * (4/3) N^3 + N^3 / 3`` flops."""
    N = int(N)
    nbytes = int(workers) * int(matrices) * 8 * N * N
    flops = decompositions * 4.0 / 3.0 * float(N) ** 3 + float(N) ** 3 / 3.0
    return DenseCost(N, nbytes, flops)


def _size(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1e3:.1f} kB"


def fits(cost: DenseCost) -> bool:
    """Whether ``cost`` is within :func:`memory_limit` and :func:`flop_budget`."""
    budget = flop_budget()
    return cost.bytes <= memory_limit() and (budget is None or cost.flops <= budget)


def _excess(need: int) -> str:
    """What a refused request exceeds: the memory limit when it needs more than that
    (``need`` bytes), else the flop budget."""
    limit = memory_limit()
    if need > limit:
        source = f"${MEMORY_ENV}" if os.environ.get(MEMORY_ENV) else f"{MEMORY_FRACTION:.0%} of RAM"
        return f"more than the memory limit {_size(limit)} ({source})"
    return f"more than the flop budget {flop_budget():.2g} per point"


def check_dense(cost: DenseCost, what: str, alternative: str) -> None:
    """Refuse (:class:`TooLarge`) when ``cost`` exceeds :func:`memory_limit` or
    :func:`flop_budget`; ``what`` names the request, ``alternative`` what to do instead."""
    if fits(cost):
        return
    excess = _excess(cost.bytes)
    raise TooLarge(
        f"{what}: the dense Hessian of N = {cost.N:,} parameters needs {_size(cost.bytes)} "
        f"and {cost.flops:.2g} flops per point, {excess}; {alternative}"
    )


# ``hessian = "auto"`` keeps the dense path up to this N (the sizes that run today, whose
# records must stay bit-identical) and chooses by predicted flops above it
DENSE_AUTO_MAX_N = 5_000
MATRIX_FREE_MODE = "matrix_free"  # also the spectrum_method of its rows
# the paths that give the whole spectrum (sample, dynamics, groundtruth), and all of them:
# ``classify`` and ``inspect`` also take proven bounds on the extremes and the inertia
SPECTRUM_MODES = ("auto", "dense", "structured")
HESSIAN_MODES = (*SPECTRUM_MODES, MATRIX_FREE_MODE)
MATRIX_FREE = (
    f'hessian = "{MATRIX_FREE_MODE}" in mcland classify or inspect (proven bounds on lambda_min, '
    "lambda_max and the inertia: mcland.core.extremes.matrix_free_spectrum)"
)


@dataclass(frozen=True)
class StructuredCost:
    """Predicted cost of the structured spectrum (:mod:`mcland._kernels.structured`) of a
    point of widths ``dims``, at the largest order ``k`` of K any point of them can have."""

    N: int
    k: int
    bytes: int
    flops: float


def structured_cost(dims) -> StructuredCost:
    """:func:`mcland._kernels.structured.memory_bytes` and ``flops`` at ``k_bound(dims)``."""
    from mcland._kernels import structured as ks

    d = np.ascontiguousarray(dims, np.int64)
    k = int(ks.k_bound(d))
    N = int(np.sum(d[1:] * d[:-1]))
    return StructuredCost(N, k, int(ks.memory_bytes(d, k)), float(ks.flops(d, k)))


def check_structured(
    cost: StructuredCost,
    what: str,
    alternative: str,
    *,
    point_bytes: int | None = None,
    extra_bytes: int = 0,
) -> None:
    """Refuse (:class:`TooLarge`, one line: the estimate, the limit, ``alternative`` and
    the matrix-free extremes) when one point's structured analysis (``point_bytes``,
    default ``cost.bytes``) plus ``extra_bytes`` (output buffers) exceeds
    :func:`memory_limit`, or its flops :func:`flop_budget`."""
    need = (cost.bytes if point_bytes is None else int(point_bytes)) + int(extra_bytes)
    limit = memory_limit()
    budget = flop_budget()
    if need <= limit and (budget is None or cost.flops <= budget):
        return
    excess = _excess(need)
    raise TooLarge(
        f"{what}: the structured Hessian spectrum of N = {cost.N:,} parameters (K of order "
        f"up to {cost.k:,}) needs {_size(need)} and {cost.flops:.2g} flops per point, "
        f"{excess}; {alternative}, or {MATRIX_FREE}"
    )


@dataclass(frozen=True)
class MatrixFreeCost:
    """Predicted cost of the matrix-free bounds (:func:`mcland.core.extremes.matrix_free_cost`
    at the defaults of :func:`mcland.core.extremes.matrix_free_spectrum`, every product of
    its cap used) of a point of ``N`` parameters: ``bytes`` peak, ``flops`` (two per
    multiply-add) and ``product_flops`` per Hessian-vector product."""

    N: int
    bytes: int
    flops: float
    product_flops: float


def matrix_free_cost(dims, threads: int = 1) -> MatrixFreeCost:
    """:class:`MatrixFreeCost` of a point of widths ``dims``, its products on ``threads``."""
    from mcland.core import extremes

    c = extremes.matrix_free_cost(np.ascontiguousarray(dims, np.int64), threads=max(1, threads))
    return MatrixFreeCost(c.N, int(c.bytes), 2.0 * c.madds, 2.0 * c.product_madds)


def check_matrix_free(cost: MatrixFreeCost, what: str) -> None:
    """Refuse (:class:`TooLarge`, one line with the estimate) when the matrix-free bounds of
    one point exceed :func:`memory_limit` or :func:`flop_budget`."""
    budget = flop_budget()
    if cost.bytes <= memory_limit() and (budget is None or cost.flops <= budget):
        return
    raise TooLarge(
        f"{what}: the matrix-free bounds of N = {cost.N:,} parameters need {_size(cost.bytes)} "
        f"and {cost.flops:.2g} flops per point, {_excess(cost.bytes)}; use a smaller "
        f"network, or raise ${MEMORY_ENV} / ${FLOP_ENV} if the machine allows"
    )


def choose_hessian(
    mode: str,
    dims,
    what: str,
    *,
    matrices: int = 2,
    workers: int = 1,
    matrix_free: bool = False,
    threads: int = 1,
) -> str:
    """``"dense"``, ``"structured"`` or (with ``matrix_free``, the callers that record proven
    bounds instead of a spectrum: ``classify``, ``inspect``) ``"matrix_free"`` for a point of widths
    ``dims`` under ``mode`` (:data:`HESSIAN_MODES`), refusing (:class:`TooLarge`, one line
    with the estimate and the alternative) what cannot fit.

    ``auto``: dense up to :data:`DENSE_AUTO_MAX_N` parameters when it fits, else the path
    with fewer predicted flops among those that fit; with ``matrix_free``, the matrix-free
    bounds when neither the dense nor the structured spectrum fits the memory limit and
    the flop budget.  ``threads``: the matrix-free products' threads (one point at a
    time); ``workers``: points analysed at once on the other paths."""
    if mode not in HESSIAN_MODES:
        raise MclandError(f"hessian must be one of {', '.join(HESSIAN_MODES)}, got {mode!r}")
    if mode == MATRIX_FREE_MODE and not matrix_free:
        raise MclandError(
            f'{what}: hessian = "{MATRIX_FREE_MODE}" gives bounds, not a spectrum: it is for '
            'mcland classify and inspect only; use "auto", "dense" or "structured"'
        )
    d = np.asarray(dims, np.int64)
    if mode == MATRIX_FREE_MODE:
        check_matrix_free(matrix_free_cost(d, threads), what)
        return MATRIX_FREE_MODE
    N = int(np.sum(d[1:] * d[:-1]))
    dense = dense_cost(N, matrices=matrices, workers=workers)
    if mode == "dense":
        alt = 'use hessian = "structured" (no N x N matrix)'
        check_dense(dense, what, f'{alt} or "{MATRIX_FREE_MODE}"' if matrix_free else alt)
        return "dense"
    limit = memory_limit()
    budget = flop_budget()
    dense_fits = dense.bytes <= limit and (budget is None or dense.flops <= budget)
    if mode == "auto" and dense_fits and N <= DENSE_AUTO_MAX_N:
        return "dense"  # without compiling the structured estimates
    st = structured_cost(d)
    st_fits = workers * st.bytes <= limit
    if mode == "auto" and dense_fits and (not st_fits or dense.flops <= st.flops):
        return "dense"
    if mode == "auto" and matrix_free and not (st_fits and (budget is None or st.flops <= budget)):
        check_matrix_free(matrix_free_cost(d, threads), what)
        return MATRIX_FREE_MODE
    if not st_fits:
        raise TooLarge(
            f"{what}: the structured Hessian spectrum of N = {N:,} parameters (K of order up "
            f"to {st.k:,}) needs {_size(workers * st.bytes)}, more than the memory limit "
            f"{_size(limit)}; {MATRIX_FREE}"
        )
    return "structured"
