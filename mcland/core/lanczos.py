"""Deterministic block Lanczos with full reorthogonalisation, for a symmetric operator given
only by its products with blocks of vectors.

What it returns is what the bounds of :mod:`mcland.core.extremes` need and nothing is
inferred from a recurrence: the projected matrix ``T = Q^T A Q`` is assembled from the
inner products the reorthogonalisation computes anyway (block column ``j`` of ``T`` is
``Q_{1..j}^T (A Q_j)``, taken before anything is subtracted), the loss of orthonormality
``||Q^T Q - I||_F`` is measured at the end, and the residuals of the wanted Ritz pairs are
computed with explicit products.  The three-term recurrence is used only to *estimate*
residuals for the stopping rule.

Determinism: the start block is drawn from ``numpy.random.default_rng(seed)`` (PCG64, the
same numbers on every platform), every long-vector operation is a fixed-order loop
(:mod:`mcland._kernels.lanczos`), products may be split between threads by rows
(each row's product is computed alone), and the projected eigenproblems are solved by
LAPACK (``numpy.linalg.eigh``, ``dsyevd``) on one BLAS thread
(:func:`mcland.core.blas.one_blas_thread`).  The result is therefore the same bits whatever
the number of threads.

Why the projected eigenproblem is solved in Python: it is small (``m <= max_products``,
a few hundred), solved once per block step (``O(m^3)``, milliseconds) next to ``b``
products of ``O(N d)`` each and the reorthogonalisation's ``O(m b N)``, and it needs
eigenvectors, which :mod:`mcland._kernels.lapack` does not expose; the Python loop's own
overhead is one call per block step.

Cost: ``products`` operator products, plus ``4 m^2 N`` multiply-adds of reorthogonalisation
(two passes of projection and subtraction, summed over the steps), ``m^2 N / 2`` for the
final orthonormality check and ``m p N`` for ``p`` Ritz vectors.  Memory: the basis,
``8 N (m + 3 b + 2 p)`` bytes with the block, its products, the spare rows and the Ritz
vectors and their products (:func:`lanczos_bytes`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from mcland._kernels import lanczos as kl
from mcland._kernels.constants import EPS
from mcland.core.blas import one_blas_thread

DEFLATION_RTOL = 1e-10  # a new vector is dependent below this fraction of ||A q||


@dataclass(frozen=True)
class LanczosResult:
    """What :func:`block_lanczos` found.

    Attributes
    ----------
    theta : ndarray (m,)
        Ascending eigenvalues of ``T`` (the Ritz values), as LAPACK computed them.
    T : ndarray (m, m)
        The projected matrix ``Q^T A Q`` as computed (symmetric).
    wanted : ndarray (p,) int64
        Indices into ``theta`` of the Ritz pairs whose residuals were computed: the
        ``n_want`` smallest and the ``n_want`` largest (all of them when ``m <= 2 n_want``).
    resid : ndarray (p,)
        ``||fl(A y) - theta y||`` of the Ritz vectors ``y = Q s`` of ``wanted``.
    y_norm, ay_norm : ndarray (p,)
        ``||y||`` and ``||fl(A y)||`` (``y`` is unit only up to the basis' orthonormality).
    resid_est : ndarray (m,)
        The recurrence's residual estimates at the last step (for the stopping rule only).
    orth_defect : float
        ``||Q^T Q - I||_F`` of the basis as stored.
    q_frob, aq_frob : float
        ``||Q||_F`` and ``||fl(A Q)||_F``: the scales of the rounding in ``T``'s entries.
    m, block, products : int
        The basis size, the block size, the operator products used (residuals included).
    replaced : int
        Basis vectors replaced by random ones because a block became dependent.
    converged : bool
        Whether the stopping rule was met (else the product cap or the space ran out).
    exhausted : bool
        Whether the basis spans the whole space (``m == N``).
    """

    theta: np.ndarray
    T: np.ndarray
    wanted: np.ndarray
    resid: np.ndarray
    y_norm: np.ndarray
    ay_norm: np.ndarray
    resid_est: np.ndarray
    orth_defect: float
    q_frob: float
    aq_frob: float
    m: int
    block: int
    products: int
    replaced: int
    converged: bool
    exhausted: bool


def lanczos_bytes(N: int, block: int, max_products: int, n_want: int) -> int:
    """Bytes of the vectors :func:`block_lanczos` keeps for an operator of order ``N``."""
    m = min(N, max_products)
    p = min(m, 2 * n_want)
    return 8 * N * (m + 3 * block + 2 * p) + 8 * m * m * 3


def _wanted(m: int, n_want: int) -> np.ndarray:
    if m <= 2 * n_want:
        return np.arange(m)
    return np.concatenate([np.arange(n_want), np.arange(m - n_want, m)])


class _Parallel:
    """The long-vector kernels split between threads so that every output entry is computed
    by one thread in the same order as without threads: projections by rows of the basis,
    updates and combinations by column ranges, the Gram defect by rows (its per-row sums
    added in order)."""

    def __init__(self, threads: int, N: int) -> None:
        self.threads = max(1, int(threads))
        self.N = N
        self.pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None

    def _run(self, fn, ranges) -> None:
        if self.pool is None:
            for lo, hi in ranges:
                fn(lo, hi)
            return
        for fu in [self.pool.submit(fn, lo, hi) for lo, hi in ranges]:
            fu.result()

    def _ranges(self, n: int, align: int = 1) -> list[tuple[int, int]]:
        k = min(self.threads, max(1, n // max(align, 1)))
        edges = [(n * i // k) // align * align for i in range(k)] + [n]
        return [(a, b) for a, b in itertools.pairwise(edges) if b > a]

    def project(self, Q, m, W, C) -> None:
        self._run(lambda a, b: kl.project(Q, a, b, W, C), self._ranges(m))

    def subtract(self, Q, m, C, W) -> None:
        # column ranges aligned to the kernels' chunks: the same chunking as one thread
        self._run(lambda a, b: kl.subtract(Q, m, C, W, a, b), self._ranges(self.N, kl.CHUNK))

    def combine(self, Q, m, S, Y) -> None:
        self._run(lambda a, b: kl.combine(Q, m, S, Y, a, b), self._ranges(self.N, kl.CHUNK))

    def gram_defect(self, Q, m) -> float:
        out = np.zeros(m)
        # rows i cost (m - i) dot products: balance by splitting at sqrt-spaced edges
        k = min(self.threads, m) if m else 1
        edges = [m - round(m * np.sqrt(1 - i / k)) for i in range(k)] + [m]
        ranges = [(a, b) for a, b in itertools.pairwise(edges) if b > a]
        self._run(lambda a, b: kl.gram_defect_rows(Q, m, a, b, out), ranges)
        return float(np.sqrt(np.sum(out)))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def _eigh(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with one_blas_thread():
        return np.linalg.eigh(T)


def block_lanczos(
    apply: Callable[[np.ndarray, np.ndarray], None],
    N: int,
    *,
    block: int = 16,
    n_want: int = 4,
    max_products: int = 512,
    rtol: float = 1e-8,
    seed: int = 0,
    threads: int = 1,
) -> LanczosResult:
    """A few smallest and largest eigenpairs of a symmetric operator by block Lanczos.

    Parameters
    ----------
    apply : callable
        ``apply(V, U)`` writes ``A V[i]`` into ``U[i]`` for every row of ``V`` (p, N)
        (both C-ordered float64).
    N : int
        The operator's order.
    block : int
        Vectors per block (at most ``N``).  A block Krylov method finds at most ``block``
        copies of a multiple eigenvalue (in exact arithmetic): choose it above the
        multiplicities that matter.
    n_want : int
        Ritz pairs wanted at each end of the spectrum (stopping rule and residuals).
    max_products : int
        Hard cap on operator products, the ``2 n_want`` of the final residuals included
        (so the basis has at most ``max_products - 2 n_want`` vectors).
    rtol : float
        Stop when the estimated residual of each wanted pair is at most ``rtol`` times
        ``max |theta|`` (the Ritz estimate of ``||A||_2``); ``0``: run to the cap (or the
        whole space).
    seed : int
        Seed of the start block (and of the rare replacement vectors).
    threads : int
        Threads for the long-vector work (rows of the projections, column ranges of the
        updates); the result does not depend on it.

    Returns
    -------
    LanczosResult
    """
    if N < 1:
        raise ValueError("N must be positive")
    par = _Parallel(threads, N)
    try:
        return _block_lanczos(apply, N, block, n_want, max_products, rtol, seed, par)
    finally:
        par.close()


def _block_lanczos(apply, N, block, n_want, max_products, rtol, seed, par) -> LanczosResult:
    rng = np.random.default_rng(seed)
    b = max(1, min(block, N))
    n_want = max(1, n_want)
    cap = max(b, min(N, max_products - 2 * min(n_want, N)))
    Q = np.empty((cap, N))
    T = np.zeros((cap, cap))
    W = np.empty((b, N))
    C = np.empty((cap, b))
    aq2 = 0.0
    replaced = 0

    def orthonormalize(m0: int, rows: np.ndarray, ref: np.ndarray) -> np.ndarray:
        nonlocal replaced
        saved = rows.copy()
        R = np.zeros((rows.shape[0], rows.shape[0]))
        got = kl.orthonormalize_block(Q, m0, rows, R, ref, np.empty((0, N)), DEFLATION_RTOL)
        if got <= -2:
            rows[:] = saved
            spare = rng.standard_normal(rows.shape)
            got = kl.orthonormalize_block(Q, m0, rows, R, ref, spare, DEFLATION_RTOL)
        if got < 0:
            raise FloatingPointError("block Lanczos: could not extend the basis")
        replaced += got
        return R

    # start block
    bj = b
    W[:bj] = rng.standard_normal((bj, N))
    ref = np.array([kl.norm_row(W[i]) for i in range(bj)])
    orthonormalize(0, W[:bj], ref)
    Q[:bj] = W[:bj]
    m0, m = 0, bj
    products = 0
    converged = False
    resid_est = np.zeros(0)
    theta = np.zeros(0)
    while True:
        # A Q_j, its inner products with the whole basis: block column j of T
        apply(Q[m0:m], W[:bj])
        products += bj
        Wj = W[:bj]
        ref = np.array([kl.norm_row(Wj[i]) for i in range(bj)])
        aq2 += float(ref @ ref)
        par.project(Q, m, Wj, C)
        Cj = C[:m, :bj]
        T[:m0, m0:m] = Cj[:m0]
        T[m0:m, :m0] = Cj[:m0].T
        T[m0:m, m0:m] = 0.5 * (Cj[m0:m] + Cj[m0:m].T)
        theta, S = _eigh(T[:m, :m])
        at_end = m == N
        b_next = min(b, N - m)
        if at_end:
            resid_est = np.zeros(m)
        else:
            par.subtract(Q, m, C, Wj)
            Rb = orthonormalize(m, Wj[:b_next], ref[:b_next])
            if b_next == bj:  # residual estimates ||R_{j+1} s_last||
                resid_est = np.linalg.norm(Rb @ S[m0:m, :], axis=0)
            else:  # the next step spans the rest of the space
                resid_est = np.full(m, np.inf)
        scale = max(abs(theta[0]), abs(theta[-1]))
        want = _wanted(m, n_want)
        if at_end or (rtol > 0 and np.all(resid_est[want] <= rtol * scale)):
            converged = True
            break
        if m + b_next > cap:
            break
        Q[m : m + b_next] = Wj[:b_next]
        m0, m, bj = m, m + b_next, b_next
    # the wanted Ritz pairs, with explicit residuals
    want = _wanted(m, n_want)
    Y = np.empty((want.size, N))
    par.combine(Q, m, np.ascontiguousarray(S[:, want]), Y)
    AY = np.empty_like(Y)
    apply(Y, AY)
    products += want.size
    resid = np.empty(want.size)
    y_norm = np.empty(want.size)
    ay_norm = np.empty(want.size)
    for k in range(want.size):
        y_norm[k] = kl.norm_row(Y[k])
        ay_norm[k] = kl.norm_row(AY[k])
        AY[k] -= theta[want[k]] * Y[k]
        resid[k] = kl.norm_row(AY[k])
    q_frob = float(np.sqrt(sum(kl.norm_row(Q[i]) ** 2 for i in range(m))))
    return LanczosResult(
        theta=theta,
        T=T[:m, :m].copy(),
        wanted=want.astype(np.int64),
        resid=resid,
        y_norm=y_norm,
        ay_norm=ay_norm,
        resid_est=resid_est,
        orth_defect=par.gram_defect(Q, m),
        q_frob=q_frob,
        aq_frob=float(np.sqrt(aq2)),
        m=m,
        block=b,
        products=products,
        replaced=replaced,
        converged=converged,
        exhausted=m == N,
    )


def ritz_error(res: LanczosResult, N: int, op_error: float) -> np.ndarray:
    """A bound ``delta`` (m,) such that the exact Ritz values of ``A`` on the span of the
    computed basis lie within ``delta[j]`` of ``res.theta[j]`` (first order in ``eps``).

    ``op_error`` bounds ``||fl(A v) - A v|| / ||v||`` for the products used.  Three
    contributions to ``||T - Q^T A Q||_2`` and ``theta``: the products' error
    (``(1 + eta) op_error``); the rounding of the inner products, ``sqrt(N) eps`` times
    ``||q_i|| ||A q_j||`` entry by entry, whose spectral norm is at most ``sqrt(N) eps (1 +
    eta) (||A Q||_F + sqrt(m) max_j ||A q_j||)`` for independent entry errors, bounded by
    ``2 sqrt(N) eps (1 + eta) ||A Q||_F`` (the probabilistic model of docs/numerics.md);
    LAPACK's backward error on ``T`` (``sqrt(m) eps ||T||_F``, the dense path's model);
    and the basis' non-orthonormality ``eta = ||Q^T Q - I||_F``: the Ritz values of the
    orthonormalised basis are those of ``S^{-1/2} M S^{-1/2}`` with ``S = Q^T Q``, ``M =
    Q^T A Q``, i.e. ``lambda_j(M)`` times a factor in ``[1/(1+eta), 1/(1-eta)]``
    (Ostrowski's theorem).  Requires ``eta < 1/2`` (else ``inf``)."""
    eta = res.orth_defect
    if not eta < 0.5:
        return np.full(res.theta.size, np.inf)
    t_frob = float(np.linalg.norm(res.T))
    e_t = (1.0 + eta) * (op_error + 2.0 * np.sqrt(N) * EPS * res.aq_frob)
    e_t += np.sqrt(res.m) * EPS * t_frob
    return e_t + (np.abs(res.theta) + e_t) * eta / (1.0 - eta)
