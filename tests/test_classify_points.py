"""Reading POINTS: the Arrow fast path (``_parquet_arrays``) against the row-by-row reader
(``_parquet_rows``, the reference), and the row-naming messages for malformed rows.

Well-formed files take the fast path, which must give the very arrays the row-by-row reader
gives, whatever the value types and layouts; a malformed row makes the fast path step
aside, and the row-by-row reader names the row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mcland
from mcland.classification.inputs import _parquet_arrays, _parquet_rows, read_points
from mcland.classification.run import points_sha256
from mcland.core.problem import Problem
from mcland.core.ragged import Ragged

DIMS = [[3, 2, 3], [3, 1, 4, 3], [3, 3, 3], [3, 2, 2, 2, 3]]


@pytest.fixture
def layers():
    rng = np.random.default_rng(11)
    return [[rng.standard_normal((d[h + 1], d[h])) for h in range(len(d) - 1)] for d in DIMS]


def _w_table(layers, value_type=None, list_type=pa.list_):
    value_type = value_type or pa.float64()
    return pa.table({
        "dims": pa.array([[W.shape[1] for W in p[:1]] + [W.shape[0] for W in p] for p in layers],
                         list_type(pa.int32())),
        "w": pa.array([np.concatenate([W.ravel() for W in p]).tolist() for p in layers],
                      list_type(value_type)),
    })  # fmt: skip


def _layer_table(layers, absent=None):
    H = max(len(p) for p in layers)
    cols = {"dims": [[p[0].shape[1]] + [W.shape[0] for W in p] for p in layers]}
    for h in range(H):
        cols[f"W{h + 1}"] = [p[h].ravel().tolist() if h < len(p) else absent for p in layers]
    return pa.table(cols)


def _both(table):
    cols = (
        ["w"]
        if "w" in table.column_names
        else sorted((c for c in table.column_names if c.startswith("W")), key=lambda c: int(c[1:]))
    )
    fast = _parquet_arrays(table, cols)
    rows = _parquet_rows("t", table, cols)
    dims = Ragged.from_arrays(
        [np.array([p[0].shape[1]] + [W.shape[0] for W in p]) for p in rows], np.int64
    )
    w = Ragged.from_arrays([np.concatenate([W.ravel() for W in p]) for p in rows])
    return fast, (dims, w)


@pytest.mark.parametrize(
    "make",
    [
        lambda L: _w_table(L),
        lambda L: _w_table(L, pa.float32()),
        lambda L: _w_table(L, pa.int64()),
        lambda L: _w_table(L, list_type=pa.large_list),
        lambda L: _layer_table(L),
        lambda L: _layer_table(L, absent=[]),
        lambda L: pa.concat_tables(
            [_layer_table(L[:2]), _layer_table(L[2:])], promote_options="default"
        ),
    ],
    ids=["w", "w-float32", "w-int", "large-list", "W-columns", "W-empty-lists", "chunked"],
)
def test_fast_path_gives_the_row_by_row_arrays(layers, make):
    if "int" in str(make(layers).schema.field(1).type):
        layers = [[np.round(W * 4) for W in p] for p in layers]
    fast, ref = _both(make(layers))
    assert fast is not None
    for got, want in zip(fast, ref, strict=True):
        assert got.flat.dtype == want.flat.dtype
        assert got.flat.tobytes() == want.flat.tobytes()
        np.testing.assert_array_equal(got.off, want.off)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["dims"].__setitem__(2, None), "row 2: dims is null"),
        (lambda c: c["dims"].__setitem__(2, [3, 0, 3]), "row 2: dims must be"),
        (lambda c: c["W2"].__setitem__(2, None), "row 2: dims say H = 2 layers but W1..W2"),
        (lambda c: c["W3"].__setitem__(0, [1.0]), "row 0: dims say H = 2 layers but W3 is set"),
        (lambda c: c["W1"].__setitem__(3, [1.0] * 5), "row 3: W1 has 5 entries"),
    ],
)
def test_a_malformed_row_is_named(layers, tmp_path, edit, message):
    cols = _layer_table(layers).to_pydict()
    edit(cols)
    pq.write_table(pa.table(cols), tmp_path / "p.parquet")
    X = np.random.default_rng(0).standard_normal((3, 20))
    with pytest.raises(mcland.MclandError, match=message):
        mcland.classify(tmp_path / "p.parquet", X, X)


def test_lists_and_files_read_alike(layers, tmp_path):
    """The in-memory bulk path (``_from_lists``), the Parquet fast path and the
    point-by-point checks give the same points and the same SHA-256."""
    X = np.random.default_rng(0).standard_normal((3, 20))
    problem = Problem.from_data(X, X)
    pq.write_table(_layer_table(layers), tmp_path / "p.parquet")
    from_file = read_points(tmp_path / "p.parquet", problem)
    from_memory = read_points(layers, problem)
    nested = read_points([[W.tolist() for W in p] for p in layers], problem)  # slow path
    digest = hashlib_points(layers)
    for got in (from_file, from_memory, nested):
        assert got.w.flat.tobytes() == from_memory.w.flat.tobytes()
        assert got.dims.flat.tolist() == [d for dims in DIMS for d in dims]
        assert points_sha256(got) == digest


def hashlib_points(layers):
    """The manifest's SHA-256 by its definition: architecture then weights, point by point."""
    import hashlib

    h = hashlib.sha256()
    for p in layers:
        h.update(np.array([p[0].shape[1]] + [W.shape[0] for W in p], np.int64).tobytes())
        h.update(np.concatenate([W.ravel() for W in p]).tobytes())
    h.update(repr(list(range(len(layers)))).encode())
    return h.hexdigest()
