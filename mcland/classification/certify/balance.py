"""Balancing a point's layers by powers of two: ``W_h -> 2^{-k_h} W_h`` with ``sum_h k_h = 0``
is an exact symmetry of ``L`` (same loss bit for bit, same type, congruent Hessian), which
brings layers of very different norms to comparable ones before their curvature is judged.
"""

from __future__ import annotations

import numpy as np


def layer_figures(dims: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per layer of ``m`` points of one architecture (flat weights ``W`` (m, N)):
    Frobenius norms, largest and smallest nonzero absolute entries (each (m, H)), and
    the end-to-end products ``W_{H:1}`` (m, d_H, d_0)."""
    dims = [int(d) for d in dims]
    H = len(dims) - 1
    m = W.shape[0]
    norms, big, small = np.empty((m, H)), np.empty((m, H)), np.empty((m, H))
    start = 0
    P = None
    for h in range(1, H + 1):
        size = dims[h] * dims[h - 1]
        L = W[:, start : start + size].reshape(m, dims[h], dims[h - 1])
        start += size
        A = np.abs(L).reshape(m, -1)
        norms[:, h - 1] = np.sqrt((A * A).sum(axis=1))
        big[:, h - 1] = A.max(axis=1)
        small[:, h - 1] = np.where(A > 0, A, np.inf).min(axis=1)
        P = L if P is None else np.matmul(L, P)
    return norms, big, small, P


def balance_rows(norms: np.ndarray, big: np.ndarray, small: np.ndarray) -> np.ndarray:
    """:func:`layer_balance` for ``m`` points at once, from :func:`layer_figures`:
    ``k`` (m, H) int64."""
    m, H = norms.shape
    nz = norms > 0
    with np.errstate(divide="ignore"):
        logs = np.where(nz, np.log2(np.where(nz, norms, 1.0)), 0.0)
    all_nz = nz.all(axis=1)
    count = np.maximum(nz.sum(axis=1), 1)
    target = np.where(all_nz, logs.sum(axis=1) / count, 0.0)
    k = np.where(nz, np.round(logs - target[:, None]), 0.0).astype(np.int64)
    rest = -k.sum(axis=1)
    # rounding left sum(k) != 0: the largest layer takes it up; else the first zero layer
    col = np.where(all_nz, np.argmax(norms, axis=1), np.argmin(nz, axis=1))
    k[np.arange(m), col] += rest
    if H < 2:
        k[:] = 0
    # exact in floats: no overflow of the largest entry, no subnormal smallest entry
    scale = np.ldexp(1.0, -k)
    with np.errstate(over="ignore", invalid="ignore"):
        ok = np.all(big * scale < 2.0**1023, axis=1) & np.all(
            (small == np.inf) | (small * scale >= 2.0**-1022), axis=1
        )
    k[~ok] = 0
    return k


def layer_balance(dims: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Power-of-two layer scales ``k`` (H,) with ``sum k = 0`` that bring the layers'
    Frobenius norms together: ``W'_h = 2**-k_h W_h`` has norm within a factor 2 of the
    geometric mean of the nonzero norms (a zero layer takes up the remainder of the sum).
    ``W -> W'`` is a symmetry of ``L`` (the product is unchanged), exact in floats; zeros
    when it would not be (overflow or underflow)."""
    norms, big, small, _ = layer_figures(dims, np.asarray(w, np.float64)[None, :])
    return balance_rows(norms, big, small)[0]
