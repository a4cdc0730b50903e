"""The certificate columns of a classify run, for all its rows at once (:func:`certify_rows`).

The stability bound for every critical row runs in one compiled kernel over all rows
(:mod:`mcland._kernels.stability`, which also triages the rows); the exact evaluation
(:mod:`.exact_type`) only for the rows that need it.
"""

from __future__ import annotations

import math

import numpy as np

from mcland._kernels import fields as f
from mcland._kernels import stability as ks
from mcland._kernels.bundles import CertifyData, CertifyOutput, CertifyPoints
from mcland.classification.certify.exact_type import exact_certificate, exact_moments
from mcland.classification.certify.reference import certify_figures_reference
from mcland.classification.certify.stability import CRITICAL_TYPES, Stability, stability
from mcland.core import linalg as la  # norms without the process's BLAS
from mcland.core.blas import one_blas_thread
from mcland.core.cost import DENSE_AUTO_MAX_N
from mcland.core.problem import Problem
from mcland.core.ragged import Ragged
from mcland.core.tolerances import GRAD_RTOL

DEFAULT_REL = 4 * 2.0**-52  # default perturbation: a few eps, the rounding of the stored floats
# the exact evaluation holds the N x N Hessian in big integers and a float copy with its
# eigendecomposition: only up to the sizes whose analysis is dense by default; above, a row
# keeps its float64 verdict (with the bound's stability) or is undecided (issue 21)
EXACT_EVAL_MAX_N = DENSE_AUTO_MAX_N


COLUMNS = (
    "decided_by",
    "exact_type",
    "exact_curvature",
    "exact_grad_rel",
    "exact_hess_norm",
    "stability",
    "possible_types",
    "stability_scale",
    "stability_bound",
    "stability_rel",
    "stability_method",
    "normwise_stability",
    "normwise_possible_types",
)


def certify_rows(
    dims_list: list[np.ndarray],
    w_list: list[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    problem: Problem,
    row_float: np.ndarray,
    row_int: np.ndarray,
    spectrum_w: np.ndarray | None = None,
    rel: float = DEFAULT_REL,
    dist: np.ndarray | None = None,
    grad_rtol: float = GRAD_RTOL,
    everything: bool = False,
    reference: bool = False,
) -> dict[str, list]:
    """Both answers for a batch of analysed points (rows of :class:`mcland.points.records.BatchOutput`).

    The bound runs for every critical row; the exact evaluation only for rows that need it
    (``everything=True``: every critical row, for studies):

    * float64 undecided: numeric type ``ambiguous``, or theory and numeric types disagree;
    * a strict verdict the bound does not prove stable (the exact Rayleigh quotient is a
      sharper gap than the float64 eigenvalue minus its floor);
    * a PSD verdict on weak evidence (``eig_min_w < -WEAK_PSD * floor``, or a vacuous
      floor: ``floor > PSD_VACUOUS * ||Hess_w||_F``, no eigenvalue resolved) that leaves room
      for a negative eigenvalue larger than the perturbation bound:
      ``max(1, ||Sxx||_2) (tol_zero + floor) > beta`` (the float64 bracket maps to
      original coordinates by Ostrowski's theorem).  Otherwise a negative eigenvalue
      hidden in the floor is at most ``beta`` and the answer is the same either way: PSD
      up to a perturbation (``unstable``, ``strict_saddle`` possible).  The weak-evidence
      triage is empirical, not a proof (docs/certify.md).

    Rows of more than :data:`EXACT_EVAL_MAX_N` parameters are not evaluated exactly (the
    exact Hessian has ``N^2`` big-integer entries): they keep their float64 verdict with
    the bound's stability (``unstable`` where the bound cannot prove it), or, without one,
    get ``decided_by = "undecided"``.

    The float64 part (bounds, triage, verdicts of the rows kept at float64) is one kernel
    over all rows (:func:`mcland._kernels.stability.certify_bounds`); ``reference=True``
    computes it with the NumPy reference :func:`certify_figures_reference` instead (for
    the tests; the two agree to rounding).

    Returns the :data:`COLUMNS` as (n,) object arrays (None where not applicable), in row
    order.
    """
    n = len(w_list)
    cols: dict[str, np.ndarray] = {c: np.full(n, None, object) for c in COLUMNS}
    if n == 0:
        return cols
    fig_of = certify_figures_reference if reference else certify_figures
    k_all, fig, code = fig_of(
        dims_list, w_list, X, Y, problem, row_float, row_int, spectrum_w, rel, dist,
        grad_rtol, everything,
    )  # fmt: skip
    crit = np.flatnonzero(code[:, ks.C_CRITICAL] == 1)
    need = code[:, ks.C_NEED] == 1
    sizes = np.array([np.asarray(w).size for w in w_list], np.int64)
    small = sizes <= EXACT_EVAL_MAX_N
    fast = crit[~need[crit] | (~small[crit] & (code[crit, ks.C_VERDICT] >= 0))]
    _fill_float64(cols, fast, fig, code, rel)
    too_large = crit[need[crit] & ~small[crit] & (code[crit, ks.C_VERDICT] < 0)]
    _fill_undecided(cols, too_large, fig, code, rel)
    exact_rows = crit[need[crit] & small[crit]].tolist()
    if exact_rows:
        # small eigenproblems: LAPACK's threads only contend (0.12 ... 0.33 s per call of
        # classify on a loaded 2-core machine, for 4 ... 5 rows of N <= 82)
        with one_blas_thread():
            _exact_rows(cols, exact_rows, dims_list, w_list, X, Y, problem, row_float, k_all,
                        fig, code, rel, grad_rtol)  # fmt: skip
    return cols


def _exact_rows(cols, rows, dims_list, w_list, X, Y, problem, row_float, k_all, fig, code, rel,
                grad_rtol) -> None:  # fmt: skip
    """The exact evaluation and the stability of its type for the ``rows`` that need it
    (:func:`certify_rows`), into ``cols``."""
    moments = None
    for t in rows:
        row, g = row_float[t], fig[t]
        dims = np.asarray(dims_list[t], np.int64)
        k_bal = k_all[t, : dims.size - 1].copy()
        beta, dgrad, beta_n = g[ks.G_BETA], g[ks.G_DGRAD], g[ks.G_BETA_N]
        gap, gap_n = g[ks.G_GAP], g[ks.G_GAP_N]
        psd = frozenset(ks.TYPES[i] for i in range(4) if code[t, ks.C_PSD] >> i & 1)
        args = (g[ks.G_GRAD_NORM], g[ks.G_GRAD_LIMIT], psd, beta, g[ks.G_DGRAD_W])
        at_global = abs(row[f.F_LOSS] - row[f.F_GLOBAL_MIN_VALUE]) <= row[f.F_LOSS_TOL]
        if moments is None:
            moments = exact_moments(X, Y)
        cert = exact_certificate(
            dims, w_list[t], problem, moments, bool(at_global), grad_rtol, k_bal=k_bal
        )
        cols["exact_type"][t] = cert.exact_type
        cols["decided_by"][t] = cert.decided_by
        cols["exact_curvature"][t] = cert.exact_curvature
        cols["exact_grad_rel"][t] = cert.exact_grad_rel
        cols["exact_hess_norm"][t] = cert.hess_norm
        verdict = cert.exact_type
        if cert.exact_type == "strict_saddle" and np.isfinite(cert.exact_curvature):
            gap, gap_n = -cert.exact_curvature, -cert.curvature_original
        elif cert.exact_type == "strict_saddle":
            gap = gap_n = 0.0  # proven strict by inertia, no curvature figure
        st = stability(verdict, gap, *args) if verdict in CRITICAL_TYPES else None
        if st is None:
            st = Stability("undecided", (), math.nan, beta, dgrad)
        args_n = (g[ks.G_GRAD_NORM], g[ks.G_GRAD_LIMIT], psd, beta_n, g[ks.G_DGRAD_NW])
        st_n = stability(verdict, gap_n, *args_n) if verdict in CRITICAL_TYPES else None
        cols["normwise_stability"][t] = st_n.stability if st_n else "undecided"
        cols["normwise_possible_types"][t] = list(st_n.possible_types) if st_n else []
        cols["stability"][t] = st.stability
        cols["possible_types"][t] = list(st.possible_types)
        cols["stability_scale"][t] = st.scale
        cols["stability_bound"][t] = st.beta
        cols["stability_rel"][t] = rel
        cols["stability_method"][t] = ks.METHODS[code[t, ks.C_METHOD]]


def _fill_undecided(cols: dict, rows: np.ndarray, fig: np.ndarray, code: np.ndarray, rel: float):
    """The columns of critical ``rows`` that float64 leaves undecided and that are too large
    for the exact evaluation (``N > EXACT_EVAL_MAX_N``): ``decided_by = "undecided"``."""
    for t in rows.tolist():
        cols["decided_by"][t] = "undecided"
        cols["stability"][t] = cols["normwise_stability"][t] = "undecided"
        cols["possible_types"][t] = []
        cols["normwise_possible_types"][t] = []
        cols["stability_scale"][t] = math.nan
        cols["stability_bound"][t] = fig[t, ks.G_BETA]
        cols["stability_rel"][t] = rel
        cols["stability_method"][t] = ks.METHODS[code[t, ks.C_METHOD]]


def _objects(values: list) -> np.ndarray:
    """``values`` as a 1-D object array (lists stay elements, not rows)."""
    out = np.empty(len(values), object)
    for i, v in enumerate(values):
        out[i] = v
    return out


_MASK_TYPES = _objects(
    [[ks.TYPES[i] for i in range(4) if m >> i & 1] for m in range(16)]
)  # possible types of a bit mask, in the order of ks.TYPES (read-only, shared by rows)
_TYPES, _STABILITIES, _METHODS = (
    _objects(list(names)) for names in (ks.TYPES, ks.STABILITIES, ks.METHODS)
)


def _fill_float64(cols: dict, rows: np.ndarray, fig: np.ndarray, code: np.ndarray, rel: float):
    """The columns of the critical ``rows`` whose float64 verdict is kept, from the
    kernel's figures and codes (by table lookups, all rows at once)."""
    if rows.size == 0:
        return
    c = code[rows]
    verdict = c[:, ks.C_VERDICT]
    cols["exact_type"][rows] = _TYPES[verdict]
    cols["decided_by"][rows] = "float64"
    cols["stability"][rows] = _STABILITIES[c[:, ks.C_STAB]]
    cols["possible_types"][rows] = _MASK_TYPES[c[:, ks.C_POSSIBLE]]
    cols["stability_scale"][rows] = np.where(verdict == ks.T_STRICT, fig[rows, ks.G_GAP], 0.0)
    cols["stability_bound"][rows] = fig[rows, ks.G_BETA]
    cols["stability_rel"][rows] = rel
    cols["stability_method"][rows] = _METHODS[c[:, ks.C_METHOD]]
    cols["normwise_stability"][rows] = _STABILITIES[c[:, ks.C_STAB_N]]
    cols["normwise_possible_types"][rows] = _MASK_TYPES[c[:, ks.C_POSSIBLE_N]]


def _values_table(problem: Problem, ranks: set[int]) -> np.ndarray:
    """Critical values for each rank in ``ranks`` (row ``min(r, d_y)``, NaN-padded),
    (d_y+1, 2**d_y)."""
    d_y = problem.d_y
    out = np.full((d_y + 1, 1 << d_y), np.nan)
    for r in {min(r, d_y) for r in ranks}:
        v = problem.critical_values(r)
        out[r, : v.size] = v
    return out


def certify_figures(
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
    """The float64 part of :func:`certify_rows` (same arguments) by the kernel
    :func:`mcland._kernels.stability.certify_bounds`: ``(k, fig, code)``, ``k`` (n, H_max)
    int64 the balancing exponents, ``fig`` (n, len(FIG_NAMES)) float64, ``code``
    (n, len(CODE_NAMES)) int64 (indexed by the constants of :mod:`mcland._kernels.stability`;
    rows with ``code[:, C_CRITICAL] = 0`` are not filled)."""
    dims, w = Ragged.from_arrays(dims_list, np.int64), Ragged.from_arrays(w_list)
    n = len(dims)
    row_int = np.ascontiguousarray(row_int, np.int64)
    crit = row_int[:, f.I_IS_CRITICAL] == 1
    r_all = np.minimum.reduceat(dims.flat, dims.off[:-1]) if n else dims.off[:0]
    ranks = {int(r) for r in np.unique(r_all[crit])}
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    spec = np.zeros((n, 0)) if spectrum_w is None else np.ascontiguousarray(spectrum_w, np.float64)
    pts = CertifyPoints(
        dims.flat, dims.off, w.flat, w.off, np.ascontiguousarray(row_float, np.float64), row_int,
        spec, np.full(n, np.nan) if dist is None else np.asarray(dist, np.float64),
    )  # fmt: skip
    data = CertifyData(
        np.ascontiguousarray(problem.Sxx, np.float64), np.ascontiguousarray(problem.Syx, np.float64),
        _values_table(problem, ranks), float(problem.mu[-1]), la.norm(X),
        la.norm(Y), float(problem.mu[0]), float(rel), float(grad_rtol),
        bool(everything),
    )  # fmt: skip
    h_max = int(dims.lengths.max()) - 1
    out = CertifyOutput(
        np.zeros((n, h_max), np.int64), np.zeros((n, len(ks.FIG_NAMES))),
        np.zeros((n, len(ks.CODE_NAMES)), np.int64),
    )  # fmt: skip
    ks.certify_bounds(pts, data, out)
    return out.k, out.fig, out.code
