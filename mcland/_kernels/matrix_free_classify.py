"""Per-point analysis without any spectrum, for the matrix-free path of ``classify``
(docs/classify.md "Matrix-free rows"): the record of :func:`.classify.analyze` but for the
second-order results, with the noise floor given.

:func:`analyze_without_spectrum` computes the first-order facts, S and the theory type
with its certificate exactly as :func:`.classify.analyze` does (the same inlined
routines, in the same whitened coordinates), with the tolerances ``c_zero``, ``c_neg``
times the ``floor`` the caller computed (the dense path's floor, from the factors of the
Hessian-vector products: :func:`mcland.core.extremes.operator_error`).  Eigenvalues,
inertia and the numeric type stay NaN / -1: the caller derives them from the matrix-free
enclosures.  Memory: the partial products, ``O(H^2 max_h d_h^2)``.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels import fields as f
from mcland._kernels.classify import _first_order, _theory_with_tolerances, whitened_point
from mcland._kernels.dense import as_matrix, copy_into, frob, layer_offsets, matmul, product_table
from mcland._kernels.jit import jit


@jit
def analyze_without_spectrum(dims, w, moments, thresholds, floor, hess_norm_w, out):
    """First-order facts, S and theory type of the point ``w`` (flat layers, original
    coordinates) for the data ``moments`` (:class:`.bundles.Moments`), with the noise
    floor ``floor`` and ``||Hess_w||_F = hess_norm_w`` of its whitened Hessian, into ``out``
    (:class:`.bundles.PointOutput`; ``out.escape``, when it has room for all N parameters,
    receives the escape direction in original coordinates, as in :func:`.classify.analyze`).
    Returns
    ``(critical, at_global)``: the point is critical, its loss is the global minimum
    value within ``loss_tol``."""
    d_x = dims[0]
    off = layer_offsets(dims)
    w_white, white = whitened_point(dims, w, moments)
    esc = out.escape
    N = off[dims.size - 1]
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
    _theory_with_tolerances(
        table, table_off, dims, white, R, critical, s_in, s, s_dev, thresholds, floor,
        hess_norm_w, out,
    )  # fmt: skip
    if esc.size >= N:  # back to original coordinates: V_1 = V'_1 K^{-1}
        copy_into(matmul(as_matrix(esc, 0, dims[1], d_x), moments.K_inv), esc, 0)
    row = out.row_float
    at_global = abs(L - row[f.F_GLOBAL_MIN_VALUE]) <= row[f.F_LOSS_TOL]
    return critical, at_global
