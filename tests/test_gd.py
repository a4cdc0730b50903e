"""The allocation-free loss and gradient (mcland/_kernels/gd.py) and batched plain gradient
descent, against NumPy references (no timings asserted: the machine is shared)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import naive
import numpy as np
import pytest

from mcland._kernels.bundles import FlowProblem
from mcland._kernels.dense import layer_offsets, prod, product_table
from mcland._kernels.flow import loss_and_gradient
from mcland._kernels.gd import LANES, value_and_gradient, workspace_size
from mcland._kernels.hessian import gradient, loss, residual
from mcland.bench import dynamics
from mcland.core import naive as bench_naive

DIMS = [(2, 3), (1, 1, 1), (3, 4, 4, 4, 2), (3, 1, 5, 2, 6, 2), (4, 2, 3, 3, 3, 3, 1), (2, 5, 1)]


def _problem(rng, dims, m=12):
    W = [
        rng.standard_normal((dims[h + 1], dims[h])) / math.sqrt(dims[h])
        for h in range(len(dims) - 1)
    ]
    X = rng.standard_normal((dims[0], m))
    Y = rng.standard_normal((dims[-1], m))
    Sxx, Syx, Syy = naive.moments(X, Y)
    return W, X, Y, FlowProblem(np.array(dims, np.int64), Sxx, Syx, float(np.trace(Syy)))


@pytest.mark.parametrize("dims", DIMS)
def test_value_and_gradient_match_numpy(rng, dims):
    """Loss and gradient against the data-based NumPy formulas (every partial product
    formed): relative to the loss's size and the gradient's largest entry, a few eps."""
    W, X, Y, problem = _problem(rng, dims)
    w = naive.ravel_weights(W)
    g = np.full(w.size, np.nan)
    work = np.full(workspace_size(problem.dims), np.nan)  # scratch is never read first
    L = value_and_gradient(problem, w, g, work)
    assert pytest.approx(naive.loss(W, X, Y), rel=1e-13) == L
    g_ref = naive.ravel_weights(naive.gradient(W, X, Y))
    assert np.abs(g - g_ref).max() <= 1e-13 * np.abs(g_ref).max()
    assert np.isfinite(g).all()
    # the moment-based NumPy reference of the benchmark, too
    L_m, g_m = bench_naive.loss_and_gradient_moments(W, problem.Sxx, problem.Syx, problem.tr_syy)
    assert pytest.approx(L_m, rel=1e-13) == L
    assert np.abs(g - naive.ravel_weights(g_m)).max() <= 1e-13 * np.abs(g_ref).max()


@pytest.mark.parametrize("dims", DIMS)
def test_flow_loss_and_gradient_against_the_partial_product_formulas(rng, dims):
    """``flow.loss_and_gradient`` is :func:`value_and_gradient`; against the kernels it
    replaced (all partial products, :func:`.hessian.gradient`): the loss is the same bits,
    and so are the gradients of the last two layers; the others agree to rounding."""
    W, _, _, problem = _problem(rng, dims)
    w = naive.ravel_weights(W)
    g = np.empty_like(w)
    L = loss_and_gradient(problem, w, g)
    g2 = np.empty_like(w)
    assert value_and_gradient(problem, w, g2, np.empty(workspace_size(problem.dims))) == L
    np.testing.assert_array_equal(g, g2)
    dims_a = problem.dims
    H = dims_a.size - 1
    off = layer_offsets(dims_a)
    table, table_off = product_table(w, dims_a, off)
    P = prod(table, table_off, dims_a, H, 1)
    assert loss(P, problem.Sxx, problem.Syx, problem.tr_syy) == L
    g_old = gradient(table, table_off, dims_a, off, residual(P, problem.Sxx, problem.Syx))
    last_two = off[max(H - 2, 0)]
    np.testing.assert_array_equal(g[last_two:], g_old[last_two:])
    assert np.abs(g - g_old).max() <= 1e-13 * np.abs(g_old).max()


@pytest.mark.parametrize("dims", [(3, 4, 4, 4, 2), (2, 3, 1), (3, 2, 3, 2, 3)])
def test_gd_kernel_follows_numpy_gd(dims):
    """The kernel's iterates against plain NumPy gradient descent on the data (naive
    ``gd_euler``): 200 stable steps, weights and losses equal to rounding (1e-11
    relative: the two evaluate the loss differently, data against moments, and the
    differences are carried along a contracting trajectory)."""
    t = dynamics.task(dims, trajectories=3, seed=5)
    n = 200
    w_k, loss_k = dynamics.descend(t, n, 1)
    p = t.problem
    rng = np.random.default_rng([5, *dims])  # the task's data, drawn again
    d_x, d_y = dims[0], dims[-1]
    X = rng.standard_normal((d_x, 40))
    Y = rng.standard_normal((d_y, d_x)) @ X + 0.5 * rng.standard_normal((d_y, 40))
    np.testing.assert_array_equal(naive.moments(X, Y)[0], p.Sxx)
    for j in range(3):
        W_ref, losses = naive.gd_euler(naive.unravel_weights(t.w0[j], dims), X, Y, t.eta, n)
        w_ref = naive.ravel_weights(W_ref)
        assert np.abs(w_k[j] - w_ref).max() <= 1e-11 * np.abs(w_ref).max()
        np.testing.assert_allclose(loss_k[j], losses[:n], rtol=1e-11)
        assert losses[n] < losses[0]  # it descends: the step is stable


def test_gd_bit_identical_across_thread_counts():
    """Four blocks of LANES trajectories (the last one partial) on 1 to 4 threads."""
    t = dynamics.task(trajectories=3 * LANES + 5)
    w1, l1 = dynamics.descend(t, 60, 1)
    for threads in (2, 3, 8):
        w, losses = dynamics.descend(t, 60, threads)
        np.testing.assert_array_equal(w, w1)
        np.testing.assert_array_equal(losses, l1)
    # and a trajectory alone is the same as inside the batch
    for j in (4, 3 * LANES + 2):
        alone = dynamics.Task(t.problem, t.w0[j : j + 1].copy(), t.eta)
        w, losses = dynamics.descend(alone, 60, 1)
        np.testing.assert_array_equal(w[0], w1[j])
        np.testing.assert_array_equal(losses[0], l1[j])


@pytest.mark.parametrize("dims", [(3, 4, 4, 4, 2), (2, 1, 3), (4, 3)])
def test_lanes_are_the_single_point_kernel_bit_for_bit(dims):
    """A block of LANES trajectories (and a partial last block) gives every trajectory
    exactly the iterates of stepping it alone with :func:`value_and_gradient`."""
    t = dynamics.task(dims, trajectories=LANES + 3, seed=9)
    n = 25
    w_k, loss_k = dynamics.descend(t, n, 1)
    work = np.empty(workspace_size(t.problem.dims))
    for j in range(t.w0.shape[0]):
        w = t.w0[j].copy()
        g = np.empty_like(w)
        for k in range(n):
            assert value_and_gradient(t.problem, w, g, work) == loss_k[j, k]
            w -= t.eta * g
        np.testing.assert_array_equal(w, w_k[j])


def test_jax_comparison_script_runs_and_agrees(tmp_path):
    """benchmarks/jax_dynamics.py (only where the optional JAX is installed): tiny sizes,
    both sides compute the same iterates."""
    pytest.importorskip("jax")
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "jax"
    args = ["--steps", "20", "--rounds", "1", "--points", "2", "--trajectories", "3"]
    args += ["--many-steps", "10", "--no-cold", "--out", str(out)]
    subprocess.run(
        [sys.executable, str(root / "benchmarks" / "jax_dynamics.py"), *args],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    fig = json.loads((out.with_suffix(".json")).read_text())
    assert fig["fixed"]["max_rel_diff_final_weights"] < 1e-12
    assert fig["fixed"]["max_rel_diff_losses"] < 1e-12
    assert fig["many"]["distinct_architectures"] >= 1 and fig["many"]["mcland_warm_s"] > 0
    assert "gradient evals/s" in (out.with_suffix(".txt")).read_text()
