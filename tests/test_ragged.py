"""``mcland.core.ragged.Ragged`` and the per-layer helpers of ``mcland.classification.inputs`` against plain
Python lists of arrays (the reference: what the code did before it was vectorised)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from mcland.classification.inputs import layer_norms, layer_sizes
from mcland.core.ragged import Ragged


@pytest.fixture
def arrays():
    rng = np.random.default_rng(5)
    lengths = [3, 0, 1, 7, 2, 0, 5]
    return [rng.standard_normal(k) for k in lengths]


def test_sequence_of_views(arrays):
    r = Ragged.from_arrays(arrays)
    assert len(r) == len(arrays)
    for a, b in zip(r, arrays, strict=True):
        assert a.tobytes() == b.tobytes()
    assert r[-1].tobytes() == arrays[-1].tobytes()
    assert r[3].base is r.flat  # a view, not a copy
    with pytest.raises(IndexError):
        r[len(arrays)]
    np.testing.assert_array_equal(r.lengths, [a.size for a in arrays])
    np.testing.assert_array_equal(r.position(), np.concatenate([np.arange(a.size) for a in arrays]))
    assert Ragged.from_arrays(r) is r
    with pytest.raises(ValueError, match="sum to"):
        Ragged.from_lengths(np.zeros(3), np.array([1, 1]))


def test_take_padded_and_place_into(arrays):
    r = Ragged.from_arrays(arrays)
    starts = np.array(
        [40, 0, 30, 5, 12, 20, 14]
    )  # disjoint  # arrays of lengths 3, 0, 1, 7, 2, 0, 5
    out = np.full(45, -1.0)
    r.place_into(out, starts)
    want = np.full(45, -1.0)
    for a, s in zip(arrays, starts, strict=True):
        want[s : s + a.size] = a
    np.testing.assert_array_equal(out, want)
    ids = [6, 0, 3, 3, 1]
    taken = r.take(ids)
    assert [a.tolist() for a in taken] == [arrays[i].tolist() for i in ids]
    assert [a.tolist() for a in r[1:4]] == [a.tolist() for a in arrays[1:4]]
    pad = r.padded(9, fill=np.nan)
    for t, a in enumerate(arrays):
        np.testing.assert_array_equal(pad[t, : a.size], a)
        assert np.isnan(pad[t, a.size :]).all()


def test_layer_sizes_and_norms():
    rng = np.random.default_rng(2)
    dims = [np.array(d, np.int64) for d in ([3, 2, 3], [3, 1, 4, 3], [5, 5, 5, 5, 5], [3, 3, 3])]
    w = [rng.standard_normal(int(np.sum(d[1:] * d[:-1]))) for d in dims]
    w[3][:9] = 0.0  # a zero layer
    sizes = layer_sizes(Ragged.from_arrays(dims, np.int64))
    assert [s.tolist() for s in sizes] == [(d[1:] * d[:-1]).tolist() for d in dims]
    norms, starts = layer_norms(Ragged.from_arrays(dims, np.int64), Ragged.from_arrays(w))
    for d, x, got in zip(dims, w, norms, strict=True):
        bounds = np.cumsum(np.concatenate([[0], d[1:] * d[:-1]]))
        want = [np.sqrt(np.sum(x[a:b] ** 2)) for a, b in pairwise(bounds)]
        np.testing.assert_allclose(got, want, rtol=1e-15)
    assert starts.tolist() == np.concatenate([[0], np.cumsum(sizes.flat)[:-1]]).tolist()
