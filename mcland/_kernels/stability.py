"""The float64 part of :func:`mcland.classification.certify.rows.certify_rows` in one kernel over all rows.

For every critical row: the layer norms, the balancing exponents
(:func:`mcland.classification.certify.balance.balance_rows`), the residual norm, the Weyl bounds
(:func:`mcland.classification.certify.stability.bounds_rows`, componentwise in balanced and original coordinates,
and normwise), the distance to the critical set, the triage for the exact evaluation and
the stability verdict of the float64 type (:func:`mcland.classification.certify.stability.stability`).  The NumPy
reference of the same figures is :func:`mcland.classification.certify.reference.certify_figures_reference`; the two
agree to rounding (same formulas and order of the products; sums of squares and the
matrix products may round differently), see tests/test_certify.py.

Types are coded by their index in :data:`TYPES`; sets of types as bit masks
(bit ``i`` for ``TYPES[i]``, so the bits' order is the order of the listed types).
"""

from __future__ import annotations

import numpy as np

from mcland._kernels import fields as f
from mcland._kernels.constants import EPS
from mcland._kernels.jit import jit

# the triage's constants (docs/certify.md); the NumPy reference uses them too
WEAK_PSD = 0.5
PSD_VACUOUS = 1e-3
NEAR_EXACT = 1e-12

TYPES = ("global_minimizer", "strict_saddle", "non_strict_saddle", "not_critical")
T_GLOBAL, T_STRICT, T_NON_STRICT, T_NOT_CRITICAL = 0, 1, 2, 3
_AMBIGUOUS = f.TYPE_NAMES.index("ambiguous")
assert f.TYPE_NAMES[:4] == TYPES

FIG_NAMES = (
    "c_min2", "c_max2", "beta", "dgrad", "dloss", "beta_n", "dgrad_n", "gap", "gap_n",
    "grad_norm", "grad_limit", "dgrad_w", "dgrad_nw", "dist",
)  # fmt: skip
(G_C_MIN2, G_C_MAX2, G_BETA, G_DGRAD, G_DLOSS, G_BETA_N, G_DGRAD_N, G_GAP, G_GAP_N,
 G_GRAD_NORM, G_GRAD_LIMIT, G_DGRAD_W, G_DGRAD_NW, G_DIST) = range(len(FIG_NAMES))  # fmt: skip

CODE_NAMES = ("critical", "method", "need", "psd", "verdict", "stab", "possible", "stab_n",
              "possible_n")  # fmt: skip
C_CRITICAL, C_METHOD, C_NEED, C_PSD, C_VERDICT, C_STAB, C_POSSIBLE, C_STAB_N, C_POSSIBLE_N = range(
    len(CODE_NAMES)
)
METHODS = ("weyl_bound", "weyl_bound+refine_distance", "weyl_bound+estimated_distance")
STABILITIES = ("stable", "unstable", "undecided")


@jit
def _others(n, skip1, skip2):
    """Product of ``n[j]`` over ``j`` other than ``skip1``, ``skip2`` (-1: none), in
    index order from 1.0 (as :func:`mcland.classification.certify.stability._others`)."""
    out = 1.0
    for j in range(n.size):
        if j != skip1 and j != skip2:
            out = out * n[j]
    return out


@jit
def _tele(n, n2, e, skip1, skip2):
    """``prod(n2) - prod(n)`` over ``j`` other than ``skip1``, ``skip2``, without
    cancellation: ``sum_h (prod_{j<h} n2_j) e_h (prod_{j>h} n_j)`` with ``e = n2 - n >= 0``
    (as :func:`mcland.classification.certify.stability._tele`)."""
    out = 0.0
    for h in range(n.size):
        if h in (skip1, skip2):
            continue
        term = e[h]
        for j in range(n.size):
            if j != skip1 and j != skip2 and j != h:
                term = term * (n2[j] if j < h else n[j])
        out = out + term
    return out


@jit
def bounds(norms, r_norm, sxx_2, x_norm, y_norm, rel, dist, data_rel):
    """:func:`mcland.classification.certify.stability.perturbation_bounds` for one row: ``norms`` (H,) float64;
    returns ``(beta, dgrad, dloss)``, in the operation order of
    :func:`mcland.classification.certify.stability.bounds_rows`."""
    H = norms.size
    e = rel * norms + dist
    n2 = norms + e
    dr = data_rel
    c2 = 2.0 * dr + dr * dr
    sxx, syx = sxx_2, x_norm * y_norm
    dsxx, dsyx = c2 * x_norm**2, syx * c2
    sxx2, syx2 = sxx + dsxx, syx * (1 + c2)
    P, P2n = _others(norms, -1, -1), _others(n2, -1, -1)
    dP = _tele(norms, n2, e, -1, -1)
    dR = dP * sxx2 + P * dsxx + dsyx
    s1 = 0.0
    ds1 = 0.0
    sd = 0.0
    for h in range(H):
        a, a2 = _others(norms, h, -1), _others(n2, h, -1)
        da = _tele(norms, n2, e, h, -1)
        s1 = s1 + a * a
        ds1 = ds1 + da * (a2 + a)
        g = da * r_norm + a2 * dR
        sd = sd + g * g
    B = 0.0
    B2 = 0.0
    dB = 0.0
    for h in range(H):
        for k in range(h + 1, H):
            o, o2 = _others(norms, h, k), _others(n2, h, k)
            B = B + 2.0 * o**2
            B2 = B2 + 2.0 * o2**2
            dB = dB + 2.0 * _tele(norms, n2, e, h, k) * (o2 + o)
    p1 = np.sqrt(s1)
    p2 = np.sqrt(B) / 2
    den = 2.0 * (np.sqrt(B2) + np.sqrt(B))
    dp2 = dB / den if den > 0 else 0.0
    beta = 2.0 * (ds1 * sxx2 + p1**2 * dsxx) + 4.0 * (dp2 * (r_norm + dR) + p2 * dR)
    dgrad = 2.0 * np.sqrt(sd)
    dloss = y_norm**2 * c2 + 2.0 * (dP * syx2 + P * dsyx) + (dP * (P2n + P) * sxx2 + P**2 * dsxx)
    inflate = 1.0 + 4.0 * (H + 4) ** 2 * EPS
    return beta * inflate, dgrad * inflate, dloss * inflate


@jit
def _round_half_even(x):
    fl = np.floor(x)
    frac = x - fl
    if frac > 0.5 or (frac == 0.5 and fl % 2.0 != 0.0):
        return fl + 1.0
    return fl


@jit
def balance(norms, big, small, k):
    """:func:`mcland.classification.certify.balance.balance_rows` for one row, into ``k`` (H,) int64."""
    H = norms.size
    logs = np.zeros(H)
    count = 0
    for h in range(H):
        if norms[h] > 0:
            logs[h] = np.log2(norms[h])
            count += 1
    all_nz = count == H
    target = 0.0
    if all_nz:
        s = 0.0
        for h in range(H):
            s += logs[h]
        target = s / max(count, 1)
    rest = 0
    for h in range(H):
        k[h] = int(_round_half_even(logs[h] - target)) if norms[h] > 0 else 0
        rest -= k[h]
    col = 0
    if all_nz:
        for h in range(H):
            if norms[h] > norms[col]:
                col = h
    else:
        for h in range(H):
            if not norms[h] > 0:
                col = h
                break
    k[col] += rest
    ok = H >= 2
    for h in range(H):
        scale = np.ldexp(1.0, -k[h])
        if not big[h] * scale < 2.0**1023:
            ok = False
        if not (small[h] == np.inf or small[h] * scale >= 2.0**-1022):
            ok = False
    if not ok:
        k[:] = 0


@jit
def stability_codes(verdict, gap, grad_norm, grad_limit, psd, beta, dgrad):
    """:func:`mcland.classification.certify.stability.stability` in codes: ``verdict`` a type index (-1: none);
    ``psd`` a mask; returns ``(stability index, possible mask)``."""
    if verdict < 0 or verdict == T_NOT_CRITICAL:
        return 2, 0
    possible = 0
    if grad_norm + dgrad > grad_limit:
        possible |= 1 << T_NOT_CRITICAL
    if verdict == T_STRICT:
        if not beta < gap:
            possible |= psd
    else:
        if beta > 0:
            possible |= 1 << T_STRICT
        possible |= psd
    possible &= ~(1 << verdict)
    return (0 if possible == 0 else 1), possible


@jit
def certify_bounds(pts, data, out):
    """Bounds, triage and float64 stability verdicts of every critical row of ``pts``
    (:class:`.bundles.CertifyPoints`) for ``data`` (:class:`.bundles.CertifyData`) into
    ``out`` (:class:`.bundles.CertifyOutput`); non-critical rows get ``critical = 0`` and
    nothing else.  Row by row, so the result of a row does not depend on the others."""
    n = pts.dims_off.size - 1
    mu0 = data.mu0
    ostrowski = min(1.0, mu0)
    kmap = max(1.0, mu0**-0.5)
    rel = data.rel
    d_x = data.Sxx.shape[0]
    d_y = data.Syx.shape[0]
    for t in range(n):
        rf = pts.row_float[t]
        ri = pts.row_int[t]
        out.code[t, :] = 0
        if ri[f.I_IS_CRITICAL] != 1:
            continue
        out.code[t, C_CRITICAL] = 1
        dims = pts.dims_flat[pts.dims_off[t] : pts.dims_off[t + 1]]
        w = pts.w_flat[pts.w_off[t] : pts.w_off[t + 1]]
        H = dims.size - 1
        norms = np.empty(H)
        big = np.empty(H)
        small = np.empty(H)
        # layer figures and the end-to-end product P = W_{H:1} (d_H, d_0)
        start = 0
        P = np.zeros((dims[0], dims[0]))
        for i in range(dims[0]):
            P[i, i] = 1.0
        for h in range(H):
            rows, cols_ = dims[h + 1], dims[h]
            s = 0.0
            mx = 0.0
            mn = np.inf
            L = w[start : start + rows * cols_].reshape((rows, cols_))
            for j in range(rows * cols_):
                a = abs(w[start + j])
                s += a * a
                mx = max(mx, a)
                if a > 0 and a < mn:
                    mn = a
            norms[h], big[h], small[h] = np.sqrt(s), mx, mn
            start += rows * cols_
            Pn = np.zeros((rows, dims[0]))
            for i in range(rows):
                for j in range(cols_):
                    lij = L[i, j]
                    for c in range(dims[0]):
                        Pn[i, c] += lij * P[j, c]
            P = Pn
        wn = 0.0
        for j in range(w.size):
            wn += w[j] * w[j]
        w_norm = np.sqrt(wn)
        k = out.k[t, :H]
        out.k[t, :] = 0
        balance(norms, big, small, k)
        # residual R = P Sxx - Syx, its norm plus a rounding allowance
        rs = 0.0
        for i in range(d_y):
            for c in range(d_x):
                v = 0.0
                for j in range(d_x):
                    v += P[i, j] * data.Sxx[j, c]
                v -= data.Syx[i, c]
                rs += v * v
        dmax = 0
        for j in range(dims.size):
            dmax = max(dmax, dims[j])
        prod = 1.0
        for h in range(H):
            prod *= norms[h]
        r_err = 4.0 * EPS * dmax * (prod * data.x_norm**2 + data.x_norm * data.y_norm)
        r_norm = np.sqrt(rs) + r_err
        # distance to the critical set
        method = 0
        dist = pts.dist[t]
        if np.isfinite(dist):
            d = dist
            method = 1
        elif rf[f.F_GRAD_REL] <= NEAR_EXACT:
            d = 0.0
        else:
            d = 0.0
            g = rf[f.F_GRAD_NORM]
            if pts.spectrum_w.shape[1] > 0 and g > 0:
                lo = np.inf
                for j in range(pts.spectrum_w.shape[1]):
                    ev = pts.spectrum_w[t, j]
                    if np.isfinite(ev) and ev > rf[f.F_TOL_ZERO] and ev < lo:
                        lo = ev
                if lo < np.inf:
                    d = g / lo * kmap
            if d > 0:
                method = 2
        # the bounds: componentwise (original, then balanced coordinates), normwise
        _, dgrad, dloss = bounds(norms, r_norm, data.sxx_2, data.x_norm, data.y_norm, rel, d, rel)
        c_min, c_max = np.inf, 0.0
        nb = np.empty(H)
        for h in range(H):
            c = np.ldexp(1.0, k[h])
            nb[h] = norms[h] / c
            c_min, c_max = min(c_min, c), max(c_max, c)
        beta = bounds(nb, r_norm, data.sxx_2, data.x_norm, data.y_norm, rel, d / c_min, rel)[0]
        beta_n, dgrad_n, _ = bounds(
            norms, r_norm, data.sxx_2, data.x_norm, data.y_norm, 0.0, d + rel * w_norm, rel
        )
        # the verdict, its gap, the triage
        numeric, theory = ri[f.I_NUMERIC_TYPE], ri[f.I_THEORY_TYPE]
        floor = rf[f.F_NOISE_FLOOR]
        eig = rf[f.F_EIG_MIN_W]
        at_global = abs(rf[f.F_LOSS] - rf[f.F_GLOBAL_MIN_VALUE]) <= rf[f.F_LOSS_TOL]
        decided = numeric != _AMBIGUOUS and numeric == theory
        verdict = numeric if decided else -1
        c_min2, c_max2 = c_min**2, c_max**2
        gap = 0.0
        gap_n = 0.0
        if numeric == T_STRICT:
            gap = ostrowski * c_min2 * max(abs(eig) - floor, 0.0)
            gap_n = ostrowski * max(abs(eig) - floor, 0.0)
        grad_norm = rf[f.F_GRAD_NORM]
        grad_limit = np.inf
        if rf[f.F_GRAD_REL] > 0:
            grad_limit = data.grad_rtol * grad_norm / rf[f.F_GRAD_REL]
        dgrad_w = dgrad * kmap
        dgrad_nw = dgrad_n * kmap
        r = dims[0]
        for j in range(dims.size):
            r = min(r, dims[j])
        reach = 2.0 * dloss + rf[f.F_LOSS_TOL]
        psd = 0
        vals = data.values[min(r, d_y)]
        for j in range(vals.size):
            if abs(vals[j] - rf[f.F_LOSS]) <= reach:
                psd |= (1 << T_GLOBAL) if j == 0 else (1 << T_NON_STRICT)
        if psd == 0:
            psd = (1 << T_GLOBAL) if at_global else (1 << T_NON_STRICT)
        if not decided or data.everything:
            need = True
        elif verdict == T_STRICT:
            need = not beta < gap
        else:
            hidden = max(1.0, data.sxx_2) * c_max2 * (rf[f.F_TOL_ZERO] + floor)
            vacuous = floor > PSD_VACUOUS * rf[f.F_HESS_NORM_W]
            need = hidden > beta and (vacuous or eig < -WEAK_PSD * floor)
        st, possible = stability_codes(verdict, gap, grad_norm, grad_limit, psd, beta, dgrad_w)
        st_n, possible_n = stability_codes(
            verdict, gap_n, grad_norm, grad_limit, psd, beta_n, dgrad_nw
        )
        g_ = out.fig[t]
        g_[G_C_MIN2], g_[G_C_MAX2], g_[G_BETA], g_[G_DGRAD] = c_min2, c_max2, beta, dgrad
        g_[G_DLOSS], g_[G_BETA_N], g_[G_DGRAD_N], g_[G_GAP] = dloss, beta_n, dgrad_n, gap
        g_[G_GAP_N], g_[G_GRAD_NORM], g_[G_GRAD_LIMIT] = gap_n, grad_norm, grad_limit
        g_[G_DGRAD_W], g_[G_DGRAD_NW], g_[G_DIST] = dgrad_w, dgrad_nw, d
        c_ = out.code[t]
        c_[C_METHOD], c_[C_NEED], c_[C_PSD], c_[C_VERDICT] = method, need, psd, verdict
        c_[C_STAB], c_[C_POSSIBLE], c_[C_STAB_N], c_[C_POSSIBLE_N] = st, possible, st_n, possible_n
