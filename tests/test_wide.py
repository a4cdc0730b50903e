"""Any width (issue 21): requests whose dense Hessian cannot fit are refused in one line
before anything is allocated or written (:mod:`mcland.core.cost`), and single points and
given points can take the structured spectrum (``hessian = "structured"``), which agrees
with the dense path.  The limits are made small with ``MCLAND_MEMORY_LIMIT`` so that the
refusals are checked at toy sizes; the structured path is compared with the dense one on
sampled points of every type."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
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
    """The issue's case: N = 16.8 million parameters; ``auto`` takes the structured path
    there, whose K (order up to 65,528: 34 GB) cannot fit the machine's real limit either
    (the dense Hessian would need 4.5 PB); nothing is written."""
    monkeypatch.delenv(cost.MEMORY_ENV, raising=False)
    cfg = tmp_path / "wide.toml"
    cfg.write_text(WIDE, encoding="utf-8")
    msg = refused(
        capsys, tmp_path, "sample", cfg, "--out", tmp_path / "run",
        fragments=("N = 16,818,176", "K of order up to 65,528", "memory limit",
                   "matrix_free_spectrum"),
    )  # fmt: skip
    assert "structured Hessian spectrum" in msg


def test_sample_dense_at_width_is_refused_naming_the_structured_path(capsys, tmp_path):
    cfg = tmp_path / "wide.toml"
    cfg.write_text(WIDE + '[classify]\nhessian = "dense"\n', encoding="utf-8")
    msg = refused(
        capsys, tmp_path, "sample", cfg, "--out", tmp_path / "run",
        fragments=("N = 16,818,176", "4525.6 TB", 'hessian = "structured"'),
    )  # fmt: skip
    assert msg.startswith("sample (architecture.hidden, depth at their maxima): the dense")


def test_a_wide_plan_that_fits_runs_structured_points_a_slot_at_a_time(monkeypatch):
    """The plan sizes its spectrum buffers by k_bound, not N, and lets as many points run
    at once as the memory limit holds (at least one; else it refuses, as above)."""
    cfg = {"n": 2, "architecture": {"depth": [3, 3], "d_y": [4, 4], "d_x_extra": [2, 2],
                                    "hidden": [256, 256]}}  # fmt: skip
    monkeypatch.setenv(cost.MEMORY_ENV, "1e9")
    plan = make_plan(cfg)
    st = cost.structured_cost((6, 256, 256, 4))
    assert plan.structured == "above" and plan.n_max == 68_096
    assert plan.spectrum_width == max(cost.DENSE_AUTO_MAX_N, st.k) < plan.n_max
    point = max(st.bytes, 2 * 8 * cost.DENSE_AUTO_MAX_N**2) + 32 * 68_096
    assert plan.slots == (1e9 - 2 * 4 * 8 * plan.spectrum_width) // point == 2
    buffers = 2 * 4 * 8 * st.k  # two batches of 4 points, their spectra
    monkeypatch.setenv(cost.MEMORY_ENV, str(st.bytes + 32 * 68_096 + buffers))  # not 400 MB
    plan = make_plan(cfg)  # every point structured then (dense: too much), one at a time
    assert (plan.structured, plan.slots, plan.spectrum_width) == ("all", 1, st.k)
    monkeypatch.setenv(cost.MEMORY_ENV, str(st.bytes // 2))
    with pytest.raises(TooLarge, match="K of order up to 4,088"):
        make_plan(cfg)


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
    # auto falls back to the matrix-free bounds, which do not fit either: their estimate
    with pytest.raises(TooLarge, match="inspect: the matrix-free bounds of N = 6 parameters need"):
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
    a global minimizer): the same counts and types by either path, the structured spectra
    stored as their nonzero part (expanded: the dense ones within GAP eps ||H||); ``auto``
    gives the dense records bit for bit at these sizes."""
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
    # the structured records store the k eigenvalues of K and the N - k zeros apart
    assert dense.spectrum_zeros.eq(0).all() and st.spectrum_zeros.gt(0).any()
    for d, s in zip(dense.itertuples(), st.itertuples(), strict=True):
        full = mcland.full_spectrum(s.spectrum_w, s.spectrum_zeros)
        assert full.size == d.N == s.spectrum_w.size + s.spectrum_zeros
        assert np.abs(full - d.spectrum_w).max() <= GAP * EPS * d.hess_norm_w


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


# ---------------------------------------------------------------- sample at width


def _quick(**sections):
    import tomllib
    from pathlib import Path

    cfg = tomllib.loads((Path(__file__).parents[1] / "runs" / "quick.toml").read_text())
    for name, values in sections.items():
        cfg[name] = {**cfg.get(name, {}), **values}
    return cfg


# columns that do not depend on the Hessian path (first order, S, the theory's certificate)
FIRST_ORDER = ["sample_id", "dims", "loss", "grad_norm", "grad_rel", "S", "s_dev",
               "theory_type", "ranks", "escape_curvature", "loss_tol"]  # fmt: skip


@pytest.mark.parametrize("mode", ["auto", "structured"])
def test_sample_above_the_dense_limit_takes_the_structured_path(monkeypatch, mode):
    """``DENSE_AUTO_MAX_N`` lowered to 20: ``auto`` sends the points of ``runs/quick.toml``
    with N > 20 (``structured``: every point) to the structured spectrum, which stores the k
    eigenvalues of K and ``spectrum_zeros = N - k``; expanded, the spectra have the dense
    path's length and inertia and its eigenvalues within GAP eps ||H||_F
    (docs/structured.md §5), whitened and original; the rows at or below the limit are the
    dense path's bit for bit."""
    import mcland.points.plan as plan_module

    cfg = _quick(output={"original_spectrum": True})
    dense = mcland.sample(cfg, n=12, threads=1)
    monkeypatch.setattr(plan_module, "DENSE_AUTO_MAX_N", 20)
    cfg["classify"] = {**cfg.get("classify", {}), "hessian": mode}
    assert make_plan(cfg).structured == ("above" if mode == "auto" else "all")
    wide = mcland.sample(cfg, n=12, threads=2)
    assert dense.spectrum_zeros.eq(0).all()
    big = (dense.N > 20) | (mode == "structured")
    assert 3 <= big.sum() < 12 or mode == "structured"
    pd.testing.assert_frame_equal(dense[~big], wide[~big])
    assert wide.spectrum_zeros[big].gt(0).sum() >= 3  # k < N: zeros left out
    for col in [*FIRST_ORDER, "n_neg", "n_zero", "n_pos", "numeric_type", "verdict"]:
        assert dense[col][big].astype(str).equals(wide[col][big].astype(str)), col
    for t in np.flatnonzero(big):
        d, s = dense.iloc[t], wide.iloc[t]
        z = s.spectrum_zeros
        assert s.spectrum_w.size + z == s.spectrum.size + z == d.N
        for col, norm in (("spectrum_w", d.hess_norm_w), ("spectrum", d.hess_norm)):
            full = mcland.full_spectrum(s[col], z)
            assert full.size == d.N and np.all(np.diff(full) >= 0)
            assert np.abs(full - d[col]).max() <= GAP * EPS * norm
        full = mcland.full_spectrum(s.spectrum_w, z)
        n_neg = int((full < -s.tol_neg).sum())
        n_zero = int((np.abs(full) <= s.tol_zero).sum())
        assert (n_neg, n_zero, int((full > s.tol_zero).sum())) == (d.n_neg, d.n_zero, d.n_pos)


def test_full_spectrum_inserts_the_zeros_in_order():
    ev = np.array([-2.0, -0.5, 0.0, 1.0, 3.0])
    got = mcland.full_spectrum(ev, 3)
    assert got.tolist() == [-2.0, -0.5, 0.0, 0.0, 0.0, 0.0, 1.0, 3.0]
    assert mcland.full_spectrum(ev, None).tolist() == ev.tolist()  # a run without the column
    assert mcland.full_spectrum(ev, float("nan")).tolist() == ev.tolist()
    assert mcland.full_spectrum([], 4).tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="zeros must be >= 0"):
        mcland.full_spectrum(ev, -1)


def test_runs_without_spectrum_zeros_read_it_as_0():
    """A 0.7.1 run directory (tests/data/analysis071/sample) has no ``spectrum_zeros``:
    ``mcland.load`` and the bounded-memory scan read 0 there, so its stored spectra are
    the full ones."""
    from pathlib import Path

    from mcland.rundir.scan import Scan

    run = Path(__file__).parent / "data" / "analysis071" / "sample" / "run"
    df = mcland.load(run)
    assert len(df) > 0 and str(df.spectrum_zeros.dtype) == "int32"
    assert df.spectrum_zeros.eq(0).all()
    assert (df.spectrum_w.map(len) == df.N).all()
    assert np.array_equal(mcland.full_spectrum(df.spectrum_w[0], df.spectrum_zeros[0]),
                          df.spectrum_w[0])  # fmt: skip
    with Scan(run) as scan:
        assert scan.count("spectrum_zeros = 0") == len(df)


def test_hidden_widths_can_be_drawn_log_uniformly():
    """``hidden_log_uniform``: P(width in [a, 2a)) = log 2 / log((hi + 1) / lo), the same
    for every octave (uniform draws: proportional to a); the range is kept, and the
    default draws are unchanged (the records of 0.8, checked against main's run)."""
    from mcland._kernels.batch import draw_point

    arch = {"depth": [3, 3], "d_y": [1, 1], "d_x_extra": [0, 0], "hidden": [4, 63]}
    for log in (False, True):
        plan = make_plan({"architecture": {**arch, "hidden_log_uniform": log}}, analyse=False)
        w = np.array([draw_point(plan.sampler, i).dims[1:3] for i in range(400)]).ravel()
        assert w.min() == 4 and w.max() == 63
        low, high = np.mean(w < 8), np.mean(w >= 32)  # the first and last octaves
        if log:  # 1/4 each; 800 draws: 5 sigma = 0.077
            assert abs(low - 0.25) < 0.08 and abs(high - 0.25) < 0.08
        else:  # 4/60 and 32/60
            assert abs(low - 4 / 60) < 0.05 and abs(high - 32 / 60) < 0.09
    assert (
        "hidden_log_uniform" not in make_plan({}, analyse=False).config.resolved()["architecture"]
    )


def test_report_spectral_density_counts_the_zeros_left_out(monkeypatch, tmp_path):
    """The report's spectral-density panels expand a structured row's stored spectrum with
    its ``spectrum_zeros`` (docs/structured.md): every panel's spectra have the point's N
    entries and the row's ``n_zero`` exact-or-tolerated zeros, not only the k stored."""
    import mcland.points.plan as plan_module
    from mcland.report.landscape import _spectral_panels
    from mcland.report.sections import fmt_tuple
    from mcland.rundir.scan import Scan

    monkeypatch.setattr(plan_module, "DENSE_AUTO_MAX_N", 20)
    cfg = _quick(output={"shard_size": 8}, classify={"hessian": "structured"})
    mcland.run(cfg, tmp_path / "run", n=8, progress=False)
    df = mcland.load(tmp_path / "run")
    assert df.spectrum_zeros.gt(0).sum() >= 4  # k < N: zeros left out
    n_of = {fmt_tuple(tuple(int(v) for v in d)): int(n) for d, n in zip(df.dims, df.N, strict=True)}
    with Scan(tmp_path / "run") as scan:
        panels = _spectral_panels(scan)
    assert panels
    for title, g in panels:
        arch = title.removeprefix("dims ").rsplit(", N = ", 1)[0]
        assert all(s.size == n_of[arch] for s in g["scaled"]), title
