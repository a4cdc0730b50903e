"""Layout of the flat parameter vector that carries a sampling configuration into kernels.

:func:`mcland.core.config.Config.kernel_params` fills it; kernels read it with these indices.
One float64 vector keeps the kernels' signatures fixed (one compilation for all configs).
"""

from __future__ import annotations

PARAM_NAMES = (
    "depth_min",
    "depth_max",
    "d_y_min",
    "d_y_max",
    "d_x_extra_min",
    "d_x_extra_max",
    "hidden_min",
    "hidden_max",
    "m",
    "noise",
    "log_scale_x_min",
    "log_scale_x_max",
    "log_scale_y_min",
    "log_scale_y_max",
    "weight_global",
    "weight_top_saddle",
    "weight_other_saddle",
    "split",
    "low_rank",
    "basis_cond",
    "signal_cond",
    "gap_rtol",
    "sxx_rcond",
    "fixed_data",
    "grad_rtol",
    "c_zero",
    "c_neg",
    "spectrum_free",
    "audit_fraction",
    "original_spectrum",
    "hidden_log",
)
(
    P_DEPTH_MIN,
    P_DEPTH_MAX,
    P_DY_MIN,
    P_DY_MAX,
    P_DXE_MIN,
    P_DXE_MAX,
    P_HID_MIN,
    P_HID_MAX,
    P_M,
    P_NOISE,
    P_LSX_MIN,
    P_LSX_MAX,
    P_LSY_MIN,
    P_LSY_MAX,
    P_W_GLOBAL,
    P_W_TOP,
    P_W_OTHER,
    P_SPLIT,
    P_LOW_RANK,
    P_BASIS_COND,
    P_SIGNAL_COND,
    P_GAP_RTOL,
    P_SXX_RCOND,
    P_FIXED_DATA,
    P_GRAD_RTOL,
    P_C_ZERO,
    P_C_NEG,
    P_SPECTRUM_FREE,
    P_AUDIT_FRACTION,
    P_ORIGINAL_SPECTRUM,
    P_HID_LOG,
) = range(len(PARAM_NAMES))

# per-point draw facts written next to the analysis rows
DRAW_INT_FIELDS = ("H", "d_x", "d_y", "r", "N", "recipe", "s_drawn", "kill_mask", "draw_status")
(D_H, D_DX, D_DY, D_R, D_N, D_RECIPE, D_S_DRAWN, D_KILL_MASK, D_STATUS) = range(
    len(DRAW_INT_FIELDS)
)
DRAW_FLOAT_FIELDS = ("scale_x", "scale_y", "min_rel_gap", "sxx_rcond", "product_err")
(D_SCALE_X, D_SCALE_Y, D_MIN_REL_GAP, D_SXX_RCOND, D_PRODUCT_ERR) = range(len(DRAW_FLOAT_FIELDS))

# draw_status codes
STATUS_OK = 0
STATUS_DATA_REJECTED = 1  # Gaussian data failed the assumption checks 20 times in a row
