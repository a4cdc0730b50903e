"""The matrix-free rows of ``classify`` (``hessian = "matrix_free"``, docs/classify.md
"Matrix-free rows"): proven enclosures of ``lambda_min`` and ``lambda_max`` and proven
intervals of the inertia instead of a spectrum.

:func:`analyze_matrix_free` runs :func:`mcland.core.extremes.matrix_free_spectrum` on the
whitened point (block Lanczos on Hessian-vector products, ``O(N d)`` each; interlacing,
residuals and the Hessian's structure: docs/matrix_free.md), then the kernel
:func:`mcland._kernels.matrix_free_classify.analyze_without_spectrum` for the first-order
facts and the theory type with the same noise floor (the dense path's).  The numeric type
is derived from the bounds only where they prove it: ``strict_saddle`` when an eigenvalue
below ``-tol_neg`` is proven (``n_neg_lo > 0``), ``global_minimizer`` /
``non_strict_saddle`` (by the loss) when no eigenvalue below ``-tol_zero`` is possible
(``#{lambda < -tol_zero} = 0`` proven), else ``ambiguous``: the dense path's rule
(:func:`mcland._kernels.classify._numeric_type`) with the bracket of ``lambda_min``
proven instead of computed.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels import fields as f
from mcland._kernels.bundles import PointOutput
from mcland._kernels.classify import _numeric_type, whitened_problem
from mcland._kernels.matrix_free_classify import analyze_without_spectrum
from mcland.core.cost import MATRIX_FREE_MODE
from mcland.core.extremes import matrix_free_spectrum
from mcland.core.problem import Problem
from mcland.core.tolerances import Tolerances
from mcland.execution.threads import default_threads
from mcland.points.records import BatchOutput

FLOAT_COLUMNS = ("eig_min_lo", "eig_min_hi", "eig_max_lo", "eig_max_hi")
INT_COLUMNS = (
    "n_neg_lo", "n_neg_hi", "n_zero_lo", "n_zero_hi", "n_pos_lo", "n_pos_hi",
    "lanczos_products",
)  # fmt: skip
BOUND_COLUMNS = FLOAT_COLUMNS + INT_COLUMNS
# the bracket of lambda_min (docs/numerics.md) that Extremes.curvature proves
_BRACKET = {"negative": f.BELOW, "nonnegative": f.ABOVE, "uncertain": f.BAND}


def empty_bounds(paths: np.ndarray) -> dict[str, np.ndarray]:
    """The bound columns of rows taking ``paths`` (n,) (``"dense"``, ``"structured"``,
    ``"matrix_free"``): ``spectrum_method`` the path, the bounds NaN / -1 (null) until a
    matrix-free row fills them."""
    n = len(paths)
    out: dict[str, np.ndarray] = {"spectrum_method": np.asarray(paths, object).copy()}
    for name in FLOAT_COLUMNS:
        out[name] = np.full(n, np.nan)
    for name in INT_COLUMNS:
        out[name] = np.full(n, -1, np.int64)
    return out


def analyze_matrix_free(
    dims: np.ndarray,
    w: np.ndarray,
    problem: Problem,
    tol: Tolerances,
    threads: int | None,
    out: BatchOutput,
    t: int,
) -> dict[str, float | int]:
    """Row ``t`` of ``out`` for the point ``w`` (flat layers) of widths ``dims``: the
    kernel's first-order facts and theory type, the numeric type from the proven bracket of
    ``lambda_min`` (module docstring), no eigenvalue, count or spectrum (NaN / -1: null);
    returns the :data:`BOUND_COLUMNS` of the row.  The products run on ``threads``
    threads (the result does not depend on it)."""
    dims = np.ascontiguousarray(dims, np.int64)
    w = np.ascontiguousarray(w, np.float64)
    m = problem.moments
    w_white, syx_white = whitened_problem(dims, w, m.Syx, m.K, m.K_inv)
    e = matrix_free_spectrum(
        dims, w_white, np.eye(int(dims[0])), syx_white, c_zero=tol.c_zero, c_neg=tol.c_neg,
        threads=max(1, threads if threads is not None else default_threads()),
    )  # fmt: skip
    result = PointOutput(
        out.row_float[t], out.row_int[t], out.s_mask[t], out.ranks[t], out.spectrum_w[t],
        out.spectrum[t], np.zeros(0),
    )  # fmt: skip
    critical, at_global = analyze_without_spectrum(
        dims, w, m, tol.thresholds, e.noise_floor, e.hess_norm_w, result
    )
    out.row_int[t, f.I_NUMERIC_TYPE] = _numeric_type(
        bool(critical), bool(at_global), _BRACKET[e.curvature]
    )
    out.spectrum_zeros[t, 0] = 0
    cols = e.columns()
    cols["lanczos_products"] = e.lanczos_products
    return {name: cols[name] for name in BOUND_COLUMNS}


def certify_eig_min(row_float: np.ndarray, bounds: dict[str, np.ndarray]) -> np.ndarray:
    """``row_float`` for the certificate (:func:`.certify.rows.certify_rows`), with the
    matrix-free rows' ``eig_min_w`` set to the end of the enclosure that is safe for their
    verdict: ``eig_min_hi`` where ``lambda_min < -tol_neg`` is proven (a strict verdict's
    gap ``|eig_min_w| - floor`` is then a lower bound on ``|lambda_min|``), else
    ``eig_min_lo`` (a PSD verdict's evidence at its weakest).  A copy when any row is
    matrix-free, else ``row_float`` itself."""
    free = bounds["spectrum_method"] == MATRIX_FREE_MODE
    if not free.any():
        return row_float
    rf = row_float.copy()
    strict = bounds["n_neg_lo"] > 0
    rf[free, f.F_EIG_MIN_W] = np.where(
        strict[free], bounds["eig_min_hi"][free], bounds["eig_min_lo"][free]
    )
    return rf
