"""Any width (issue 21): requests whose dense Hessian cannot fit are refused in one line
before anything is allocated or written (:mod:`mcland.core.cost`), and single points and
given points can take the structured spectrum (``hessian = "structured"``), which agrees
with the dense path.  The limits are made small with ``MCLAND_MEMORY_LIMIT`` so that the
refusals are checked at toy sizes; the structured path is compared with the dense one on
sampled points of every type."""

from __future__ import annotations

import os

import numpy as np
import pytest
from cli_helpers import refused

import mcland
from mcland.core import cost
from mcland.core.errors import TooLarge
from mcland.core.tolerances import EPS
from mcland.points.plan import make_plan

WIDE = (
    "n = 10\n[architecture]\ndepth = [3, 3]\nd_y = [4, 4]\nd_x_extra = [2, 2]\n"
    "hidden = [4096, 4096]\n"
)


def _point(sid: int = 3):
    return mcland.draw_point("runs/quick.toml", sid)


def _save(tmp_path, W, X, Y):
    np.savez(tmp_path / "w.npz", **{f"W{h + 1}": M for h, M in enumerate(W)})
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    return tmp_path / "w.npz", tmp_path / "d.npz"


# ---------------------------------------------------------------- limits and estimates


def test_memory_limit_is_half_the_physical_ram_unless_set(monkeypatch):
    monkeypatch.delenv(cost.MEMORY_ENV, raising=False)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert cost.memory_limit() == int(0.5 * ram)
    monkeypatch.setenv(cost.MEMORY_ENV, "12345")
    assert cost.memory_limit() == 12345


def test_dense_cost_counts_the_n_by_n_arrays():
    c = cost.dense_cost(1000, matrices=3, workers=2)
    assert c.bytes == 2 * 3 * 8 * 1000**2
    assert c.flops == pytest.approx(4 / 3 * 1e9 + 1e9 / 3)


def test_auto_keeps_the_dense_path_at_todays_sizes_and_leaves_it_above(monkeypatch):
    monkeypatch.delenv(cost.MEMORY_ENV, raising=False)
    assert cost.choose_hessian("auto", (6, 64, 64, 4), "t") == "dense"  # N = 4,736
    assert cost.choose_hessian("auto", (6, 256, 256, 4), "t") == "structured"  # N = 68,096
    monkeypatch.setenv(cost.MEMORY_ENV, "50e6")  # dense: 24 x 4736^2 = 538,312,704 bytes
    assert cost.choose_hessian("auto", (6, 64, 64, 4), "t", matrices=3) == "structured"
    with pytest.raises(TooLarge, match=r"N = 4,736 parameters needs 538\.3 MB"):
        cost.choose_hessian("dense", (6, 64, 64, 4), "t", matrices=3)


# ---------------------------------------------------------------- refusals


def test_sample_at_width_4096_is_refused_before_writing(capsys, tmp_path, monkeypatch):
    """The issue's case: the dense Hessian of N = 16.8 million parameters (4.5 PB) against
    the machine's real limit; nothing is written."""
    monkeypatch.delenv(cost.MEMORY_ENV, raising=False)
    cfg = tmp_path / "wide.toml"
    cfg.write_text(WIDE, encoding="utf-8")
    msg = refused(
        capsys, tmp_path, "sample", cfg, "--out", tmp_path / "run",
        fragments=("N = 16,818,176", "memory limit", "structured"),
    )  # fmt: skip
    assert "4525.6 TB" in msg  # 2 x 8 x 16,818,176^2 bytes


def test_sample_with_structured_hessian_is_refused(tmp_path):
    with pytest.raises(mcland.MclandError, match="not available for sample"):
        make_plan({"n": 1, "classify": {"hessian": "structured"}})


def test_inspect_dense_beyond_the_limit_exits_2_naming_the_alternative(
    capsys, tmp_path, monkeypatch
):
    W, X, Y = _point()
    w, d = _save(tmp_path, W, X, Y)
    monkeypatch.setenv(cost.MEMORY_ENV, "500")  # N = 6: 3 x 8 x 36 = 864 bytes
    refused(
        capsys, tmp_path, "inspect", w, d, "--hessian", "dense",
        fragments=("inspect", "N = 6 ", "needs 0.9 kB", "memory limit 0.5 kB", '"structured"'),
    )  # fmt: skip


def test_inspect_refuses_when_neither_path_fits(monkeypatch):
    W, X, Y = _point()
    monkeypatch.setenv(cost.MEMORY_ENV, "10")
    with pytest.raises(TooLarge, match="matrix_free_spectrum"):
        mcland.inspect_point(W, X, Y, hessian="auto")


def test_classify_run_is_refused_before_its_directory(tmp_path, monkeypatch):
    W, X, Y = _point()
    from mcland.classification import run as classify_run

    out = tmp_path / "out"
    monkeypatch.setenv(cost.MEMORY_ENV, "500")  # N = 6: the analysis needs 2 x 8 x 36 B
    with pytest.raises(TooLarge, match="classify: the dense Hessian of N = 6 "):
        classify_run.run([W], X, Y, out, hessian="dense", threads=1, progress=False)
    monkeypatch.setenv(cost.MEMORY_ENV, "1000")  # refine needs 4 x 8 x 36 B
    with pytest.raises(TooLarge, match="refine"):
        classify_run.run([W], X, Y, out, refine=True, threads=1, progress=False)
    assert not out.exists()


def test_groundtruth_is_refused_before_its_directory(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(cost.MEMORY_ENV, "1000")
    refused(
        capsys, tmp_path, "groundtruth", "runs/autoencoder.toml", "--out", tmp_path / "gt",
        fragments=("groundtruth", "memory limit"),
    )  # fmt: skip


# ---------------------------------------------------------------- structured = dense

# (sample id of runs/quick.toml, its type): two of each type (5: W = 0 in a layer, a
# Hessian that is exactly zero)
POINTS = [(0, "global_minimizer"), (1, "global_minimizer"), (3, "strict_saddle"),
          (10, "strict_saddle"), (4, "non_strict_saddle"), (5, "non_strict_saddle")]  # fmt: skip
GAP = 64  # eigenvalue gap allowed, in eps ||H||_F (docs/structured.md §5: 13.5 seen)


@pytest.mark.parametrize(("sid", "kind"), POINTS)
def test_inspect_structured_matches_dense(sid, kind):
    W, X, Y = _point(sid)
    d = mcland.inspect_point(W, X, Y, hessian="dense")
    s = mcland.inspect_point(W, X, Y, hessian="structured")
    assert d.numeric_type == s.numeric_type == d.theory_type == s.theory_type == kind
    assert (d.n_neg, d.n_zero, d.n_pos) == (s.n_neg, s.n_zero, s.n_pos)
    assert np.abs(d.eigenvalues_w - s.eigenvalues_w).max() <= GAP * EPS * d.hess_norm_w
    assert np.abs(d.eigenvalues - s.eigenvalues).max() <= GAP * EPS * d.hess_norm
    assert s.eig_min_w == s.eigenvalues_w[0] and s.eig_max == s.eigenvalues[-1]
    assert d.escape_curvature == s.escape_curvature  # the certificate does not need H


def test_classify_structured_matches_dense_records():
    """Six points of the fixed data of runs/linnerud.toml (strict and non-strict saddles,
    a global minimizer): the same counts and types by either path; ``auto`` gives the
    dense records bit for bit at these sizes."""
    pts = [mcland.draw_point("runs/linnerud.toml", sid) for sid in range(6)]
    X, Y = pts[0][1], pts[0][2]
    same = [W for W, _, _ in pts]
    dense = mcland.classify(same, X, Y, hessian="dense", threads=1)
    st = mcland.classify(same, X, Y, hessian="structured", threads=1)
    auto = mcland.classify(same, X, Y, threads=1)
    cols = ["n_neg", "n_zero", "n_pos", "numeric_type", "theory_type", "verdict"]
    assert dense[cols].equals(st[cols])
    # each path's own floor (both ran), but at point 4, whose Hessian is 0 (floor 0 in both)
    assert ((dense.noise_floor != st.noise_floor) | (st.noise_floor == 0)).all()
    assert (st.noise_floor == 0).sum() == 1
    assert dense.drop(columns=["row"]).equals(auto.drop(columns=["row"]))  # auto = dense here


def test_a_width_256_point_is_inspected_without_the_dense_hessian(monkeypatch):
    """N = 68,096 (the issue's width 256, whose dense Hessian needs 111 GB): ``auto`` takes
    the structured path and agrees with the theory; ``dense`` is refused (the limit set to
    16 GB, a machine of 32 GB, so that the test does not depend on this one)."""
    import tomllib
    from pathlib import Path

    cfg = tomllib.loads((Path(__file__).parents[1] / "benchmarks" / "width_sweep.toml").read_text())
    cfg["architecture"]["hidden"] = [256, 256]
    W, X, Y = mcland.draw_point(cfg, 0)
    monkeypatch.setenv(cost.MEMORY_ENV, "16e9")
    rep = mcland.inspect_point(W, X, Y)
    assert rep.N == 68_096 and rep.eigenvalues.size == rep.N
    assert rep.numeric_type == rep.theory_type == "strict_saddle" and rep.n_neg > 0
    assert rep.n_neg + rep.n_zero + rep.n_pos == rep.N
    with pytest.raises(TooLarge, match=r"N = 68,096 parameters needs 111\.3 GB"):
        mcland.inspect_point(W, X, Y, hessian="dense")
