"""Column indices of the per-point result rows written by the kernels.

Kernels write scalars into a float row and an int row; the storage layer names them with
:data:`FLOAT_FIELDS` / :data:`INT_FIELDS`.  Indices are module constants so Numba folds them.
"""

from __future__ import annotations

# type codes, shared by theory_type and numeric_type
GLOBAL_MINIMIZER = 0
STRICT_SADDLE = 1
NON_STRICT_SADDLE = 2
NOT_CRITICAL = 3
AMBIGUOUS = 4
TYPE_NAMES = ("global_minimizer", "strict_saddle", "non_strict_saddle", "not_critical", "ambiguous")

# recipe codes of the sampler (how S was chosen)
RECIPE_NAMES = ("global", "top_saddle", "other_saddle")

# what analyze() computes for a point (bit flags)
SPECTRUM = 1  # eigenvalues of the whitened Hessian (the classified one)
CHOLESKY = 2  # numeric type from two shifted Cholesky factorisations, no eigenvalues
ORIGINAL = 4  # eigenvalues of the Hessian in original coordinates as well

# eigenvalue bracket of the whitened Hessian's smallest eigenvalue
ABOVE = 0  # eig_min >= -tol_zero
BELOW = 1  # eig_min < -tol_neg
BAND = 2  # in between: ambiguous

FLOAT_FIELDS = (
    "loss",
    "critical_value",
    "global_min_value",
    "loss_err",
    "loss_tol",
    "grad_norm",
    "grad_rel",
    "s_dev",
    "eig_min",
    "eig_max",
    "hess_norm",
    "eig_min_w",
    "eig_max_w",
    "hess_norm_w",
    "noise_floor",
    "tol_zero",
    "tol_neg",
    "escape_curvature",
    "pair_curvature_min",
)
(
    F_LOSS,
    F_CRITICAL_VALUE,
    F_GLOBAL_MIN_VALUE,
    F_LOSS_ERR,
    F_LOSS_TOL,
    F_GRAD_NORM,
    F_GRAD_REL,
    F_S_DEV,
    F_EIG_MIN,
    F_EIG_MAX,
    F_HESS_NORM,
    F_EIG_MIN_W,
    F_EIG_MAX_W,
    F_HESS_NORM_W,
    F_NOISE_FLOOR,
    F_TOL_ZERO,
    F_TOL_NEG,
    F_ESCAPE_CURVATURE,
    F_PAIR_CURVATURE_MIN,
) = range(len(FLOAT_FIELDS))

INT_FIELDS = (
    "is_critical",
    "s",
    "theory_type",
    "numeric_type",
    "open_h1",
    "open_h2",
    "n_neg",
    "n_zero",
    "n_pos",
    "audit_type",
)
(
    I_IS_CRITICAL,
    I_S,
    I_THEORY_TYPE,
    I_NUMERIC_TYPE,
    I_OPEN_H1,
    I_OPEN_H2,
    I_N_NEG,
    I_N_ZERO,
    I_N_POS,
    I_AUDIT_TYPE,
) = range(len(INT_FIELDS))
