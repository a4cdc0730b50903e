"""An independent stiff reference for gradient flow: SciPy's ``solve_ivp`` (Radau IIA of
order 5, or LSODA) at tight tolerance on the gradient and Hessian written in NumPy from the
data (``tests/naive.py``: ``L = ||W_{H:1} X - Y||_F^2`` with the samples, not the
moments), nothing of mcland's kernels.

The state is the displacement ``z = W - w_ref`` from a reference point (the saddle for an
escape, 0 for a small initialisation): SciPy's error test is componentwise, ``|e_i| <=
atol + rtol |z_i|``, so in ``z`` its relative tolerance applies to the perturbation being
followed, not to ``||W*||``, which near a saddle is ``1/delta`` times larger.  ``atol`` is
``atol_rel * ||z(0)||`` for the components that pass near zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import naive
import numpy as np
from scipy.integrate import solve_ivp


@dataclass(frozen=True)
class Reference:
    """A reference solution: the first time the loss reaches ``level`` (NaN if never
    within ``t_max``), the loss and the flat weights at ``t_eval``, and SciPy's counts."""

    t_level: float
    t_eval: np.ndarray
    loss: np.ndarray
    w: np.ndarray  # (len(t_eval), N)
    nfev: int
    njev: int
    status: int
    t_cross: tuple = ()  # per function of ``crossings``: the times it changes sign
    w_ref: np.ndarray | None = None
    dense: object = None  # SciPy's dense output of the displacement ``z = W - w_ref``

    def weights_at(self, times) -> np.ndarray:
        """The flat weights at ``times`` (within the solved interval), (len(times), N)."""
        return np.array([self.w_ref + self.dense(t) for t in np.atleast_1d(times)])


def reference_flow(
    w0: np.ndarray,
    dims,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    t_max: float,
    level: float = -np.inf,
    t_eval: np.ndarray | None = None,
    w_ref: np.ndarray | None = None,
    method: str = "Radau",
    rtol: float = 1e-12,
    atol_rel: float = 1e-14,
    crossings: tuple = (),
) -> Reference:
    """Integrate ``dW/dt = -grad L(W)`` from the flat ``w0`` up to ``t_max`` (or the first
    time ``L <= level``, located by SciPy's event root finding on its dense output); the
    times at which each function ``c(w)`` of ``crossings`` (of the flat weights) changes
    sign are located the same way."""
    dims = [int(d) for d in dims]
    w_ref = np.zeros_like(w0) if w_ref is None else np.asarray(w_ref, float)

    def weights(z):
        return naive.unravel_weights(w_ref + z, dims)

    def f(_t, z):
        return -naive.ravel_weights(naive.gradient(weights(z), X, Y))

    def jac(_t, z):
        return -naive.hessian(weights(z), X, Y)

    def crossing(_t, z):
        return naive.loss(weights(z), X, Y) - level

    crossing.terminal = True
    crossing.direction = -1
    events = [crossing] if np.isfinite(level) else []
    for c in crossings:
        events.append(lambda _t, z, c=c: c(w_ref + z))
    z0 = np.asarray(w0, float) - w_ref
    atol = atol_rel * max(float(np.linalg.norm(z0)), 1e-300)
    kwargs = {"jac": jac} if method in ("Radau", "BDF", "LSODA") else {}
    sol = solve_ivp(
        f, (0.0, t_max), z0, method=method, rtol=rtol, atol=atol, dense_output=True,
        events=events or None, **kwargs,
    )  # fmt: skip
    t_level = np.nan
    if np.isfinite(level) and sol.t_events[0].size:
        t_level = float(sol.t_events[0][0])
    t_cross = tuple(sol.t_events[len(events) - len(crossings) :]) if crossings else ()
    times = np.zeros(0) if t_eval is None else np.asarray(t_eval, float)
    ws = np.array([w_ref + sol.sol(t) for t in times]).reshape(times.size, z0.size)
    losses = np.array([naive.loss(naive.unravel_weights(w, dims), X, Y) for w in ws])
    return Reference(t_level, times, losses, ws, int(sol.nfev), int(sol.njev), int(sol.status),
                     t_cross, w_ref, sol.sol)  # fmt: skip


def small_init_start(seed: int, sample_id: int, dims, X, Y, eps: float) -> np.ndarray:
    """The flat initial weights of a ``small_init`` row, built as mcland.flow.small_init
    builds them: ``eps a G_h`` with ``G_h`` Gaussian over ``sqrt(d_{h-1})`` from the stream
    ``[seed, sample_id, 16]`` and ``a`` the balanced per-layer gain of the data."""
    H = len(dims) - 1
    rng = np.random.default_rng(np.random.SeedSequence([seed, sample_id, 16]))
    G = [rng.standard_normal((dims[h + 1], dims[h])) / math.sqrt(dims[h]) for h in range(H)]
    a = (np.linalg.norm(Y @ X.T) / np.linalg.norm(X @ X.T)) ** (1.0 / H)
    return naive.ravel_weights([eps * a * Gh for Gh in G])


def z_minus_half(problem, dims, i: int):
    """The function ``w -> z_i(w) - 1/2`` of flat weights ``w`` (a crossing of
    :func:`reference_flow`): ``z_i = ||u_i^T W_{H:1} K|| / sqrt(lambda_i)``, the progress
    of mode ``i`` in the reading ``S(t) = {i : z_i > 1/2}`` (``problem``: a
    :class:`mcland.core.problem.Problem`)."""
    u, K, root = problem.U[:, i], problem.K, math.sqrt(problem.lam[i])

    def c(w):
        W = naive.unravel_weights(w, dims)
        P = W[-1]
        for Wh in W[-2::-1]:
            P = P @ Wh
        return np.linalg.norm(u @ P @ K) / root - 0.5

    return c
