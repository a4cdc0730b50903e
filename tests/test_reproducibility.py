"""Records depend only on (configuration, seed, sample id): threads, batches, runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import mcland
from mcland.execution import threads
from mcland.execution.compute import compute
from mcland.points import plan as plan_module
from mcland.points.plan import Plan, _finish, make_plan
from mcland.points.records import SCHEMA

CFG = {"n": 300, "seed": 4, "architecture": {"depth": [2, 5], "d_y": [1, 3], "hidden": [1, 5]}}


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a = a.sort_values("sample_id").reset_index(drop=True)
    b = b.sort_values("sample_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_threads_and_chunking_do_not_change_records(monkeypatch):
    ref = mcland.sample(CFG, threads=1)
    _same(ref, mcland.sample(CFG, threads=2))
    monkeypatch.setattr(Plan, "batch", 37)
    monkeypatch.setattr(threads, "TASKS_PER_THREAD", 3)
    _same(ref, mcland.sample(CFG, threads=2))


def test_any_subset_of_ids_reproduces_its_rows():
    ref = mcland.sample(CFG, threads=1)
    plan = make_plan(CFG)
    ids = np.array([250, 3, 77, 3, 149])
    sub = compute(plan, ids).to_pandas()
    expect = ref.set_index("sample_id").loc[ids].reset_index()
    pd.testing.assert_frame_equal(sub, expect, check_exact=True)


def test_seed_changes_records():
    a = mcland.sample(CFG, n=50)
    b = mcland.sample(CFG, n=50, seed=5)
    assert not np.array_equal(a["eig_min_w"], b["eig_min_w"])
    assert (b["seed"] == 5).all() and (a["seed"] == 4).all()


def test_run_directory_round_trip(tmp_path):
    cfg = {**CFG, "output": {"shard_size": 128}}
    summary = mcland.run(cfg, tmp_path / "run", progress=False)
    files = sorted((tmp_path / "run").glob("part-*.parquet"))
    assert [f.name for f in files] == [
        "part-000000.parquet",
        "part-000001.parquet",
        "part-000002.parquet",
    ]
    loaded = mcland.load(tmp_path / "run")
    _same(loaded, mcland.sample(CFG, threads=1))
    assert summary.agreement == 1.0 and int(summary.counts.to_numpy().sum()) == CFG["n"]
    meta = json.loads(pq.read_schema(files[0]).metadata[b"mcland"])
    assert meta["seed"] == 4 and meta["n"] == 300 and meta["mcland_version"] == mcland.__version__
    assert meta["config"]["architecture"]["depth"] == [2, 5]
    assert pq.read_schema(files[0]).remove_metadata().equals(SCHEMA)
    one_depth = mcland.load(tmp_path / "run", columns=["sample_id", "H"], filters=[("H", "==", 3)])
    assert list(one_depth.columns) == ["sample_id", "H"] and (one_depth["H"] == 3).all()
    assert len(one_depth) == (loaded["H"] == 3).sum()


def test_interrupted_run_resumes_without_recomputing(tmp_path, monkeypatch):
    cfg = {**CFG, "output": {"shard_size": 100}}
    out = tmp_path / "run"
    calls = {"n": 0}
    real = _finish

    def failing(plan, started):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(plan, started)

    monkeypatch.setattr(plan_module, "_finish", failing)
    with pytest.raises(KeyboardInterrupt):
        mcland.run(cfg, out, progress=False)
    assert [f.name for f in out.glob("part-*")] == ["part-000000.parquet"]
    assert not list(out.glob(".tmp-*"))
    monkeypatch.setattr(plan_module, "_finish", real)
    (out / ".tmp-999-part-000001.parquet").write_bytes(b"half a shard")  # as left by SIGKILL
    summary = mcland.run(cfg, out, progress=False)
    assert not list(out.glob(".tmp-*"))
    assert summary.computed == 200  # the finished shard was kept
    _same(mcland.load(out), mcland.sample(CFG, threads=1))


def test_spectrum_and_weights_columns_switch(tmp_path):
    off = mcland.sample({**CFG, "n": 20, "output": {"spectrum": False, "weights": True}})
    assert off["spectrum"].isna().all() and off["spectrum_w"].isna().all()
    assert off["eig_min"].isna().all() and off["eig_min_w"].notna().all()
    W, _, _ = mcland.draw_point(CFG, 7)
    np.testing.assert_array_equal(off.loc[7, "weights"], np.concatenate([w.ravel() for w in W]))
    on = mcland.sample({**CFG, "n": 20})
    assert all(len(s) == n for s, n in zip(on["spectrum_w"], on["N"], strict=True))
    assert on["spectrum"].isna().all() and on["eig_min"].isna().all()
    assert on["weights"].isna().all()
    both = mcland.sample({**CFG, "n": 20, "output": {"original_spectrum": True}})
    assert all(len(s) == n for s, n in zip(both["spectrum"], both["N"], strict=True))
    assert (both["eig_min"] == [s[0] for s in both["spectrum"]]).all()
    # the original spectrum is extra work, never a change of the other columns
    pd.testing.assert_frame_equal(
        on.drop(columns=["spectrum", "eig_min", "eig_max", "hess_norm"]),
        both.drop(columns=["spectrum", "eig_min", "eig_max", "hess_norm"]),
        check_exact=True,
    )


def test_resume_refuses_another_version(tmp_path):
    out = tmp_path / "run"
    mcland.run({**CFG, "n": 10}, out, progress=False)
    manifest = json.loads((out / "run.json").read_text())
    manifest["mcland_version"] = "0.0.1"
    (out / "run.json").write_text(json.dumps(manifest))
    with pytest.raises(mcland.MclandError, match="mcland_version"):
        mcland.run({**CFG, "n": 10}, out, progress=False)
