"""The structured path's partial-product table without identity products
(:func:`mcland._kernels.structured.product_table_wide`) is bit for bit the dense one's
(:func:`mcland._kernels.dense.product_table`), negative and exact zeros included."""

from __future__ import annotations

import numpy as np

from mcland._kernels.dense import layer_offsets, product_table
from mcland._kernels.structured import product_table_wide


def test_product_table_wide_is_the_dense_table_bit_for_bit():
    rng = np.random.default_rng(7)
    for dims in ([3, 5, 2], [6, 9, 7, 4], [4, 8, 1, 8, 3], [2, 3, 3, 3, 3, 2], [5, 1]):
        d = np.array(dims, np.int64)
        off = layer_offsets(d)
        w = rng.standard_normal(int(off[-1])) * 10.0 ** rng.integers(-30, 30, int(off[-1]))
        w[rng.random(w.size) < 0.2] = 0.0
        w[rng.random(w.size) < 0.2] = -0.0
        a, a_off = product_table(w, d, off)
        b, b_off = product_table_wide(w, d, off)
        assert np.array_equal(a_off, b_off)
        assert a.tobytes() == b.tobytes(), dims
