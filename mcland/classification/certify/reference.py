"""The plain NumPy reference of :func:`mcland.classification.certify.rows.certify_figures`:
the same formulas and order of operations, vectorised per architecture, written from the
definitions in docs/certify.md (the tests compare the kernel with it)."""

from __future__ import annotations

import numpy as np

from mcland._kernels import fields as f
from mcland._kernels import stability as ks
from mcland._kernels.stability import NEAR_EXACT, PSD_VACUOUS, WEAK_PSD
from mcland.classification.certify.balance import balance_rows, layer_figures
from mcland.classification.certify.stability import bounds_rows, stability
from mcland.core import linalg as la  # norms without the process's BLAS
from mcland.core.tolerances import EPS


def certify_figures_reference(
    dims_list,
    w_list,
    X,
    Y,
    problem,
    row_float,
    row_int,
    spectrum_w,
    rel,
    dist,
    grad_rtol,
    everything,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NumPy reference of :func:`certify_figures` (vectorised per architecture and per
    depth with :func:`layer_figures`, :func:`balance_rows`, :func:`bounds_rows`, then
    :func:`stability` row by row): the same ``(k, fig, code)``."""
    n = len(w_list)
    x_norm, y_norm = la.norm(X), la.norm(Y)
    mu0 = float(problem.mu[0])
    ostrowski = min(1.0, mu0)  # lambda_orig <= ostrowski * lambda_w for lambda_w < 0
    names = f.TYPE_NAMES
    values: dict[int, np.ndarray] = {}
    sxx_2 = float(problem.mu[-1])
    h_max = max(len(d) - 1 for d in dims_list)
    k_out = np.zeros((n, h_max), np.int64)
    fig = np.zeros((n, len(ks.FIG_NAMES)))
    code = np.zeros((n, len(ks.CODE_NAMES)), np.int64)
    crit = [t for t in range(n) if row_int[t, f.I_IS_CRITICAL] == 1]
    # per architecture, vectorised: layer norms, balancing, residual norms
    groups: dict[tuple[int, ...], list[int]] = {}
    for t in crit:
        groups.setdefault(tuple(int(d) for d in dims_list[t]), []).append(t)
    norms_of: dict[int, np.ndarray] = {}
    k_of: dict[int, np.ndarray] = {}
    r_of: dict[int, float] = {}
    wn_of: dict[int, float] = {}
    for key, idx in groups.items():
        Wm = np.stack([w_list[t] for t in idx])
        norms, big, small, P = layer_figures(np.array(key), Wm)
        k = balance_rows(norms, big, small)
        R = np.matmul(P, problem.Sxx) - problem.Syx
        r_err = 4.0 * EPS * max(key) * (norms.prod(axis=1) * x_norm**2 + x_norm * y_norm)
        r_norm = np.sqrt((R * R).sum(axis=(1, 2))) + r_err
        w_norm = np.sqrt((Wm * Wm).sum(axis=1))
        for i, t in enumerate(idx):
            norms_of[t], k_of[t], r_of[t], wn_of[t] = norms[i], k[i], r_norm[i], w_norm[i]
    # per depth: the bounds (vectorised)
    by_depth: dict[int, list[int]] = {}
    for t in crit:
        by_depth.setdefault(len(dims_list[t]) - 1, []).append(t)
    for idx in by_depth.values():
        norms = np.stack([norms_of[t] for t in idx])
        k = np.stack([k_of[t] for t in idx])
        c = np.ldexp(1.0, k)
        r_norm = np.array([r_of[t] for t in idx])
        w_norm = np.array([wn_of[t] for t in idx])
        d = np.empty(len(idx))
        for i, t in enumerate(idx):
            row = row_float[t]
            if dist is not None and np.isfinite(dist[t]):
                d[i] = float(dist[t])
                code[t, ks.C_METHOD] = 1
            elif row[f.F_GRAD_REL] <= NEAR_EXACT:
                d[i] = 0.0  # critical to rounding: the distance is of the order of rel itself
            else:
                spec = spectrum_w[t] if spectrum_w is not None else None
                d[i] = _distance_estimate(row, spec, mu0)
                code[t, ks.C_METHOD] = 2 if d[i] > 0 else 0
        _, dgrad, dloss = bounds_rows(norms, r_norm, sxx_2, x_norm, y_norm, rel, d)
        # balanced coordinates w' = D^{-1} w: distances grow by at most 1 / min c
        beta = bounds_rows(norms / c, r_norm, sxx_2, x_norm, y_norm, rel, d / c.min(axis=1))[0]
        # normwise: every layer moves by rel * ||w|| (zero and tiny layers too), original coords
        beta_n, dgrad_n, _ = bounds_rows(
            norms, r_norm, sxx_2, x_norm, y_norm, 0.0, d + rel * w_norm, data_rel=rel
        )
        for i, t in enumerate(idx):
            k_out[t, : k.shape[1]] = k[i]
            g = fig[t]
            g[ks.G_C_MIN2], g[ks.G_C_MAX2] = c[i].min() ** 2, c[i].max() ** 2
            g[ks.G_BETA], g[ks.G_DGRAD], g[ks.G_DLOSS] = beta[i], dgrad[i], dloss[i]
            g[ks.G_BETA_N], g[ks.G_DGRAD_N], g[ks.G_DIST] = beta_n[i], dgrad_n[i], d[i]
    code_of = {name: i for i, name in enumerate(ks.TYPES)}
    for t in crit:
        row, ri, g = row_float[t], row_int[t], fig[t]
        code[t, ks.C_CRITICAL] = 1
        numeric, theory = names[ri[f.I_NUMERIC_TYPE]], names[ri[f.I_THEORY_TYPE]]
        floor = row[f.F_NOISE_FLOOR]
        eig = row[f.F_EIG_MIN_W]
        beta, c_min2, c_max2 = g[ks.G_BETA], g[ks.G_C_MIN2], g[ks.G_C_MAX2]
        at_global = abs(row[f.F_LOSS] - row[f.F_GLOBAL_MIN_VALUE]) <= row[f.F_LOSS_TOL]
        decided = numeric != "ambiguous" and numeric == theory
        verdict = numeric if decided else None
        # curvature and its bound in balanced coordinates w' = D^{-1} w (layer_balance):
        # same type, same relative perturbations, Hessian D H D (Ostrowski: sigma(D)^2)
        gap = ostrowski * c_min2 * max(abs(eig) - floor, 0.0) if numeric == "strict_saddle" else 0.0
        gap_n = ostrowski * max(abs(eig) - floor, 0.0) if numeric == "strict_saddle" else 0.0
        grad_norm = row[f.F_GRAD_NORM]
        grad_limit = grad_rtol * grad_norm / row[f.F_GRAD_REL] if row[f.F_GRAD_REL] > 0 else np.inf
        # the criticality test runs in whitened coordinates: dgrad mapped by ||K^{-1}||
        dgrad_w = g[ks.G_DGRAD] * max(1.0, mu0**-0.5)
        dgrad_nw = g[ks.G_DGRAD_N] * max(1.0, mu0**-0.5)
        # which critical values the loss may reach: each within dloss of the loss, and
        # the critical values themselves move by at most about dloss (first order)
        r = int(min(dims_list[t]))
        if r not in values:
            values[r] = problem.critical_values(r)
        reach = 2.0 * g[ks.G_DLOSS] + row[f.F_LOSS_TOL]
        near = np.abs(values[r] - row[f.F_LOSS]) <= reach
        psd = {"global_minimizer"} if near[0] else set()
        if near[1:].any():
            psd.add("non_strict_saddle")
        if not psd:
            psd = {"global_minimizer" if at_global else "non_strict_saddle"}
        if not decided or everything:
            need = True
        elif verdict == "strict_saddle":  # a sharper gap may prove the curvature stable
            need = not beta < gap
        else:  # PSD up to the floor: a negative eigenvalue of size <= `hidden` may hide in it
            hidden = max(1.0, sxx_2) * c_max2 * (row[f.F_TOL_ZERO] + floor)  # Ostrowski
            # only then can the exact type be a *stable* strict saddle; and only weak evidence
            vacuous = floor > PSD_VACUOUS * row[f.F_HESS_NORM_W]
            need = hidden > beta and (vacuous or eig < -WEAK_PSD * floor)
        mask = sum(1 << code_of[p] for p in psd)
        args = (grad_norm, grad_limit, frozenset(psd))
        st = stability(verdict, gap, *args, beta, dgrad_w) if verdict else None
        st_n = stability(verdict, gap_n, *args, g[ks.G_BETA_N], dgrad_nw) if verdict else None
        g[ks.G_GAP], g[ks.G_GAP_N], g[ks.G_GRAD_NORM] = gap, gap_n, grad_norm
        g[ks.G_GRAD_LIMIT], g[ks.G_DGRAD_W], g[ks.G_DGRAD_NW] = grad_limit, dgrad_w, dgrad_nw
        c = code[t]
        c[ks.C_NEED], c[ks.C_PSD] = need, mask
        c[ks.C_VERDICT] = code_of[verdict] if verdict else -1
        for col_s, col_p, s in (
            (ks.C_STAB, ks.C_POSSIBLE, st),
            (ks.C_STAB_N, ks.C_POSSIBLE_N, st_n),
        ):
            c[col_s] = ks.STABILITIES.index(s.stability) if s else 2
            c[col_p] = sum(1 << code_of[p] for p in s.possible_types) if s else 0
    return k_out, fig, code


def _distance_estimate(row: np.ndarray, spectrum_w: np.ndarray | None, mu0: float) -> float:
    """First-order distance to the critical set, ``||grad|| / sigma_+`` (an estimate):
    in whitened coordinates (``sigma_+`` the smallest whitened eigenvalue above
    ``tol_zero``), mapped to original ones by ``||K^{-1}|| <= max(1, mu_min^{-1/2})``.
    0 without a spectrum or a gradient."""
    g = row[f.F_GRAD_NORM]
    if spectrum_w is None or not g > 0:
        return 0.0
    ev = spectrum_w[np.isfinite(spectrum_w)]
    pos = ev[ev > row[f.F_TOL_ZERO]]
    if pos.size == 0:
        return 0.0
    return float(g / pos.min() * max(1.0, mu0**-0.5))
