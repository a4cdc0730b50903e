"""The per-point dynamics API (issue 15): point_records / record_schema, escape from
non-strict saddles, small initialisation and its plateaus."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import naive
import numpy as np
import pyarrow as pa
import pytest

import mcland
from mcland.core.config import Dynamics
from mcland.flow.gradient_flow import gradient_flow
from mcland.flow.plateaus import plateau_runs
from mcland.flow.records import _records, point_records
from mcland.flow.schema import record_schema
from mcland.points.plan import make_plan
from mcland.points.records import SCHEMA

CONFIG = {
    "n": 40,
    "seed": 3,
    "architecture": {"depth": [2, 4], "d_y": [2, 3], "d_x_extra": [0, 1], "hidden": [2, 3]},
    "data": {"m": 20},
}
QUICK = {"deltas": [1e-2, 1e-5], "eps": [1e-2, 1e-6], "max_evals": 20_000}


def _times(rows, key="t_escape"):
    return np.array([math.nan if r[key] is None else r[key] for r in rows])


# ---------------------------------------------------------------------- schema and API


@pytest.mark.parametrize("experiment", ["escape", "small_init"])
def test_rows_follow_the_schema(experiment):
    schema = record_schema(experiment)
    for fl in schema:
        assert fl.metadata[b"description"].decode().strip(), fl.name
    # the point's own columns come from the sampler's record: no name is shared but the key
    assert set(schema.names) & set(SCHEMA.names) == {"sample_id"}
    plan = make_plan(CONFIG)
    settings = Dynamics(experiment=experiment, **QUICK)
    rows = [r for sid in range(4) for r in point_records(plan, settings, sid)]
    assert len(rows) == 4 * 2
    for row in rows:
        assert list(row) == schema.names
    table = pa.Table.from_pylist(rows, schema=schema)  # types and nullability hold
    assert table.num_rows == 8
    assert table.column("sample_id").to_pylist() == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="experiment must be one of"):
        record_schema("nope")


def test_point_records_are_bit_identical_across_threads():
    plan = make_plan(CONFIG)
    settings = Dynamics(experiment="small_init", **QUICK)
    ids = list(range(6))
    serial = [point_records(plan, settings, i) for i in ids]
    with ThreadPoolExecutor(2) as pool:
        threaded = list(pool.map(lambda i: point_records(plan, settings, i), ids[::-1]))[::-1]
    a = pa.Table.from_pylist(
        [r for rows in serial for r in rows], schema=record_schema("small_init")
    )
    b = pa.Table.from_pylist(
        [r for rows in threaded for r in rows], schema=record_schema("small_init")
    )
    assert _ipc_bytes(a) == _ipc_bytes(b)  # bit for bit, NaN included


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_escape_wrapper_joins_the_record():
    r = mcland.escape(CONFIG, 1, [1e-3], budget=5000)
    assert {"theory_type", "S", "critical_values", "t_escape", "settled_index"} <= set(r.columns)
    assert len(r) == 1


# ---------------------------------------------------------------------- escape: non-strict


def _gaussian_problem(rng, d_x, d_y, m=30):
    X = rng.standard_normal((d_x, m))
    Y = rng.standard_normal((d_y, d_x)) @ X + 0.3 * rng.standard_normal((d_y, m))
    return X, Y


@pytest.mark.parametrize(("H", "deltas"), [(3, [1e-3, 1e-4, 1e-5, 1e-6]), (4, [1e-2, 3e-3, 1e-3])])
def test_escape_exponent_at_zero(rng, H, deltas):
    """At ``W = 0`` (a non-strict saddle for ``H >= 3``) the flow leaves a ball of radius
    ``delta`` in time ``~ delta^-(H-2)``: the fitted exponent ``p`` is ``H - 2`` within 0.02
    (measured: 1.000 at depth 3, 2.00 at depth 4)."""
    dims = np.array([3] + [3] * (H - 1) + [2])
    X, Y = _gaussian_problem(rng, 3, 2)
    settings = Dynamics(experiment="escape", deltas=deltas, t_max_steps=1e12)
    N = int(np.sum(dims[1:] * dims[:-1]))
    rows = _records(dims, np.zeros(N), X, Y, settings, seed=1, sample_id=0)
    assert all(r["status"] == "escaped" for r in rows)
    assert all(r["eig_max_star"] == 0.0 and r["w_scale"] > 0 for r in rows)
    p = -np.polyfit(np.log(deltas), np.log(_times(rows)), 1)[0]
    assert p == pytest.approx(H - 2, abs=0.02)
    # the escape goes to the next critical value down: S = {1}
    assert all(r["settled_S"] == [1] and r["settled_index"] >= 0 for r in rows)


def test_escape_exponent_at_sampled_empty_S_saddles():
    """At sampled non-strict saddles with ``S`` empty (``W != 0``), what the data show:
    ``p = n_kill - 2`` within 0.05 (``n_kill`` the number of zero complement blocks), e.g.
    ``p = 1`` at depth 4 with three of four blocks zero."""
    cfg = {**CONFIG, "n": 60, "architecture": {**CONFIG["architecture"], "depth": [3, 4]}}
    df = mcland.sample(cfg)
    pick = df[(df["theory_type"] == "non_strict_saddle") & (df["s"] == 0)]
    assert len(pick) >= 3
    plan = make_plan(cfg)
    deltas = [1e-3, 1e-4, 1e-5]
    settings = Dynamics(experiment="escape", deltas=deltas, t_max_steps=1e12)
    seen = set()
    for _, rec in pick.iterrows():
        rows = point_records(plan, settings, int(rec["sample_id"]))
        t = _times(rows)
        if not np.isfinite(t).all():
            continue  # budget hit: a record, not an error
        p = -np.polyfit(np.log(deltas), np.log(t), 1)[0]
        assert p == pytest.approx(int(rec["n_kill"]) - 2, abs=0.05), int(rec["sample_id"])
        seen.add((int(rec["H"]), int(rec["n_kill"])))
    assert len(seen) >= 2


# ---------------------------------------------------------------------- small initialisation


def _whitened_depth2(m=40, s=(3.0, 1.5, 0.75)):
    """Depth 2, ``d = 3``: ``X`` with orthogonal rows of norm ``sqrt(m)`` (``Sxx = m I``) and
    ``Y = T X``, ``T`` of singular values ``s``."""
    rng = np.random.default_rng(5)
    Q, _ = np.linalg.qr(rng.standard_normal((m, 3)))
    X = math.sqrt(m) * Q.T
    U, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    V, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    T = U @ np.diag(s) @ V.T
    return np.array([3, 3, 3]), X, T @ X, m, np.array(s)


@pytest.mark.parametrize("integrator", ["explicit", "rosenbrock"])
def test_small_init_visits_the_staircase_in_order(integrator):
    """Depth 2, whitened data, ``eps = 1e-6``: plateaus at ``S = {}, {1}, {1, 2}``, then the
    global minimum ``{1, 2, 3}``; each plateau's loss is the enumerated critical value of its
    S within ``1e-3 lambda_r``."""
    dims, X, Y, _, _ = _whitened_depth2()
    settings = Dynamics(experiment="small_init", eps=[1e-6], integrator=integrator)
    (row,) = _records(dims, np.zeros(27), X, Y, settings, seed=0, sample_id=0)
    assert row["status"] == "global" and row["reached_global"]
    assert row["visited_S"] == [[], [1], [1, 2], [1, 2, 3]]
    assert [p["S"] for p in row["plateaus"]] == [[], [1], [1, 2]]
    problem = mcland.Problem.from_data(X, Y)
    lam, tr = problem.lam, problem.tr_syy
    for p in row["plateaus"]:
        expected = tr - sum(lam[i - 1] for i in p["S"])
        assert p["value"] == pytest.approx(expected, rel=1e-12)
        assert abs(p["loss"] - expected) <= 1e-3 * lam[-1]
        assert p["t_start"] < p["t_min_grad"] < p["t_end"]
    starts = [p["t_start"] for p in row["plateaus"]]
    assert starts == sorted(starts) and starts[0] == 0.0
    # the saddles are strict (depth 2): negative curvature at the point of smallest gradient
    assert all(p["eig_min"] < 0 for p in row["plateaus"])
    # the loss curve is a staircase: non-increasing where recorded
    curve = np.array(row["loss_curve"])
    curve = curve[np.isfinite(curve)]
    assert np.all(np.diff(curve) <= 1e-9 * curve[0])


def test_small_init_plateaus_last_like_log_one_over_eps():
    """Depth 2, ``Sxx = m I``, ``Y = T X``: near a saddle the product's mode ``i`` grows like
    ``eps^2 exp(4 m s_i t)``, and so does ``||grad L||^2``; the criterion ``t ||grad||^2 =
    threshold lambda_r`` ends the plateau before mode ``i`` at ``4 m s_i t + ln t = 2
    ln(1/eps) + c``.  Tested for the first two plateaus (modes 1 and 2): slope 2 within 2%
    (measured 1.996 and 1.975).  So the durations grow like ``ln(1/eps)``: the second's by
    ``1/(2 m s_2) - 1/(2 m s_1)`` per unit of ``ln(1/eps)`` up to the ``ln t`` term (measured
    0.90 of it), linearly (residual under 2% of the range)."""
    dims, X, Y, m, s = _whitened_depth2()
    eps = [1e-6, 1e-8, 1e-10, 1e-12]
    settings = Dynamics(experiment="small_init", eps=eps)
    rows = _records(dims, np.zeros(27), X, Y, settings, seed=0, sample_id=0)
    assert all(r["visited_S"] == [[], [1], [1, 2], [1, 2, 3]] for r in rows)
    x = np.log(1.0 / np.array(eps))
    for k in (0, 1):
        t_end = np.array([r["plateaus"][k]["t_end"] for r in rows])
        slope = np.polyfit(x, 4 * m * s[k] * t_end + np.log(t_end), 1)[0]
        assert slope == pytest.approx(2.0, rel=0.02), k
    dur = np.array([r["plateaus"][1]["t_end"] - r["plateaus"][1]["t_start"] for r in rows])
    fit = np.polyfit(x, dur, 1)
    assert np.max(np.abs(np.polyval(fit, x) - dur)) <= 0.02 * (dur.max() - dur.min())
    assert fit[0] == pytest.approx(1 / (2 * m * s[1]) - 1 / (2 * m * s[0]), rel=0.15)


def test_small_init_uses_the_points_own_stream():
    """``W(0) = eps a G``, ``G`` drawn from ``SeedSequence([seed, sample_id, 16])`` with
    ``N(0, 1/d_{h-1})`` entries, on the data of the drawn point."""
    plan = make_plan(CONFIG)
    settings = Dynamics(experiment="small_init", eps=[1e-3])
    (row,) = point_records(plan, settings, 2)
    weights, X, Y = mcland.draw_point(CONFIG, 2)
    dims = [weights[0].shape[1]] + [W.shape[0] for W in weights]
    H = len(weights)
    rng = np.random.default_rng(np.random.SeedSequence([CONFIG["seed"], 2, 16]))
    G = [rng.standard_normal((dims[h + 1], dims[h])) / math.sqrt(dims[h]) for h in range(H)]
    a = (np.linalg.norm(Y @ X.T) / np.linalg.norm(X @ X.T)) ** (1.0 / H)
    W0 = [1e-3 * a * Gh for Gh in G]
    assert row["init_norm"] == pytest.approx(np.linalg.norm(naive.ravel_weights(W0)), rel=1e-12)
    assert row["loss_start"] == pytest.approx(naive.loss(W0, X, Y), rel=1e-12)


# ---------------------------------------------------------------------- plateau criterion


def test_plateau_runs_on_a_synthetic_staircase():
    t = np.geomspace(1e-2, 1e3, 301)
    rate = np.ones_like(t)
    loss = np.full_like(t, 10.0)
    rate[(t > 1) & (t < 3)] = 1e-3  # a plateau, t_end / t_start = 3
    rate[(t > 10) & (t < 11)] = 1e-3  # too short
    rate[t < 0.1] = 1e-3  # the start
    rate[t > 200] = np.nan  # the run ended at t = 200 ...
    rate[(t > 100) & (t <= 200)] = 1e-3  # ... on its final state: not a plateau
    runs = plateau_runs(t, rate, loss, 10.0, 1e-2, 1.25)
    assert len(runs) == 2
    assert runs[0][0] == 0 and t[runs[0][1]] < 0.1
    a, b = runs[1]
    assert 1 < t[a] < 1.05 and 2.9 < t[b] < 3
    # ... unless the loss dropped after the last grid time: then it is a plateau too
    runs = plateau_runs(t, rate, loss, 9.0, 1e-2, 1.25)
    assert len(runs) == 3 and t[runs[2][1]] <= 200 < t[runs[2][1] + 1]
    # an abrupt drop between two grid times splits a run that meets the rate criterion
    rate[(t >= 1) & (t < 100)] = 1e-3
    loss[t > 20] = 5.0
    runs = plateau_runs(t, rate, loss, 10.0, 1e-2, 1.25)
    assert [(round(t[a], 1), t[b] < 20 < t[b + 1]) for a, b in runs[1:2]] == [(1.0, True)]
    assert t[runs[2][0]] > 20 and t[runs[2][1]] < 100
    assert plateau_runs(t, np.full_like(t, np.nan), loss, 10.0, 1e-2, 1.25) == []


# ---------------------------------------------------------------------- dense output


@pytest.mark.parametrize("dims", [(2, 3, 2), (3, 2, 3, 2)])
def test_recorded_weights_match_small_step_gd(rng, dims):
    """The weights at recording times (dense output): against explicit Euler GD with a step
    of ``1e-3 / lambda_max`` within 1% (Euler's error), and against the end point of a flow
    stopped at that time within ``1e-5`` relative (two runs of the same integrator)."""
    W = [
        rng.standard_normal((dims[h + 1], dims[h])) / math.sqrt(dims[h])
        for h in range(len(dims) - 1)
    ]
    X = rng.standard_normal((dims[0], 12))
    Y = rng.standard_normal((dims[-1], 12))
    lam_max = float(np.linalg.eigvalsh(naive.hessian(W, X, Y))[-1])
    step = 1e-3 / lam_max
    n = 3000
    W_gd, _ = naive.gd_euler(W, X, Y, step, n)
    t = n * step
    res = gradient_flow(
        W, X, Y, t_max=10 * t, t_record=np.array([t]), rtol=1e-8, record_weights=True
    )
    w_gd = naive.ravel_weights(W_gd)
    np.testing.assert_allclose(res.w_record[0], w_gd, rtol=0, atol=1e-2 * np.linalg.norm(w_gd))
    stop = gradient_flow(W, X, Y, t_max=t, rtol=1e-8)
    w_stop = naive.ravel_weights(stop.weights)
    assert np.linalg.norm(res.w_record[0] - w_stop) <= 1e-5 * np.linalg.norm(w_stop)


def test_small_init_flow_matches_small_step_gd():
    """A small-initialisation run through the depth-2 staircase (eps = 1e-3): the times at
    which the loss crosses the middle of each drop agree with explicit Euler GD with a step
    of ``1e-3 / lambda_max`` (``lambda_max`` at the global minimum, bounded by ``4 m s_1``)
    within 1%."""
    dims, X, Y, m, s = _whitened_depth2()
    rng = np.random.default_rng(1)
    W0 = [1e-3 * rng.standard_normal((3, 3)) / math.sqrt(3) for _ in range(2)]
    step = 1e-3 / (4 * m * s[0])
    n = 100_000
    _, losses = naive.gd_euler(W0, X, Y, step, n)
    problem = mcland.Problem.from_data(X, Y)
    values = problem.critical_values(3)[::-1]  # descending: S = {}, {1}, {1,2}, {1,2,3}
    assert losses[-1] < values[-2]  # GD went down the whole staircase
    for hi, lo in zip(values[[0, 4, 6]], values[[4, 6, 7]], strict=True):
        level = 0.5 * (hi + lo)
        k = int(np.argmax(losses <= level))
        t_gd = step * (k - 1 + (losses[k - 1] - level) / (losses[k - 1] - losses[k]))
        res = gradient_flow(W0, X, Y, t_max=n * step, loss_mark=level, rtol=1e-8)
        assert res.t_mark == pytest.approx(t_gd, rel=1e-2), level


def test_escape_wrapper_takes_tolerances():
    """``tolerances`` override the configuration's ``[classify]`` factors for the record and
    the rows alike: a ``grad_rtol`` no point meets makes every point ``not_critical``."""
    loose = mcland.escape(CONFIG, 1, [1e-3], budget=5000)
    strict = mcland.escape(
        CONFIG, 1, [1e-3], budget=5000, tolerances=mcland.Tolerances(grad_rtol=1e-300)
    )
    assert loose["theory_type"].iloc[0] != "not_critical"
    assert strict["theory_type"].iloc[0] == "not_critical"
