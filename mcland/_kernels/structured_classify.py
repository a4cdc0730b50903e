"""Per-point analysis with the structured spectrum (docs/structured.md): the record of
:func:`.classify.analyze` without the N x N Hessian.

:func:`analyze_structured` computes the first-order facts, S and the theory type with its
certificate exactly as :func:`.classify.analyze` does (the same inlined routines, in the
same whitened coordinates), and takes the spectrum from
:func:`.structured.structured_spectrum`: the eigenvalues of the compressed Hessian K
(order k) together with ``N - k`` exact zeros.  The noise floor is the structured path's
(``StructuredSpectrum.floor``, docs/structured.md §5) and ``hess_norm_w`` is ``||K||_F``;
the zero/negative tolerances are ``c_zero``, ``c_neg`` times that floor, as on the dense
path.  ``CHOLESKY`` is ignored (the eigenvalues are cheap here): the numeric type is always
spectral.  Memory: ``O(k^2 + sum_h d_h^2)`` and ``O(N)`` for the spectra written out.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels import fields as f
from mcland._kernels.bundles import PointOutput, StructuredControl
from mcland._kernels.classify import (
    _bracket,
    _first_order,
    _numeric_type,
    _theory_with_tolerances,
    analyze,
    whitened_point,
)
from mcland._kernels.dense import as_matrix, copy_into, frob, layer_offsets, matmul, product_table
from mcland._kernels.jit import jit
from mcland._kernels.structured import structured_spectrum


@jit
def _full_spectrum(ev, N, dst):
    """The ascending spectrum ``ev`` (k,) merged with ``N - k`` zeros into ``dst[:N]``."""
    k = ev.size
    i = 0
    j = 0
    while i < k and ev[i] < 0.0:
        dst[j] = ev[i]
        i += 1
        j += 1
    for _ in range(N - k):
        dst[j] = 0.0
        j += 1
    while i < k:
        dst[j] = ev[i]
        i += 1
        j += 1


@jit
def _extremes(ev, N):
    """``(min, max)`` of the spectrum ``ev`` with ``N - ev.size`` zeros added."""
    k = ev.size
    lo = ev[0] if k > 0 else 0.0
    hi = ev[k - 1] if k > 0 else 0.0
    if k < N:
        lo = min(lo, 0.0)
        hi = max(hi, 0.0)
    return lo, hi


@jit
def analyze_structured(dims, w, moments, thresholds, flags, out, max_k):
    """:func:`.classify.analyze` with the structured spectrum (module docstring): the same
    arguments and outputs but ``work`` (none is needed) and ``max_k`` (the largest order of
    K that may be formed, see :class:`.bundles.StructuredControl`).  Returns the order k of
    the whitened K, or ``-k`` when ``k > max_k`` (then the second-order results stay NaN /
    -1 and the numeric type is ambiguous).  The spectra written (when ``out`` has room for
    ``N``) are the full ones, the ``N - k`` zeros included."""
    # np.bool_(...): a run-time bool, not a literal, so that every caller shares one
    # compiled specialisation (a literal False and True would compile the stack twice)
    k, _ = analyze_structured_into(dims, w, moments, thresholds, flags, out, max_k, np.bool_(False))
    return k


@jit
def _store_spectrum(ev, N, m, compressed, dst):
    """Write the ascending spectrum ``ev`` (k,) of a K into ``dst``: with ``compressed``,
    merged with ``m - k`` exact zeros into ``dst[:m]`` (``m`` >= k, the order stored for
    every list of the point); else merged with ``N - k`` zeros into ``dst[:N]``; nothing
    when ``dst`` has no room."""
    if compressed:
        if dst.size >= m:
            _full_spectrum(ev, m, dst)
    elif dst.size >= N:
        _full_spectrum(ev, N, dst)


@jit
def analyze_structured_into(dims, w, moments, thresholds, flags, out, max_k, compressed):
    """:func:`analyze_structured`, returning ``(k, m)``: ``k`` as there, ``m`` the length
    of the spectra written with ``compressed`` (the larger of the whitened and, with
    ``ORIGINAL``, the original K's orders; the shorter list padded with exact zeros), so
    that the point's spectra are the lists with ``N - m`` zeros added
    (``RangeOutput.spectrum_zeros``); ``m = -1`` when no spectrum was computed.  Without
    ``compressed`` the full spectra (length N) are written, as :func:`analyze_structured`."""
    H = dims.size - 1
    d_x = dims[0]
    off = layer_offsets(dims)
    N = off[H]
    w_white, white = whitened_point(dims, w, moments)
    esc = out.escape
    if esc.size >= N:
        esc[:N] = 0.0
    out.row_float[:] = np.nan
    out.row_int[:] = -1
    table, table_off = product_table(w_white, dims, off)
    Sxx_n = frob(white.Sxx)
    Syx_n = frob(white.Syx)
    L, R, critical, s_in, s, s_dev = _first_order(
        table, table_off, dims, w_white, white, Sxx_n, Syx_n, thresholds, out
    )
    sp = structured_spectrum(dims, w, moments, StructuredControl(True, max_k))
    row = out.row_float
    if sp.info == -1:
        out.row_int[f.I_NUMERIC_TYPE] = _numeric_type(critical, False, f.BAND)
        return -sp.k, -1
    floor = sp.floor
    tol_zero, tol_neg = _theory_with_tolerances(
        table, table_off, dims, white, R, critical, s_in, s, s_dev, thresholds, floor,
        sp.hess_norm, out,
    )  # fmt: skip
    at_global = abs(L - row[f.F_GLOBAL_MIN_VALUE]) <= row[f.F_LOSS_TOL]
    spectral = np.isfinite(sp.hess_norm) and sp.info == 0
    if not spectral:
        out.row_int[f.I_NUMERIC_TYPE] = _numeric_type(critical, at_global, f.BAND)
    else:
        ev = sp.ev
        lo, hi = _extremes(ev, N)
        row[f.F_EIG_MIN_W] = lo
        row[f.F_EIG_MAX_W] = hi
        n_neg = 0
        n_zero = N - ev.size
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
        out.row_int[f.I_NUMERIC_TYPE] = _numeric_type(
            critical, at_global, _bracket(lo, tol_zero, tol_neg)
        )
    if esc.size >= N:  # back to original coordinates: V_1 = V'_1 K^{-1}
        copy_into(matmul(as_matrix(esc, 0, dims[1], d_x), moments.K_inv), esc, 0)
    m = sp.ev.size if spectral else -1
    original = (flags & f.ORIGINAL) != 0
    so_ok = False
    so_ev = np.zeros(0)
    if original:
        so = structured_spectrum(dims, w, moments, StructuredControl(False, max_k))
        if so.info == 0:
            so_ok = True
            so_ev = so.ev
            row[f.F_HESS_NORM] = so.hess_norm
            lo, hi = _extremes(so.ev, N)
            row[f.F_EIG_MIN] = lo
            row[f.F_EIG_MAX] = hi
            if so.ev.size > m:
                m = so.ev.size
    if spectral:
        _store_spectrum(sp.ev, N, m, compressed, out.spectrum_w)
    if so_ok:
        _store_spectrum(so_ev, N, m, compressed, out.spectrum)
    return sp.k, m


@jit
def classify_range_mixed(
    dims_flat, dims_off, w_flat, w_off, moments, thresholds, flags, out, structured, max_k,
    start, stop, step,
):  # fmt: skip
    """:func:`.given.classify_range` with the path chosen per point: ``structured[t]``
    (bool) :func:`analyze_structured` (``max_k`` as there; its spectra stored as the ``m``
    eigenvalues of K with ``out.spectrum_zeros[t, 0] = N - m``, as
    :func:`.batch.process_range_wide`), else :func:`.classify.analyze`."""
    no_direction = np.zeros(0)
    work = np.empty(0)
    for t in range(start, stop, step):
        dims = dims_flat[dims_off[t] : dims_off[t + 1]].copy()
        w = w_flat[w_off[t] : w_off[t + 1]].copy()
        result = PointOutput(
            out.row_float[t], out.row_int[t], out.s_mask[t], out.ranks[t],
            out.spectrum_w[t], out.spectrum[t], no_direction,
        )  # fmt: skip
        out.spectrum_zeros[t, 0] = 0
        if structured[t]:
            _, m = analyze_structured_into(
                dims, w, moments, thresholds, flags, result, max_k, np.bool_(True)
            )
            if m >= 0:
                out.spectrum_zeros[t, 0] = w.size - m
        else:
            N = w.size
            if work.size < 2 * N * N:
                work = np.empty(2 * N * N)
            analyze(dims, w, moments, thresholds, flags, result, work)
