"""The benchmark's baseline: the whole per-point work written straightforwardly in NumPy.

One Python call per point: draw an architecture, Gaussian data and an exact critical point,
verify it (gradient, loss against the enumerated critical values), assemble the Hessian
from ``np.kron`` blocks, take its eigenvalues with ``np.linalg.eigvalsh``, compute the ranks
of all partial products and decide the type by the rank criterion of docs/theory.md §3
(:func:`mcland.core.naive.theory_type_rank`).  This is what a careful NumPy user would
write; it is the reference against which the compiled pipeline's speed is reported.

The critical point is built from the simplest member of docs/theory.md §5's family, with
random orthogonal hidden bases ``Q_h``: ``W_1 = Q_1 [U_S^T Syx Sxx^{-1}; 0]``,
``W_h = Q_h J Q_{h-1}^T`` and ``W_H = [U_S 0] Q_{H-1}^T`` with ``J = diag(1_s, 0)``, so
``W_{H:1} = U_S U_S^T Syx Sxx^{-1}``.  The architecture and the data are drawn from the
same ranges as the pipeline's, so the matrix sizes -- which decide the cost -- follow the
same distribution.
"""

from __future__ import annotations

import numpy as np

from mcland.core import naive
from mcland.core.config import Config
from mcland.core.tolerances import EPS


def _orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    return Q * np.sign(np.diag(R))


def draw(
    config: Config, sample_id: int, dims: tuple[int, ...] | None = None
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Draw point ``sample_id``: ``(weights, X (d_x, m), Y (d_y, m))``; the architecture is
    drawn from the configuration's ranges unless ``dims`` is given (the benchmark passes the
    pipeline's, so that both do the same amount of linear algebra)."""
    a, d = config.architecture, config.data
    rng = np.random.default_rng([config.seed, sample_id])
    if dims is None:
        H = int(rng.integers(a.depth[0], a.depth[1] + 1))
        d_y = int(rng.integers(a.d_y[0], a.d_y[1] + 1))
        d_x = d_y + int(rng.integers(a.d_x_extra[0], a.d_x_extra[1] + 1))
        hidden = rng.integers(a.hidden[0], a.hidden[1] + 1, size=H - 1)
        dims = (d_x, *(int(h) for h in hidden), d_y)
    H, d_x, d_y = len(dims) - 1, dims[0], dims[-1]
    X = rng.standard_normal((d_x, d.m))
    Y = rng.standard_normal((d_y, d_x)) @ X + d.noise * rng.standard_normal((d_y, d.m))
    Sxx, Syx, _ = naive.moments(X, Y)
    _, U = naive.eig_sigma(X, Y)
    r = min(dims)
    s = int(rng.integers(0, r + 1))
    S = np.sort(rng.choice(d_y, size=s, replace=False)) if rng.random() < 0.3 else np.arange(s)
    M = U[:, S].T @ Syx @ np.linalg.inv(Sxx)  # (s, d_x)
    Q = [_orthogonal(rng, n) for n in dims[1:-1]]
    weights = []
    for h in range(1, H + 1):
        if h == 1:
            W = Q[0] @ np.vstack([M, np.zeros((dims[1] - s, d_x))])
        elif h == H:
            W = np.hstack([U[:, S], np.zeros((d_y, dims[H - 1] - s))]) @ Q[H - 2].T
        else:
            Jh = np.zeros((dims[h], dims[h - 1]))
            Jh[np.arange(s), np.arange(s)] = 1.0
            W = Q[h - 1] @ Jh @ Q[h - 2].T
        weights.append(W)
    return weights, X, Y


def analyse(weights: list[np.ndarray], X: np.ndarray, Y: np.ndarray) -> tuple[str, str]:
    """Verify and classify one point; returns ``(theory_type, numeric_type)``."""
    H = len(weights)
    g = naive.ravel_weights(naive.gradient(weights, X, Y))
    scale = np.prod([np.linalg.norm(W) for W in weights]) * np.linalg.norm(X) ** 2
    critical = np.linalg.norm(g) <= 1e-8 * max(scale, 1.0)
    L = naive.loss(weights, X, Y)
    r = min(naive.dims_of(weights))
    values = naive.critical_values(X, Y, r)
    at_global = abs(L - values[0]) <= 1e-9 * max(1.0, abs(values[0]))
    assert np.min(np.abs(values - L)) <= 1e-8 * max(1.0, abs(L)), "not at a critical value"
    Hess = naive.hessian(weights, X, Y)
    ev = np.linalg.eigvalsh(Hess)
    tol = Hess.shape[0] * EPS * np.linalg.norm(Hess)
    for a in range(1, H + 1):  # the ranks the pipeline records
        for b in range(1, a + 1):
            np.linalg.matrix_rank(naive.partial_product(weights, a, b))
    if not critical:
        return "not_critical", "not_critical"
    theory = naive.theory_type_rank(weights, X, Y)
    if at_global:
        numeric = "global_minimizer" if ev[0] >= -tol else "ambiguous"
    elif ev[0] < -10 * tol:
        numeric = "strict_saddle"
    elif ev[0] >= -tol:
        numeric = "non_strict_saddle"
    else:
        numeric = "ambiguous"
    return theory, numeric


def run(
    config: Config, ids: np.ndarray, dims: list[tuple[int, ...]] | None = None
) -> list[tuple[str, str]]:
    """The baseline's work on the points ``ids``, one after the other (architectures
    ``dims[t]`` if given)."""
    return [
        analyse(*draw(config, int(i), None if dims is None else dims[t])) for t, i in enumerate(ids)
    ]
