"""Matrix-free extremes of the Hessian: certified enclosures of ``lambda_min``,
``lambda_max`` and proven bounds on the inertia, for networks whose Hessian cannot be
formed (docs/matrix_free.md).

:func:`matrix_free_spectrum` combines three sources, each a theorem with its hypotheses
stated in docs/matrix_free.md:

1. **Block Lanczos** (:mod:`mcland.core.lanczos`) on the products of
   :mod:`mcland._kernels.hvp`: by Cauchy's interlacing theorem the Ritz values
   ``theta_1 <= ... <= theta_m`` of any orthonormal basis satisfy ``lambda_j <= theta_j`` and
   ``lambda_{N-m+j} >= theta_j``, *whether or not Lanczos converged*: lower bounds on
   ``#{lambda < x}`` and ``#{lambda > x}`` (hence ``n_neg_lo``, ``n_pos_lo``) and the upper
   end of ``lambda_min``'s enclosure, the lower end of ``lambda_max``'s.  Every Ritz value is
   widened by :func:`mcland.core.lanczos.ritz_error` (products' error, inner products,
   LAPACK, the basis' measured non-orthonormality).
2. **Residuals**: a unit ``y`` with ``||H y - theta y|| = r`` has an eigenvalue in
   ``[theta - r, theta + r]`` (reported as ``eig_min_resid``: it locates *an* eigenvalue; it
   is ``lambda_min`` only if no eigenvector is hidden from the Krylov space, which no
   Krylov method can prove).
3. **Structure** (:mod:`mcland.core.hessian_bounds`): ``GN >= 0`` and the second-order part's
   exactly known pieces give ``lambda_min >= -sum 2 sigma_1(G) sigma_1(W)``, upper bounds
   on ``#{lambda < -x}`` and ``#{lambda > x}`` (Weyl), and a rank bound (at least
   ``N - rank_bound`` exact zeros).

The inertia counts follow the dense path's bands (docs/numerics.md): negative below
``-tol_neg``, zero in ``[-tol_zero, tol_zero]``, positive above ``tol_zero``, and the band
``[-tol_neg, -tol_zero)`` in between; the bounds hold for the exact Hessian at the stored
weights and data, first order in the rounding unit (the model of docs/numerics.md).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from mcland._kernels import hvp as khvp
from mcland._kernels.constants import EPS
from mcland._kernels.hessian import assembly_error, product_norms
from mcland.core.hessian_bounds import (
    StructuralSpectrum,
    count_above,
    count_below,
    structural_spectrum,
)
from mcland.core.lanczos import LanczosResult, block_lanczos, lanczos_bytes, ritz_error
from mcland.core.tolerances import C_NEG, C_ZERO

SPECTRUM_METHODS = ("dense", "structured", "matrix_free")


@dataclass(frozen=True)
class Extremes:
    """Certified extremes and inertia bounds of one Hessian (docs/matrix_free.md).

    ``eig_min_lo <= lambda_min <= eig_min_hi`` and ``eig_max_lo <= lambda_max <=
    eig_max_hi`` are proven; ``eig_min_ritz`` / ``eig_max_ritz`` are the extreme Ritz values
    and ``eig_min_resid`` / ``eig_max_resid`` their residual radii (an eigenvalue lies
    within the radius).  ``n_*_lo <= n_* <= n_*_hi`` for the counts of the bands of
    docs/numerics.md (``band``: ``[-tol_neg, -tol_zero)``).  ``inertia_exact`` when every
    count is decided; ``curvature``: ``"negative"`` (an eigenvalue below ``-tol_neg`` is
    proven: a strict saddle if critical), ``"nonnegative"`` (none below ``-tol_zero``), or
    ``"uncertain"``.  ``seconds`` the wall time, ``product_seconds`` the part spent in
    products (the rest: factors, reorthogonalisation, checks).
    """

    N: int
    eig_min_lo: float
    eig_min_hi: float
    eig_max_lo: float
    eig_max_hi: float
    eig_min_ritz: float
    eig_min_resid: float
    eig_max_ritz: float
    eig_max_resid: float
    n_neg_lo: int
    n_neg_hi: int
    n_zero_lo: int
    n_zero_hi: int
    n_pos_lo: int
    n_pos_hi: int
    n_band_lo: int
    n_band_hi: int
    inertia_exact: bool
    curvature: str
    noise_floor: float
    tol_zero: float
    tol_neg: float
    hess_norm_w: float
    op_error: float
    ritz_error: float
    rank_bound: int
    spectrum_method: str
    lanczos_block: int
    lanczos_basis: int
    lanczos_products: int
    lanczos_converged: bool
    orth_defect: float
    seconds: float
    product_seconds: float

    def columns(self) -> dict:
        """The fields as a flat dict (the proposed record columns)."""
        return asdict(self)


@dataclass(frozen=True)
class Cost:
    """Predicted cost of :func:`matrix_free_spectrum` (docs/matrix_free.md "Cost").

    ``product_madds`` multiply-adds per product; ``madds`` in all (products,
    reorthogonalisation, orthonormality check, factors); ``bytes`` peak memory of the arrays
    it allocates (basis, blocks, factors, work buffers)."""

    N: int
    product_madds: float
    madds: float
    bytes: int


def matrix_free_cost(
    dims, *, block: int = 16, max_products: int = 512, n_want: int = 8, threads: int = 1
) -> Cost:
    """Predicted multiply-adds and peak bytes of :func:`matrix_free_spectrum` for ``dims``
    (worst case: every product of the cap used).  Use it to refuse a request that cannot
    fit before anything is allocated."""
    d = np.asarray(dims, np.int64)
    H = d.size - 1
    N = int(sum(int(d[h]) * int(d[h - 1]) for h in range(1, H + 1)))
    per = float(khvp.hvp_cost(d))
    m = min(N, max_products)
    table, c, g = (int(x) for x in khvp.factor_size(d))
    dmax = int(d.max())
    madds = (
        per * max_products
        + 4.0 * m * m * N  # two passes of projection + subtraction, summed over steps
        + 0.5 * m * m * N  # ||Q^T Q - I||
        + 2.0 * n_want * m * N  # Ritz vectors
        + H * H * dmax**2 * int(d[0])  # factors
    )
    nbytes = lanczos_bytes(N, block, max_products, n_want)
    nbytes += 8 * (table + c + 2 * g + threads * int(khvp.work_size(d)))
    return Cost(N=N, product_madds=per, madds=madds, bytes=int(nbytes))


def _apply(f, threads: int):
    """``apply(V, U)``: ``U[i] = H V[i]``, rows split between ``threads`` threads (each row's
    product is computed alone, so the bits do not depend on the split)."""
    ws = int(khvp.work_size(f.dims))
    works = [np.empty(ws) for _ in range(max(1, threads))]
    pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def apply(V: np.ndarray, U: np.ndarray) -> None:
        t0 = time.perf_counter()
        _run(V, U)
        apply.seconds += time.perf_counter() - t0

    apply.seconds = 0.0

    def _run(V: np.ndarray, U: np.ndarray) -> None:
        p = V.shape[0]
        if pool is None or p == 1:
            khvp.hvp_rows(f, V, U, 0, p, works[0])
            return
        edges = np.linspace(0, p, min(threads, p) + 1).astype(int)
        futs = [
            pool.submit(khvp.hvp_rows, f, V, U, int(edges[i]), int(edges[i + 1]), works[i])
            for i in range(edges.size - 1)
        ]
        for fu in futs:
            fu.result()

    return apply, pool


def operator_error(f, Sxx: np.ndarray, Syx: np.ndarray) -> tuple[float, float, float, float]:
    """``(op_error, floor, ||H||_F, E_asm)`` at the point of the factors ``f``.

    The bounds of this module are proven for ``H~``, the Hessian assembled *in exact
    arithmetic* from the computed partial products ``W_{a:b}`` and residual ``R`` (the
    table of :func:`mcland._kernels.dense.product_table`, the object the dense path
    assembles too).  ``op_error`` bounds ``||fl(H v) - H~ v|| / ||v||`` for
    :func:`mcland._kernels.hvp.hvp_into`: the accumulations that form ``C``, ``G`` and
    apply them, at most six of length ``<= sum_h d_h`` per term, each ``sqrt(n) eps``
    relative to the product of its factors' norms (the probabilistic model of
    docs/numerics.md), summed over the blocks (tests/test_hvp.py measures it against
    extended precision).

    ``E_asm`` (:func:`mcland._kernels.hessian.assembly_error`) bounds ``||H~ - H||`` for
    the exact Hessian ``H`` at the stored weights, and ``floor = E_asm + sqrt(N) eps
    ||H||_F`` is the dense path's noise floor (docs/numerics.md), with ``||H||_F`` from
    :func:`mcland._kernels.hvp.hessian_frob`: the same bands.  Every exact eigenvalue lies
    within ``E_asm <= floor`` of one of ``H~`` (Weyl), the convention of the dense path,
    whose computed eigenvalues are those of a rounded ``H~`` too."""
    dims = f.dims
    H = dims.size - 1
    N = int(f.off[H])
    pn, perr = product_norms(f.table, f.table_off, dims)
    sxx_n = float(np.linalg.norm(Sxx))
    r_n = float(np.linalg.norm(f.R))
    e_asm = float(assembly_error(pn, perr, dims, sxx_n, float(np.linalg.norm(Syx)), r_n))

    def nrm(a: int, b: int) -> float:  # ||W_{a:b}||, the identity's 2-norm being 1
        return 1.0 if a == b - 1 else float(pn[a, b])

    scale = 0.0
    for h in range(1, H + 1):
        for k in range(1, H + 1):
            scale += 2.0 * nrm(H, h + 1) * nrm(H, k + 1) * nrm(h - 1, 1) * nrm(k - 1, 1) * sxx_n
            if h != k:
                lo, hi = min(h, k), max(h, k)
                scale += 2.0 * nrm(H, hi + 1) * r_n * nrm(lo - 1, 1) * nrm(hi - 1, lo + 1)
    op = 6.0 * np.sqrt(float(np.sum(dims))) * EPS * scale
    h_f = float(khvp.hessian_frob(f)[0])
    floor = e_asm + np.sqrt(N) * EPS * h_f
    return op, floor, h_f, e_asm


def bounds_from(
    res: LanczosResult,
    spec: StructuralSpectrum,
    *,
    N: int,
    op_error: float,
    struct_error: float,
    tol_zero: float,
    tol_neg: float,
) -> dict:
    """The enclosures and inertia bounds from a Lanczos run and the structural spectrum
    (the theorems of the module docstring); a dict of :class:`Extremes` fields.

    ``op_error`` bounds the products' error (:func:`operator_error`); ``struct_error`` the
    distance between ``H~`` and the operator of the computed factors ``C``, ``G`` (their
    accumulation: ``op_error`` bounds it too), to which the pieces' singular-value rounding
    is added."""
    theta = res.theta
    m = theta.size
    delta = ritz_error(res, N, op_error)
    up = theta + delta  # lambda_j <= up[j]          (interlacing)
    lo = theta - delta  # lambda_{N-m+j} >= lo[j]    (interlacing)
    s_err = struct_error + spec.svd_error  # the pieces as computed vs H~

    def below_lo(x: float) -> int:  # #{lambda < x} >= this
        return int(np.sum(up < x))

    def above_lo(x: float) -> int:  # #{lambda > x} >= this
        return int(np.sum(lo > x))

    def below_hi(x: float) -> int:  # #{lambda < x} <= this
        best = N
        if x <= 0.0:  # structural, x = -(thr): #{lambda < -thr} <= count_below(thr - s_err)
            best = min(best, count_below(spec, -x - s_err))
        ok = np.nonzero(lo >= x)[0]  # lambda_{N-m+j} >= lo[j] >= x => #{lambda < x} <= N-m+j-1
        if ok.size:
            best = min(best, N - m + int(ok[0]))
        return best

    def above_hi(x: float) -> int:  # #{lambda > x} <= this
        best = N
        if x >= 0.0:
            best = min(best, count_above(spec, x - s_err))
        ok = np.nonzero(up <= x)[0]  # lambda_j <= up[j] <= x => #{lambda > x} <= N - j - 1
        if ok.size:
            best = min(best, N - int(ok[-1]) - 1)
        return best

    # exact zeros: rank(H) <= rank_bound
    zeros_exact = max(0, N - spec.rank)
    n_neg_lo = below_lo(-tol_neg)
    n_pos_lo = above_lo(tol_zero)
    n_lt_z_lo = below_lo(-tol_zero)  # #{lambda < -tol_zero} = n_neg + n_band
    n_neg_hi0 = below_hi(-tol_neg)
    n_lt_z_hi = below_hi(-tol_zero)
    n_pos_hi0 = above_hi(tol_zero)
    n_zero_lo = max(zeros_exact, N - n_pos_hi0 - n_lt_z_hi)
    n_zero_hi = N - n_pos_lo - n_lt_z_lo
    n_neg_hi = min(n_neg_hi0, n_lt_z_hi, N - n_zero_lo - n_pos_lo)
    n_pos_hi = min(n_pos_hi0, N - n_zero_lo - n_lt_z_lo)
    n_band_lo = max(0, n_lt_z_lo - n_neg_hi)
    n_band_hi = max(0, min(n_lt_z_hi - n_neg_lo, N - n_zero_lo - n_pos_lo - n_neg_lo))
    n_zero_lo = min(n_zero_lo, n_zero_hi)

    eig_min_hi = float(up[0])
    eig_max_lo = float(lo[-1])
    eig_min_lo = max(spec.eig_min_lower - s_err, float(lo[0]) if res.exhausted else -np.inf)
    eig_max_hi = min(spec.eig_max_upper + s_err, float(up[-1]) if res.exhausted else np.inf)
    # residual radii of the extreme Ritz pairs (wanted[0] is theta_1, wanted[-1] theta_m)
    radius = (res.resid + op_error * res.y_norm + np.sqrt(N) * EPS * res.ay_norm) / res.y_norm
    exact = n_neg_lo == n_neg_hi and n_zero_lo == n_zero_hi and n_pos_lo == n_pos_hi
    if n_neg_lo > 0:
        curvature = "negative"
    elif n_lt_z_hi == 0:
        curvature = "nonnegative"
    else:
        curvature = "uncertain"
    return dict(
        eig_min_lo=eig_min_lo,
        eig_min_hi=eig_min_hi,
        eig_max_lo=eig_max_lo,
        eig_max_hi=eig_max_hi,
        eig_min_ritz=float(theta[0]),
        eig_min_resid=float(radius[0]),
        eig_max_ritz=float(theta[-1]),
        eig_max_resid=float(radius[-1]),
        n_neg_lo=n_neg_lo,
        n_neg_hi=n_neg_hi,
        n_zero_lo=n_zero_lo,
        n_zero_hi=n_zero_hi,
        n_pos_lo=n_pos_lo,
        n_pos_hi=n_pos_hi,
        n_band_lo=n_band_lo,
        n_band_hi=n_band_hi,
        inertia_exact=bool(exact),
        curvature=curvature,
        ritz_error=float(np.max(delta)) if m else 0.0,
    )


def matrix_free_spectrum(
    dims,
    w: np.ndarray,
    Sxx: np.ndarray,
    Syx: np.ndarray,
    *,
    tol_zero: float | None = None,
    tol_neg: float | None = None,
    c_zero: float = C_ZERO,
    c_neg: float = C_NEG,
    block: int = 16,
    n_want: int | None = None,
    max_products: int = 512,
    rtol: float = 1e-8,
    seed: int = 0,
    threads: int = 1,
    max_bytes: int | None = None,
) -> Extremes:
    """Certified ``lambda_min``, ``lambda_max`` and inertia bounds of ``nabla^2 L`` at the flat
    point ``w`` without forming the Hessian.

    Parameters
    ----------
    dims : array_like (H+1,)
        ``d_0 .. d_H``.
    w : ndarray (N,)
        The layers, flat (layout of :mod:`mcland._kernels.dense`).
    Sxx, Syx : ndarray (d_x, d_x), (d_y, d_x)
        The data moments; pass whitened ones (``Sxx = I``, weights ``W_1 Sxx^{1/2}``) for the
        classification's spectrum (docs/numerics.md).
    tol_zero, tol_neg : float, optional
        The bands; default ``c_zero * floor`` and ``c_neg * floor`` with the dense path's
        noise floor (:func:`operator_error`).
    block, n_want, max_products, rtol, seed :
        Block Lanczos (:func:`mcland.core.lanczos.block_lanczos`); ``n_want`` defaults to
        ``block``.
    threads : int
        Threads for the products (the result does not depend on it).
    max_bytes : int, optional
        Refuse (``MemoryError`` naming the estimate) when :func:`matrix_free_cost` predicts
        more.

    Returns
    -------
    Extremes
    """
    t0 = time.perf_counter()
    d = np.ascontiguousarray(dims, dtype=np.int64)
    w = np.ascontiguousarray(w, dtype=np.float64)
    Sxx = np.ascontiguousarray(Sxx, dtype=np.float64)
    Syx = np.ascontiguousarray(Syx, dtype=np.float64)
    n_want = block if n_want is None else n_want
    if max_bytes is not None:
        cost = matrix_free_cost(
            d, block=block, max_products=max_products, n_want=n_want, threads=threads
        )
        if cost.bytes > max_bytes:
            raise MemoryError(
                f"matrix-free spectrum of N = {cost.N:,} parameters needs about "
                f"{cost.bytes / 2**30:.1f} GiB (limit {max_bytes / 2**30:.1f} GiB); "
                "lower max_products or block"
            )
    f = khvp.hvp_factors(d, w, Sxx, Syx)
    N = int(f.off[-1])
    op, floor, h_f, _ = operator_error(f, Sxx, Syx)
    tz = c_zero * floor if tol_zero is None else float(tol_zero)
    tn = c_neg * floor if tol_neg is None else float(tol_neg)
    spec = structural_spectrum(f)
    apply, pool = _apply(f, threads)
    try:
        res = block_lanczos(
            apply,
            N,
            block=block,
            n_want=n_want,
            max_products=max_products,
            rtol=rtol,
            seed=seed,
            threads=threads,
        )
    finally:
        if pool is not None:
            pool.shutdown()
    b = bounds_from(res, spec, N=N, op_error=op, struct_error=op, tol_zero=tz, tol_neg=tn)
    return Extremes(
        N=N,
        **b,
        noise_floor=floor,
        tol_zero=tz,
        tol_neg=tn,
        hess_norm_w=h_f,
        op_error=op,
        rank_bound=spec.rank,
        spectrum_method="matrix_free",
        lanczos_block=res.block,
        lanczos_basis=res.m,
        lanczos_products=res.products,
        lanczos_converged=res.converged,
        orth_defect=res.orth_defect,
        seconds=time.perf_counter() - t0,
        product_seconds=apply.seconds,
    )
