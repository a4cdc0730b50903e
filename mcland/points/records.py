"""The record of a point: its columns (:data:`SCHEMA`, the one source of the layout), the
kernels' output buffers (:class:`BatchOutput`) and their conversion to Arrow tables.

Every kind of run records points in these columns: a ``sample`` run one record per drawn
point, a ``dynamics`` run the point's record followed by its experiment's columns, a
``classify`` run the columns that apply to a given point.  ``docs/output-schema.md`` is
generated from :data:`SCHEMA`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from mcland._kernels import fields as f
from mcland._kernels import params as p

# A record stores its critical values when there are at most MAX_CRITICAL_VALUES of them
# (sum_{k<=r} C(d_y, k) <= 2**12): always when d_y <= 12, and e.g. the 2517 of d_y = 16, r = 4.
MAX_CRITICAL_VALUES = 1 << 12
TYPE_DICT = pa.array(f.TYPE_NAMES, pa.string())
RECIPE_DICT = pa.array(f.RECIPE_NAMES, pa.string())
_TYPE = pa.dictionary(pa.int8(), pa.string())

# The one source of the record layout: name, Arrow type, nullable and description of every
# column, in the order of the columns in every shard.  The description is stored in the
# field's metadata (key ``description``); ``docs/output-schema.md`` is generated from it.
_LIST_F64 = pa.list_(pa.float64())
_COLUMNS: tuple[tuple[str, pa.DataType, bool, str], ...] = (
    ("sample_id", pa.int64(), False, "point index within the run; with `seed` it determines the record"),
    ("seed", pa.int64(), False, "run seed"),
    ("H", pa.int8(), False, "depth `H`"),
    ("dims", pa.list_(pa.int16()), False, "architecture `(d_0, …, d_H)`"),
    ("d_x", pa.int16(), False, "input width `d_0`"),
    ("d_y", pa.int16(), False, "output width `d_H`"),
    ("r", pa.int16(), False, "bottleneck `r = min_h d_h`"),
    ("N", pa.int32(), False, "number of parameters `Σ_h d_h d_{h-1}`"),
    ("recipe", _TYPE, False, "how `S` was drawn: `global`, `top_saddle`, `other_saddle`"),
    ("s_drawn", pa.int16(), False, "size of the `S` used to build the point"),
    ("S_drawn", pa.list_(pa.int8()), False, "elements (1-based) of the `S` used to build the point"),
    ("kill_mask", pa.int32(), False, "bit `h-1` set when the complement block `E_h` of layer `h` is zero"),
    ("n_kill", pa.int8(), False, "number of zero complement blocks"),
    ("data_ok", pa.bool_(), False, "the data met the assumptions (docs/theory.md §1); false only if 20 redraws failed"),
    ("scale_x", pa.float64(), False, "data scale factor `a` of `X = a X0`"),
    ("scale_y", pa.float64(), False, "data scale factor `b` of `Y = b (T X0 + noise Z)`"),
    ("min_rel_gap", pa.float64(), False, "`min(min_i(λ_i − λ_{i+1}), λ_{d_y}) / λ_1` of `Sigma = Syx Sxx⁻¹ Sxy`"),
    ("sxx_rcond", pa.float64(), False, "reciprocal condition number of `Sxx`"),
    ("product_err", pa.float64(), False, "`‖W_{H:1} − U_S U_Sᵀ Syx Sxx⁻¹‖_F / ‖Syx Sxx⁻¹‖_F` for the drawn `S`"),
    ("is_critical", pa.bool_(), False, "`grad_rel ≤ grad_rtol`"),
    ("grad_norm", pa.float64(), False, "`‖∇L‖_F`"),
    ("grad_rel", pa.float64(), False, "`‖∇L‖_F / g_scale` (docs/numerics.md)"),
    ("s", pa.int16(), False, "size of the `S` read off the point"),
    ("S", pa.list_(pa.int8()), False, "`S` read off the point (1-based): `i ∈ S` iff `‖u_iᵀ W_{H:1} Sxx^{1/2}‖ > sqrt(λ_i)/2`"),
    ("s_dev", pa.float64(), False, "largest deviation of the ratios defining `S` from exactly 0 or 1"),
    ("loss", pa.float64(), False, "`L(W)`"),
    ("critical_value", pa.float64(), False, "`tr(Syy) − Σ_{i∈S} λ_i`"),
    ("global_min_value", pa.float64(), False, "`L* = tr(Syy) − Σ_{i≤r} λ_i`"),
    ("critical_values", _LIST_F64, True, "all critical values of the architecture on this data, `tr(Syy) − Σ_{i∈S} λ_i` over `|S| ≤ r`, ascending (`Σ_{k≤r} C(d_y, k)` values; null when over 4096)"),
    ("loss_err", pa.float64(), False, "`L − critical_value`"),
    ("loss_tol", pa.float64(), False, "the loss tolerance (docs/numerics.md, global value)"),
    ("theory_type", _TYPE, False, "type from the theory: `global_minimizer`, `strict_saddle`, `non_strict_saddle`, `not_critical`, `ambiguous`"),
    ("numeric_type", _TYPE, False, "same codes, from the loss and the whitened Hessian only (its spectrum, or shifted Cholesky factorisations in spectrum-free mode)"),
    ("agree", pa.bool_(), False, "`theory_type == numeric_type`"),
    ("verdict", _TYPE, False, "what mcland concludes, the column to group by: the type on which `theory_type` and `numeric_type` agree, else `ambiguous` (a classify record: the certified type of the stored floats, `exact_type`, where decided)"),
    ("open_h1", pa.int8(), True, "first layer `h1` of the first open pair `(h1, h2)` of a theory-strict saddle with `S = [s]`"),
    ("open_h2", pa.int8(), True, "second layer `h2` of that pair"),
    ("escape_curvature", pa.float64(), True, "certificate curvature of a theory-strict saddle"),
    ("pair_curvature_min", pa.float64(), True, "lowest pair curvature examined for `S = [s]`, `s < r`; pairs proved closed by the bound `2 σ ‖B‖_F <= c_zero · floor` (or with `G = 0`) are not examined, and count as `inf`"),
    ("eig_min", pa.float64(), True, "smallest eigenvalue of the Hessian `∇²L` (original coordinates; only with `output.original_spectrum = true`)"),
    ("eig_max", pa.float64(), True, "largest eigenvalue of `∇²L` (same condition)"),
    ("hess_norm", pa.float64(), True, "`‖∇²L‖_F` (same condition)"),
    ("eig_min_w", pa.float64(), True, "smallest eigenvalue of the Hessian in whitened input coordinates, from which the numeric type is decided (null in spectrum-free mode unless audited)"),
    ("eig_max_w", pa.float64(), True, "largest eigenvalue of the whitened Hessian (same condition)"),
    ("hess_norm_w", pa.float64(), False, "Frobenius norm of the whitened Hessian"),
    ("noise_floor", pa.float64(), False, "rounding-error floor of the whitened spectrum (docs/numerics.md)"),
    ("tol_zero", pa.float64(), False, "`c_zero · floor`"),
    ("tol_neg", pa.float64(), False, "`c_neg · floor`"),
    ("n_neg", pa.int32(), True, "whitened eigenvalues `< −tol_neg` (the inertia is shared with `∇²L`)"),
    ("n_zero", pa.int32(), True, "whitened eigenvalues with `|λ| ≤ tol_zero`"),
    ("n_pos", pa.int32(), True, "whitened eigenvalues `> tol_zero` (the rest sit in the band)"),
    ("audit_type", _TYPE, True, "spectrum-free mode: the spectral numeric type of an audited point (null otherwise)"),
    ("ranks", pa.list_(pa.int16()), False, "numerical ranks of all `W_{a:b}`, `1 ≤ b ≤ a ≤ H`, in the order `W_{1:1}, W_{2:1}, W_{2:2}, W_{3:1}, …` (index `a(a−1)/2 + b − 1`; `mcland.rank_labels(H)` names them)"),
    ("spectrum_w", _LIST_F64, True, "the eigenvalues of the whitened Hessian, ascending, but for the `spectrum_zeros` exact zeros left out: all `N` on a dense row, the `k` of the compressed Hessian on a structured one (`mcland.full_spectrum(spectrum_w, spectrum_zeros)` gives all `N`; `output.spectrum = false` stores null)"),
    ("spectrum", _LIST_F64, True, "the eigenvalues of `∇²L`, ascending, the same `spectrum_zeros` zeros left out (only with `output.original_spectrum = true`)"),
    ("spectrum_zeros", pa.int32(), False, "exact zero eigenvalues left out of `spectrum_w` and `spectrum`: `N − k` on a row whose spectrum came from the compressed Hessian K of order `k` (docs/structured.md; the larger of the whitened and original orders), 0 on a dense row and in runs of mcland ≤ 0.8 (no column)"),
    ("weights", _LIST_F64, True, "`W_1 … W_H` flattened row-major (only with `output.weights = true`; `mcland.draw_point` redraws them anyway)"),
)  # fmt: skip
# Columns added after 0.8.0 and the value a record written before them has: the field
# metadata key ``default`` (its JSON), which :func:`mcland.load` and the bounded-memory scan
# read in place of the missing column.
_DEFAULTS = {"spectrum_zeros": "0"}
SCHEMA = pa.schema(
    [
        pa.field(
            n, t, nullable,
            metadata={"description": d, **({"default": _DEFAULTS[n]} if n in _DEFAULTS else {})},
        )
        for n, t, nullable, d in _COLUMNS
    ]
)  # fmt: skip


def description(name: str) -> str:
    """The description of the record column ``name`` (from :data:`SCHEMA`'s field metadata)."""
    return SCHEMA.field(name).metadata[b"description"].decode("utf-8")


# Floating-point columns hold distinct values: dictionary encoding only costs time (half
# of the write) and space there, so it is kept for the other columns only.  They hardly
# compress either: zstd makes shards 9 % smaller than Snappy (385 vs 426 bytes per small
# point, 1690 vs 1810 per medium one) but takes 1.7x as long to write (6.6 vs 3.8 us per
# small point), and a shard is written while the threads wait.  Snappy is also Parquet's
# default codec, readable everywhere.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "snappy",
    "use_dictionary": [
        fl.name for fl in SCHEMA if not (pa.types.is_floating(fl.type) or pa.types.is_list(fl.type))
    ],
}


@dataclass
class BatchOutput:
    """Preallocated outputs of the batch kernel (``_kernels.batch.process_range``) for
    ``n`` points, row t for the batch's t-th point; :func:`to_table` turns them into records.

    Attributes
    ----------
    dims : ndarray (n, h_max + 1)
        Architecture ``(d_0, ..., d_H)``, zero-padded.
    draw_int, draw_float : ndarray (n, len(DRAW_INT_FIELDS)), (n, len(DRAW_FLOAT_FIELDS))
        Facts of the draw, columns named by ``_kernels.params.DRAW_INT_FIELDS`` /
        ``DRAW_FLOAT_FIELDS``.
    row_float, row_int : ndarray (n, len(FLOAT_FIELDS)), (n, len(INT_FIELDS))
        The analysis, columns named by ``_kernels.fields.FLOAT_FIELDS`` / ``INT_FIELDS``.
    s_mask, s_drawn : ndarray of bool (n, dy_max)
        ``S`` read off the point and ``S`` it was drawn with, as masks.
    ranks : ndarray (n, h_max (h_max + 1) / 2)
        Ranks of the partial products (column ``ranks``).
    spectrum_w, spectrum : ndarray (n, width) or (n, 0)
        Whitened and original Hessian spectra, NaN-padded (NaN rows: not computed), but
        for ``spectrum_zeros`` exact zeros; no columns when not asked for.  ``width`` is
        the longest stored spectrum: ``n_max`` when every row is dense, else
        ``max(largest dense N, k_max)`` (:class:`mcland.points.plan.Plan`).
    weights : ndarray (n, n_max) or (n, 0)
        The flat weights, when asked for.
    critical_values : ndarray (n, min(2**dy_max, MAX_CRITICAL_VALUES))
        The enumerated critical values, NaN-padded; a row whose architecture has more
        values than columns (:data:`MAX_CRITICAL_VALUES`) is left NaN (stored null).
    spectrum_zeros : ndarray of int64 (n, 1)
        Exact zero eigenvalues left out of the row's spectra (column ``spectrum_zeros``).
    """

    dims: np.ndarray
    draw_int: np.ndarray
    draw_float: np.ndarray
    row_float: np.ndarray
    row_int: np.ndarray
    s_mask: np.ndarray
    s_drawn: np.ndarray
    ranks: np.ndarray
    spectrum_w: np.ndarray
    spectrum: np.ndarray
    weights: np.ndarray
    critical_values: np.ndarray
    spectrum_zeros: np.ndarray

    @classmethod
    def allocate(
        cls,
        n: int,
        h_max: int,
        dy_max: int,
        n_max: int,
        spectrum: bool,
        original: bool,
        weights: bool,
        spectrum_width: int | None = None,
    ) -> BatchOutput:
        """Buffers for ``n`` points; the spectra have ``spectrum_width`` columns (default
        ``n_max``: room for every point's full spectrum)."""
        width = n_max if spectrum_width is None else spectrum_width
        return cls(
            dims=np.zeros((n, h_max + 1), np.int64),
            draw_int=np.zeros((n, len(p.DRAW_INT_FIELDS)), np.int64),
            draw_float=np.zeros((n, len(p.DRAW_FLOAT_FIELDS))),
            row_float=np.zeros((n, len(f.FLOAT_FIELDS))),
            row_int=np.zeros((n, len(f.INT_FIELDS)), np.int64),
            s_mask=np.zeros((n, dy_max), np.bool_),
            s_drawn=np.zeros((n, dy_max), np.bool_),
            ranks=np.zeros((n, h_max * (h_max + 1) // 2), np.int64),
            spectrum_w=np.full((n, width if spectrum else 0), np.nan),
            spectrum=np.full((n, width if spectrum and original else 0), np.nan),
            weights=np.zeros((n, n_max if weights else 0)),
            critical_values=np.zeros((n, min(1 << min(dy_max, 62), MAX_CRITICAL_VALUES))),
            spectrum_zeros=np.zeros((n, 1), np.int64),
        )


def _ragged(
    values: np.ndarray, lengths: np.ndarray, typ: pa.DataType, valid: np.ndarray | None = None
) -> pa.Array:
    """List array from a padded 2-D array and row lengths; rows not ``valid`` are null."""
    if valid is not None:
        lengths = np.where(valid, lengths, 0)
    offsets = np.zeros(lengths.size + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    mask = np.arange(values.shape[1])[None, :] < lengths[:, None]
    flat = pa.array(values[mask], typ.value_type)
    nulls = None if valid is None else pa.array(~valid)
    return pa.ListArray.from_arrays(pa.array(offsets), flat, type=typ, mask=nulls)


def _index_lists(mask: np.ndarray, typ: pa.DataType) -> pa.Array:
    """List array of the 1-based column indices of the True entries of each row of ``mask``."""
    offsets = np.zeros(mask.shape[0] + 1, np.int32)
    np.cumsum(mask.sum(axis=1), out=offsets[1:])
    flat = pa.array(np.nonzero(mask)[1] + 1, typ.value_type)  # row-major: rows in order
    return pa.ListArray.from_arrays(pa.array(offsets), flat, type=typ)


def _popcount(x: np.ndarray) -> np.ndarray:
    """Number of set bits of each (non-negative, < 2**32) entry of ``x``."""
    as_bytes = x.astype("<u4").view(np.uint8).reshape(-1, 4)
    return np.unpackbits(as_bytes, axis=1).sum(axis=1, dtype=np.int8)


def verdicts(theory: np.ndarray, numeric: np.ndarray) -> np.ndarray:
    """The ``verdict`` codes (:data:`mcland._kernels.fields.TYPE_NAMES`) of points whose
    theory and numeric type codes are ``theory`` and ``numeric``: the type they agree on,
    else ``ambiguous`` (never one of two disagreeing answers)."""
    return np.where(theory == numeric, numeric, f.AMBIGUOUS)


def full_spectrum(values: Any, zeros: int = 0) -> np.ndarray:
    """The full ascending spectrum of a record: the stored eigenvalues ``values`` (a
    ``spectrum_w`` or ``spectrum`` entry, ascending) with ``zeros`` exact zeros (the
    record's ``spectrum_zeros``; null or NaN, as read from a run without the column, counts
    as 0) inserted in order, so that it has ``N`` entries.

    Examples
    --------
    >>> df = mcland.load("run")  # doctest: +SKIP
    >>> ev = mcland.full_spectrum(df.spectrum_w[0], df.spectrum_zeros[0])  # doctest: +SKIP
    >>> ev.size == df.N[0]  # doctest: +SKIP
    True
    """
    ev = np.asarray(values, np.float64)
    z = 0 if zeros is None or (isinstance(zeros, float) and np.isnan(zeros)) else int(zeros)
    if z < 0:
        raise ValueError(f"zeros must be >= 0, got {z}")
    cut = int(np.searchsorted(ev, 0.0, side="left"))  # negatives, then zeros, then the rest
    return np.concatenate([ev[:cut], np.zeros(z), ev[cut:]])


def to_table(out: BatchOutput, ids: np.ndarray, seed: int) -> pa.Table:
    """Arrow table of the records of one batch, in :data:`SCHEMA`."""
    n = ids.size
    # the columns of the kernel's output rows, by field name
    di = {k: out.draw_int[:, i] for i, k in enumerate(p.DRAW_INT_FIELDS)}
    dfl = {k: out.draw_float[:, i] for i, k in enumerate(p.DRAW_FLOAT_FIELDS)}
    fv = {k: out.row_float[:, i] for i, k in enumerate(f.FLOAT_FIELDS)}
    iv = {k: out.row_int[:, i] for i, k in enumerate(f.INT_FIELDS)}
    H = di["H"]
    kill = di["kill_mask"]
    has_pair = iv["open_h1"] > 0
    cols: dict[str, pa.Array] = {
        "sample_id": pa.array(ids, pa.int64()),
        "seed": pa.array(np.full(n, seed), pa.int64()),
        "H": pa.array(H, pa.int8()),
        "dims": _ragged(out.dims, H + 1, SCHEMA.field("dims").type),
        "d_x": pa.array(di["d_x"], pa.int16()),
        "d_y": pa.array(di["d_y"], pa.int16()),
        "r": pa.array(di["r"], pa.int16()),
        "N": pa.array(di["N"], pa.int32()),
        "recipe": pa.DictionaryArray.from_arrays(pa.array(di["recipe"], pa.int8()), RECIPE_DICT),
        "s_drawn": pa.array(di["s_drawn"], pa.int16()),
        "S_drawn": _index_lists(out.s_drawn, SCHEMA.field("S_drawn").type),
        "kill_mask": pa.array(kill, pa.int32()),
        "n_kill": pa.array(_popcount(kill), pa.int8()),
        "data_ok": pa.array(di["draw_status"] == p.STATUS_OK, pa.bool_()),
        **{k: pa.array(dfl[k], pa.float64()) for k in p.DRAW_FLOAT_FIELDS},
        "is_critical": pa.array(iv["is_critical"] == 1, pa.bool_()),
        "s": pa.array(iv["s"], pa.int16()),
        "S": _index_lists(out.s_mask, SCHEMA.field("S").type),
        "theory_type": pa.DictionaryArray.from_arrays(
            pa.array(iv["theory_type"], pa.int8()), TYPE_DICT
        ),
        "numeric_type": pa.DictionaryArray.from_arrays(
            pa.array(iv["numeric_type"], pa.int8()), TYPE_DICT
        ),
        "agree": pa.array(iv["theory_type"] == iv["numeric_type"], pa.bool_()),
        "verdict": pa.DictionaryArray.from_arrays(
            pa.array(verdicts(iv["theory_type"], iv["numeric_type"]), pa.int8()), TYPE_DICT
        ),
        "open_h1": pa.array(iv["open_h1"], pa.int8(), mask=~has_pair),
        "open_h2": pa.array(iv["open_h2"], pa.int8(), mask=~has_pair),
        **{k: pa.array(iv[k], pa.int32(), mask=iv[k] < 0) for k in ("n_neg", "n_zero", "n_pos")},
        "audit_type": pa.DictionaryArray.from_arrays(
            pa.array(iv["audit_type"], pa.int8(), mask=iv["audit_type"] < 0), TYPE_DICT
        ),
        "ranks": _ragged(out.ranks, H * (H + 1) // 2, SCHEMA.field("ranks").type),
    }
    for k in f.FLOAT_FIELDS:
        nullable = SCHEMA.field(k).nullable
        cols[k] = pa.array(fv[k], pa.float64(), mask=np.isnan(fv[k]) if nullable else None)
    N = di["N"]
    zeros = out.spectrum_zeros[:, 0]
    stored = N - zeros  # each row's stored eigenvalues
    cols["spectrum_zeros"] = pa.array(zeros, pa.int32())
    lst = pa.list_(pa.float64())
    # a spectrum with nothing stored (all N eigenvalues exact zeros) was computed when the
    # row's figures were: n_neg for the whitened one, hess_norm for the original one
    empty_done = {"spectrum_w": iv["n_neg"] >= 0, "spectrum": ~np.isnan(fv["hess_norm"])}
    for name, spec in (("spectrum_w", out.spectrum_w), ("spectrum", out.spectrum)):
        if spec.shape[1]:
            computed = np.where(stored > 0, ~np.isnan(spec[:, 0]), empty_done[name])
            computed &= stored <= spec.shape[1]
        else:
            computed = np.zeros(n, np.bool_)
        cols[name] = _ragged(spec, stored, lst, computed) if computed.any() else pa.nulls(n, lst)
    cols["weights"] = _ragged(out.weights, N, lst) if out.weights.shape[1] else pa.nulls(n, lst)
    values = out.critical_values
    n_values = (~np.isnan(values)).sum(axis=1)
    stored = None if n_values.all() else n_values > 0  # a row left NaN (too many values): null
    cols["critical_values"] = (
        _ragged(np.nan_to_num(values), n_values, lst, stored)
        if values.shape[1]
        else pa.nulls(n, lst)
    )
    return pa.Table.from_arrays([cols[fl.name] for fl in SCHEMA], schema=SCHEMA)
