"""Plateaus of a loss curve ``L(t)`` of gradient flow (docs/dynamics.md).

Criterion.  Along gradient flow ``dL/dt = -||grad L||^2``, so the loss decrease per unit of
*log* time is ``-dL/d ln t = t ||grad L(t)||^2``.  A grid time ``t_k`` lies on a plateau when

    t_k ||grad L(W(t_k))||^2 <= threshold * scale,

``scale`` the smallest loss drop to resolve (``lambda_r``, the smallest eigenvalue of
``Sigma`` a drop of the staircase can be).  The measure is free of the time unit (a
rescaling of time leaves it unchanged) and of how long the plateau lasts; a drop of size
``lambda_k`` over its own time scale ``tau`` at time ``t`` gives ``t ||grad||^2 ~
lambda_k t / tau >> lambda_k``.  A plateau is a maximal run of consecutive grid times on
the criterion, split wherever the loss drops by more than ``threshold * scale`` between two
consecutive grid times (an escape faster than the grid), that lasts at least ``t_end /
t_start >= min_ratio``; a run that reaches the end of the flow with no drop after it is
its final state, not a plateau.  The grid is log-spaced, so times are
resolved to its ratio.
"""

from __future__ import annotations

import numpy as np


def plateau_runs(
    t: np.ndarray,
    rate: np.ndarray,
    loss: np.ndarray,
    loss_end: float,
    threshold: float,
    min_ratio: float,
) -> list[tuple[int, int]]:
    """Index ranges ``(a, b)`` (inclusive) of the plateaus of a sampled curve.

    Parameters
    ----------
    t : ndarray (K,)
        Ascending positive grid times.
    rate : ndarray (K,)
        ``t ||grad L||^2`` at ``t``; NaN past the end of the run (the run's end is the
        last finite entry).
    loss : ndarray (K,)
        The loss at ``t``.
    loss_end : float
        The loss at the end of the run (after the last finite grid time).
    threshold : float
        ``threshold * scale`` of the criterion, in loss units.  A plateau also never
        contains a drop of more than ``threshold`` between two consecutive grid times: a
        transition faster than the grid (at depth ``H >= 3`` the escape from a plateau is
        abrupt) separates two plateaus even when both grid times satisfy the criterion.
    min_ratio : float
        Shortest plateau, ``t[b] / t[a] >= min_ratio``.

    Returns
    -------
    list of (int, int)
        In time order.  A run of grid times that reaches the end of the flow without a
        drop after it is the final state, not a plateau.
    """
    finite = np.isfinite(rate)
    if not finite.any():
        return []
    last = int(np.flatnonzero(finite)[-1])
    on = finite & (rate <= threshold)
    runs: list[tuple[int, int]] = []
    k = 0
    while k <= last:
        if not on[k]:
            k += 1
            continue
        a = k
        while k + 1 <= last and on[k + 1] and loss[k] - loss[k + 1] <= threshold:
            k += 1
        b = k
        k += 1
        final = b == last and not loss[last] - loss_end > threshold
        if not final and t[b] / t[a] >= min_ratio:
            runs.append((a, b))
    return runs
