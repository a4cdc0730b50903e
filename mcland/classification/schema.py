"""The columns of a classify record (:func:`record_schema`): the sampler's record columns
that apply to a given point, then those of the classification's own steps."""

from __future__ import annotations

import pyarrow as pa

from mcland.points.records import SCHEMA

# columns of SCHEMA that describe how the sampler drew a point: null for a given point
DRAWN_ONLY = (
    "recipe",
    "s_drawn",
    "S_drawn",
    "kill_mask",
    "n_kill",
    "scale_x",
    "scale_y",
    "product_err",
)
# columns of SCHEMA that identify a sampled record: not in a classify record
NOT_APPLICABLE = ("sample_id", "seed")


EXTRA_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("nearest_critical_value", pa.float64(), "the enumerated critical value nearest to `loss` (null when `d_y > 20`)"),
    ("nearest_critical_index", pa.int32(), "its index in the ascending list of critical values (0-based)"),
    ("nearest_critical_distance", pa.float64(), "`|loss − nearest_critical_value| / loss_tol`: ≲ 1 at a critical value, large far from every one"),
    ("rebalanced", pa.bool_(), "the layers were rescaled by powers of two, `W_h → 2^{−k_h} W_h` with `Σ k_h = 0`, before the analysis, because their norms differ by `2^8` or more and the rescaled point is critical: an exact symmetry of `L` (same loss bit for bit, same `S`, type and inertia by Sylvester's law), so the spectrum is not dominated by the largest layer; the gradient and eigenvalue columns describe the rescaled point (docs/classify.md)"),
    ("input_loss", pa.float64(), "with `refine`: `L` of the point as given"),
    ("input_grad_rel", pa.float64(), "with `refine`: `grad_rel` of the point as given"),
    ("refine_distance", pa.float64(), "with `refine`: `‖w_refined − w‖` (flat weights; 0 for a point with `grad_rel ≤ 1e-12`, left as it is)"),
    ("refine_distance_rel", pa.float64(), "with `refine`: `refine_distance / ‖w‖`"),
    ("refine_converged", pa.bool_(), "with `refine`: the refined point is critical (`grad_rel ≤ grad_rtol`); the record columns describe it"),
    ("decided_by", pa.string(), "how `exact_type` was decided (docs/certify.md): `float64` (the numeric and theory types agree outside the ambiguous band), `matrix_free` (on a matrix-free row: the theory type agrees with the numeric type the proven bounds give, docs/classify.md), `exact` (exact sign of `vᵀ∇²L v` along a float direction, in integer arithmetic on the stored floats), `exact_inertia` (exact PSD test of the rational Hessian), `undecided`; null for non-critical points"),
    ("exact_type", pa.string(), "the type of the stored floats themselves, certified as `decided_by` says (null: undecided or not critical); PSD points are read as `global_minimizer` or `non_strict_saddle` by their loss"),
    ("exact_curvature", pa.float64(), "for `decided_by = exact` strict points: the exact Rayleigh quotient `vᵀ∇²L v / ‖v‖² < 0` of the certificate (original coordinates; bounds the smallest eigenvalue from above)"),
    ("exact_grad_rel", pa.float64(), "for rows evaluated exactly: `grad_rel` from the exact gradient (original coordinates)"),
    ("exact_hess_norm", pa.float64(), "for rows evaluated exactly: `‖∇²L‖_F` of the exact Hessian (original coordinates), rounded once"),
    ("stability", pa.string(), "can a componentwise relative perturbation of weights and data of size `stability_rel` (plus the distance to the critical set) change the type? `stable` (proven by the bound), `unstable` (the bound cannot exclude `possible_types`), `undecided`"),
    ("possible_types", pa.list_(pa.string()), "the other types the perturbation may reach (empty when stable)"),
    ("stability_scale", pa.float64(), "the curvature that decided the verdict: a lower bound on `|λ_min|` of a strict point (original coordinates), 0 for a PSD verdict"),
    ("stability_bound", pa.float64(), "bound on how far any Hessian eigenvalue can move under the perturbation (Weyl; original coordinates)"),
    ("stability_rel", pa.float64(), "the relative perturbation size the stability refers to"),
    ("stability_method", pa.string(), "`weyl_bound` (a proof), `weyl_bound+refine_distance` (the refinement's distance added, a proof for that distance), `weyl_bound+estimated_distance` (plus a first-order estimate `‖grad‖/σ₊` of the distance to the critical set: not a proof)"),
    ("normwise_stability", pa.string(), "the same question for a *normwise* perturbation: every layer moves by `stability_rel · ‖w‖` in Frobenius norm (tiny and zero layers too: the reading \"within rounding of the weights\"), data as before; original coordinates"),
    ("normwise_possible_types", pa.list_(pa.string()), "the other types that normwise perturbation may reach"),
    ("spectrum_method", pa.string(), "which kind of answer the row's second-order columns are: `dense` (every eigenvalue of the `N × N` whitened Hessian), `structured` (every eigenvalue, from the compressed Hessian K: docs/structured.md), `matrix_free` (no spectrum: proven enclosures and inertia intervals from Hessian-vector products, the `eig_*_lo/hi` and `n_*_lo/hi` columns; `eig_min_w`, `eig_max_w`, `n_neg`, `n_zero`, `n_pos`, `spectrum_w` null; docs/classify.md); null in runs of mcland ≤ 0.9 (all `dense` or `structured`)"),
    ("eig_min_lo", pa.float64(), "matrix-free rows: `eig_min_lo ≤ λ_min ≤ eig_min_hi`, proven for the whitened Hessian (Cauchy interlacing of the Ritz values, Weyl on its structure; docs/matrix_free.md); null on other rows"),
    ("eig_min_hi", pa.float64(), "matrix-free rows: the upper end of the enclosure of `λ_min` (the smallest Ritz value plus its error bound)"),
    ("eig_max_lo", pa.float64(), "matrix-free rows: `eig_max_lo ≤ λ_max ≤ eig_max_hi`, proven (whitened)"),
    ("eig_max_hi", pa.float64(), "matrix-free rows: the upper end of the enclosure of `λ_max`"),
    ("n_neg_lo", pa.int32(), "matrix-free rows: `n_neg_lo ≤ n_neg ≤ n_neg_hi`, proven, for the bands of `n_neg` (eigenvalues `< −tol_neg`); null on other rows"),
    ("n_neg_hi", pa.int32(), "matrix-free rows: the upper end of the interval of `n_neg`"),
    ("n_zero_lo", pa.int32(), "matrix-free rows: `n_zero_lo ≤ n_zero ≤ n_zero_hi`, proven (`|λ| ≤ tol_zero`; at least `N − rank bound` exact zeros)"),
    ("n_zero_hi", pa.int32(), "matrix-free rows: the upper end of the interval of `n_zero`"),
    ("n_pos_lo", pa.int32(), "matrix-free rows: `n_pos_lo ≤ n_pos ≤ n_pos_hi`, proven (`λ > tol_zero`)"),
    ("n_pos_hi", pa.int32(), "matrix-free rows: the upper end of the interval of `n_pos`"),
    ("lanczos_products", pa.int32(), "matrix-free rows: Hessian-vector products used (block Lanczos and the final residuals), each `O(N d)`"),
)  # fmt: skip


def record_schema(key_type: pa.DataType | None = None) -> pa.Schema:
    """The columns of a classify record: ``row`` (of type ``key_type``), the sampler's
    columns that apply (:data:`mcland.points.records.SCHEMA` without ``sample_id`` and ``seed``;
    the drawn-only ones nullable) and the columns of the module docstring."""
    key_type = pa.int64() if key_type is None else key_type
    fields = [pa.field("row", key_type, True, {"description": "the input's index, or its key"})]
    for fl in SCHEMA:
        if fl.name in NOT_APPLICABLE:
            continue
        fields.append(fl.with_nullable(True) if fl.name in DRAWN_ONLY else fl)
    for name, typ, desc in EXTRA_COLUMNS:
        fields.append(pa.field(name, typ, True, {"description": desc}))
    return pa.schema(fields)
