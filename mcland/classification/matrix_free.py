"""The matrix-free rows of ``classify`` (``hessian = "matrix_free"``, docs/classify.md
"Matrix-free rows"): proven enclosures of ``lambda_min`` and ``lambda_max`` and proven
intervals of the inertia instead of a spectrum.

:func:`analyze_matrix_free` writes one row of a batch with the analysis that ``inspect``
shares (:func:`mcland.points.matrix_free.analyze_point_matrix_free`: the bounds, the
first-order facts, the theory type, the numeric type only where the bounds prove it);
:func:`empty_bounds` and :func:`certify_eig_min` are the batch's bound columns and their
use by the certificate.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels import fields as f
from mcland._kernels.bundles import PointOutput
from mcland.core.cost import MATRIX_FREE_MODE
from mcland.core.problem import Problem
from mcland.core.tolerances import Tolerances
from mcland.points.matrix_free import (
    BOUND_COLUMNS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    analyze_point_matrix_free,
    bound_columns,
)
from mcland.points.records import BatchOutput

__all__ = [
    "BOUND_COLUMNS",
    "FLOAT_COLUMNS",
    "INT_COLUMNS",
    "analyze_matrix_free",
    "certify_eig_min",
    "empty_bounds",
]


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
    result = PointOutput(
        out.row_float[t], out.row_int[t], out.s_mask[t], out.ranks[t], out.spectrum_w[t],
        out.spectrum[t], np.zeros(0),
    )  # fmt: skip
    e = analyze_point_matrix_free(dims, w, problem, tol, threads, result)
    out.spectrum_zeros[t, 0] = 0
    return bound_columns(e)


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
