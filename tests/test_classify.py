"""``mcland.classify`` / ``mcland classify``: given points of one data set, in bulk.

The points are the sampler's own exact critical points on fixed data (Linnerud), so their
records are known: classify must give them back, from memory, Parquet and .npz folders
alike; perturbed copies must be recognised as near (without refine) or brought back to
(with refine) their critical value and type.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_helpers import cli, refused

import mcland
from mcland.points.inspect import split_layers

ROOT = Path(__file__).resolve().parents[1]
CONFIG = {
    "n": 60,
    "seed": 7,
    "architecture": {"depth": [2, 4], "hidden": [1, 4]},
    "data": {
        "source": "csv",
        "path": str(ROOT / "runs" / "data" / "linnerud.csv"),
        "x_columns": ["Chins", "Situps", "Jumps"],
        "y_columns": ["Weight", "Waist", "Pulse"],
    },
    "points": {"low_rank": 0.3},
    "output": {"weights": True},
}
SAME = ["is_critical", "s", "loss", "theory_type", "numeric_type", "n_neg", "n_zero", "n_pos",
        "critical_value"]  # fmt: skip
# of the rescaled point for rebalanced ones (mcland.classification.rebalance.rebalance), else the same
SAME_UNLESS_REBALANCED = ["eig_min_w", "grad_rel", "hess_norm_w"]


@pytest.fixture(scope="module")
def sampled():
    """The sampler's records, their points ``[[W_1, ..., W_H], ...]`` and the data."""
    df = mcland.sample(CONFIG, threads=1)
    points = [
        split_layers(np.asarray(w), np.asarray(d, np.int64))
        for w, d in zip(df.weights, df.dims, strict=True)
    ]
    _, X, Y = mcland.draw_point(CONFIG, 0)
    return df, points, X, Y


@pytest.fixture(scope="module")
def classified(sampled):
    df, points, X, Y = sampled
    return mcland.classify(points, X, Y)


def _str(col: pd.Series) -> np.ndarray:
    return col.astype(str).to_numpy()


def test_gives_back_the_samplers_records(sampled, classified):
    df, points, _, _ = sampled
    out = classified
    assert list(out.row) == list(range(len(points)))
    assert set(_str(df.theory_type)) >= {"global_minimizer", "strict_saddle", "non_strict_saddle"}
    for col in SAME:
        a, b = out[col], df[col]
        if a.dtype.name == "category":
            assert (_str(a) == _str(b)).all(), col
        else:
            np.testing.assert_array_equal(a.to_numpy(), b.to_numpy(), err_msg=col)
    kept = ~out.rebalanced.to_numpy()
    assert 0 < kept.sum() < len(kept)  # both kinds of point are exercised
    for col in SAME_UNLESS_REBALANCED:
        np.testing.assert_array_equal(out[col].to_numpy()[kept], df[col].to_numpy()[kept], col)
    assert all((a == b).all() for a, b in zip(out.S, df.S, strict=True))
    assert all((a == b).all() for a, b in zip(out.critical_values, df.critical_values, strict=True))
    pairs = zip(out.spectrum_w[kept], df.spectrum_w[kept], strict=True)
    assert all((a == b).all() for a, b in pairs)
    for col in ("recipe", "s_drawn", "S_drawn", "kill_mask", "n_kill", "product_err"):
        assert out[col].isna().all(), col
    assert "sample_id" not in out and "seed" not in out
    # an exact critical point sits at its critical value: the nearest one, index and distance
    for _, rec in out.iterrows():
        values = np.asarray(rec.critical_values)
        assert rec.nearest_critical_value == values[rec.nearest_critical_index]
        assert rec.nearest_critical_value == pytest.approx(rec.critical_value, rel=1e-12)
        assert rec.nearest_critical_distance < 1.0
    assert out.input_loss.isna().all() and out.refine_converged.isna().all()


def test_order_threads_and_mixed_architectures(sampled, classified):
    _, points, X, Y = sampled
    assert len({len(p) for p in points}) > 1  # mixed depths in one call
    back = mcland.classify(points[::-1], X, Y, threads=2)
    ref = classified.iloc[::-1].reset_index(drop=True)
    assert list(back.row) == list(range(len(points)))
    for col in SAME:
        assert (back[col].astype(str) == ref[col].astype(str)).all(), col


def _parquet_layers(points, path, key=None):
    H = max(len(p) for p in points)
    cols = {"dims": [[p[0].shape[1]] + [W.shape[0] for W in p] for p in points]}
    for h in range(H):
        cols[f"W{h + 1}"] = [p[h].ravel().tolist() if h < len(p) else None for p in points]
    if key is not None:
        cols[key] = [f"net-{i:03d}" for i in range(len(points))]
    pq.write_table(pa.table(cols), path)


def test_parquet_and_npz_inputs_match_memory(sampled, classified, tmp_path):
    _, points, X, Y = sampled
    points = points[:12]
    ref = classified.iloc[:12].reset_index(drop=True)
    _parquet_layers(points, tmp_path / "layers.parquet", key="name")
    flat = pa.table(
        {
            "dims": [[p[0].shape[1]] + [W.shape[0] for W in p] for p in points],
            "w": [np.concatenate([W.ravel() for W in p]).tolist() for p in points],
        }
    )
    (tmp_path / "ds").mkdir()
    pq.write_table(flat.slice(0, 12), tmp_path / "ds" / "a.parquet")
    (tmp_path / "npz").mkdir()
    for i, p in enumerate(points):
        np.savez(tmp_path / "npz" / f"p{i:03d}.npz", **{f"W{h + 1}": W for h, W in enumerate(p)})
    layers = mcland.classify(tmp_path / "layers.parquet", X, Y, key="name")
    assert list(layers.row) == [f"net-{i:03d}" for i in range(12)]
    for got in (
        layers,
        mcland.classify(str(tmp_path / "ds"), X, Y),
        mcland.classify(tmp_path / "npz", X, Y),
    ):
        cols = [c for c in ref.columns if c != "row"]
        pd.testing.assert_frame_equal(got[cols], ref[cols])
    by_file = mcland.classify(tmp_path / "npz", X, Y, key="file")
    assert by_file.row.iloc[3] == "p003.npz"


def test_biases_and_bad_points_are_refused(sampled, tmp_path):
    _, points, X, Y = sampled
    p = points[0]
    np.savez(tmp_path / "a.npz", W1=p[0], W2=p[1], b1=np.zeros(p[0].shape[0]))
    with pytest.raises(mcland.MclandError, match="bias-free"):
        mcland.classify(tmp_path, X, Y)
    table = pa.table({"dims": [[3, 1, 3]], "W1": [[1.0] * 3], "W2": [[1.0] * 3], "b1": [[0.0]]})
    pq.write_table(table, tmp_path / "b.parquet")
    with pytest.raises(mcland.MclandError, match="bias columns"):
        mcland.classify(tmp_path / "b.parquet", X, Y)
    with pytest.raises(mcland.MclandError, match="shapes do not chain"):
        mcland.classify([[p[0], np.ones((3, 7))]], X, Y)
    with pytest.raises(mcland.MclandError, match="NaN"):
        mcland.classify([[p[0] * np.nan, *p[1:]]], X, Y)
    with pytest.raises(mcland.MclandError, match="key"):
        mcland.classify(points, X, Y, key="name")


PERTURBATIONS = (1e-8, 1e-6, 1e-4, 1e-3)


def test_perturbed_points_near_and_refined(sampled, classified):
    """Exact points of every type, perturbed componentwise by a relative ``eps``: without
    refine the nearest critical value is the original one; with refine every point comes
    back to a critical point of the same critical value, and of the same type for global
    minimizers and strict saddles.  A non-strict saddle's perturbation generically leaves the
    non-strict stratum of its critical set, and LM lands on a nearby critical point of the
    same value that is usually a strict saddle (docs/classify.md): that is only counted.  For
    small ``eps`` the refined point is within a bounded multiple of ``eps ||w||``."""
    df, points, X, Y = sampled
    rng = np.random.default_rng(3)
    theory = _str(classified.theory_type)
    pick = [i for t in ("global_minimizer", "strict_saddle", "non_strict_saddle")
            for i in np.flatnonzero((theory == t) & (_str(classified.numeric_type) == t))[:6]]  # fmt: skip
    base = classified.iloc[pick].reset_index(drop=True)
    for eps in PERTURBATIONS:
        moved = [[W * (1 + eps * rng.standard_normal(W.shape)) for W in points[i]] for i in pick]
        near = mcland.classify(moved, X, Y)
        same = near.nearest_critical_index == base.nearest_critical_index
        # print(eps, "nearest value kept without refine:", same.mean())
        if eps <= 1e-4:  # at 1e-3 the loss of an unbalanced point can pass a midpoint
            assert same.all()
        if eps >= 1e-4:
            assert not near.is_critical.all()
        assert (near.n_neg.notna()).all()  # local inertia read off every point
        ref = mcland.classify(moved, X, Y, refine=True)
        assert ref.refine_converged.all() and ref.is_critical.all()
        np.testing.assert_array_equal(ref.nearest_critical_index, base.nearest_critical_index)
        assert (ref.nearest_critical_distance < 1.0).all()
        assert np.isfinite(ref.refine_distance_rel).all()
        if eps <= 1e-6:
            # the perturbation has norm ~ eps ||w||, so the original critical point is that
            # close; refinement must come back about as close instead of drifting along the
            # flat directions of the critical set (Levenberg-Marquardt alone moved these
            # points by up to 5e9 eps, docs/classify.md).  Measured with the minimum-norm
            # Gauss-Newton start on rebalanced layers: at most 1.7 eps here, 1.8 eps on
            # analysis/refine_table.py, 5 eps on benchmarks/refine_vs_minpack.py's 300
            # points (MINPACK's polish, up to 0.8.0: 76 eps here, 120 eps there): 50 eps
            # leaves a margin of 10 over the worst point seen.
            assert (ref.refine_distance_rel <= 50 * eps).all(), eps
        np.testing.assert_array_equal(ref.input_loss, near.loss)
        kept = _str(base.theory_type) != "non_strict_saddle"
        for col in ("theory_type", "numeric_type"):
            assert (_str(ref[col])[kept] == _str(base[col])[kept]).all(), (eps, col)
        assert set(_str(ref.numeric_type)[~kept]) <= {
            "non_strict_saddle", "strict_saddle", "ambiguous",
        }  # fmt: skip


def test_far_point_is_not_forced_onto_a_critical_value(sampled):
    _, points, X, Y = sampled
    rng = np.random.default_rng(5)
    far = [[rng.standard_normal(W.shape) for W in p] for p in points[:5]]
    out = mcland.classify(far, X, Y)
    assert not out.is_critical.any()
    assert (_str(out.theory_type) == "not_critical").all()
    assert (out.nearest_critical_distance > 1e3).all()


def test_cli_end_to_end(sampled, tmp_path, capsys):
    _, points, X, Y = sampled
    _parquet_layers(points[:10], tmp_path / "points.parquet", key="name")
    np.savez(tmp_path / "data.npz", X=X, Y=Y)
    out = tmp_path / "out"
    args = ("classify", tmp_path / "points.parquet", "--data", tmp_path / "data.npz")
    code, stdout, err = cli(capsys, *args, "--out", out, "--key", "name", "--threads", "1")
    assert code == 0, err
    assert "wrote 10 records" in stdout and "counts" in stdout
    table = mcland.load(out)
    assert table["row"].tolist() == [f"net-{i:03d}" for i in range(10)]
    code, stdout, err = cli(capsys, *args, "--out", out, "--key", "name", "--refine")
    assert code == 2 and "differs in: refine)" in err  # another run: refused
    code, stdout, err = cli(capsys, *args, "--out", tmp_path / "refined", "--refine")
    assert code == 0 and "refined: 10 of 10" in stdout
    # a second writer: the directory's lock names the live holder (here: this process)
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "start": "t0", "token": "x"}
    (out / ".lock").write_text(json.dumps(holder))
    with open(out / ".lock") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        refused(capsys, tmp_path, *args, "--out", out, fragments=("being written by",))
    (out / ".lock").unlink()
    code, stdout, err = cli(capsys, *args, "--out", out, "--key", "name")  # complete: resumes
    assert code == 0 and "(0 computed" in stdout, err
    # POINTS changed since the run: its resume is refused, nothing written
    _parquet_layers(points[1:11], tmp_path / "points.parquet", key="name")
    before = sorted(p.name for p in out.iterdir())
    refused(capsys, tmp_path, *args, "--out", out, "--key", "name",
            fragments=("differs in: points_sha256",))  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "other.txt").write_text("x")
    refused(capsys, tmp_path, *args, "--out", other, fragments=("not empty",))
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"W1": [[1.0]]}), bad)
    new = tmp_path / "new"
    refused(capsys, tmp_path, "classify", bad, "--data", tmp_path / "data.npz", "--out", new,
            fragments=("missing column dims",))  # fmt: skip
    (tmp_path / "text.parquet").write_text("not parquet")
    refused(capsys, tmp_path, "classify", tmp_path / "text.parquet", "--data",
            tmp_path / "data.npz", "--out", new, fragments=("not a readable Parquet",))  # fmt: skip
    pq.write_table(pa.table({"dims": [[3, 2, 3]], "w": [[np.nan] * 12]}), bad)
    refused(capsys, tmp_path, "classify", bad, "--data", tmp_path / "data.npz", "--out", new,
            fragments=("NaN",))  # fmt: skip
    pq.write_table(pa.table({"dims": [[3, 2, 3]], "w": [[1.0] * 11]}), bad)
    refused(capsys, tmp_path, "classify", bad, "--data", tmp_path / "data.npz", "--out", new,
            fragments=("11 weights",))  # fmt: skip
