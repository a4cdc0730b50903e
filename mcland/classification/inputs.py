"""Given points, read and checked against the data (:func:`read_points` -> :class:`Points`):
lists of layers in memory, a Parquet file or dataset (``dims`` plus ``W1..WH`` or a flat
``w``, read straight from the Arrow list columns), or a folder of ``.npz`` files
(docs/classify.md).  Points are held as :class:`mcland.core.ragged.Ragged` arrays.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from mcland.core import linalg as la  # norms without the process's BLAS
from mcland.core.datasource import load_npz_weights, open_npz
from mcland.core.errors import MclandError
from mcland.core.problem import Problem
from mcland.core.ragged import Ragged
from mcland.points.inspect import check_magnitude, check_weights, split_layers

PointsData = tuple[Ragged, Ragged] | list[list[np.ndarray]]  # as read, before the checks
_B = re.compile(r"b(\d+)")
_W = re.compile(r"W(\d+)")
_BIAS_WHY = (
    "mcland classifies bias-free linear networks W_H ... W_1 x (the theory of "
    "arXiv:2107.13289 has no biases); train with bias=False, or append a constant 1 row "
    "to X to absorb the first layer's bias"
)


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
    files = sorted(path.glob("*.npz"))
    points = []
    for file in files:
        with open_npz(file) as z:
            if biases := [k for k in z.files if _B.fullmatch(k)]:
                raise MclandError(f"{file}: has biases ({', '.join(biases)}): {_BIAS_WHY}")
        points.append(load_npz_weights(file))
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
            dims, w = check_weights(weights, problem.d_x, problem.d_y)
            check_magnitude(dims, w, problem)
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
    """The checks of :func:`mcland.points.inspect.check_weights` against the data and of
    ``check_magnitude``, on all points at once: true if every point passes (else the
    caller checks point by point, and its message names the first bad one)."""
    if np.any(dims.flat[dims.off[:-1]] != problem.d_x):
        return False
    if np.any(dims.flat[dims.off[1:] - 1] != problem.d_y):
        return False
    if not np.all(np.isfinite(w.flat)):
        return False
    norms, _ = layer_norms(dims, w)
    with np.errstate(over="ignore"):
        scale = np.multiply.reduceat(norms.flat, norms.off[:-1]) ** 2 * la.norm(problem.Sxx)
        sq = np.add.reduceat(norms.flat * norms.flat, norms.off[:-1])
    return bool(np.all(np.isfinite(scale)) and np.all(np.isfinite(sq)))
