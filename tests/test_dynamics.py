"""Gradient-flow kernel and the escape measurement (first part of issue 15)."""

from __future__ import annotations

import math
from pathlib import Path

import naive
import numpy as np
import pytest

import mcland
from mcland._kernels.bundles import FlowControl
from mcland._kernels.flow import advance_time, clip_step, loss_and_gradient
from mcland.flow.gradient_flow import flow_problem, gradient_flow
from mcland.flow.run import escape

ROOT = Path(__file__).resolve().parents[1]

# depth-2 networks with small widths: strict saddles (and W* = 0) are common
SADDLE_CONFIG = {
    "n": 50,
    "seed": 7,
    "architecture": {"depth": [2, 2], "d_y": [2, 3], "d_x_extra": [0, 1], "hidden": [2, 3]},
    "data": {"m": 20},
}


def _random_net(rng, dims, m=12):
    W = [
        rng.standard_normal((dims[h + 1], dims[h])) / math.sqrt(dims[h])
        for h in range(len(dims) - 1)
    ]
    X = rng.standard_normal((dims[0], m))
    Y = rng.standard_normal((dims[-1], m))
    return W, X, Y


@pytest.mark.parametrize("dims", [(2, 3, 2), (3, 2, 4, 2), (3, 4, 4, 4, 2)])
def test_loss_and_gradient_match_numpy(rng, dims):
    W, X, Y = _random_net(rng, dims)
    problem = flow_problem(np.array(dims), X, Y)
    w = naive.ravel_weights(W)
    g = np.empty_like(w)
    L = loss_and_gradient(problem, w, g)
    assert pytest.approx(naive.loss(W, X, Y), rel=1e-12) == L
    np.testing.assert_allclose(
        g, naive.ravel_weights(naive.gradient(W, X, Y)), rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("integrator", ["explicit", "rosenbrock"])
@pytest.mark.parametrize("dims", [(2, 3, 2), (3, 2, 3, 2), (2, 3, 3, 3, 1)])
def test_adaptive_flow_matches_small_step_gd(rng, dims, integrator):
    """The time to reach a loss level: adaptive flow (either integrator) against explicit
    Euler with a step of ``1e-3 / lambda_max`` (NumPy).  Euler's error in the time is
    O(step), about 1e-3 relative here; the stated tolerance is 1%."""
    W, X, Y = _random_net(rng, dims)
    lam_max = float(np.linalg.eigvalsh(naive.hessian(W, X, Y))[-1])
    step = 1e-3 / lam_max
    L0 = naive.loss(W, X, Y)
    n = 20000
    _, losses = naive.gd_euler(W, X, Y, step, n)
    level = L0 - 0.5 * (L0 - losses[-1])  # half of the decrease over n steps
    k = int(np.argmax(losses <= level))  # first step below the level, interpolated
    t_gd = step * (k - 1 + (losses[k - 1] - level) / (losses[k - 1] - losses[k]))
    res = gradient_flow(W, X, Y, t_max=n * step, loss_mark=level, rtol=1e-8, integrator=integrator)
    assert res.status == "budget_time"
    assert res.t_mark == pytest.approx(t_gd, rel=1e-2)
    # the recorded loss (dense output) agrees with GD at a few times
    times = step * np.array([n // 10, n // 3, n - 1])
    res = gradient_flow(W, X, Y, t_max=n * step, t_record=times, rtol=1e-8, integrator=integrator)
    np.testing.assert_allclose(res.loss_record, losses[[n // 10, n // 3, n - 1]], rtol=1e-2)


def test_escape_time_follows_linearisation():
    """At a depth-2 strict saddle, t_escape(delta) - t_escape(10 delta) tends to
    ``ln(10) / |eig_min|``: the slope of t_escape against ln(1/delta) is 1/|eig_min| within
    2% for delta <= 1e-4 (the corrections are O(delta))."""
    df = mcland.sample(SADDLE_CONFIG)
    sid = int(df.loc[df["theory_type"] == "strict_saddle", "sample_id"].iloc[0])
    deltas = [1e-4, 1e-5, 1e-6, 1e-7, 1e-8]
    r = escape(SADDLE_CONFIG, sid, deltas, budget=3000)
    assert (r["theory_type"] == "strict_saddle").all()
    assert r["status"].isin(["escaped", "escaped_budget"]).all()
    slope = np.polyfit(np.log(1.0 / np.array(deltas)), r["t_escape"].to_numpy(), 1)[0]
    assert slope * abs(r["eig_min_star"].iloc[0]) == pytest.approx(1.0, rel=0.02)
    assert (r["gd_steps"] == r["t_escape"] / r["eta"]).all()
    assert np.isfinite(r["t_linear"]).all()


def test_global_minimizer_relaxes_back():
    df = mcland.sample(SADDLE_CONFIG)
    sid = int(df.loc[df["theory_type"] == "global_minimizer", "sample_id"].iloc[0])
    r = escape(SADDLE_CONFIG, sid, [1e-2, 1e-6])
    assert (r["status"] == "relaxed").all()
    assert r["relaxed_back"].all() and r["reached_global"].all()
    assert r["t_escape"].isna().all()


def test_budget_is_a_status(rng):
    W, X, Y = _random_net(rng, (2, 3, 2))
    res = gradient_flow(W, X, Y, t_max=1e6, max_evals=40)
    assert res.status == "budget_evals" and res.n_evals <= 40
    res = gradient_flow(W, X, Y, t_max=1e-3)
    assert res.status == "budget_time" and res.t_end == pytest.approx(1e-3)
    df = mcland.sample(SADDLE_CONFIG)
    sid = int(df.loc[df["theory_type"] == "strict_saddle", "sample_id"].iloc[0])
    r = escape(SADDLE_CONFIG, sid, [1e-6], budget=10)
    assert r["status"].iloc[0] == "budget" and math.isnan(r["t_escape"].iloc[0])


def test_escape_is_bit_reproducible():
    a = escape(SADDLE_CONFIG, 1, [1e-3, 1e-6], budget=2000)
    b = escape(SADDLE_CONFIG, 1, [1e-3, 1e-6], budget=2000)
    curves = ["t_curve", "loss_curve"]
    assert a.drop(columns=curves).equals(b.drop(columns=curves))  # bit for bit, NaN == NaN
    for col in curves:
        assert np.array_equal(np.array(a[col].tolist()), np.array(b[col].tolist()), equal_nan=True)
    c = escape(SADDLE_CONFIG, 1, [1e-3, 1e-6], budget=2000, seed=8)
    assert not a["t_escape"].equals(c["t_escape"]) or not a["S"].equals(c["S"])


def test_bad_arguments():
    with pytest.raises(mcland.MclandError):
        escape(SADDLE_CONFIG, 1, [])
    with pytest.raises(mcland.MclandError):
        escape(SADDLE_CONFIG, 1, [-1e-3])
    with pytest.raises(mcland.MclandError):
        escape(SADDLE_CONFIG, 1, [1e-3], f=1.5)


def test_a_network_too_large_for_the_dense_hessian_runs_matrix_free():
    """``N = 91 * 91 + 91 = 8372``: the dense Hessian and its factors (``2 N^2`` float64,
    1.04 GiB) were refused up to 0.10; ``auto`` and ``rosenbrock`` now take the matrix-free
    implicit steps (tests/test_rosenbrock_krylov.py; the refusal of work arrays above the
    limit is tested there); a bad integrator name is still refused."""
    W = [np.zeros((91, 91)), np.zeros((1, 91))]
    X, Y = np.eye(91), np.zeros((1, 91))
    for integrator in ("auto", "rosenbrock", "explicit"):
        res = gradient_flow(W, X, Y, t_max=1.0, integrator=integrator)  # W = 0, Y = 0: critical
        assert res.status == "settled" and res.krylov == (integrator != "explicit")
    with pytest.raises(mcland.MclandError, match="integrator must be one of"):
        gradient_flow(W, X, Y, t_max=1.0, integrator="implicit")


def test_double_double_time_takes_steps_below_the_float64_resolution():
    """At ``t = 1e13`` float64 resolves ``2e-3``: ``clip_step`` keeps a step of ``1e-4``
    and asks for the double-double time, which ``advance_time`` then carries exactly; a
    step that would not move even that (``<= 1e-30 t``) is refused (0)."""
    t0 = 1e13
    control = FlowControl(1e-6, 0.0, 1e-5, math.inf, 5.0, 0.2, 0.0, 0.0, -math.inf, -math.inf,
                          1e6, 1e15, 0.0, np.zeros(1))  # fmt: skip
    assert clip_step(1.0, t0, 0.0, False, control) == (1.0, False)  # float64 resolves it
    assert clip_step(1e-4, t0, 0.0, False, control) == (1e-4, True)
    assert clip_step(1e-18, t0, 0.0, True, control)[0] == 0.0
    t, lo = t0, 0.0
    for _ in range(10_000):
        t, lo = advance_time(t, lo, 1e-4, True)
    assert (t - t0) + lo == pytest.approx(1.0, rel=1e-12)
    assert abs(lo) <= 0.5 * np.spacing(t)
    assert advance_time(t0, 0.0, 1e-4, False) == (t0, 0.0)  # the float64 sum loses it


@pytest.mark.parametrize(("sid", "t_escape"), [(30, 1.4091e11), (6, 2.9808e12)])
def test_escape_after_a_plateau_longer_than_the_float64_time_resolution(sid, t_escape):
    """Points 30 and 6 of runs/dynamics_paper.toml (depth 5, ``S`` empty, four zero blocks):
    at ``delta = 1e-6`` the flow leaves the plateau at ``t = 1.4e11`` (``3.0e12``), where
    ``1e-15 t = 1.4e-4`` (``3.0e-3``), and the transient around the escape level asks for
    steps down to ``1.4e-4`` (``9.3e-4``).  Both used to end ``failed`` (0.7.0 and before:
    a step below ``1e-15 t`` was an underflow), point 30 just after crossing the escape
    level, point 6 before; they escape and settle, with an escape time ``100 x`` that at
    ``1e-5`` (``p = n_kill - 2 = 2``; measured 99.9995, 100.0003)."""
    r = escape(ROOT / "runs" / "dynamics_paper.toml", sid, [1e-5, 1e-6], budget=20000,
               t_max_steps=1e15)  # fmt: skip
    assert (r["H"] == 5).all() and (r["n_kill"] == 4).all() and (r["s"] == 0).all()
    assert r["status"].tolist() == ["escaped", "escaped"]
    t = r["t_escape"].to_numpy()
    assert t[1] == pytest.approx(t_escape, rel=1e-4)
    assert t[1] / t[0] == pytest.approx(100.0, rel=1e-4)
    assert (r["t_end"] > r["t_escape"]).all() and (r["n_evals"] < 20000).all()
