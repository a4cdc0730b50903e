"""Exact arithmetic for the ground-truth set (docs/groundtruth.md): loss, gradient and
Hessian of a deep linear network with **integer** weights and data, in Python integers,
and the exact inertia of a symmetric rational matrix by Sylvester's law of inertia.

Nothing here rounds: the matrices are NumPy arrays of ``dtype=object`` holding Python
``int`` (arbitrary precision) or :class:`fractions.Fraction`.  Orientation and parameter
order follow :mod:`mcland.core.naive` (samples are columns; the flat parameters are the
layers ``W_1 .. W_H`` concatenated row-major), and so do the formulas of the Hessian.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np


def as_exact(a: np.ndarray) -> np.ndarray:
    """``a`` as an object array of Python ``int``; raises ValueError if an entry is not an
    integer (a float64 integer is converted exactly)."""
    arr = np.asarray(a)
    out = np.empty(arr.shape, dtype=object)
    flat = out.reshape(-1)
    for i, v in enumerate(arr.reshape(-1).tolist()):
        if isinstance(v, float):
            if not v.is_integer():
                raise ValueError(f"entry {v!r} is not an integer")
            v = int(v)
        flat[i] = int(v)
    return out


def _eye(n: int) -> np.ndarray:
    return as_exact(np.eye(n, dtype=np.int64))


def product(weights: list[np.ndarray], a: int, b: int) -> np.ndarray:
    """``W_{a:b} = W_a ... W_b`` (1-based), the identity when ``a == b - 1``."""
    if a == b - 1:
        return _eye(weights[a - 1].shape[0] if a >= 1 else weights[0].shape[1])
    P = weights[b - 1]
    for h in range(b + 1, a + 1):
        P = weights[h - 1] @ P
    return P


def loss(weights: list[np.ndarray], Sxx, Syx, tr_syy) -> object:
    """``L = tr(P Sxx P^T) - 2 tr(P Sxy) + tr(Syy)``, ``P = W_{H:1}``, exactly."""
    P = product(weights, len(weights), 1)
    return np.trace(P @ Sxx @ P.T) - 2 * np.trace(P @ Syx.T) + tr_syy


def gradient(weights: list[np.ndarray], Sxx, Syx) -> list[np.ndarray]:
    """``dL/dW_h = 2 W_{H:h+1}^T R W_{h-1:1}^T`` with ``R = W_{H:1} Sxx - Syx``, exactly."""
    H = len(weights)
    R = product(weights, H, 1) @ Sxx - Syx
    return [
        2 * product(weights, H, h + 1).T @ R @ product(weights, h - 1, 1).T for h in range(1, H + 1)
    ]


def hessian(weights: list[np.ndarray], Sxx, Syx) -> np.ndarray:
    """The Hessian (N, N) of ``L`` at ``weights`` exactly, as :func:`mcland.core.naive.hessian`
    (Gauss-Newton blocks ``2 (A_h^T A_k) kron (C_h Sxx C_k^T)``, cross blocks
    ``2 G_{ab} B_{ce}``), in object arithmetic."""
    H = len(weights)
    R = product(weights, H, 1) @ Sxx - Syx
    A = {h: product(weights, H, h + 1) for h in range(1, H + 1)}
    C = {h: product(weights, h - 1, 1) for h in range(1, H + 1)}
    size = [W.size for W in weights]
    off = np.concatenate([[0], np.cumsum(size)]).astype(int)
    N = int(off[-1])
    Hess = np.zeros((N, N), dtype=object)
    Hess[:] = 0
    for h in range(1, H + 1):
        for k in range(h, H + 1):
            block = 2 * np.kron(A[h].T @ A[k], C[h] @ Sxx @ C[k].T)
            Hess[off[h - 1] : off[h], off[k - 1] : off[k]] += block
            if k != h:
                Hess[off[k - 1] : off[k], off[h - 1] : off[h]] += block.T
    for h1 in range(1, H + 1):
        for h2 in range(h1 + 1, H + 1):
            G = A[h2].T @ R @ C[h1].T  # (d_h2, d_{h1-1})
            B = product(weights, h2 - 1, h1 + 1)  # (d_{h2-1}, d_h1)
            # entry (a, c) of W_h2 by (e, b) of W_h1: 2 G[a, b] B[c, e]
            T = 2 * (G[:, None, None, :] * B[None, :, :, None])
            cross = T.reshape(size[h2 - 1], size[h1 - 1])
            Hess[off[h2 - 1] : off[h2], off[h1 - 1] : off[h1]] += cross
            Hess[off[h1 - 1] : off[h1], off[h2 - 1] : off[h2]] += cross.T
    return Hess


def inertia(M: np.ndarray) -> tuple[int, int, int]:
    """Exact inertia ``(n_neg, n_zero, n_pos)`` of the symmetric rational matrix ``M``.

    Symmetric Gaussian elimination in :class:`fractions.Fraction` on a sparse
    (dict-of-rows) copy: a nonzero diagonal pivot ``p`` splits ``M`` congruently into
    ``(p)`` and its Schur complement; when every remaining diagonal entry is zero but
    ``m_ij != 0``, the congruence "row/column i += row/column j" makes ``m_ii = 2 m_ij != 0``;
    an all-zero remainder adds its size to ``n_zero``.  Every step is a congruence, so by
    Sylvester's law of inertia the signs of the pivots are the inertia; no rounding occurs.
    The pivot is the nonzero diagonal entry of the sparsest row (keeps fill-in small).

    Raises
    ------
    ValueError
        If ``M`` is not square and symmetric.
    """
    n = M.shape[0]
    if M.shape != (n, n):
        raise ValueError(f"not square: {M.shape}")
    rows: dict[int, dict[int, Fraction]] = {i: {} for i in range(n)}
    for i in range(n):
        for j in range(n):
            v = M[i, j]
            if v != M[j, i]:
                raise ValueError(f"not symmetric at ({i}, {j})")
            if v != 0:
                rows[i][j] = Fraction(v)
    neg = zero = pos = 0
    while rows:
        empty = [i for i, row in rows.items() if not row]
        for i in empty:
            del rows[i]
        zero += len(empty)
        if not rows:
            break
        diag = [i for i, row in rows.items() if i in row]
        if not diag:  # zero diagonal, some m_ij != 0: row/column i += row/column j
            i = next(iter(rows))
            j = next(iter(rows[i]))
            add = dict(rows[j])
            mij = rows[i][j]
            for col, v in add.items():  # row i += row j (and column i += column j)
                if col == i:
                    continue
                new = rows[i].get(col, 0) + v
                _set(rows, i, col, new)
            _set(rows, i, i, 2 * mij)  # m_ii + 2 m_ij + m_jj with m_ii = m_jj = 0
            continue
        k = min(diag, key=lambda i: len(rows[i]))
        row = rows.pop(k)
        p = row.pop(k)
        if p > 0:
            pos += 1
        else:
            neg += 1
        for j in row:
            del rows[j][k]
        items = list(row.items())
        for i, a in items:
            ai = a / p
            target = rows[i]
            for j, b in items:
                v = target.get(j, 0) - ai * b
                if v:
                    target[j] = v
                elif j in target:
                    del target[j]
    return neg, zero, pos


def _set(rows: dict[int, dict[int, Fraction]], i: int, j: int, v: Fraction) -> None:
    """Set the symmetric entries ``(i, j)`` and ``(j, i)`` of a dict-of-rows matrix."""
    for a, b in ((i, j), (j, i)):
        if v:
            rows[a][b] = Fraction(v)
        else:
            rows[a].pop(b, None)
