"""The matrix-free linearly implicit steps (mcland/_kernels/krylov.py): conjugate gradients
on Hessian-vector products against ``numpy.linalg.solve`` on the dense ``I + c Hess`` of
the NumPy reference, the breakdown on an indefinite system, and Krylov flows against the
dense ones (the same ROS34PW2 steps with LU factors) and at widths the dense Hessian
cannot take (docs/dynamics.md, "Matrix-free implicit steps")."""

from __future__ import annotations

from pathlib import Path

import naive
import numpy as np
import pytest

import mcland
from mcland._kernels import hvp as khvp
from mcland._kernels import krylov as kk
from mcland._kernels.bundles import StiffKrylov
from mcland.flow import gradient_flow as gf
from mcland.points.inspect import check_weights

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "runs" / "dynamics_quick.toml"
RTOL = 1e-6  # the flows' error tolerance (gradient_flow's default)


def _flat(weights, X, Y):
    dims, w = check_weights(weights, X.shape[0], Y.shape[0])
    return dims, w, gf.flow_problem(dims, X, Y)


def _solve(weights, X, Y, c, b, tol):
    """``(ok, x, counts)`` of :func:`.krylov.cg_solve` for ``(I + c Hess) x = b``."""
    dims, w, problem = _flat(weights, X, Y)
    f = khvp.hvp_factors(dims, w, problem.Sxx, problem.Syx)
    N = w.size
    S = StiffKrylov(*(np.empty(N) for _ in range(4)), np.empty(khvp.work_size(dims)),
                    np.zeros(2, np.int64), np.zeros(2), 1e-3, 500)  # fmt: skip
    x = np.empty(N)
    ok = kk.cg_solve(f, c, b, x, S, tol)
    return ok, x, S.counts.copy()


def _points(rng):
    """Point 0 of runs/dynamics_quick.toml (depth 3, a strict saddle) and random weights of
    the same shapes on the same data."""
    W, X, Y = mcland.draw_point(QUICK, 0)
    return [("saddle", W, X, Y), ("random", [rng.standard_normal(Wh.shape) for Wh in W], X, Y)]


def test_cg_solve_matches_numpy_solve(rng):
    """``c = 0.9 / |lambda_min|`` (``I + c Hess`` positive definite, condition up to ~90):
    the solution to ``||A^-1|| tol`` (with 10x room for the recursive residual's drift);
    at the saddle, whose Hessian has rank 4 of 21 (3 distinct nonzero eigenvalues),
    conjugate gradients end in at most (distinct nonzero eigenvalues + 1) iterations."""
    for what, W, X, Y in _points(rng):
        Hs = naive.hessian(W, X, Y)
        ev = np.linalg.eigvalsh(Hs)
        assert ev[0] < 0
        c = 0.9 / abs(ev[0])
        A = np.eye(ev.size) + c * Hs
        b = rng.standard_normal(ev.size)
        tol = 1e-12 * np.linalg.norm(b)
        ok, x, counts = _solve(W, X, Y, c, b, tol)
        assert ok, what
        x_ref = np.linalg.solve(A, b)
        assert np.linalg.norm(x - x_ref) <= 10.0 * tol / (1.0 - c * abs(ev[0])), what
        assert counts[kk.HVP] == counts[kk.ITERATIONS]
        if what == "saddle":
            scale = np.abs(ev).max()
            nonzero = ev[np.abs(ev) > 1e-9 * scale]
            distinct = np.unique(np.round(nonzero / scale, 8)).size
            assert nonzero.size < ev.size / 2  # the rank is far below N
            assert counts[kk.ITERATIONS] <= distinct + 1, (counts, distinct)


def test_cg_solve_reports_a_breakdown(rng):
    """``c = 2 / |lambda_min|``: ``I + c Hess`` is indefinite; from ``b`` along the
    unstable eigenvector the first direction has ``p^T A p < 0``: the solve fails."""
    (_, W, X, Y), _ = _points(rng)
    ev, vecs = np.linalg.eigh(naive.hessian(W, X, Y))
    ok, _, counts = _solve(W, X, Y, 2.0 / abs(ev[0]), vecs[:, 0].copy(), 1e-12)
    assert not ok
    assert counts[kk.ITERATIONS] == 1


def _escape(monkeypatch, krylov, *, fraction=kk.SOLVE_FRACTION, integrator="rosenbrock"):
    """The escape from point 0 of runs/dynamics_quick.toml at ``delta = 1e-3`` to the level
    half-way to the next critical value, with the dense or the Krylov implicit steps."""
    W, X, Y = mcland.draw_point(QUICK, 0)
    dims, w_star, problem = _flat(W, X, Y)
    V = np.random.default_rng(1).standard_normal(w_star.size)
    w0 = w_star + 1e-3 * np.linalg.norm(w_star) * V / np.linalg.norm(V)
    L_star = naive.loss(W, X, Y)
    below = naive.critical_values(X, Y, 2)
    level = L_star - 0.5 * (L_star - below[below < L_star * (1 - 1e-9)].max())
    monkeypatch.setattr(gf, "DENSE_STIFF_MAX_N", 0 if krylov else 10**9)
    monkeypatch.setattr(kk, "SOLVE_FRACTION", fraction)
    return gf.integrate(dims, w0, problem, t_max=1e6, rtol=RTOL, w_ref=w_star, loss_mark=level,
                        grad_stop=1e-6, settle_after_mark=True, integrator=integrator,
                        t_record=np.array([0.1, 0.3]), record_weights=True)  # fmt: skip


def test_krylov_escape_matches_the_dense_one(monkeypatch):
    """Same steps, another linear solver: the same status, escape time and end within ``10
    rtol`` relative (measured: the same 551 steps, ``t_escape`` within 1.7e-12, the final
    loss equal, the weights at t = 0.1 and 0.3 within 1e-7 of their displacement); the
    Krylov run counts its products and factor builds; ``auto`` takes Krylov steps too (68 of
    516) and escapes within 3.2e-6 (mostly explicit steps, another method)."""
    dense = _escape(monkeypatch, False)
    kry = _escape(monkeypatch, True)
    assert not dense.krylov and kry.krylov
    assert dense.n_hvps == 0 and kry.n_hvps >= kry.krylov_iters > 0
    assert kry.status == dense.status == "settled"
    assert abs(kry.t_mark / dense.t_mark - 1) <= 10 * RTOL
    assert abs(kry.loss_end / dense.loss_end - 1) <= 10 * RTOL
    assert 0 < kry.n_stiff_steps <= kry.n_hessians <= kry.n_stiff_steps + 1  # one per point
    disp = np.linalg.norm(dense.w_record[0] - dense.w_record[1])
    assert np.linalg.norm(kry.w_record - dense.w_record) <= 10 * RTOL * disp
    auto = _escape(monkeypatch, True, integrator="auto")
    assert auto.krylov and auto.status == "settled" and auto.n_stiff_steps > 0
    assert abs(auto.t_mark / dense.t_mark - 1) <= 10 * RTOL


def test_tighter_solves_do_not_change_the_trajectory(monkeypatch):
    """The solve tolerance ``SOLVE_FRACTION`` (1e-3 of the step's error tolerance) against
    1e-7 of it: the escape time and the recorded weights agree within ``rtol`` (measured
    1.7e-12 and 1e-7; with ``SOLVE_FRACTION = 1`` instead, 1.8e-5 and 5e-4: seen failing),
    while the tighter solves take more iterations (10,791 against
    8,039)."""
    loose = _escape(monkeypatch, True)
    tight = _escape(monkeypatch, True, fraction=1e-7)
    assert tight.krylov_iters > loose.krylov_iters
    assert abs(tight.t_mark / loose.t_mark - 1) <= RTOL
    disp = np.linalg.norm(loose.w_record[0] - loose.w_record[1])
    assert np.linalg.norm(tight.w_record - loose.w_record) <= RTOL * disp


def test_a_wide_network_runs_the_implicit_steps(monkeypatch):
    """Hidden width 160, depth 3 (``N = 27,200``: the dense Hessian and its factors would
    take 11 GiB): ``auto`` and ``rosenbrock`` no longer refuse; a short ``rosenbrock`` run
    from a perturbed saddle ends at the weights of the explicit pair within ``100 rtol`` of
    the displacement (both follow the same flow to the same time; a global error, the sum
    of a few hundred local ones of at most ``rtol`` each: measured 3.8e-5)."""
    cfg = {"n": 1, "seed": 5, "data": {"m": 40},
           "architecture": {"depth": [3, 3], "d_y": [4, 4], "d_x_extra": [2, 2],
                            "hidden": [160, 160]}}  # fmt: skip
    W, X, Y = mcland.draw_point(cfg, 0)
    dims, w_star, problem = _flat(W, X, Y)
    assert w_star.size == 27_200 and 16 * w_star.size**2 > 2**30
    V = np.random.default_rng(2).standard_normal(w_star.size)
    w0 = w_star + 1e-2 * np.linalg.norm(w_star) * V / np.linalg.norm(V)
    g = np.empty_like(w0)
    gf.loss_and_gradient(problem, w0.copy(), g)
    t_max = 0.25 * np.linalg.norm(w0 - w_star) / np.linalg.norm(g)  # 250 first steps (h0)
    res = {}
    for integrator in ("explicit", "rosenbrock", "auto"):
        res[integrator] = gf.integrate(dims, w0, problem, t_max=t_max, rtol=RTOL, w_ref=w_star,
                                       max_evals=50_000, integrator=integrator)  # fmt: skip
    assert res["rosenbrock"].krylov and res["rosenbrock"].n_stiff_steps > 0
    assert res["auto"].krylov and res["auto"].status == "budget_time"
    assert res["explicit"].status == res["rosenbrock"].status == "budget_time"
    w_e = naive.ravel_weights(res["explicit"].weights)
    w_k = naive.ravel_weights(res["rosenbrock"].weights)
    assert np.linalg.norm(w_k - w_e) <= 100 * RTOL * np.linalg.norm(w_e - w_star)


@pytest.mark.parametrize("hidden", [512])
def test_the_refusal_names_the_estimate(hidden, monkeypatch):
    """A run whose matrix-free work arrays exceed the limit is refused in one line with the
    estimate (here the limit lowered to 1 MiB)."""
    monkeypatch.setattr(gf, "STIFF_BYTES_MAX", 1 << 20)
    dims = np.array([6, hidden, hidden, 4])
    N = int(np.sum(dims[1:] * dims[:-1]))
    need = gf.stiff_bytes(dims, "auto")
    assert 20 * 8 * N <= need < 1 << 30
    with pytest.raises(
        mcland.MclandError,
        match=r"needs \d+ MiB of work arrays for N = 267,264 weights \(limit 1 MiB\)",
    ):
        gf.integrate(dims, np.zeros(N), gf.flow_problem(dims, np.ones((6, 3)), np.ones((4, 3))),
                     t_max=1.0, w_ref=np.zeros(N), integrator="auto")  # fmt: skip


def test_auto_leaves_implicit_steps_that_cost_more_than_they_save():
    """Point 11 of runs/dynamics_wide.toml (dims (5, 22, 3), ``N = 176``, a strict saddle
    with ``eig_max / |eig_min|`` about 200): matrix-free implicit steps cost tens of
    evaluations each (their Hessian-vector products), so ``auto`` must leave a stretch whose
    steps do not beat the explicit ones at that price (the break-even rule of
    :mod:`mcland._kernels.integrator`).  Escaping to the same time, ``auto`` spends at most
    twice the evaluations of the explicit pair (measured 2,768 against 2,194; with the dense rule ``h rho <
    4``, 10,311: seen failing) and reaches the same loss within ``10
    rtol``."""
    W, X, Y = mcland.draw_point(ROOT / "runs" / "dynamics_wide.toml", 11)
    dims, w_star, problem = _flat(W, X, Y)
    assert w_star.size == 176 > gf.DENSE_STIFF_MAX_N
    V = np.random.default_rng(11).standard_normal(w_star.size)
    w0 = w_star + 1e-2 * np.linalg.norm(w_star) * V / np.linalg.norm(V)
    res = {}
    for integrator in ("explicit", "auto"):
        res[integrator] = gf.integrate(dims, w0, problem, t_max=0.05, rtol=RTOL, w_ref=w_star,
                                       max_evals=100_000, integrator=integrator)  # fmt: skip
    assert res["auto"].krylov and res["auto"].n_switches > 0
    assert res["explicit"].status == res["auto"].status == "budget_time"
    assert res["auto"].n_evals <= 2 * res["explicit"].n_evals
    assert abs(res["auto"].loss_end / res["explicit"].loss_end - 1) <= 10 * RTOL
