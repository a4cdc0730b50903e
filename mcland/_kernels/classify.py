"""Per-point analysis: criticality, S, theory type with certificate, spectrum, numeric type.

:func:`analyze` is the single routine behind both :func:`mcland.inspect_point` and the
batch sampler, so a point is classified identically however it was obtained.  It reads
only the weights and the data moments (plus their spectral data from
:func:`mcland._kernels.whiten.whiten`), never how the point was built.

The classification runs in **whitened input coordinates** (docs/theory.md §5): weights
``(W_1 K, W_2, ..., W_H)`` with ``K = Sxx^{1/2}``, moments ``Sxx = I`` and ``Syx K^{-1}``.
The loss, the critical points, S and the Hessian's inertia are the same (the two Hessians
are congruent), but the whitened Hessian does not carry the data's scale and conditioning:
with features of size 1e2 the original Hessian reaches norms of 1e13 and buries genuine
negative eigenvalues of size 1e-1 in rounding noise (13 of 200,000 points of
``runs/paper.toml`` were ambiguous or misread that way; all are decisive when whitened).
One eigendecomposition per point is the floor of the whole computation, so the sampler
decomposes only the whitened Hessian (``SPECTRUM``); the original Hessian's spectrum is
extra work on request (``ORIGINAL``), and the spectrum-free mode (``CHOLESKY``) brackets the
smallest whitened eigenvalue with shifted Cholesky factorisations instead.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels import fields as f
from mcland._kernels.bundles import Moments
from mcland._kernels.constants import EPS
from mcland._kernels.dense import (
    as_matrix,
    bottleneck,
    copy_into,
    frob,
    layer,
    layer_offsets,
    matmul,
    norm_products,
    prod,
    product_table,
)
from mcland._kernels.hessian import (
    assemble_hessian,
    assembly_error,
    frob_upper,
    gradient,
    gradient_scale,
    hessian_into,
    loss,
    product_norms,
    residual,
)
from mcland._kernels.jit import jit, jit_inline
from mcland._kernels.lapack import cholesky_destroy, eigvalsh_destroy
from mcland._kernels.theory import (
    pair_curvature,
    partial_product_ranks,
    read_S,
    swap_curvature,
    write_direction,
)

TINY = np.finfo(np.float64).tiny
S_DEV_MAX = 1e-3  # S is only trusted when every z_i is this close to 0 or 1


@jit
def _numeric_type(critical, at_global_value, bracket):
    """Numeric type from criticality, the loss and the bracket of the smallest eigenvalue."""
    if not critical:
        return f.NOT_CRITICAL
    if at_global_value:
        return f.GLOBAL_MINIMIZER if bracket == f.ABOVE else f.AMBIGUOUS
    if bracket == f.BELOW:
        return f.STRICT_SADDLE
    if bracket == f.ABOVE:
        return f.NON_STRICT_SADDLE
    return f.AMBIGUOUS


@jit
def _bracket(eig_min, tol_zero, tol_neg):
    if eig_min >= -tol_zero:
        return f.ABOVE
    if eig_min < -tol_neg:
        return f.BELOW
    return f.BAND


@jit
def _exceeds(hess, tau, scratch):
    """Whether every eigenvalue of the symmetric matrix with upper triangle ``hess`` (N, N)
    exceeds ``-tau``: a Cholesky factorisation of ``Hm + tau I`` succeeds exactly then (up
    to its backward error, ``O(sqrt(N) eps ||Hm||)`` in practice, inside the noise floor
    that ``tau`` is a multiple of).  A zero ``tau`` (only for an exactly zero Hessian, whose
    floor is 0) is raised to the smallest normal number, so that ``eig_min >= -tau`` is
    what is tested, as in :func:`_bracket`.  ``scratch`` (>= N * N entries) is overwritten."""
    N = hess.shape[0]
    A = as_matrix(scratch, 0, N, N)
    shift = max(tau, TINY)
    for i in range(N):
        A[i, i] = hess[i, i] + shift
        for j in range(i + 1, N):
            A[i, j] = hess[i, j]
    return cholesky_destroy(A)


@jit
def _cholesky_bracket(hess, tol_zero, tol_neg, likely_below, scratch):
    """:func:`_bracket` of the smallest eigenvalue from one or two factorisations, no
    eigenvalues; ``likely_below`` (the theory's guess) only chooses which test runs first."""
    if likely_below:
        if not _exceeds(hess, tol_neg, scratch):
            return f.BELOW
        return f.ABOVE if _exceeds(hess, tol_zero, scratch) else f.BAND
    if _exceeds(hess, tol_zero, scratch):
        return f.ABOVE
    return f.BAND if _exceeds(hess, tol_neg, scratch) else f.BELOW


@jit
def _spectral(hess, tol_zero, tol_neg, out):
    """Eigenvalues of the whitened Hessian (upper triangle ``hess`` (N, N), **overwritten**):
    extremes and inertia counts into ``out`` (:class:`.bundles.PointOutput`), and all of
    them into ``out.spectrum_w[:N]`` when it has room.  A LAPACK failure leaves them NaN,
    which :func:`_bracket` reads as the ambiguous band."""
    N = hess.shape[0]
    ev = out.spectrum_w[:N] if out.spectrum_w.size >= N else np.empty(N)
    eigvalsh_destroy(hess, ev)
    out.row_float[f.F_EIG_MIN_W] = ev[0]
    out.row_float[f.F_EIG_MAX_W] = ev[N - 1]
    n_neg = 0
    n_zero = 0
    n_pos = 0
    for v in ev:
        if v < -tol_neg:
            n_neg += 1
        elif abs(v) <= tol_zero:
            n_zero += 1
        elif v > tol_zero:
            n_pos += 1
    out.row_int[f.I_N_NEG] = n_neg
    out.row_int[f.I_N_ZERO] = n_zero
    out.row_int[f.I_N_POS] = n_pos
    return ev[0]


@jit_inline
def _theory(table, table_off, dims, moments, R, s_in, s, tol_zero, tol_neg, out):
    """Theory type of a critical point (docs/theory.md §3) with its escape certificate;
    ``table``/``table_off`` its partial products (:func:`.dense.product_table`), ``R`` the
    residual, ``s_in`` the S read off it (``s`` members).  The certificate's direction goes
    to ``out.escape`` when it has room for all N parameters."""
    H = dims.size - 1
    off = layer_offsets(dims)
    esc = out.escape
    want = esc.size >= off[H]
    top = True
    for i in range(s):
        top = top and s_in[i]
    r = bottleneck(dims)
    if s > r:
        return f.AMBIGUOUS
    if s == r and top:
        return f.GLOBAL_MINIMIZER
    Sxx = moments.Sxx
    if not top:
        c, p, y, vec = swap_curvature(
            table, table_off, dims, Sxx, R, moments.K_inv, moments.U, moments.Vt, s_in, want
        )
        out.row_float[f.F_ESCAPE_CURVATURE] = c
        if want:
            write_direction(dims, off, np.int64(1), H, p, y, vec, esc)  # not a literal 1
        return f.STRICT_SADDLE
    lowest = np.inf
    band = False
    for h1 in range(1, H):
        for h2 in range(h1 + 1, H + 1):
            c, p, y, vec = pair_curvature(table, table_off, dims, Sxx, R, h1, h2, tol_zero, want)
            lowest = min(lowest, c)
            if c < -tol_neg:
                out.row_float[f.F_PAIR_CURVATURE_MIN] = lowest
                out.row_float[f.F_ESCAPE_CURVATURE] = c
                out.row_int[f.I_OPEN_H1] = h1
                out.row_int[f.I_OPEN_H2] = h2
                if want:
                    write_direction(dims, off, h1, h2, p, y, vec, esc)
                return f.STRICT_SADDLE
            if c < -tol_zero:
                band = True
    out.row_float[f.F_PAIR_CURVATURE_MIN] = lowest
    return f.AMBIGUOUS if band else f.NON_STRICT_SADDLE


@jit_inline
def _first_order(table, table_off, dims, w, moments, Sxx_n, Syx_n, thresholds, out):
    """Loss, gradient, criticality, S and the critical values of the point ``w`` for the
    data ``moments`` (``Sxx_n``, ``Syx_n`` the Frobenius norms of its Sxx, Syx) into
    ``out``; returns ``(loss, R, critical, s_in, s, s_dev)``, ``R`` the residual and
    ``s_in`` the S read off the point."""
    H = dims.size - 1
    d_y = dims[H]
    off = layer_offsets(dims)
    norms = norm_products(w, dims, off)
    Sxx, Syx, tr_syy, lam = moments.Sxx, moments.Syx, moments.tr_syy, moments.lam
    P = prod(table, table_off, dims, H, 1)
    R = residual(P, Sxx, Syx)
    dsum = 0.0
    for h in range(H + 1):
        dsum += dims[h]
    L = loss(P, Sxx, Syx, tr_syy)
    g = gradient(table, table_off, dims, off, R)
    g_scale = gradient_scale(norms, dims, Sxx_n, Syx_n)
    g_norm = frob(g.reshape((1, g.size)))
    grad_rel = g_norm / g_scale if g_scale > 0.0 else (0.0 if g_norm == 0.0 else np.inf)
    critical = grad_rel <= thresholds.grad_rtol
    s_in, s_dev = read_S(P, moments.K, moments.U, lam)
    s = 0
    cv = tr_syy
    for i in range(d_y):
        out.s_mask[i] = s_in[i]
        if s_in[i]:
            s += 1
            cv -= lam[i]
    l_star = tr_syy
    for i in range(bottleneck(dims)):
        l_star -= lam[i]
    row = out.row_float
    row[f.F_LOSS] = L
    row[f.F_CRITICAL_VALUE] = cv
    row[f.F_GLOBAL_MIN_VALUE] = l_star
    row[f.F_LOSS_ERR] = L - cv
    row[f.F_LOSS_TOL] = (
        8.0 * EPS * dsum * (tr_syy + 2.0 * norms[H, 1] * Syx_n + norms[H, 1] ** 2 * Sxx_n)
    )
    row[f.F_GRAD_NORM] = g_norm
    row[f.F_GRAD_REL] = grad_rel
    row[f.F_S_DEV] = s_dev
    out.row_int[f.I_IS_CRITICAL] = 1 if critical else 0
    out.row_int[f.I_S] = s
    partial_product_ranks(table, table_off, dims, norms, out.ranks)
    return L, R, critical, s_in, s, s_dev


@jit_inline
def _theory_with_tolerances(
    table, table_off, dims, moments, R, critical, s_in, s, s_dev, thresholds, floor, h_norm, out
):
    """The zero and negative tolerances ``c_zero * floor``, ``c_neg * floor`` of the noise
    floor ``floor`` and the theory's type of the point (``S`` read as ``s_in`` with ``s``
    members and deviation ``s_dev``, residual ``R``, for the data ``moments``) into ``out``,
    with ``||Hess_w||_F = h_norm``; returns ``(tol_zero, tol_neg)``.  Shared by the dense,
    structured and matrix-free analyses."""
    tol_zero = thresholds.c_zero * floor
    tol_neg = thresholds.c_neg * floor
    row = out.row_float
    row[f.F_HESS_NORM_W] = h_norm
    row[f.F_NOISE_FLOOR] = floor
    row[f.F_TOL_ZERO] = tol_zero
    row[f.F_TOL_NEG] = tol_neg
    if not critical:
        theory = f.NOT_CRITICAL
    elif s_dev > S_DEV_MAX:
        theory = f.AMBIGUOUS
    else:
        theory = _theory(table, table_off, dims, moments, R, s_in, s, tol_zero, tol_neg, out)
    out.row_int[f.I_THEORY_TYPE] = theory
    return tol_zero, tol_neg


@jit_inline
def _analyze_whitened(dims, w, moments, thresholds, flags, out, work):
    """Everything but the original-coordinate spectrum, for the point ``w`` and the data
    ``moments`` (whitened: ``Sxx = I``); ``work`` is scratch of at least ``2 N^2`` entries
    (see :func:`analyze`)."""
    H = dims.size - 1
    off = layer_offsets(dims)
    N = off[H]
    table, table_off = product_table(w, dims, off)

    out.row_float[:] = np.nan
    out.row_int[:] = -1
    Sxx_n = frob(moments.Sxx)
    Syx_n = frob(moments.Syx)
    L, R, critical, s_in, s, s_dev = _first_order(
        table, table_off, dims, w, moments, Sxx_n, Syx_n, thresholds, out
    )

    # second order: the Hessian and its noise floor
    hess = as_matrix(work, 0, N, N)  # only its upper triangle is written and read
    hessian_into(table, table_off, dims, off, moments.Sxx, R, hess)
    h_norm = frob_upper(hess)
    pn, perr = product_norms(table, table_off, dims)
    floor = assembly_error(pn, perr, dims, Sxx_n, Syx_n, frob(R)) + np.sqrt(N) * EPS * h_norm
    # theory first (its verdict orders the Cholesky tests), then the numeric type
    tol_zero, tol_neg = _theory_with_tolerances(
        table, table_off, dims, moments, R, critical, s_in, s, s_dev, thresholds, floor, h_norm,
        out,
    )  # fmt: skip
    row = out.row_float
    theory = out.row_int[f.I_THEORY_TYPE]
    at_global = abs(L - row[f.F_GLOBAL_MIN_VALUE]) <= row[f.F_LOSS_TOL]
    if not np.isfinite(h_norm):  # overflow: no LAPACK on non-finite input, type unknown
        out.row_int[f.I_NUMERIC_TYPE] = _numeric_type(critical, at_global, f.BAND)
        return
    # Cholesky before the spectrum, which overwrites the Hessian
    if flags & f.CHOLESKY:
        likely = theory == f.STRICT_SADDLE and not at_global
        bracket = _cholesky_bracket(hess, tol_zero, tol_neg, likely, work[N * N :])
        out.row_int[f.I_NUMERIC_TYPE] = _numeric_type(critical, at_global, bracket)
    if flags & f.SPECTRUM:
        eig_min = _spectral(hess, tol_zero, tol_neg, out)
        spectral = _numeric_type(critical, at_global, _bracket(eig_min, tol_zero, tol_neg))
        if flags & f.CHOLESKY:
            out.row_int[f.I_AUDIT_TYPE] = spectral
        else:
            out.row_int[f.I_NUMERIC_TYPE] = spectral


@jit
def whitened_problem(dims, w, Syx, K, Kinv):
    """The point and data in whitened input coordinates: ``(W_1 K, W_2, ..., W_H)`` (flat)
    and ``Syx K^{-1}``; there ``Sxx = I``."""
    off = layer_offsets(dims)
    ww = w.copy()
    copy_into(matmul(layer(w, dims, off, 1), K), ww, 0)
    return ww, matmul(Syx, Kinv)


@jit_inline
def whitened_point(dims, w, moments):
    """The point and the data in whitened input coordinates: the flat weights
    ``(W_1 K, W_2, ..., W_H)`` and the :class:`.bundles.Moments` of ``Sxx = I``,
    ``Syx K^{-1}`` (``K = K^{-1} = I``, ``mu = 1``; ``tr_syy``, ``lam``, ``U``, ``Vt`` as
    ``moments``).  Shared by the dense, structured and matrix-free analyses."""
    d_x = dims[0]
    w_white, Syx_white = whitened_problem(dims, w, moments.Syx, moments.K, moments.K_inv)
    eye = np.eye(d_x)
    white = Moments(
        eye, Syx_white, moments.tr_syy, np.ones(d_x), eye, eye, moments.lam, moments.U,
        moments.Vt,
    )  # fmt: skip
    return w_white, white


@jit
def analyze(dims, w, moments, thresholds, flags, out, work):
    """Analyse the point ``w`` (flat layers, see :mod:`.dense`) for the data ``moments``
    (:class:`.bundles.Moments`), with the tolerance factors ``thresholds``
    (:class:`.bundles.Thresholds`), into ``out`` (:class:`.bundles.PointOutput`).

    ``flags`` (bits of :mod:`.fields`) says what is computed besides the first-order
    facts, S, the theory type and its certificate: ``SPECTRUM`` the whitened Hessian's
    eigenvalues (numeric type, ``eig_min_w``, ``eig_max_w``, ``n_neg/n_zero/n_pos``);
    ``CHOLESKY`` the numeric type from shifted Cholesky factorisations instead (with
    ``SPECTRUM`` as well, the spectral type goes to ``audit_type``); ``ORIGINAL`` the
    original-coordinate Hessian's eigenvalues (``eig_min``, ``eig_max``, ``hess_norm``).
    What is not computed stays NaN / -1.

    Writes the scalar results into ``out.row_float`` / ``out.row_int`` (indices in
    :mod:`.fields`), S as a boolean mask into ``out.s_mask[:d_y]``, the partial-product
    ranks into ``out.ranks[:H(H+1)/2]``, the ascending eigenvalues into
    ``out.spectrum_w[:N]`` (whitened) and ``out.spectrum[:N]`` (original) when those have
    room and were computed; if ``out.escape.size >= N`` and the point is a theory-strict
    saddle, ``out.escape[:N]`` receives its escape direction (original coordinates,
    layout of ``w``; zero otherwise), along which the curvature per squared whitened norm
    is ``escape_curvature``.  Classification, noise floor, ``n_neg/n_zero/n_pos`` and
    certificates refer to the whitened problem (module docstring).  ``work`` is scratch
    for the Hessian and a Cholesky factor, at least ``2 N^2`` entries (a smaller one,
    e.g. empty, is replaced by a fresh allocation): the batch loop hands every point the
    same buffer, which saves two large allocations per point.  Tolerances: the point
    is critical when ``||grad|| <= thresholds.grad_rtol * gradient_scale``; an eigenvalue
    (or certificate curvature) is zero above ``-thresholds.c_zero * floor`` and negative
    below ``-thresholds.c_neg * floor``, ``floor`` being the whitened Hessian's
    rounding-error estimate.
    """
    H = dims.size - 1
    d_x = dims[0]
    off = layer_offsets(dims)
    N = off[H]
    if work.size < 2 * N * N:
        work = np.empty(2 * N * N)
    w_white, white = whitened_point(dims, w, moments)
    esc = out.escape
    if esc.size >= N:
        esc[:N] = 0.0
    _analyze_whitened(dims, w_white, white, thresholds, flags, out, work)
    if esc.size >= N:  # back to original coordinates: V_1 = V'_1 K^{-1}
        copy_into(matmul(as_matrix(esc, 0, dims[1], d_x), moments.K_inv), esc, 0)
    if flags & f.ORIGINAL:
        hess = assemble_hessian(dims, w, moments.Sxx, moments.Syx)
        out.row_float[f.F_HESS_NORM] = frob_upper(hess)
        ev = out.spectrum[:N] if out.spectrum.size >= N else np.empty(N)
        eigvalsh_destroy(hess, ev)
        out.row_float[f.F_EIG_MIN] = ev[0]
        out.row_float[f.F_EIG_MAX] = ev[N - 1]
