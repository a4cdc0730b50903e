"""The linearly implicit integrator (ROS2, mcland/_kernels/rosenbrock.py) for stiff
stretches of gradient flow."""

from __future__ import annotations

import numpy as np
import pytest

from mcland._kernels.rosenbrock import lu_factor, lu_solve
from mcland.core.config import Dynamics
from mcland.flow.records import _records, point_records
from mcland.points.plan import make_plan


@pytest.mark.parametrize("n", [1, 2, 5, 17])
def test_lu_matches_numpy_solve(rng, n):
    A = rng.standard_normal((n, n))
    if n > 1:
        A[0, 0] = 0.0  # needs a row swap
    b = rng.standard_normal(n)
    LU = A.copy()
    piv = np.empty(n, np.int64)
    assert lu_factor(LU, piv)
    x = np.empty(n)
    lu_solve(LU, piv, b, x)
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-10, atol=1e-12)


def test_lu_reports_a_singular_matrix():
    A = np.array([[1.0, 2.0], [2.0, 4.0]])
    assert not lu_factor(A, np.empty(2, np.int64))
    assert not lu_factor(np.array([[np.nan]]), np.empty(1, np.int64))


def test_rosenbrock_escape_times_equal_the_explicit_ones(rng):
    """At ``W = 0``, depth 3, the two integrators' escape times agree within 1e-5 relative
    (both are held to ``rtol = 1e-6`` of the displacement)."""
    dims = np.array([3, 3, 3, 2])
    X = rng.standard_normal((3, 30))
    Y = rng.standard_normal((2, 3)) @ X + 0.3 * rng.standard_normal((2, 30))
    times = {}
    for integrator in ("explicit", "rosenbrock"):
        settings = Dynamics(
            experiment="escape", deltas=[1e-2, 1e-4], t_max_steps=1e12, integrator=integrator
        )
        rows = _records(dims, np.zeros(24), X, Y, settings, seed=1, sample_id=0)
        times[integrator] = np.array([r["t_escape"] for r in rows])
    np.testing.assert_allclose(times["rosenbrock"], times["explicit"], rtol=1e-5)


STIFF = {
    "n": 5,
    "seed": 11,
    "architecture": {"depth": [3, 3], "d_y": [2, 3], "d_x_extra": [0, 1], "hidden": [2, 4]},
    "data": {"m": 20},
}


def test_rosenbrock_gets_through_a_stiff_plateau():
    """Depth 3, small initialisation (point 2, eps = 1e-4): after the first mode is learned
    the flow waits on a plateau next to stiff directions.  The explicit pair, held by
    stability to steps of about ``2.5 / lambda_max``, spends the budget of 1e5 gradient
    evaluations there; ROS2 reaches the global minimum within it (measured about 4e4)."""
    plan = make_plan(STIFF)
    rows = {}
    for integrator in ("explicit", "rosenbrock"):
        settings = Dynamics(
            experiment="small_init", eps=[1e-4], max_evals=100_000, integrator=integrator
        )
        (rows[integrator],) = point_records(plan, settings, 2)
    assert rows["explicit"]["status"] == "budget"
    assert rows["explicit"]["n_evals"] > 99_990
    assert rows["rosenbrock"]["status"] == "global"
    assert rows["rosenbrock"]["n_evals"] < 60_000
