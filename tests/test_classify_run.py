"""``mcland classify`` run directories: the same records as the in-memory
:func:`mcland.classify` whatever the shard size, threads or Dask workers, and after a
SIGKILL and a resume (the machinery of ``mcland sample``, :mod:`mcland.execution.runner`)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_helpers import cli

import mcland
from mcland.core import faults
from mcland.rundir import directory as rundir
from mcland.rundir.files import read_manifest

CONFIG = {
    "n": 30,
    "seed": 11,
    "architecture": {"depth": [2, 4], "d_y": [2, 3], "hidden": [1, 4]},
    "data": {"source": "gaussian", "m": 20},
    "output": {"weights": True},
}


@pytest.fixture(scope="module")
def given(tmp_path_factory):
    """30 points of one data set (perturbed drawn points, so some are not critical), as a
    POINTS file and DATA file, and their in-memory classification."""
    _, X, Y = mcland.draw_point(
        {
            **CONFIG,
            "architecture": {"depth": [3, 3], "d_y": [3, 3], "d_x_extra": [0, 0], "hidden": [2, 2]},
        },
        0,
    )
    rng = np.random.default_rng(3)
    points = []
    for k in range(30):
        dims = [X.shape[0], *rng.integers(1, 4, size=k % 3 + 1), Y.shape[0]]
        points.append([rng.standard_normal((dims[h + 1], dims[h])) for h in range(len(dims) - 1)])
    points[:3] = [[np.zeros_like(W) for W in p] for p in points[:3]]  # W = 0: critical
    root = tmp_path_factory.mktemp("given")
    rows = {
        "dims": [[W.shape[1] for W in p] + [p[-1].shape[0]] for p in points],
        "w": [np.concatenate([W.ravel() for W in p]) for p in points],
    }
    pq.write_table(pa.table(rows), root / "points.parquet")
    np.savez(root / "data.npz", X=X, Y=Y)
    return root, points, X, Y, mcland.classify(points, X, Y, threads=1)


def _args(root, out, *extra):
    return ("classify", root / "points.parquet", "--data", root / "data.npz", "--out", out,
            "--no-progress", *extra)  # fmt: skip


def _same(run_dir, expected: pd.DataFrame) -> None:
    got = mcland.load(run_dir)
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_categorical=False)


def test_shards_and_threads_give_the_in_memory_records(given, capsys, tmp_path):
    root, _, _, _, expected = given
    for threads, size in [("1", "7"), ("2", "4")]:
        out = tmp_path / f"run-{threads}-{size}"
        code, stdout, err = cli(
            capsys, *_args(root, out, "--threads", threads, "--shard-size", size)
        )
        assert code == 0, err
        _same(out, expected)
        st = rundir.scan(out)
        assert st.complete and st.verified and read_manifest(out)["kind"] == "classify"


def test_sigkill_then_resume(given, tmp_path):
    root, _, _, _, expected = given
    out, flag = tmp_path / "run", tmp_path / "fired"
    env = {**os.environ, faults.ENV: f"kill:shard-done:2:{flag}"}
    cmd = [
        sys.executable,
        "-m",
        "mcland.cli",
        *map(str, _args(root, out, "--shard-size", "5", "--threads", "2")),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9 and flag.exists(), proc.stderr
    st = rundir.scan(out)
    assert st.done == [0, 1] and st.missing == [2, 3, 4, 5]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "(20 computed" in proc.stdout
    _same(out, expected)


def test_dask_workers_give_the_same_records(given, capsys, tmp_path):
    pytest.importorskip("distributed")
    root, _, _, _, expected = given
    out = tmp_path / "dask"
    code, stdout, err = cli(capsys, *_args(root, out, "--workers", "2", "--shard-size", "8"))
    assert code == 0, err
    _same(out, expected)


def test_bulk_checks_agree_with_the_point_by_point_ones(given):
    """Float64 arrays take the vectorised checks, nested lists the point-by-point ones: the
    same records, and the same refusals (naming the point) for overflow and NaN."""
    _, points, X, Y, expected = given
    as_lists = [[W.tolist() for W in p] for p in points]
    pd.testing.assert_frame_equal(mcland.classify(as_lists, X, Y, threads=1), expected)
    for bad_value, fragment in [(1e200, "too large"), (np.nan, "NaN")]:
        bad = [[W.copy() for W in p] for p in points]
        bad[4][0][0, 0] = bad_value
        with pytest.raises(mcland.MclandError, match=f"point 4: .*{fragment}"):
            mcland.classify(bad, X, Y, threads=1)


def test_options_are_part_of_the_run(given, capsys, tmp_path):
    root = given[0]
    out = tmp_path / "run"
    code, _, err = cli(capsys, *_args(root, out, "--shard-size", "10"))
    assert code == 0, err
    for extra, key in [(("--stability-rel", "1e-8"), "stability_rel"), (("--refine",), "refine")]:
        code, _, err = cli(capsys, *_args(root, out, "--shard-size", "10", *extra))
        assert code == 2 and f"differs in: {key})" in err, err


def test_nearest_index_is_argmin():
    """The bisection of :func:`mcland.classification.analysis.nearest_index` against ``argmin``: ties,
    repeated values, values outside the range, NaN."""
    from mcland.classification.analysis import nearest_index

    rng = np.random.default_rng(0)
    for _ in range(200):
        values = np.sort(rng.integers(0, 12, size=rng.integers(1, 9)).astype(float))
        x = np.concatenate([rng.integers(-3, 16, size=20) / 2.0, [np.nan]])
        expected = [int(np.argmin(np.abs(values - v))) for v in x]
        np.testing.assert_array_equal(nearest_index(values, x), expected)
