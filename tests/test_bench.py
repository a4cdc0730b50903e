"""``mcland bench``: the floor measures the pipeline's own Hessians, the baseline is a
correct implementation, and the command writes every documented figure (no timings are
asserted: the machine is shared)."""

from __future__ import annotations

import json
import math

import numpy as np
from cli_helpers import assert_bad_input, cli

import mcland
from mcland._kernels.bench import eigvalsh_range, point_hessian
from mcland.bench import baseline, measure
from mcland.core import naive
from mcland.core.config import config_from_dict
from mcland.points.plan import make_plan

KEYS = (
    "points_per_s",
    "points_per_s_1thread",
    "floor_ratio",
    "baseline_speedup",
    "thread_speedup",
    "compile_s",
    "second_process_first_point_s",
    "peak_rss_mb",
)
DYNAMICS_KEYS = (
    "evals_per_s",
    "evals_per_s_1thread",
    "numpy_evals_per_s",
    "numpy_speedup",
    "numpy_speedup_range",
    "thread_speedup",
    "thread_speedup_range",
    "cpu_per_wall",
    "thread_cpu_efficiency",
    "gd_compile_s",
)


def test_floor_decomposes_the_pipelines_hessians():
    cfg = measure.workload_config("small")
    plan = make_plan(cfg)
    ids = np.arange(40)
    packed, offsets, sizes = measure._hessians(plan, ids)
    out = np.empty(ids.size)
    eigvalsh_range(packed, offsets, sizes, out, 0, ids.size, 1)
    records = mcland.sample(cfg, n=40)
    np.testing.assert_array_equal(out, records["eig_min_w"])
    assert (sizes == records["N"]).all()
    assert point_hessian(plan.sampler, 3).shape == (records["N"][3],) * 2


def test_baseline_draws_critical_points_and_classifies_them_like_mcland():
    cfg = config_from_dict(measure.workload_config("small"))
    for sid in range(12):
        W, X, Y = baseline.draw(cfg, sid)
        g = naive.ravel_weights(naive.gradient(W, X, Y))
        assert np.linalg.norm(g) < 1e-9 * max(1.0, np.linalg.norm(X) ** 2)
        theory, numeric = baseline.analyse(W, X, Y)
        rep = mcland.inspect_point(W, X, Y)
        assert theory == numeric == rep.theory_type == rep.numeric_type


def test_bench_command_writes_every_figure(capsys, tmp_path):
    path = tmp_path / "bench.json"
    code, out, err = cli(capsys, "bench", "--quick", "--json", path)
    assert code == 0, err
    figures = json.loads(path.read_text())
    assert set(figures) == {"meta", "small", "medium", "dynamics"}
    for name in ("small", "medium"):
        fig = figures[name]
        assert set(KEYS) <= set(fig)
        for key in ("points_per_s", "points_per_s_1thread", "floor_ratio", "baseline_speedup"):
            assert math.isfinite(fig[key]) and fig[key] > 0, (name, key)
        assert fig["mean_N"] > 0
    dyn = figures["dynamics"]
    assert set(DYNAMICS_KEYS) <= set(dyn)
    for key in ("evals_per_s", "evals_per_s_1thread", "numpy_evals_per_s", "numpy_speedup"):
        assert math.isfinite(dyn[key]) and dyn[key] > 0, key
    assert dyn["architecture"] == [3, 4, 4, 4, 2] and dyn["trajectories"] == 64
    assert dyn["numpy_max_rel_diff"] < 1e-12  # the kernel and the NumPy loop agree
    assert figures["meta"]["quick"] is True
    assert "floor_ratio" in out and "medium" in out
    assert "numpy_speedup" in out and "dynamics" in out


def test_bench_json_in_missing_directory_is_refused(capsys, tmp_path):
    code, out, err = cli(capsys, "bench", "--quick", "--json", tmp_path / "no" / "b.json")
    assert_bad_input(code, out, err, "no directory")
