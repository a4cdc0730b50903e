"""Progress for long points (issue 21, item 5): a predicted cost before the work starts and a
heartbeat while one point takes seconds to minutes.

A wide point is one call of a compiled kernel (nogil) that reports nothing until it is done,
so a progress bar in points would sit at ``0/1`` without its clock moving.  :func:`heartbeat`
refreshes the bar from a thread of its own (the elapsed time ticks); :func:`cost_lines`
names, before the work, what each wide architecture will cost (the path ``hessian`` takes,
``N``, the order of K, the flops and the memory of :mod:`mcland.core.cost`).  Both write to
stderr, and only when progress is on (``--progress``, the default of ``classify``; ``inspect``
when stderr is a terminal), so piped output stays clean.
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np

from mcland.core.cost import (
    DENSE_AUTO_MAX_N,
    MATRIX_FREE_MODE,
    choose_hessian,
    dense_cost,
    matrix_free_cost,
    structured_cost,
)

HEARTBEAT_S = 1.0  # seconds between refreshes of a progress bar while a point computes


@contextmanager
def heartbeat(bar, interval: float = HEARTBEAT_S) -> Iterator[None]:
    """Refresh the tqdm ``bar`` every ``interval`` seconds while the body runs (nothing
    when the bar is disabled)."""
    if getattr(bar, "disable", True):
        yield
        return
    done = threading.Event()

    def beat() -> None:
        while not done.wait(interval):
            bar.refresh()

    thread = threading.Thread(target=beat, name="mcland-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def cost_lines(
    dims_list: Iterable, hessian: str, what: str, workers: int = 1, matrix_free: bool = False
) -> list[str]:
    """One line per distinct architecture of more than :data:`DENSE_AUTO_MAX_N` parameters
    (the points that take seconds or more): the path ``hessian`` chooses (``matrix_free``:
    the caller takes matrix-free bounds, as :func:`mcland.core.cost.choose_hessian`) and its
    predicted cost per point (upper bounds: K at its largest order ``k_bound``; every
    product of the matrix-free cap)."""
    seen: dict[tuple[int, ...], int] = {}
    for d in dims_list:
        key = tuple(int(x) for x in np.asarray(d).ravel())
        seen[key] = seen.get(key, 0) + 1
    lines = []
    for key, count in seen.items():
        N = sum(a * b for a, b in itertools.pairwise(key))
        if N <= DENSE_AUTO_MAX_N:
            continue
        path = choose_hessian(
            hessian, key, what, workers=workers, matrix_free=matrix_free, threads=workers
        )
        arch = "-".join(map(str, key))
        if path == MATRIX_FREE_MODE:
            c = matrix_free_cost(key, workers)
            cost = (
                f"matrix-free bounds: {c.product_flops:.2g} flops per Hessian-vector product, "
                f"<= {c.flops:.2g} flops, <= {c.bytes / 1e9:.2f} GB"
            )
        elif path == "dense":
            c = dense_cost(N)
            cost = f"dense N x N Hessian: {c.flops:.2g} flops, {c.bytes / 1e9:.2f} GB"
        else:
            c = structured_cost(key)
            cost = (
                f"structured, K of order <= {c.k:,}: <= {c.flops:.2g} flops, "
                f"<= {c.bytes / 1e9:.2f} GB"
            )
        plural = "s" if count > 1 else ""
        lines.append(f"{what}: {count} point{plural} {arch} (N = {N:,}), {cost} per point")
    return lines


def announce(lines: Iterable[str]) -> None:
    """Print ``lines`` on stderr, each prefixed ``mcland: ``."""
    for line in lines:
        print(f"mcland: {line}", file=sys.stderr, flush=True)


@contextmanager
def one_point(desc: str, lines: list[str], enabled: bool) -> Iterator[None]:
    """A progress bar of one point with a heartbeat, after the cost ``lines``; shown only when
    ``enabled`` and stderr is a terminal."""
    from tqdm.auto import tqdm

    enabled = enabled and sys.stderr.isatty()
    if enabled:
        announce(lines)
    with tqdm(total=1, unit="pt", desc=desc, disable=not enabled) as bar, heartbeat(bar):
        yield
        bar.update(1)
