"""Parquet storage: the record schema, kernel outputs → Arrow tables, shards, loading.

A run directory holds ``run.json`` (the manifest: resolved configuration, seed, n,
package version, shard plan), written before any shard, and shards
``part-NNNNNN.parquet`` of contiguous sample ids.  Shards are written to a temporary
name and renamed, so a reader never sees a partial file and an interrupted run keeps
every finished shard.  The manifest's content is also stored in every shard's Parquet
key-value metadata under ``mcland``.  The contract (shard plan, shard checks, resume) is
in :mod:`mcland.rundir`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from mcland import _faults
from mcland._kernels import fields as f
from mcland._kernels import params as p
from mcland.errors import MclandError

MANIFEST = "run.json"
# A record stores its critical values when there are at most MAX_CRITICAL_VALUES of them
# (sum_{k<=r} C(d_y, k) <= 2**12): always when d_y <= 12, and e.g. the 2517 of d_y = 16, r = 4.
MAX_CRITICAL_VALUES = 1 << 12
# Shard naming, for storage and the run-directory contract (mcland.rundir) alike: shard k is
# the file SHARD_FILE.format(k=k); the pattern is also recorded in every manifest.
SHARD_FILE = "part-{k:06d}.parquet"
SHARD_GLOB = "part-*.parquet"
SHARD_RE = re.compile(r"part-(\d+)\.parquet")  # fullmatch: group 1 is k
TMP_PREFIX = ".tmp-"  # files being written: TMP_PREFIX + "PID-TOKEN-" + final name
# the SHA-256 of shard NAME's bytes, as `sha256sum` writes it, is CHECKSUM_DIR/NAME.sha256
CHECKSUM_DIR = "checksums"
CHECKSUM_SUFFIX = ".sha256"
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)  # a full disk or quota
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
    ("spectrum_w", _LIST_F64, True, "all `N` eigenvalues of the whitened Hessian, ascending (`output.spectrum = false` stores null)"),
    ("spectrum", _LIST_F64, True, "all `N` eigenvalues of `∇²L`, ascending (only with `output.original_spectrum = true`)"),
    ("weights", _LIST_F64, True, "`W_1 … W_H` flattened row-major (only with `output.weights = true`; `mcland.draw_point` redraws them anyway)"),
)  # fmt: skip
SCHEMA = pa.schema(
    [pa.field(n, t, nullable, metadata={"description": d}) for n, t, nullable, d in _COLUMNS]
)


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
    spectrum_w, spectrum : ndarray (n, n_max) or (n, 0)
        Whitened and original Hessian spectra, NaN-padded (NaN rows: not computed); no
        columns when not asked for.
    weights : ndarray (n, n_max) or (n, 0)
        The flat weights, when asked for.
    critical_values : ndarray (n, min(2**dy_max, MAX_CRITICAL_VALUES))
        The enumerated critical values, NaN-padded; a row whose architecture has more
        values than columns (:data:`MAX_CRITICAL_VALUES`) is left NaN (stored null).
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
    ) -> BatchOutput:
        return cls(
            dims=np.zeros((n, h_max + 1), np.int64),
            draw_int=np.zeros((n, len(p.DRAW_INT_FIELDS)), np.int64),
            draw_float=np.zeros((n, len(p.DRAW_FLOAT_FIELDS))),
            row_float=np.zeros((n, len(f.FLOAT_FIELDS))),
            row_int=np.zeros((n, len(f.INT_FIELDS)), np.int64),
            s_mask=np.zeros((n, dy_max), np.bool_),
            s_drawn=np.zeros((n, dy_max), np.bool_),
            ranks=np.zeros((n, h_max * (h_max + 1) // 2), np.int64),
            spectrum_w=np.full((n, n_max if spectrum else 0), np.nan),
            spectrum=np.full((n, n_max if spectrum and original else 0), np.nan),
            weights=np.zeros((n, n_max if weights else 0)),
            critical_values=np.zeros((n, min(1 << min(dy_max, 62), MAX_CRITICAL_VALUES))),
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
    lst = pa.list_(pa.float64())
    for name, spec in (("spectrum_w", out.spectrum_w), ("spectrum", out.spectrum)):
        computed = ~np.isnan(spec[:, 0]) if spec.shape[1] else np.zeros(n, np.bool_)
        cols[name] = _ragged(spec, N, lst, computed) if computed.any() else pa.nulls(n, lst)
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


def shard_name(k: int) -> str:
    """The file name of shard ``k``."""
    return SHARD_FILE.format(k=k)


def tmp_name(name: str) -> str:
    """A temporary name, unique to this process and call, under which the file ``name`` is
    written before it is renamed (two attempts at one shard never share one)."""
    return f"{TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{name}"


def checksum_path(path: Path) -> Path:
    """The checksum file of the shard at ``path``: ``DIR/checksums/NAME.sha256``."""
    return path.parent / CHECKSUM_DIR / (path.name + CHECKSUM_SUFFIX)


def _write_atomic(path: Path, data: bytes | memoryview, moment: str | None = None) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file in the same directory,
    flushed to disk, then renamed; the temporary file never outlives the call."""
    tmp = path.with_name(tmp_name(path.name))
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if moment is not None:
            _faults.checkpoint(moment)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_shard(table: pa.Table, path: Path, meta: dict[str, Any]) -> None:
    """Write ``table`` to ``path`` atomically, with its checksum file.

    The Parquet bytes are made in memory and hashed (SHA-256); the checksum file
    (:func:`checksum_path`) is written first, then the shard (temporary file in the same
    directory, ``fsync``, rename).  So a shard under its final name always has its checksum
    beside it, and a crash in between leaves at most a checksum of a missing shard, which
    the next write replaces.  Two attempts at one shard write identical bytes.
    """
    table = table.replace_schema_metadata({"mcland": json.dumps(meta, sort_keys=True)})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **PARQUET_OPTIONS)
    data = memoryview(sink.getvalue())
    digest = hashlib.sha256(data).hexdigest()
    sums = path.parent / CHECKSUM_DIR
    sums.mkdir(exist_ok=True)
    tmp = path.with_name(tmp_name(path.name))
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _faults.checkpoint("shard-tmp")
        _write_atomic(checksum_path(path), f"{digest}  {path.name}\n".encode())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify_checksum(path: Path) -> str:
    """``"ok"``, ``"mismatch"`` (the bytes changed since the shard was written) or
    ``"absent"`` (no checksum file: written by mcland 0.5.0 or earlier) for the shard at
    ``path``."""
    try:
        text = checksum_path(path).read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return "absent"
    expected = text.split(maxsplit=1)[0] if text.strip() else ""
    return "ok" if expected == file_sha256(path) else "mismatch"


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    """Write ``run.json`` atomically (temporary file, then rename)."""
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
    _write_atomic(run_dir / MANIFEST, data, "manifest-tmp")


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    """The manifest of a run directory, or MclandError if there is none."""
    path = Path(run_dir) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MclandError(f"{run_dir} is not an mcland run directory (no {MANIFEST})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise MclandError(f"cannot read {path}: {exc}") from None


def load(
    run_dir: str | Path,
    columns: list[str] | None = None,
    filters: Any = None,
    verify: str = "error",
) -> pd.DataFrame:
    """Load the records of a run directory as a DataFrame, sorted by ``sample_id`` (a
    stable sort: a dynamics run's rows of one point stay in delta or eps order; a classify
    run's rows are in input order).

    Parameters
    ----------
    run_dir : path
        Directory written by ``mcland sample``, ``classify`` or ``dynamics`` (their schemas:
        :mod:`mcland.kinds`).
    columns : list of str, optional
        Subset of columns to read (column pushdown).
    filters : optional
        A pyarrow expression or DNF list such as ``[("H", "==", 3)]`` (predicate pushdown).
    verify : {"error", "skip", "off"}
        Every shard's bytes are checked against its checksum file first (one extra read).
        ``"error"`` (default): a shard that fails raises MclandError naming it; ``"skip"``:
        it is left out with a RuntimeWarning; ``"off"``: no check.  Shards without a
        checksum file (mcland 0.5.0) are read unverified.

    Returns
    -------
    pandas.DataFrame
        One row per record; type columns are categoricals; list columns hold NumPy arrays.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    files = sorted(run_dir.glob(SHARD_GLOB))
    if verify not in ("error", "skip", "off"):
        raise MclandError(f"verify must be 'error', 'skip' or 'off', got {verify!r}")
    if verify != "off":
        bad = [x for x in files if verify_checksum(x) == "mismatch"]
        if bad and verify == "error":
            raise MclandError(
                f"{run_dir}: {', '.join(x.name for x in bad)} fail(s) the checksum check "
                "(the bytes changed after the write); rerun `mcland sample` on the directory "
                "to recompute, or load with verify='skip'"
            )
        for x in bad:
            warnings.warn(f"{x}: fails its checksum check, left out", RuntimeWarning, stacklevel=2)
        files = [x for x in files if x not in bad]
    from mcland.kinds import shard_schema

    schema = shard_schema(manifest)
    if not files:
        return schema.empty_table().to_pandas()
    dataset = ds.dataset([str(x) for x in files], format="parquet", schema=schema)
    expr = pq.filters_to_expression(filters) if isinstance(filters, list) else filters
    table = dataset.to_table(columns=columns, filter=expr)
    if "sample_id" in table.column_names:
        table = table.sort_by("sample_id")
    return table.to_pandas()
