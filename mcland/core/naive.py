"""Slow, obviously-correct reference implementations (plain NumPy, no Numba).

Everything here is written straight from the formulas of docs/theory.md (the project's
mathematical notes), favouring clarity over speed.  Two users: the test suite compares
every fast kernel with these functions (``tests/test_naive.py`` tests the functions
themselves with finite differences and hand-computed cases), and ``mcland bench`` uses
them as the straightforward NumPy baseline (:mod:`mcland.bench.baseline`).

Conventions
-----------
* ``weights = [W_1, ..., W_H]``, ``W_h`` of shape ``(d_h, d_{h-1})``.
* ``X`` is ``(d_x, m)``, ``Y`` is ``(d_y, m)``: samples are columns.
* Partial product ``W_{a:b} = W_a W_{a-1} ... W_b`` (1-based), the identity of size
  ``d_a`` when ``a == b - 1``.
* Parameter vector = concatenation over h = 1..H of ``W_h.ravel()`` (row-major, C order);
  the Hessian is ``N x N`` in this ordering, ``N = sum_h d_h d_{h-1}``.
  With row-major vec, ``vec(A V B) = (A kron B^T) vec(V)``.
* ``lam[0] > lam[1] > ...`` eigenvalues of ``Sigma = Syx Sxx^{-1} Sxy``, ``U[:, i]`` the
  matching eigenvectors; index sets ``S`` are tuples of 1-based eigen-indices.
"""

import itertools

import numpy as np

# ----------------------------------------------------------------------------- basics


def moments(X, Y):
    """Second moments of the data.

    X: (d_x, m), Y: (d_y, m).
    Returns Sxx = X X^T (d_x, d_x), Syx = Y X^T (d_y, d_x), Syy = Y Y^T (d_y, d_y).
    """
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    return X @ X.T, Y @ X.T, Y @ Y.T


def dims_of(weights):
    """Architecture (d_0, ..., d_H) of ``weights`` (list of H arrays (d_h, d_{h-1}))."""
    return (weights[0].shape[1], *(W.shape[0] for W in weights))


def partial_product(weights, a, b):
    """W_{a:b} = W_a W_{a-1} ... W_b with 1-based a >= b - 1.

    Returns an array of shape (d_a, d_{b-1}); the identity I_{d_a} when a == b - 1
    (0 <= a <= H).
    """
    dims = dims_of(weights)
    if a == b - 1:
        return np.eye(dims[a])
    assert 1 <= b <= a <= len(weights), (a, b)
    P = np.asarray(weights[b - 1], dtype=float)
    for h in range(b + 1, a + 1):
        P = weights[h - 1] @ P
    return P


def ravel_weights(weights):
    """Parameter vector (N,): concatenation of W_h.ravel() (row-major) for h = 1..H."""
    return np.concatenate([np.asarray(W, dtype=float).ravel() for W in weights])


def unravel_weights(theta, dims):
    """Inverse of ``ravel_weights``: theta (N,) -> list of (d_h, d_{h-1}) arrays."""
    out, pos = [], 0
    for h in range(1, len(dims)):
        n = dims[h] * dims[h - 1]
        out.append(np.array(theta[pos : pos + n], dtype=float).reshape(dims[h], dims[h - 1]))
        pos += n
    assert pos == len(theta)
    return out


def loss(weights, X, Y):
    """L(W) = ||W_{H:1} X - Y||_F^2, computed from the data. X (d_x, m), Y (d_y, m)."""
    P = partial_product(weights, len(weights), 1)
    return float(np.sum((P @ X - Y) ** 2))


def residual(weights, X, Y):
    """R = W_{H:1} Sxx - Syx, shape (d_y, d_x)."""
    Sxx, Syx, _ = moments(X, Y)
    return partial_product(weights, len(weights), 1) @ Sxx - Syx


# ------------------------------------------------------------------ first order


def gradient(weights, X, Y):
    """dL/dW_h = 2 W_{H:h+1}^T R W_{h-1:1}^T (list of arrays shaped like weights)."""
    H = len(weights)
    R = residual(weights, X, Y)
    return [
        2 * partial_product(weights, H, h + 1).T @ R @ partial_product(weights, h - 1, 1).T
        for h in range(1, H + 1)
    ]


def gradient_fd(weights, X, Y, step=None):
    """Central finite differences of ``loss``; list of arrays shaped like weights.

    step defaults to eps^(1/3) times the largest |weight| (1 if all weights are 0).
    """
    theta = ravel_weights(weights)
    dims = dims_of(weights)
    if step is None:
        step = np.finfo(float).eps ** (1 / 3) * (np.max(np.abs(theta)) or 1.0)
    g = np.zeros_like(theta)
    for i in range(len(theta)):
        e = np.zeros_like(theta)
        e[i] = step
        g[i] = (
            loss(unravel_weights(theta + e, dims), X, Y)
            - loss(unravel_weights(theta - e, dims), X, Y)
        ) / (2 * step)
    return unravel_weights(g, dims)


# ----------------------------------------------------------------- second order


def hessian(weights, X, Y):
    """Hessian of L, (N, N), in the row-major parameter ordering (docs/theory.md §4).

    Gauss-Newton block (h, k), with A_h = W_{H:h+1}, C_h = W_{h-1:1}:
        docs/theory.md §4 (column-major):  2 (C_h Sxx C_k^T) kron (A_h^T A_k)
        row-major (used here):  2 (A_h^T A_k) kron (C_h Sxx C_k^T)
    Cross block (h2, h1) for h1 < h2, entries
        d^2 L / d(W_h2)_{ac} d(W_h1)_{eb} = 2 G_{ab} B_{ce},
        G = W_{H:h2+1}^T R W_{h1-1:1}^T,  B = W_{h2-1:h1+1},
    and its transpose in block (h1, h2).
    """
    H = len(weights)
    dims = dims_of(weights)
    Sxx, _, _ = moments(X, Y)
    R = residual(weights, X, Y)
    A = {h: partial_product(weights, H, h + 1) for h in range(1, H + 1)}
    C = {h: partial_product(weights, h - 1, 1) for h in range(1, H + 1)}
    size = [dims[h] * dims[h - 1] for h in range(1, H + 1)]
    off = np.concatenate([[0], np.cumsum(size)])
    N = off[-1]
    Hess = np.zeros((N, N))

    def blk(h, k):
        return (slice(off[h - 1], off[h]), slice(off[k - 1], off[k]))

    for h in range(1, H + 1):
        for k in range(1, H + 1):
            Hess[blk(h, k)] += 2 * np.kron(A[h].T @ A[k], C[h] @ Sxx @ C[k].T)

    for h1 in range(1, H + 1):
        for h2 in range(h1 + 1, H + 1):
            G = A[h2].T @ R @ C[h1].T  # (d_h2, d_{h1-1})
            B = partial_product(weights, h2 - 1, h1 + 1)  # (d_{h2-1}, d_h1)
            # T[a, c, e, b] = 2 G[a, b] B[c, e]; rows (a, c) index W_h2, cols (e, b) W_h1
            T = 2 * np.einsum("ab,ce->aceb", G, B)
            cross = T.reshape(size[h2 - 1], size[h1 - 1])
            Hess[blk(h2, h1)] += cross
            Hess[blk(h1, h2)] += cross.T
    return Hess


def hessian_fd(weights, X, Y, step=None):
    """Central finite differences of ``gradient``, symmetrised; (N, N).

    step defaults to eps^(1/3) times the largest |weight| (1 if all weights are 0).
    """
    theta = ravel_weights(weights)
    dims = dims_of(weights)
    if step is None:
        step = np.finfo(float).eps ** (1 / 3) * (np.max(np.abs(theta)) or 1.0)
    N = len(theta)
    Hess = np.zeros((N, N))
    for i in range(N):
        e = np.zeros(N)
        e[i] = step
        gp = ravel_weights(gradient(unravel_weights(theta + e, dims), X, Y))
        gm = ravel_weights(gradient(unravel_weights(theta - e, dims), X, Y))
        Hess[:, i] = (gp - gm) / (2 * step)
    return (Hess + Hess.T) / 2


def spectrum(weights, X, Y):
    """Eigenvalues of ``hessian`` in ascending order, shape (N,)."""
    return np.linalg.eigvalsh(hessian(weights, X, Y))


def quadratic_form(weights, X, Y, V):
    """V^T (nabla^2 L) V = 2 <D1 Sxx, D1> + 4 <R, D2> (docs/theory.md §4).

    V: list of arrays shaped like weights.
    D1 = sum_h W_{H:h+1} V_h W_{h-1:1},
    D2 = sum_{h1<h2} W_{H:h2+1} V_h2 W_{h2-1:h1+1} V_h1 W_{h1-1:1}.
    """
    H = len(weights)
    Sxx, _, _ = moments(X, Y)
    R = residual(weights, X, Y)
    pp = lambda a, b: partial_product(weights, a, b)  # noqa: E731
    D1 = sum(pp(H, h + 1) @ V[h - 1] @ pp(h - 1, 1) for h in range(1, H + 1))
    D2 = np.zeros_like(R)
    for h1 in range(1, H + 1):
        for h2 in range(h1 + 1, H + 1):
            D2 = D2 + pp(H, h2 + 1) @ V[h2 - 1] @ pp(h2 - 1, h1 + 1) @ V[h1 - 1] @ pp(h1 - 1, 1)
    return float(2 * np.sum((D1 @ Sxx) * D1) + 4 * np.sum(R * D2))


# ------------------------------------------------------------ critical points


def eig_sigma(X, Y):
    """Eigen-decomposition of Sigma = Syx Sxx^{-1} Sxy (d_y, d_y).

    Returns lam (d_y,) in decreasing order and U (d_y, d_y), U[:, i] the eigenvector
    of lam[i] (i.e. of the 1-based eigen-index i + 1).
    """
    Sxx, Syx, _ = moments(X, Y)
    Sigma = Syx @ np.linalg.solve(Sxx, Syx.T)
    lam, U = np.linalg.eigh((Sigma + Sigma.T) / 2)
    return lam[::-1], U[:, ::-1]


def sqrtm_psd(M):
    """Symmetric square root of a symmetric PSD matrix (n, n)."""
    w, Q = np.linalg.eigh((M + M.T) / 2)
    return (Q * np.sqrt(np.clip(w, 0, None))) @ Q.T


def read_S(weights, X, Y):
    """Index set S of a critical point: tuple of 1-based eigen-indices, increasing.

    i in S iff ||u_i^T W_{H:1} Sxx^{1/2}|| > sqrt(lambda_i) / 2 (the norm is
    sqrt(lambda_i) for i in S and 0 otherwise at an exact critical point).
    """
    Sxx, _, _ = moments(X, Y)
    lam, U = eig_sigma(X, Y)
    M = U.T @ partial_product(weights, len(weights), 1) @ sqrtm_psd(Sxx)  # rows u_i^T P K
    norms = np.linalg.norm(M, axis=1)
    return tuple(i + 1 for i in range(len(lam)) if norms[i] > np.sqrt(lam[i]) / 2)


def critical_values(X, Y, r):
    """Sorted array of tr(Syy) - sum_{i in S} lambda_i over all S, |S| <= r.

    One entry per index set (sum_{k<=r} C(d_y, k) entries, duplicates kept).
    """
    _, _, Syy = moments(X, Y)
    lam, _ = eig_sigma(X, Y)
    vals = [
        np.trace(Syy) - sum(lam[i] for i in S)
        for k in range(min(r, len(lam)) + 1)
        for S in itertools.combinations(range(len(lam)), k)
    ]
    return np.sort(np.array(vals, dtype=float))


def theory_type_rank(weights, X, Y, tol=1e-9):
    """Type of a critical point by docs/theory.md §3 with plain rank / zero tests.

    Returns 'global_minimizer', 'strict_saddle' or 'non_strict_saddle'.
    S = [r] -> global; S != [s] -> strict; otherwise strict iff some pair
    h1 < h2 is open: (a) G = W_{H:h2+1}^T R W_{h1-1:1}^T != 0 and
    (b) rk(W_{h2-1:h1+1}) > min(rk(W_{H:h1+1}), rk(W_{h2-1:1})).
    "Zero" and "rank" use thresholds tol times products of the layers' Frobenius
    norms (times ||Sxx|| ||W_{H:1}||-ish scale for R). ONLY A REFERENCE FOR
    WELL-CONDITIONED POINTS: docs/theory.md §3 documents exact critical points where such
    thresholds give the wrong answer (tiny but open G next to large B).
    Assumes W is a critical point; does not check it.
    """
    H = len(weights)
    dims = dims_of(weights)
    r = min(dims)
    S = read_S(weights, X, Y)
    s = len(S)
    if tuple(range(1, r + 1)) == S:
        return "global_minimizer"
    if tuple(range(1, s + 1)) != S:
        return "strict_saddle"
    Sxx, Syx, _ = moments(X, Y)
    R = residual(weights, X, Y)
    nrm = [np.linalg.norm(W) for W in weights]
    scale = lambda a, b: float(np.prod(nrm[b - 1 : a]))  # bound on ||W_{a:b}||  # noqa: E731
    r_scale = scale(H, 1) * np.linalg.norm(Sxx) + np.linalg.norm(Syx)

    def rank(a, b):
        return np.linalg.matrix_rank(partial_product(weights, a, b), tol=tol * scale(a, b))

    for h1 in range(1, H + 1):
        for h2 in range(h1 + 1, H + 1):
            G = partial_product(weights, H, h2 + 1).T @ R @ partial_product(weights, h1 - 1, 1).T
            cond_a = np.linalg.norm(G) > tol * scale(H, h2 + 1) * scale(h1 - 1, 1) * r_scale
            cond_b = rank(h2 - 1, h1 + 1) > min(rank(H, h1 + 1), rank(h2 - 1, 1))
            if cond_a and cond_b:
                return "strict_saddle"
    return "non_strict_saddle"


def gd_euler(weights, X, Y, step, n_steps):
    """Plain gradient descent ``W <- W - step * grad L(W)`` (explicit Euler on the gradient
    flow with time step ``step``), in NumPy; returns the final weights and the loss before
    every step and after the last, ``(n_steps + 1,)``."""
    weights = [np.array(W, dtype=np.float64) for W in weights]
    losses = np.empty(n_steps + 1)
    for k in range(n_steps):
        losses[k] = loss(weights, X, Y)
        g = gradient(weights, X, Y)
        weights = [W - step * G for W, G in zip(weights, g, strict=True)]
    losses[n_steps] = loss(weights, X, Y)
    return weights, losses


def loss_and_gradient_moments(weights, Sxx, Syx, tr_syy):
    """``(L, [dL/dW_1, ..., dL/dW_H])`` from the data moments (what a NumPy user writes for
    gradient descent): ``A_h = W_{h:1}`` forward, ``L = tr(Syy) - 2 <A_H, Syx> + <A_H Sxx,
    A_H>``, ``R = A_H Sxx - Syx``, and backward ``Z_H = R``, ``dL/dW_h = 2 Z_h A_{h-1}^T``,
    ``Z_{h-1} = W_h^T Z_h``.  Sxx (d_x, d_x), Syx (d_y, d_x), tr_syy = tr(Y Y^T)."""
    A = [np.eye(Sxx.shape[0])]
    for W in weights:
        A.append(W @ A[-1])
    P = A[-1]
    PS = P @ Sxx
    L = float(tr_syy - 2.0 * np.sum(P * Syx) + np.sum(PS * P))
    Z = PS - Syx
    grads = [None] * len(weights)
    for h in range(len(weights), 0, -1):
        grads[h - 1] = 2.0 * Z @ A[h - 1].T
        Z = weights[h - 1].T @ Z
    return L, grads


def gd_moments(weights, Sxx, Syx, tr_syy, step, n_steps):
    """Plain gradient descent ``W <- W - step * grad L(W)`` with
    :func:`loss_and_gradient_moments`, one NumPy evaluation per step; returns the final
    weights and the loss before every step, ``(n_steps,)``."""
    weights = [np.array(W, dtype=np.float64) for W in weights]
    losses = np.empty(n_steps)
    for k in range(n_steps):
        losses[k], g = loss_and_gradient_moments(weights, Sxx, Syx, tr_syy)
        weights = [W - step * G for W, G in zip(weights, g, strict=True)]
    return weights, losses
