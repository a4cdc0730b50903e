"""Rebalancing given points whose layers' norms differ widely (:func:`rebalance`): an exact
symmetry of the loss that keeps the spectrum from being dominated by the largest layer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mcland.classification.certify.balance import balance_rows
from mcland.classification.inputs import layer_norms
from mcland.core.ragged import Ragged

REBALANCE_FROM = 8  # layers are rebalanced when their norms differ by 2**8 or more


def rebalance(dims: Sequence[np.ndarray], w: Sequence[np.ndarray]) -> tuple[Ragged, np.ndarray]:
    """The points with their layers rescaled by powers of two to comparable norms
    (:func:`mcland.classification.certify.balance.layer_balance`) where the largest and smallest nonzero layer
    norms differ by ``2**REBALANCE_FROM`` or more, and which were rescaled (n,) bool.

    ``dims`` and ``w`` are the architectures and flat weights (:class:`mcland.core.ragged.Ragged`
    or lists of arrays).  ``W_h -> 2**-k_h W_h`` with ``sum k_h = 0`` leaves every product
    ``W_{H:1}`` (and so the loss) unchanged bit for bit, and is a fixed diagonal linear map
    of the parameters, so the Hessians are congruent: same inertia, same type, same ``S``.
    On a badly scaled factorisation (one layer ``c`` times larger, the next ``c`` times
    smaller) the Hessian's norm grows like ``c**2`` and its float64 floor with it, hiding
    negative eigenvalues that the rescaled point shows; the ground-truth set's badly scaled
    points (docs/groundtruth.md) are where this was measured (tests/test_rebalance.py).
    """
    dims, w = Ragged.from_arrays(dims, np.int64), Ragged.from_arrays(w)
    n = len(w)
    moved = np.zeros(n, bool)
    if not n:
        return w, moved
    # every layer's figures at once (norm, largest and smallest nonzero |entry|)
    norms, starts = layer_norms(dims, w)
    absw = np.abs(w.flat)
    big = np.maximum.reduceat(absw, starts)
    small = np.minimum.reduceat(np.where(absw > 0, absw, np.inf), starts)
    depth, first = norms.lengths, norms.off[:-1]  # each point's first layer
    largest = np.maximum.reduceat(norms.flat, first)
    smallest = np.minimum.reduceat(np.where(norms.flat > 0, norms.flat, np.inf), first)
    count = np.add.reduceat((norms.flat > 0).astype(np.int64), first)
    spread = (count >= 2) & (largest >= smallest * 2.0**REBALANCE_FROM)
    if not spread.any():
        return w, moved
    k_layer = np.zeros(norms.flat.size, np.int64)
    for H in np.unique(depth[spread]):  # per depth, vectorised
        rows = np.flatnonzero(spread & (depth == H))
        layers = first[rows][:, None] + np.arange(H)[None, :]
        k_layer[layers] = balance_rows(norms.flat[layers], big[layers], small[layers])
    moved = np.logical_or.reduceat(k_layer != 0, first)
    sizes = np.diff(np.append(starts, w.flat.size))
    scale = np.repeat(np.ldexp(1.0, -k_layer), sizes)  # exact: powers of two
    return Ragged(w.flat * scale, w.off), moved
