"""``mcland dynamics`` at width (issue 21): its plan chooses the analysis paths as a sample
run's does (the dense Hessian up to the dense limit, the structured spectrum above it), its
flows analyse ``W*``, their ends and their plateaus on the path of the point's record, and
only what fits neither is refused, in one line with the estimate.  The structured path is
forced on small points by lowering the plan's dense limit, so that it can be compared with
the dense one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cli_helpers import refused

import mcland.points.plan as plan_module
from mcland.core import cost
from mcland.core.errors import TooLarge
from mcland.core.tolerances import EPS
from mcland.flow import experiment, small_init
from mcland.flow.run import dynamics, flow_vectors, make_job

WIDE = {"n": 2, "architecture": {"depth": [3, 3], "d_y": [4, 4], "d_x_extra": [2, 2],
                                 "hidden": [256, 256]}}  # fmt: skip  # N = 68,096
GAP = 64  # eigenvalue gap allowed, in eps ||H||_F, as tests/test_wide.py (docs/structured.md §5)


def test_a_dynamics_plan_above_the_dense_limit_takes_the_structured_path(monkeypatch):
    """0.10 refused this width (the flows' analyses were dense: 74 GB); now the points above
    the dense limit are structured, in the sample part and along the flows alike, and the
    flows' vectors count in a point's memory."""
    monkeypatch.setenv(cost.MEMORY_ENV, "1e9")
    job = make_job(WIDE)
    plan = job.plan
    assert (plan.structured, plan.n_max) == ("above", 68_096)
    assert plan.hessian(68_096) == "structured" and plan.hessian(cost.DENSE_AUTO_MAX_N) == "dense"
    st = cost.structured_cost((6, 256, 256, 4))
    point = (
        max(st.bytes, 3 * 8 * cost.DENSE_AUTO_MAX_N**2) + 8 * (4 + flow_vectors("escape")) * 68_096
    )
    buffers = 2 * plan.batch * 8 * plan.spectrum_width
    assert job.batch == plan.batch and plan.slots == (1e9 - buffers) // point == 1
    assert make_job({**WIDE, "classify": {"hessian": "structured"}}).plan.structured == "all"


def test_a_wide_dynamics_run_that_cannot_fit_is_refused_in_one_line(capsys, tmp_path, monkeypatch):
    cfg = tmp_path / "wide.toml"
    cfg.write_text(
        "n = 2\n[architecture]\ndepth = [3, 3]\nd_y = [4, 4]\nd_x_extra = [2, 2]\n"
        'hidden = [256, 256]\n[dynamics]\nexperiment = "small_init"\nintegrator = "explicit"\n',
        encoding="utf-8",
    )
    st = cost.structured_cost((6, 256, 256, 4))
    # the structured analysis alone fits; with small_init's 112 vectors of N it does not
    monkeypatch.setenv(cost.MEMORY_ENV, str(st.bytes + 8 * 4 * 68_096 + 2 * 4 * 8 * st.k))
    msg = refused(
        capsys, tmp_path, "dynamics", cfg, "--out", tmp_path / "run",
        fragments=("N = 68,096", "K of order up to 4,088", "112 vectors of N", "memory limit"),
    )  # fmt: skip
    assert msg.startswith("dynamics (architecture.hidden, depth at their maxima"), msg
    monkeypatch.setenv(cost.MEMORY_ENV, "1e9")
    with pytest.raises(
        TooLarge, match=r"^dynamics .*dense Hessian of N = 68,096.*111\.3 GB"
    ) as err:
        make_job({**WIDE, "classify": {"hessian": "dense"}})
    assert 'classify.hessian = "structured"' in str(err.value)  # what a dynamics run can do


QUICK = {
    "n": 8, "seed": 20261130,
    "architecture": {"depth": [2, 4], "d_y": [1, 3], "d_x_extra": [0, 1], "hidden": [2, 3]},
    "data": {"source": "gaussian", "m": 20, "noise": 0.5},
    "points": {"weight_global": 0.2, "weight_top_saddle": 1.6, "weight_other_saddle": 0.6,
               "kill_weights": [1, 1, 4, 4]},
    "output": {"spectrum": True, "original_spectrum": True},
    "dynamics": {"deltas": [1e-3], "max_evals": 3000, "t_max_steps": 1e15},
}  # fmt: skip


def test_the_flows_structured_analyses_agree_with_the_dense_ones(monkeypatch):
    """The plan's dense limit lowered to 20 parameters: the points above it are analysed by
    the structured spectrum, in their record (``spectrum_zeros > 0``) and along the flows
    (``W*``: eig_min_star, eig_max_star in original coordinates, within GAP eps ||H||_F of
    the dense ones; the flows' ends: the same S and type); the points at or below it give
    the dense run's rows bit for bit."""
    dense = dynamics(QUICK, threads=1)
    paths = []
    analyze_flat = experiment.analyze_flat

    def spy(*args, hessian="dense", **kwargs):
        paths.append((args[0].copy(), hessian))
        return analyze_flat(*args, hessian=hessian, **kwargs)

    monkeypatch.setattr(experiment, "analyze_flat", spy)
    monkeypatch.setattr(plan_module, "DENSE_AUTO_MAX_N", 20)
    wide = dynamics(QUICK, threads=2)
    big = (dense.N > 20).to_numpy()
    assert 2 <= big.sum() < len(dense)
    assert {int(np.sum(d[1:] * d[:-1])) > 20 for d, _ in paths} == {True, False}
    assert all((int(np.sum(d[1:] * d[:-1])) > 20) == (p == "structured") for d, p in paths)
    pd.testing.assert_frame_equal(dense[~big], wide[~big], check_exact=True)
    d, w = dense[big], wide[big]
    assert (w.spectrum_zeros > 0).all() and (d.spectrum_zeros == 0).all()
    # the record's eigenvalues and the flows' W* are the same analysis of the same point
    assert (w.eig_min_star == w.eig_min).all() and (w.eig_max_star == w.eig_max).all()
    for col in ("eig_min_star", "eig_max_star"):
        gap = np.abs(w[col].to_numpy() - d[col].to_numpy())
        assert (gap <= GAP * EPS * d.hess_norm.to_numpy()).all(), (col, gap / d.hess_norm)
    assert (w.settled_type == d.settled_type).all() and (w.status == d.status).all()
    assert [list(s) for s in w.settled_S] == [list(s) for s in d.settled_S]


def test_small_init_plateaus_of_structured_points_agree_with_the_dense_ones(monkeypatch):
    """small_init's flows do not depend on the analysis (its time unit is the data's): with
    the dense limit lowered, the points above it follow the same flows bit for bit, and
    their plateaus (each visit's point of smallest gradient), analysed by the structured
    spectrum, have the dense analysis's S, type and loss, eig_min within GAP eps ||H||_F
    (the plateau's, from the dense analysis)."""
    cfg = {**QUICK, "n": 6, "architecture": {**QUICK["architecture"], "d_y": [2, 3]},
           "dynamics": {"experiment": "small_init", "eps": [1e-3], "max_evals": 3000}}  # fmt: skip
    seen = []
    analyze = small_init.analyze

    def spy(dims, w, problem, tol, hessian="dense"):
        rep, loss_tol = analyze(dims, w, problem, tol, hessian)
        seen.append((hessian, rep.eig_min, rep.hess_norm))
        return rep, loss_tol

    monkeypatch.setattr(small_init, "analyze", spy)
    dense = dynamics(cfg, threads=1)
    plateaus, seen = seen, []
    monkeypatch.setattr(plan_module, "DENSE_AUTO_MAX_N", 20)
    wide = dynamics(cfg, threads=1)
    big = (dense.N > 20).to_numpy()
    assert big.sum() >= 2 and (wide.spectrum_zeros[big] > 0).all()
    flow = ["eps", "init_norm", "loss_start", "t_global", "n_evals", "loss_end", "loss_curve",
            "visits", "visited_S", "n_plateaus", "status", "settled_S", "settled_type"]  # fmt: skip
    assert dense[flow].map(repr).equals(wide[flow].map(repr))  # repr: floats round-trip
    pairs = [(p, q) for a, b in zip(dense.plateaus[big], wide.plateaus[big], strict=True)
             for p, q in zip(a, b, strict=True)]  # fmt: skip
    assert len(pairs) >= 2, "too few plateaus on the structured points"
    for p, q in pairs:
        assert (list(p["S"]), p["numeric_type"]) == (list(q["S"]), q["numeric_type"])
        assert p["loss"] == q["loss"]  # first-order facts: the same routines
    assert [h for h, _, _ in seen].count("structured") == len(pairs)
    for (_, e_dense, norm), (_, e_wide, _) in zip(plateaus, seen, strict=True):
        assert abs(e_dense - e_wide) <= GAP * EPS * norm, (e_dense, e_wide, norm)
