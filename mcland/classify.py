"""``classify``: classify many given points (trained networks, a finder's output) of one data set.

The points are analysed by the sampler's own kernel (:func:`mcland._kernels.classify.analyze`,
driven by the nogil batch loop :func:`mcland._kernels.given.classify_range` in worker
threads), so a given point gets exactly the record a drawn point would, in the columns of
:data:`mcland.storage.SCHEMA` that apply to it (the drawn-only ones are null), plus:

* ``row``: the input's index, or the values of a key column the user names;
* ``nearest_critical_value``, ``nearest_critical_index``, ``nearest_critical_distance``:
  the enumerated critical value closest to the loss, its index in the ascending list
  ``critical_values`` and the distance in units of ``loss_tol`` (for every point, critical
  or not: a non-critical point learns what it is near, and a large distance says it is near
  none);
* with ``refine=True`` (every point with ``grad_rel`` above :data:`REFINE_ABOVE` is moved,
  including points critical within ``grad_rtol`` whose Hessian still carries the
  perturbation): ``input_loss``, ``input_grad_rel`` of the point as given,
  ``refine_distance`` (``||w_refined - w||``), ``refine_distance_rel`` (over ``||w||``),
  ``refine_converged``; the record columns then describe the refined point.

The refinement (:func:`refine_point`) moves a non-critical point to a critical point
nearby by Gauss-Newton on the gradient as residual, with the Hessian as its exact Jacobian.
The critical sets are manifolds, so the Hessian is singular on them and nearly singular
beside them, along their flat directions (the layer symmetries ``W_h -> A W_h``,
``W_{h+1} -> W_{h+1} A^{-1}`` among them).  Minimum-norm steps ``-H^+ g`` with the small
singular values cut (``GN_RCOND``) have no component along those directions, so from a point
at distance ``delta`` of the manifold they move by about ``delta``; Levenberg-Marquardt
(MINPACK, ``scipy.optimize.least_squares(method="lm")``) then drives the gradient to
rounding level.  Levenberg-Marquardt from the point as given, whose first steps can drift
far along the flat directions, is run too and kept when it is the closer critical point or
the only one (measured in docs/classify.md).  The layout of POINTS files is in
docs/classify.md.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from math import comb
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from mcland import storage
from mcland._blas import one_blas_thread
from mcland._kernels import fields as f
from mcland._kernels import params as p
from mcland._kernels.bundles import RangeOutput
from mcland._kernels.given import classify_range
from mcland._kernels.hessian import assemble_hessian
from mcland.certify import DEFAULT_REL, balance_rows, certify_rows
from mcland.errors import MclandError
from mcland.pipeline import thread_pool
from mcland.point import _check_magnitude, _check_weights, split_layers
from mcland.problem import Problem
from mcland.ragged import Ragged
from mcland.tolerances import EPS, Tolerances

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
REFINE_ABOVE = 1e-12  # refine moves points with grad_rel above this (exact points reach ~1e-15)
# refine_point: the Gauss-Newton steps cut singular values below this times the largest
GN_RCOND = 1e-10
GN_HALVINGS = 30  # refine_point: a Gauss-Newton step is halved at most this often
MAX_DY_NEAREST = 20  # beyond, the 2**d_y critical values are not enumerated for the nearest one
_EXTRA: tuple[tuple[str, pa.DataType, str], ...] = (
    ("nearest_critical_value", pa.float64(), "the enumerated critical value nearest to `loss` (null when `d_y > 20`)"),
    ("nearest_critical_index", pa.int32(), "its index in the ascending list of critical values (0-based)"),
    ("nearest_critical_distance", pa.float64(), "`|loss − nearest_critical_value| / loss_tol`: ≲ 1 at a critical value, large far from every one"),
    ("rebalanced", pa.bool_(), "the layers were rescaled by powers of two, `W_h → 2^{−k_h} W_h` with `Σ k_h = 0`, before the analysis, because their norms differ by `2^8` or more and the rescaled point is critical: an exact symmetry of `L` (same loss bit for bit, same `S`, type and inertia by Sylvester's law), so the spectrum is not dominated by the largest layer; the gradient and eigenvalue columns describe the rescaled point (docs/classify.md)"),
    ("input_loss", pa.float64(), "with `refine`: `L` of the point as given"),
    ("input_grad_rel", pa.float64(), "with `refine`: `grad_rel` of the point as given"),
    ("refine_distance", pa.float64(), "with `refine`: `‖w_refined − w‖` (flat weights; 0 for a point with `grad_rel ≤ 1e-12`, left as it is)"),
    ("refine_distance_rel", pa.float64(), "with `refine`: `refine_distance / ‖w‖`"),
    ("refine_converged", pa.bool_(), "with `refine`: the refined point is critical (`grad_rel ≤ grad_rtol`); the record columns describe it"),
    ("decided_by", pa.string(), "how `exact_type` was decided (docs/certify.md): `float64` (the numeric and theory types agree outside the ambiguous band), `exact` (exact sign of `vᵀ∇²L v` along a float direction, in integer arithmetic on the stored floats), `exact_inertia` (exact PSD test of the rational Hessian), `undecided`; null for non-critical points"),
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
)  # fmt: skip

PointsData = tuple[Ragged, Ragged] | list[list[np.ndarray]]  # as read, before the checks
_B = re.compile(r"b(\d+)")
_W = re.compile(r"W(\d+)")
_BIAS_WHY = (
    "mcland classifies bias-free linear networks W_H ... W_1 x (the theory of "
    "arXiv:2107.13289 has no biases); train with bias=False, or append a constant 1 row "
    "to X to absorb the first layer's bias"
)


def record_schema(key_type: pa.DataType | None = None) -> pa.Schema:
    """The columns of a classify record: ``row`` (of type ``key_type``), the sampler's
    columns that apply (:data:`mcland.storage.SCHEMA` without ``sample_id`` and ``seed``;
    the drawn-only ones nullable) and the columns of the module docstring."""
    key_type = pa.int64() if key_type is None else key_type
    fields = [pa.field("row", key_type, True, {"description": "the input's index, or its key"})]
    for fl in storage.SCHEMA:
        if fl.name in NOT_APPLICABLE:
            continue
        fields.append(fl.with_nullable(True) if fl.name in DRAWN_ONLY else fl)
    for name, typ, desc in _EXTRA:
        fields.append(pa.field(name, typ, True, {"description": desc}))
    return pa.schema(fields)


@dataclass
class Points:
    """Given points, checked against the data.

    Attributes
    ----------
    dims : Ragged of int64
        Architecture ``(d_0, ..., d_H)`` of each point (``dims[t]``, a (H+1,) view).
    w : Ragged of float64
        Flat layers of each point (``W_1 ... W_H`` row-major, concatenated; ``w[t]``, a
        (N,) view).
    keys : pyarrow.Array
        The ``row`` column: the index or the user's key.
    source_sha256 : str or None
        SHA-256 of the POINTS file (None for in-memory points and folders).
    """

    dims: Ragged
    w: Ragged
    keys: pa.Array
    source_sha256: str | None = None

    def take(self, ids: np.ndarray) -> Points:
        """The points ``ids`` (in that order), without ``source_sha256``."""
        ids = np.asarray(ids, np.int64)
        return Points(self.dims.take(ids), self.w.take(ids), self.keys.take(pa.array(ids)))


def layer_sizes(dims: Ragged) -> Ragged:
    """The number of entries ``d_h d_{h-1}`` of every layer of every point, (H,) per point."""
    prod = dims.flat[1:] * dims.flat[:-1]  # consecutive entries, across points too
    keep = np.ones(prod.size, bool)
    keep[dims.off[1:-1] - 1] = False  # (last of point t, first of point t + 1)
    return Ragged(prod[keep], dims.off - np.arange(dims.off.size))


def point_sizes(dims: Ragged) -> np.ndarray:
    """(n,) int64: the number of weights ``N = sum_h d_h d_{h-1}`` of every point."""
    sizes = layer_sizes(dims)
    return np.add.reduceat(sizes.flat, sizes.off[:-1])


def layer_norms(dims: Ragged, w: Ragged) -> tuple[Ragged, np.ndarray]:
    """Frobenius norm of every layer of every point (a Ragged of (H,) per point; may
    overflow to inf) and the layers' start offsets in ``w.flat`` (sum of H,)."""
    sizes = layer_sizes(dims)
    starts = np.zeros(sizes.flat.size, np.int64)
    np.cumsum(sizes.flat[:-1], out=starts[1:])
    with np.errstate(over="ignore"):
        norms = np.sqrt(np.add.reduceat(w.flat * w.flat, starts))
    return Ragged(norms, sizes.off), starts


# ---------------------------------------------------------------------- reading points


def _matrices(flat: np.ndarray, dims: np.ndarray, where: str) -> list[np.ndarray]:
    need = int(np.sum(dims[1:] * dims[:-1]))
    if flat.size != need:
        raise MclandError(f"{where}: {flat.size} weights but dims {dims.tolist()} need {need}")
    return split_layers(flat, dims)


def _dims_of(value: object, where: str) -> np.ndarray:
    dims = np.asarray(value)
    if dims.ndim != 1 or dims.size < 3 or dims.dtype.kind not in "iu" or np.any(dims < 1):
        raise MclandError(
            f"{where}: dims must be a list of H + 1 >= 3 positive integers, got {value!r}"
        )
    return dims.astype(np.int64)


def _read_parquet(path: Path, key: str | None) -> tuple[PointsData, pa.Array]:
    try:
        table = ds.dataset(str(path), format="parquet").to_table()
    except (pa.ArrowInvalid, OSError, ValueError) as exc:
        raise MclandError(
            f"{path}: not a readable Parquet file or dataset ({str(exc).splitlines()[0]})"
        ) from None
    names = table.column_names
    if biases := [c for c in names if _B.fullmatch(c)]:
        raise MclandError(f"{path}: has bias columns ({', '.join(biases)}): {_BIAS_WHY}")
    if "dims" not in names:
        raise MclandError(
            f"{path}: missing column dims (the architecture (d_0, ..., d_H) of each row)"
        )
    layers = sorted((int(m.group(1)), c) for c in names if (m := _W.fullmatch(c)))
    if "w" in names:
        cols = ["w"]
    elif layers:
        if [i for i, _ in layers] != list(range(1, len(layers) + 1)):
            raise MclandError(f"{path}: layer columns must be W1..WH without gaps, found {names}")
        cols = [c for _, c in layers]
    else:
        raise MclandError(f"{path}: no weight columns: need w (flat) or W1, W2, ... beside dims")
    if table.num_rows == 0:
        raise MclandError(f"{path}: no points (0 rows)")
    if key is None:
        keys = pa.array(np.arange(table.num_rows), pa.int64())
    elif key not in names:
        raise MclandError(f"{path}: no key column {key!r} (has: {', '.join(names)})")
    else:
        keys = table.column(key).combine_chunks()
    arrays = _parquet_arrays(table, cols)
    return (arrays if arrays is not None else _parquet_rows(path, table, cols)), keys


def _list_column(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The values (flattened) and per-row lengths of a list column without nulls in its
    values; null rows have length 0 and are marked by a length of -1.  None unless the
    column is a list of numbers."""
    col = table.column(name).combine_chunks()
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)):
        return None
    typ = col.type.value_type
    if not (pa.types.is_integer(typ) or pa.types.is_floating(typ)):
        return None
    values = col.flatten()
    if values.null_count:
        return None
    lengths = col.value_lengths().fill_null(-1).to_numpy().astype(np.int64)
    return values.to_numpy(zero_copy_only=False), lengths


def _parquet_arrays(table: pa.Table, cols: list[str]) -> tuple[Ragged, Ragged] | None:
    """Architectures and flat weights straight from the Arrow columns, when every row is
    well formed (else None: :func:`_parquet_rows` then names the first bad row)."""
    dims_col = _list_column(table, "dims")
    if dims_col is None or dims_col[0].dtype.kind not in "iu":
        return None
    values, lengths = dims_col
    if np.any(lengths < 3) or np.any(values < 1):
        return None
    dims = Ragged.from_lengths(values.astype(np.int64), lengths)
    sizes = layer_sizes(dims)
    depth = sizes.lengths
    need = point_sizes(dims)
    if cols == ["w"]:
        w_col = _list_column(table, "w")
        if w_col is None or np.any(w_col[1] != need):
            return None
        return dims, Ragged.from_lengths(w_col[0].astype(np.float64), w_col[1])
    if depth.max() > len(cols):
        return None
    w = Ragged.from_lengths(np.empty(int(need.sum())), need)
    per_layer = sizes.padded(len(cols))
    start = np.cumsum(per_layer, axis=1) - per_layer  # each layer's start inside its point
    for h, name in enumerate(cols):
        col = _list_column(table, name)
        if col is None:
            return None
        has = depth > h
        if np.any(col[1][has] != per_layer[has, h]) or np.any(col[1][~has] > 0):
            return None
        rows = np.flatnonzero(has)
        layer = Ragged.from_lengths(col[0], per_layer[rows, h])
        layer.place_into(w.flat, w.off[rows] + start[rows, h])
    return dims, w


def _parquet_rows(path: Path, table: pa.Table, cols: list[str]) -> list[list[np.ndarray]]:
    """The points of a Parquet table row by row, with messages naming the first bad row."""
    dims_col = table.column("dims").to_pylist()
    data = {c: table.column(c).to_pylist() for c in cols}
    points = []
    for i in range(table.num_rows):
        where = f"{path}: row {i}"
        if dims_col[i] is None:
            raise MclandError(f"{where}: dims is null")
        dims = _dims_of(dims_col[i], where)
        H = dims.size - 1
        values = [data[c][i] for c in cols]
        if cols == ["w"]:
            if values[0] is None:
                raise MclandError(f"{where}: w is null")
            flat = np.asarray(values[0], dtype=np.float64)
        else:
            if len(cols) < H or any(v is None for v in values[:H]):
                raise MclandError(f"{where}: dims say H = {H} layers but W1..W{H} are not all set")
            if any(v is not None and len(v) for v in values[H:]):
                raise MclandError(f"{where}: dims say H = {H} layers but W{H + 1} is set")
            flat = np.concatenate([np.asarray(v, dtype=np.float64) for v in values[:H]])
            sizes = [len(v) for v in values[:H]]
            for h, size in enumerate(sizes, start=1):
                if size != dims[h] * dims[h - 1]:
                    raise MclandError(
                        f"{where}: W{h} has {size} entries but dims make it "
                        f"{dims[h]} x {dims[h - 1]} = {dims[h] * dims[h - 1]}"
                    )
        points.append(_matrices(flat, dims, where))
    return points


def _read_npz_folder(path: Path, key: str | None) -> tuple[PointsData, pa.Array]:
    from mcland.cli import _read_weights
    from mcland.datasource import open_npz

    files = sorted(path.glob("*.npz"))
    points = []
    for file in files:
        with open_npz(file) as z:
            if biases := [k for k in z.files if _B.fullmatch(k)]:
                raise MclandError(f"{file}: has biases ({', '.join(biases)}): {_BIAS_WHY}")
        points.append(_read_weights(file))
    if key is None:
        keys = pa.array(np.arange(len(files)), pa.int64())
    elif key == "file":
        keys = pa.array([x.name for x in files], pa.string())
    else:
        raise MclandError(f"--key {key!r}: a folder of .npz files has only the key 'file'")
    return points, keys


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_points(
    points: Sequence[Sequence[np.ndarray]] | str | Path, problem: Problem, key: str | None = None
) -> Points:
    """Read and check the points (see :func:`classify`) against the data of ``problem``.

    Raises
    ------
    MclandError
        Unreadable file, missing column, biases, shapes that do not chain or do not match
        the data, NaN or infinite weights, products that overflow; the message names the
        row or file.
    """
    sha = None
    if isinstance(points, str | Path):
        path = Path(points)
        if not path.exists():
            raise MclandError(f"{path}: no such file or directory")
        if path.is_dir() and any(path.glob("*.npz")):
            read, keys = _read_npz_folder(path, key)
        elif path.suffix == ".npz":
            raise MclandError(f"{path}: one point: use `mcland inspect`, or a folder of .npz files")
        else:
            read, keys = _read_parquet(path, key)
            sha = _sha256(path) if path.is_file() else None
        label = str(path)
    else:
        if key is not None:
            raise MclandError("key names a column of a POINTS file; in-memory points have none")
        if isinstance(points, np.ndarray) or not isinstance(points, Sequence):
            raise MclandError("points must be a sequence of weight lists [W_1, ..., W_H] or a path")
        read = list(points)
        keys = pa.array(np.arange(len(read)), pa.int64())
        label = "points"
    if not len(read[0] if isinstance(read, tuple) else read):
        raise MclandError(f"{label}: no points")
    arrays = read if isinstance(read, tuple) else _from_lists(read)
    if arrays is not None and _passes(*arrays, problem):
        return Points(*arrays, keys, sha)
    if isinstance(read, tuple):  # well-formed arrays that fail a check against the data
        read = [split_layers(w, d) for d, w in zip(*read, strict=True)]
    dims_list, w_list = [], []  # the point-by-point checks, whose messages name the point
    for i, weights in enumerate(read):
        try:
            dims, w = _check_weights(weights, problem.d_x, problem.d_y)
            _check_magnitude(dims, w, problem)
        except MclandError as exc:
            raise MclandError(f"{label}: point {keys[i].as_py()!r}: {exc}") from None
        dims_list.append(dims)
        w_list.append(w)
    return Points(Ragged.from_arrays(dims_list, np.int64), Ragged.from_arrays(w_list), keys, sha)


def _from_lists(mats: list) -> tuple[Ragged, Ragged] | None:
    """Architectures and flat weights of weight lists whose matrices are all float64 and
    chain (checked once per distinct list of shapes), else None."""
    kinds: dict[tuple, int] = {}
    kind = np.empty(len(mats), np.int64)
    layers = []
    try:
        for t, weights in enumerate(mats):
            if isinstance(weights, np.ndarray):
                return None
            sig = tuple([(W.shape, W.dtype) for W in weights])
            kind[t] = kinds.setdefault(sig, len(kinds))
            layers.extend(weights)
    except (AttributeError, TypeError):
        return None
    arch = []
    for sig in kinds:
        shapes = [shape for shape, _ in sig]
        if (
            len(sig) < 2
            or any(dtype != np.float64 for _, dtype in sig)
            or any(len(shape) != 2 or 0 in shape for shape in shapes)
            or any(shapes[h][1] != shapes[h - 1][0] for h in range(1, len(shapes)))
        ):
            return None
        arch.append([shapes[0][1], *(shape[0] for shape in shapes)])
    arch_dims = Ragged.from_arrays([np.array(a, np.int64) for a in arch], np.int64)
    dims = arch_dims.take(kind)
    w = Ragged.from_lengths(np.concatenate(layers, axis=None), point_sizes(dims))
    return dims, w


def _passes(dims: Ragged, w: Ragged, problem: Problem) -> bool:
    """The checks of :func:`mcland.point._check_weights` against the data and of
    ``_check_magnitude``, on all points at once: true if every point passes (else the
    caller checks point by point, and its message names the first bad one)."""
    if np.any(dims.flat[dims.off[:-1]] != problem.d_x):
        return False
    if np.any(dims.flat[dims.off[1:] - 1] != problem.d_y):
        return False
    if not np.all(np.isfinite(w.flat)):
        return False
    norms, _ = layer_norms(dims, w)
    with np.errstate(over="ignore"):
        scale = np.multiply.reduceat(norms.flat, norms.off[:-1]) ** 2 * np.linalg.norm(problem.Sxx)
        sq = np.add.reduceat(norms.flat * norms.flat, norms.off[:-1])
    return bool(np.all(np.isfinite(scale)) and np.all(np.isfinite(sq)))


# ---------------------------------------------------------------------- analysis

REBALANCE_FROM = 8  # layers are rebalanced when their norms differ by 2**8 or more


def rebalance(dims: Sequence[np.ndarray], w: Sequence[np.ndarray]) -> tuple[Ragged, np.ndarray]:
    """The points with their layers rescaled by powers of two to comparable norms
    (:func:`mcland.certify.layer_balance`) where the largest and smallest nonzero layer
    norms differ by ``2**REBALANCE_FROM`` or more, and which were rescaled (n,) bool.

    ``dims`` and ``w`` are the architectures and flat weights (:class:`mcland.ragged.Ragged`
    or lists of arrays).  ``W_h -> 2**-k_h W_h`` with ``sum k_h = 0`` leaves every product
    ``W_{H:1}`` (and so the loss) unchanged bit for bit, and is a fixed diagonal linear map
    of the parameters, so the Hessians are congruent: same inertia, same type, same ``S``.
    On a badly scaled factorisation (one layer ``c`` times larger, the next ``c`` times
    smaller) the Hessian's norm grows like ``c**2`` and its float64 floor with it, hiding
    negative eigenvalues that the rescaled point shows; the ground-truth set's badly scaled
    points (docs/groundtruth.md) are where this was measured (tests/test_rebalance.py).
    """
    dims, w = Ragged.from_arrays(dims, np.int64), Ragged.from_arrays(w)
    n = len(w)
    moved = np.zeros(n, bool)
    if not n:
        return w, moved
    # every layer's figures at once (norm, largest and smallest nonzero |entry|)
    norms, starts = layer_norms(dims, w)
    absw = np.abs(w.flat)
    big = np.maximum.reduceat(absw, starts)
    small = np.minimum.reduceat(np.where(absw > 0, absw, np.inf), starts)
    depth, first = norms.lengths, norms.off[:-1]  # each point's first layer
    largest = np.maximum.reduceat(norms.flat, first)
    smallest = np.minimum.reduceat(np.where(norms.flat > 0, norms.flat, np.inf), first)
    count = np.add.reduceat((norms.flat > 0).astype(np.int64), first)
    spread = (count >= 2) & (largest >= smallest * 2.0**REBALANCE_FROM)
    if not spread.any():
        return w, moved
    k_layer = np.zeros(norms.flat.size, np.int64)
    for H in np.unique(depth[spread]):  # per depth, vectorised
        rows = np.flatnonzero(spread & (depth == H))
        layers = first[rows][:, None] + np.arange(H)[None, :]
        k_layer[layers] = balance_rows(norms.flat[layers], big[layers], small[layers])
    moved = np.logical_or.reduceat(k_layer != 0, first)
    sizes = np.diff(np.append(starts, w.flat.size))
    scale = np.repeat(np.ldexp(1.0, -k_layer), sizes)  # exact: powers of two
    return Ragged(w.flat * scale, w.off), moved


def analyze_points(
    dims: Sequence[np.ndarray],
    w: Sequence[np.ndarray],
    problem: Problem,
    tol: Tolerances,
    threads: int | None = None,
) -> storage.BatchOutput:
    """The kernel's outputs for the given points (architectures ``dims`` and flat weights
    ``w``: :class:`mcland.ragged.Ragged` or lists of arrays), in
    :class:`mcland.storage.BatchOutput`, with the draw facts that apply filled in, computed
    in ``threads`` worker threads."""
    dims, w = Ragged.from_arrays(dims, np.int64), Ragged.from_arrays(w)
    n = len(dims)
    depth = dims.lengths - 1
    h_max = int(depth.max())
    n_max = int(w.lengths.max())
    out = storage.BatchOutput.allocate(n, h_max, problem.d_y, n_max, True, False, True)
    view = RangeOutput(**{name: getattr(out, name) for name in RangeOutput._fields})
    flags = np.int64(f.SPECTRUM)
    args = (dims.flat, dims.off, w.flat, w.off, problem.moments, tol.thresholds, flags, view)
    with one_blas_thread(), thread_pool(threads) as pool:
        if pool is None:
            classify_range(*args, 0, n, 1)
        else:
            k = min(n, pool.tasks)
            for task in [pool.submit(classify_range, *args, j, n, k) for j in range(k)]:
                task.result()
    # the draw facts that apply, for all points at once
    di = {name: i for i, name in enumerate(p.DRAW_INT_FIELDS)}
    dfl = {name: i for i, name in enumerate(p.DRAW_FLOAT_FIELDS)}
    dims.pad_into(out.dims)
    r = np.minimum.reduceat(dims.flat, dims.off[:-1])
    out.draw_int[:, di["H"]] = depth
    out.draw_int[:, di["d_x"]] = dims.flat[dims.off[:-1]]
    out.draw_int[:, di["d_y"]] = dims.flat[dims.off[1:] - 1]
    out.draw_int[:, di["r"]] = r
    out.draw_int[:, di["N"]] = w.lengths
    out.draw_int[:, di["draw_status"]] = p.STATUS_OK
    out.draw_float[:, dfl["min_rel_gap"]] = problem.min_rel_gap
    out.draw_float[:, dfl["sxx_rcond"]] = problem.sxx_rcond
    w.pad_into(out.weights)
    width = out.critical_values.shape[1]
    out.critical_values[:] = np.nan  # null unless the architecture's values fit the width
    for rank in np.unique(r) if width else ():
        if sum(comb(problem.d_y, k) for k in range(min(int(rank), problem.d_y) + 1)) <= width:
            values = problem.critical_values(int(rank))
            out.critical_values[np.flatnonzero(r == rank), : values.size] = values
    return out


def _analyze(
    dims: Sequence[np.ndarray],
    w: Sequence[np.ndarray],
    problem: Problem,
    tol: Tolerances,
    threads: int | None,
) -> tuple[storage.BatchOutput, np.ndarray, Ragged]:
    """:func:`analyze_points`, with the badly scaled points analysed at their rebalanced
    form (:func:`rebalance`) when that form is critical; returns the outputs, which rows
    describe a rebalanced point (n,) bool, and the points the rows describe.

    Two cases get the record of the point as given instead:

    * the rebalanced form is not critical.  Criticality is judged relative to the
      gradient's scale, which is not invariant under the rescaling (a near-critical point
      with a layer of norm 1e-30 can have a large relative gradient once that layer is
      brought to norm 1);
    * the rebalanced analysis leaves an eigenvalue in the uncertain band (between
      ``-tol_neg`` and ``-tol_zero``: ``n_neg + n_zero + n_pos < N``) while the analysis
      as given, critical too, resolves every eigenvalue with at least as many negative and
      as many positive ones.  The rescaling is a congruence: it can shrink an eigenvalue
      whose eigenvector couples two layers scaled in opposite directions (by
      ``2**(k_a + k_b)``) while the floor barely moves, so it does not always help.
      Eigenvalues beyond the floors are signed correctly in either analysis, so the as-given
      counts are then the better-resolved reading of the same inertia (sample 32436 of
      ``runs/linnerud.toml``, docs/classify.md#speed).

    The ``weights`` column always holds the point as given.
    """
    dims, w = Ragged.from_arrays(dims, np.int64), Ragged.from_arrays(w)
    balanced, moved = rebalance(dims, w)
    out = analyze_points(dims, balanced, problem, tol, threads)
    if not moved.any():
        return out, moved, w
    ri = out.row_int
    unsure = _counted(ri) < w.lengths
    back = np.flatnonzero(moved & ((ri[:, f.I_IS_CRITICAL] != 1) | unsure))
    if back.size:
        sub = analyze_points(dims.take(back), w.take(back), problem, tol, threads)
        sr = sub.row_int
        keep = (ri[back, f.I_IS_CRITICAL] == 1) & ~(  # rebalanced and critical, unless ...
            (sr[:, f.I_IS_CRITICAL] == 1)
            & (_counted(sr) == w.lengths[back])
            & (sr[:, f.I_N_NEG] >= ri[back, f.I_N_NEG])
            & (sr[:, f.I_N_POS] >= ri[back, f.I_N_POS])
        )  # ... the analysis as given resolves the inertia better
        back, take = back[~keep], np.flatnonzero(~keep)
        for name in storage.BatchOutput.__dataclass_fields__:
            src, dst = getattr(sub, name), getattr(out, name)
            dst[back, : src.shape[1]] = src[take]
        moved[back] = False
    rows = np.flatnonzero(moved)
    out.weights[rows] = w.take(rows).padded(out.weights.shape[1])
    analysed = Ragged(np.where(np.repeat(moved, w.lengths), balanced.flat, w.flat), w.off)
    return out, moved, analysed


def _counted(row_int: np.ndarray) -> np.ndarray:
    """``n_neg + n_zero + n_pos`` of each row: less than ``N`` when an eigenvalue fell in
    the uncertain band between ``-tol_neg`` and ``-tol_zero``."""
    return row_int[:, f.I_N_NEG] + row_int[:, f.I_N_ZERO] + row_int[:, f.I_N_POS]


def nearest_index(values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``np.argmin(np.abs(values - x_i))`` for every ``x_i`` (the first index of the nearest
    value; 0 for NaN), for ascending ``values`` (m,) and ``x`` (k,), by bisection."""
    m = values.size
    i = np.searchsorted(values, x)
    lo, hi = np.clip(i - 1, 0, m - 1), np.clip(i, 0, m - 1)
    pick = np.where(np.abs(values[hi] - x) < np.abs(values[lo] - x), hi, lo)
    first = np.searchsorted(values, values[pick])  # the first of equal values, as argmin
    return np.where(np.isnan(x), 0, first)


def _nearest(
    out: storage.BatchOutput, dims_list: list[np.ndarray], problem: Problem
) -> dict[str, pa.Array]:
    n = len(dims_list)
    value = np.full(n, np.nan)
    index = np.full(n, -1, np.int64)
    loss = out.row_float[:, f.F_LOSS]
    if problem.d_y <= MAX_DY_NEAREST and n:
        r_all = out.draw_int[:, p.DRAW_INT_FIELDS.index("r")]
        for r in np.unique(r_all):  # per bottleneck, all points at once
            rows = np.flatnonzero(r_all == r)
            cv = problem.critical_values(int(r))
            index[rows] = nearest_index(cv, loss[rows])
            value[rows] = cv[index[rows]]
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = np.abs(loss - value) / out.row_float[:, f.F_LOSS_TOL]
    missing = index < 0
    return {
        "nearest_critical_value": pa.array(value, pa.float64(), mask=missing),
        "nearest_critical_index": pa.array(index, pa.int32(), mask=missing),
        "nearest_critical_distance": pa.array(dist, pa.float64(), mask=missing),
    }


# ---------------------------------------------------------------------- refinement


def gradient(dims: np.ndarray, w: np.ndarray, problem: Problem) -> np.ndarray:
    """Flat gradient of ``L(w) = ||W_H ... W_1 X - Y||_F^2`` at the flat point ``w`` (N,):
    ``dL/dW_h = 2 W_{H:h+1}^T (W_{H:1} Sxx - Syx) W_{h-1:1}^T``."""
    return _gradient_of(*_partial_products(dims, w), problem)


def _partial_products(dims: np.ndarray, w: np.ndarray) -> tuple[list, list]:
    """``pre[h] = W_{h:1}`` and ``suf[h] = W_{H:h+1}`` for ``h = 0 ... H`` (identities at
    the ends) at the flat point ``w``."""
    mats = split_layers(w, dims)
    H = len(mats)
    pre = [np.eye(int(dims[0]))]
    for W in mats:
        pre.append(W @ pre[-1])
    suf = [np.eye(int(dims[H]))] * (H + 1)
    for h in range(H - 1, -1, -1):
        suf[h] = suf[h + 1] @ mats[h]
    return pre, suf


def _gradient_of(pre: list, suf: list, problem: Problem) -> np.ndarray:
    """:func:`gradient` from the partial products (:func:`_partial_products`)."""
    H = len(pre) - 1
    R = pre[H] @ problem.Sxx - problem.Syx
    return np.concatenate([(2.0 * suf[h + 1].T @ R @ pre[h].T).ravel() for h in range(H)])


def hessian(dims: np.ndarray, w: np.ndarray, problem: Problem) -> np.ndarray:
    """The (symmetric, N x N) Hessian of ``L`` at the flat point ``w``."""
    upper = np.triu(assemble_hessian(dims, w, problem.Sxx, problem.Syx))
    return upper + np.triu(upper, 1).T


def _gradient_and_rel(
    dims: np.ndarray, w: np.ndarray, problem: Problem
) -> tuple[np.ndarray, float]:
    """:func:`gradient` at the flat point ``w`` and ``||g|| / g_scale``: the formula of
    :func:`mcland._kernels.hessian.gradient_scale` with the norms of the partial products
    themselves, in the original coordinates.  It is not the kernel's ``grad_rel`` (which
    differed from it by up to 1e3 on the refinement table's points), so refinement accepts
    only rounding-level values (:data:`REFINE_ABOVE`), far below ``grad_rtol``."""
    pre, suf = _partial_products(dims, w)
    g = _gradient_of(pre, suf, problem)
    H = len(pre) - 1
    base = np.linalg.norm(pre[H]) * np.linalg.norm(problem.Sxx) + np.linalg.norm(problem.Syx)
    scale = sum(2.0 * np.linalg.norm(suf[h + 1]) * np.linalg.norm(pre[h]) for h in range(H)) * base
    with np.errstate(all="ignore"):
        return g, float(np.linalg.norm(g) / scale)


def _gauss_newton(dims: np.ndarray, w: np.ndarray, problem: Problem, max_steps: int) -> np.ndarray:
    """Minimum-norm Gauss-Newton steps ``-H^+ g`` on the gradient from ``w`` (``H^+`` by
    ``numpy.linalg.lstsq`` with ``rcond = GN_RCOND``), each halved until ``||g||``
    decreases; stops when no halving decreases it, at ``||g|| <= EPS * g_scale`` or after
    ``max_steps`` gradient evaluations.  Returns the last accepted iterate."""
    x = w
    g, rel = _gradient_and_rel(dims, x, problem)
    norm = float(np.linalg.norm(g))
    used = 1
    while used < max_steps and np.isfinite(norm) and rel > EPS:
        step = np.linalg.lstsq(hessian(dims, x, problem), g, rcond=GN_RCOND)[0]
        t, accepted = 1.0, False
        for _ in range(GN_HALVINGS):
            if used >= max_steps:
                break
            y = x - t * step
            gy, rel_y = _gradient_and_rel(dims, y, problem)
            used += 1
            ny = float(np.linalg.norm(gy))
            if ny < norm:  # (False for NaN)
                x, g, norm, rel, accepted = y, gy, ny, rel_y, True
                break
            t /= 2.0
        if not accepted:
            break
    return x


def _finite_point(dims: np.ndarray, x: np.ndarray, problem: Problem) -> bool:
    """``x`` is finite and its products do not overflow (:func:`mcland.point._check_magnitude`)."""
    if not np.all(np.isfinite(x)):
        return False
    try:
        _check_magnitude(dims, x, problem)
    except MclandError:
        return False
    return True


def refine_point(
    dims: np.ndarray,
    w: np.ndarray,
    problem: Problem,
    max_steps: int = 200,
) -> np.ndarray:
    """A critical point near ``w``: minimum-norm Gauss-Newton, polished by
    Levenberg-Marquardt, or Levenberg-Marquardt alone if closer (module docstring).

    Candidate 1: minimum-norm Gauss-Newton steps ``-H^+ g`` from ``w`` (the Hessian ``H`` as
    the gradient's Jacobian, its singular values below ``GN_RCOND`` times the largest cut;
    each step halved until ``||g||`` decreases), then Levenberg-Marquardt from there to
    drive the gradient to rounding level.  A minimum-norm step has no component along the
    (nearly) flat directions of the critical set, the layer symmetries among them, so it
    does not drift along them.  Candidate 2: Levenberg-Marquardt from ``w`` (MINPACK,
    ``scipy.optimize.least_squares(method="lm")``), the earlier method, whose first steps
    can be large and drift along the flat directions.  Candidate 1 is returned when its
    ``grad_rel`` (the kernel's ``g_scale``) is at most :data:`REFINE_ABOVE` and it is no
    farther from ``w`` than candidate 2, or candidate 2 is not that critical; else
    candidate 2.

    Parameters
    ----------
    dims : ndarray (H+1,) int64
    w : ndarray (N,)
        Flat layers of the starting point.
    problem : Problem
    max_steps : int
        Budget of gradient evaluations of each of the three iterations.

    Returns
    -------
    ndarray (N,)
        The chosen point (the caller judges criticality by ``grad_rtol``); an iteration that
        fails or leaves the finite range gives back its starting point, so ``w`` itself when
        both fail.
    """
    with np.errstate(all="ignore"):
        try:
            x = _gauss_newton(dims, w, problem, max_steps)
        except (ValueError, np.linalg.LinAlgError):
            x = w
        x = _lm(dims, x, problem, max_steps)
        y = _lm(dims, w, problem, max_steps)
        if _gradient_and_rel(dims, x, problem)[1] <= REFINE_ABOVE and (
            _gradient_and_rel(dims, y, problem)[1] > REFINE_ABOVE
            or np.linalg.norm(x - w) <= np.linalg.norm(y - w)
        ):
            return x
        return y


def _lm(dims: np.ndarray, w: np.ndarray, problem: Problem, max_steps: int) -> np.ndarray:
    """The last Levenberg-Marquardt iterate from ``w`` (``w`` on failure or overflow)."""
    from scipy.optimize import least_squares

    try:
        res = least_squares(
            lambda x: gradient(dims, x, problem),
            w,
            jac=lambda x: hessian(dims, x, problem),
            method="lm",
            xtol=1e-15,
            ftol=1e-15,
            gtol=1e-15,
            max_nfev=max_steps,
        )
    except (ValueError, np.linalg.LinAlgError):
        return w
    x = np.asarray(res.x, dtype=np.float64)
    return x if _finite_point(dims, x, problem) else w


# ---------------------------------------------------------------------- the public API


def check_stability_rel(value: float | None) -> float:
    """``value`` as the perturbation size of the stability columns (None: the default,
    :data:`mcland.certify.DEFAULT_REL`), or MclandError unless it is in [0, 1)."""
    rel = DEFAULT_REL if value is None else float(value)
    if not (np.isfinite(rel) and 0.0 <= rel < 1.0):
        raise MclandError(f"stability_rel must be in [0, 1), got {value}")
    return rel


def classify_table(
    points: Sequence[Sequence[np.ndarray]] | str | Path,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    refine: bool = False,
    key: str | None = None,
    tolerances: Tolerances | None = None,
    threads: int | None = None,
    stability_rel: float = DEFAULT_REL,
) -> pa.Table:
    """:func:`classify` as an Arrow table in :func:`record_schema`."""
    stability_rel = check_stability_rel(stability_rel)
    problem = Problem.from_data(X, Y)
    given = read_points(points, problem, key)
    return classify_given(
        given, X, Y, problem, refine=refine, tolerances=tolerances, threads=threads,
        stability_rel=stability_rel,
    )  # fmt: skip


def classify_given(
    given: Points,
    X: np.ndarray,
    Y: np.ndarray,
    problem: Problem,
    *,
    refine: bool = False,
    tolerances: Tolerances | None = None,
    threads: int | None = None,
    stability_rel: float = DEFAULT_REL,
) -> pa.Table:
    """:func:`classify_table` for points already read and checked against ``problem``
    (:func:`read_points`, ``problem = Problem.from_data(X, Y)``), e.g. a run directory's
    batch (:class:`mcland.classify_run.ClassifyJob`)."""
    tol = tolerances or Tolerances()
    out, moved_layers, analysed = _analyze(given.dims, given.w, problem, tol, threads)
    extra: dict[str, pa.Array] = {}
    n = len(given.w)
    moved = None
    if refine:
        input_loss = out.row_float[:, f.F_LOSS].copy()
        input_grad = out.row_float[:, f.F_GRAD_REL].copy()
        exact = input_grad <= REFINE_ABOVE
        refined = Ragged.from_arrays(
            [
                w if exact[t] else refine_point(given.dims[t], w, problem)
                for t, w in enumerate(given.w)
            ]
        )
        moved = np.array([np.linalg.norm(a - b) for a, b in zip(refined, given.w, strict=True)])
        scale = np.array([np.linalg.norm(w) for w in given.w])
        if not exact.all():
            out, moved_layers, analysed = _analyze(given.dims, refined, problem, tol, threads)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(scale > 0, moved / scale, np.where(moved > 0, np.inf, 0.0))
        extra = {
            "input_loss": pa.array(input_loss, pa.float64()),
            "input_grad_rel": pa.array(input_grad, pa.float64()),
            "refine_distance": pa.array(moved, pa.float64()),
            "refine_distance_rel": pa.array(rel, pa.float64()),
            "refine_converged": pa.array(out.row_int[:, f.I_IS_CRITICAL] == 1, pa.bool_()),
        }
    # a rebalanced row's figures are the rescaled point's: certify that point (the same type;
    # componentwise relative perturbations commute with the rescaling)
    cert = certify_rows(
        given.dims, analysed, np.asarray(X, np.float64), np.asarray(Y, np.float64), problem,
        out.row_float, out.row_int, out.spectrum_w if out.spectrum_w.shape[1] else None,
        stability_rel, moved, tol.grad_rtol,
    )  # fmt: skip
    for name, typ, _ in _EXTRA:
        if name in cert:
            extra[name] = pa.array(cert[name], typ)
    extra["rebalanced"] = pa.array(moved_layers, pa.bool_())
    records = storage.to_table(out, np.arange(n, dtype=np.int64), 0)
    extra.update(_nearest(out, given.dims, problem))
    schema = record_schema(given.keys.type)
    cols = []
    for fl in schema:
        if fl.name == "row":
            cols.append(given.keys)
        elif fl.name in DRAWN_ONLY:
            cols.append(pa.nulls(n, fl.type))
        elif fl.name in extra:
            cols.append(extra[fl.name])
        elif fl.name in records.column_names:
            cols.append(records.column(fl.name))
        else:
            cols.append(pa.nulls(n, fl.type))
    meta = {"refine": refine, "n": n, "stability_rel": stability_rel}
    if given.source_sha256 is not None:
        meta["points_sha256"] = given.source_sha256
    table = pa.Table.from_arrays(cols, schema=schema)
    return table.replace_schema_metadata({"mcland_classify": repr(meta)})


def classify(
    points: Sequence[Sequence[np.ndarray]] | str | Path,
    X: np.ndarray,
    Y: np.ndarray,
    refine: bool = False,
    key: str | None = None,
    *,
    tolerances: Tolerances | None = None,
    threads: int | None = None,
    stability_rel: float = DEFAULT_REL,
) -> pd.DataFrame:
    """Classify given points of the loss ``||W_H ... W_1 X - Y||_F^2``, in bulk.

    Parameters
    ----------
    points : sequence of weight lists, or path
        ``[[W_1, ..., W_H], ...]`` with ``W_h`` of shape ``(d_h, d_{h-1})`` (PyTorch's
        ``nn.Linear(d_{h-1}, d_h, bias=False).weight`` orientation); architectures may
        differ between points.  Or the path of a Parquet file or dataset with one point per
        row, or of a folder of ``.npz`` files holding ``W1 ... WH`` (docs/classify.md).
    X : ndarray (d_x, m)
        Inputs, samples as columns (``inputs.T`` for PyTorch's samples-as-rows batches).
    Y : ndarray (d_y, m)
        Targets, samples as columns.
    refine : bool
        Move each point with ``grad_rel > 1e-12`` to a critical point nearby first
        (Gauss-Newton and Levenberg-Marquardt on the gradient, see :func:`refine_point`)
        and classify that one; the point as given is described by ``input_loss``,
        ``input_grad_rel``, ``refine_distance``.
    key : str, optional
        Column of a POINTS Parquet file whose values go to ``row`` (``"file"`` for a folder
        of ``.npz`` files: the file names); default: the point's index in the input.
    tolerances : Tolerances, optional
        Classification tolerances (:class:`mcland.Tolerances`).
    threads : int, optional
        Worker threads (default: all cores this process may use); results do not depend on it.
    stability_rel : float
        Componentwise relative perturbation of weights and data for the ``stability``
        columns (default ``4 * 2**-52``, the rounding of the stored floats; e.g. ``1e-8``
        for training endpoints), see docs/certify.md.

    Returns
    -------
    pandas.DataFrame
        One row per point, in input order: ``row``, the record columns of ``sample`` that
        apply (docs/output-schema.md; ``recipe``, ``s_drawn``, ``kill_mask`` ... null), the
        nearest enumerated critical value (``nearest_critical_value``, ``_index``,
        ``_distance``, in ``loss_tol`` units), with ``refine`` the input's figures, and
        the two answers of docs/certify.md for critical points: the certified type of the
        floats as given (``exact_type``, ``decided_by``; the exact evaluation runs only on
        rows float64 leaves undecided or whose strict verdict the bound cannot prove
        stable) and its stability (``stability``, ``possible_types``, ``stability_scale``,
        ``stability_bound``, ``stability_method``).

    Raises
    ------
    MclandError
        Bad data (as :meth:`mcland.Problem.from_data`), an unreadable POINTS file, a
        missing column, biases, shapes that do not chain or do not match the data, NaN.

    Examples
    --------
    >>> W, X, Y = mcland.draw_point("runs/quick.toml", 17)  # doctest: +SKIP
    >>> mcland.classify([W], X, Y)[["theory_type", "n_neg"]]  # doctest: +SKIP
    """
    return classify_table(
        points, X, Y, refine=refine, key=key, tolerances=tolerances, threads=threads,
        stability_rel=stability_rel,
    ).to_pandas()  # fmt: skip
