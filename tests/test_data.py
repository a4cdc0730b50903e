"""Runs on user data: the same data from .npz, CSV or Parquet gives the same records."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mcland
from mcland.core.problem import Problem


@pytest.fixture
def data(rng):
    X = rng.standard_normal((4, 50)) * np.array([[300.0], [1.0], [0.02], [7.0]])  # raw scales
    Y = rng.standard_normal((3, 4)) @ X + 0.3 * rng.standard_normal((3, 50))
    return X, Y


def _config(source, path, **extra):
    return {
        "n": 400,
        "seed": 8,
        "architecture": {"depth": [2, 5], "hidden": [1, 5]},
        "data": {"source": source, "path": str(path), **extra},
    }


def test_user_data_sources_agree(tmp_path, data):
    X, Y = data
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    table = pd.DataFrame(
        np.vstack([X, Y]).T, columns=[f"x{i}" for i in range(4)] + [f"y{i}" for i in range(3)]
    )
    table.to_csv(tmp_path / "d.csv", index=False, float_format="%.17g")
    table.to_parquet(tmp_path / "d.parquet")
    cols = {"x_columns": [f"x{i}" for i in range(4)], "y_columns": [f"y{i}" for i in range(3)]}
    a = mcland.sample(_config("npz", tmp_path / "d.npz"))
    b = mcland.sample(_config("csv", tmp_path / "d.csv", **cols))
    c = mcland.sample(_config("parquet", tmp_path / "d.parquet", **cols))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    pd.testing.assert_frame_equal(a, c, check_exact=True)
    assert (a["d_x"] == 4).all() and (a["d_y"] == 3).all()
    assert a["is_critical"].all() and (a["scale_x"] == 1.0).all()
    assert (a["theory_type"] == a["numeric_type"]).all()
    assert set(a["numeric_type"].astype(str)) == {
        "global_minimizer",
        "strict_saddle",
        "non_strict_saddle",
    }
    # the fixed data's critical values are shared by all points of one bottleneck width
    prob = Problem.from_data(X, Y)
    for r, group in a.groupby("r"):
        np.testing.assert_allclose(group["critical_values"].iloc[0], prob.critical_values(int(r)))


def test_relative_data_path_resolves_against_config_file(tmp_path, data):
    X, Y = data
    (tmp_path / "sub").mkdir()
    np.savez(tmp_path / "sub" / "d.npz", X=X, Y=Y)
    (tmp_path / "c.toml").write_text(
        'n = 20\n[data]\nsource = "npz"\npath = "sub/d.npz"\n', encoding="utf-8"
    )
    df = mcland.sample(tmp_path / "c.toml")
    assert len(df) == 20 and (df["d_x"] == 4).all()
