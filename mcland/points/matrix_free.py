"""One point's matrix-free analysis (``hessian = "matrix_free"``, docs/classify.md
"Matrix-free rows"): proven enclosures of ``lambda_min`` and ``lambda_max`` and proven
intervals of the inertia instead of a spectrum.  Shared by ``inspect``
(:func:`mcland.points.inspect.inspect_point`) and ``classify``
(:func:`mcland.classification.matrix_free.analyze_matrix_free`, one row of a batch).

:func:`analyze_point_matrix_free` runs :func:`mcland.core.extremes.matrix_free_spectrum` on
the whitened point (block Lanczos on Hessian-vector products, ``O(N d)`` each; interlacing,
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
from mcland.core.extremes import Extremes, matrix_free_spectrum
from mcland.core.problem import Problem
from mcland.core.tolerances import Tolerances
from mcland.execution.threads import default_threads

FLOAT_COLUMNS = ("eig_min_lo", "eig_min_hi", "eig_max_lo", "eig_max_hi")
INT_COLUMNS = (
    "n_neg_lo", "n_neg_hi", "n_zero_lo", "n_zero_hi", "n_pos_lo", "n_pos_hi",
    "lanczos_products",
)  # fmt: skip
BOUND_COLUMNS = FLOAT_COLUMNS + INT_COLUMNS
# the bracket of lambda_min (docs/numerics.md) that Extremes.curvature proves
_BRACKET = {"negative": f.BELOW, "nonnegative": f.ABOVE, "uncertain": f.BAND}


def analyze_point_matrix_free(
    dims: np.ndarray,
    w: np.ndarray,
    problem: Problem,
    tol: Tolerances,
    threads: int | None,
    result: PointOutput,
) -> Extremes:
    """The analysis of the point ``w`` (flat layers, original coordinates) of widths
    ``dims`` into ``result`` (:class:`mcland._kernels.bundles.PointOutput`): the kernel's
    first-order facts and theory type (the escape direction too when ``result.escape`` has
    room for all N parameters), the numeric type from the proven bracket of ``lambda_min``
    (module docstring), no eigenvalue, count or spectrum (NaN / -1: null).  Returns the
    :class:`mcland.core.extremes.Extremes` (enclosures, inertia intervals, cost).  The
    products run on ``threads`` threads (default: all cores; the result does not depend
    on it)."""
    dims = np.ascontiguousarray(dims, np.int64)
    w = np.ascontiguousarray(w, np.float64)
    m = problem.moments
    w_white, syx_white = whitened_problem(dims, w, m.Syx, m.K, m.K_inv)
    e = matrix_free_spectrum(
        dims, w_white, np.eye(int(dims[0])), syx_white, c_zero=tol.c_zero, c_neg=tol.c_neg,
        threads=max(1, threads if threads is not None else default_threads()),
    )  # fmt: skip
    critical, at_global = analyze_without_spectrum(
        dims, w, m, tol.thresholds, e.noise_floor, e.hess_norm_w, result
    )
    result.row_int[f.I_NUMERIC_TYPE] = _numeric_type(
        bool(critical), bool(at_global), _BRACKET[e.curvature]
    )
    return e


def bound_columns(e: Extremes) -> dict[str, float | int]:
    """The :data:`BOUND_COLUMNS` of ``e`` (a classify row's bound columns)."""
    cols = e.columns()
    return {name: cols[name] for name in BOUND_COLUMNS}
