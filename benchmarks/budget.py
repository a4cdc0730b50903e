"""Per-point time budget: each stage of the per-point work against the point's own ``dsyevd``.

Usage: python benchmarks/budget.py [--workload medium] [--points 60] [--json PATH]

For the first ``--points`` points of a ``mcland bench`` workload, every stage of what the
sampler does for a point is timed warm, on one thread, in a compiled loop (the best of 5
calls of 20 repetitions, ``time.thread_time``, less the best of 5 calls that only prepare
the point: drawing it and assembling its Hessian), stage after stage for the same point, so
that the machine's drift hits all stages alike.  Reported: the mean over the points of
each stage in µs, and as a fraction of the mean ``dsyevd`` time (the benchmark's floor:
LAPACK on the assembled whitened Hessian, in place).  The ``sum`` line adds the stages
other than the eigenvalues; ``analyze`` times the single routine that runs them all
(except drawing and the product error), as a cross-check of the sum.

This is the part of ``pipeline / floor - 1`` that per-point code costs when warm; what the
pipeline measures on top of it (cold caches, Arrow and Parquet, scheduling, the machine's
noise) is the rest.  The harness compiles for about a minute (it is not cached).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from numba import njit

from mcland._kernels import fields as f
from mcland._kernels import params as p
from mcland._kernels.batch import _product_error, draw_point
from mcland._kernels.bundles import Moments, PointOutput, Thresholds
from mcland._kernels.classify import _theory, analyze, whitened_problem
from mcland._kernels.dense import frob, layer_offsets, norm_products, prod, product_table
from mcland._kernels.hessian import (
    assembly_error,
    frob_upper,
    gradient,
    hessian_into,
    loss,
    product_norms,
    residual,
)
from mcland._kernels.lapack import eigvalsh_destroy
from mcland._kernels.theory import partial_product_ranks, read_S
from mcland.bench.measure import workload_config
from mcland.core.tolerances import EPS
from mcland.points.plan import make_plan

STAGES = [
    "draw (architecture, data, whitening, critical point)",
    "product table, norms, loss, gradient, S",
    "Hessian assembly",
    "noise floor (product norms, error bound, ||H||_F)",
    "ranks of the partial products",
    "theory certificates",
    "product error check",
    "eigenvalues (dsyevd, the floor)",
    "analyze without eigenvalues",
]
EIG = 7
REPS = 20  # repetitions per timed call


@njit
def _stage(which, reps, sampler, sid):
    point = draw_point(sampler, sid)
    dims, w, moments = point.dims, point.w, point.moments
    params = sampler.params
    H = dims.size - 1
    off = layer_offsets(dims)
    N = off[H]
    w_white, Syx_white = whitened_problem(dims, w, moments.Syx, moments.K, moments.K_inv)
    eye = np.eye(dims[0])
    white = Moments(
        eye, Syx_white, moments.tr_syy, np.ones(dims[0]), eye, eye, moments.lam, moments.U,
        moments.Vt,
    )  # fmt: skip
    table, table_off = product_table(w_white, dims, off)
    norms = norm_products(w_white, dims, off)
    P = prod(table, table_off, dims, H, 1)
    R = residual(P, eye, Syx_white)
    none = np.zeros(0)
    out = PointOutput(
        np.empty(len(f.FLOAT_FIELDS)), np.empty(len(f.INT_FIELDS), np.int64),
        np.zeros(dims[H], np.bool_), np.zeros(H * (H + 1) // 2, np.int64), none, none, none,
    )  # fmt: skip
    work = np.empty(2 * N * N)
    hess = work[: N * N].reshape((N, N))
    hessian_into(table, table_off, dims, off, eye, R, hess)
    hess0 = hess.copy()
    ev = np.empty(N)
    pn, perr = product_norms(table, table_off, dims)
    Syx_n = frob(Syx_white)
    floor = assembly_error(pn, perr, dims, frob(eye), Syx_n, frob(R))
    floor += np.sqrt(N) * EPS * frob_upper(hess0)
    tol_zero = params[p.P_C_ZERO] * floor  # the pipeline's tolerances, as in analyze
    tol_neg = params[p.P_C_NEG] * floor
    s = 0
    for i in range(point.s_drawn.size):
        s += point.s_drawn[i]
    thresholds = Thresholds(params[p.P_GRAD_RTOL], params[p.P_C_ZERO], params[p.P_C_NEG])
    acc = 0.0
    for _ in range(reps):
        if which == 0:
            acc += draw_point(sampler, sid).w[0]
        elif which == 1:
            tb, po = product_table(w_white, dims, off)
            acc += norm_products(w_white, dims, off)[0, 0] + tb[0]
            Pw = prod(tb, po, dims, H, 1)
            Rw = residual(Pw, eye, Syx_white)
            acc += loss(Pw, eye, Syx_white, moments.tr_syy) + gradient(tb, po, dims, off, Rw)[0]
            acc += read_S(Pw, eye, moments.U, moments.lam)[1]
        elif which == 2:
            hessian_into(table, table_off, dims, off, eye, R, hess)
        elif which == 3:
            pn, perr = product_norms(table, table_off, dims)
            acc += assembly_error(pn, perr, dims, frob(eye), Syx_n, frob(R)) + frob_upper(hess0)
        elif which == 4:
            partial_product_ranks(table, table_off, dims, norms, out.ranks)
        elif which == 5:
            acc += _theory(
                table, table_off, dims, white, R, point.s_drawn, s, tol_zero, tol_neg, out
            )
        elif which == 6:
            acc += _product_error(w, dims, point.s_drawn, moments.U, moments.Syx, moments.K_inv)
        elif which == 7:
            hess[:, :] = hess0  # the copy is part of this stage's time; a few % of dsyevd's
            eigvalsh_destroy(hess, ev)
            acc += ev[0]
        else:
            analyze(dims, w, moments, thresholds, 0, out, work)
    return acc


def budget(workload: str, points: int) -> dict[str, float]:
    """Mean warm µs per point of every stage (keys of :data:`STAGES`)."""
    plan = make_plan(workload_config(workload))
    total = np.zeros(len(STAGES))
    for sid in range(points):
        args = (plan.sampler, sid)
        for k in range(len(STAGES)):
            _stage(k, 1, *args)
            total[k] += (_best(k, REPS, args) - _best(k, 0, args)) / REPS
    return dict(zip(STAGES, total / points * 1e6, strict=True))


def _best(k: int, reps: int, args: tuple) -> float:
    """Fastest of 5 calls of stage ``k`` with ``reps`` repetitions (thread CPU seconds); with
    ``reps = 0`` the call only prepares the point, which the caller subtracts."""
    best = np.inf
    for _ in range(5):
        t0 = time.thread_time()
        _stage(k, reps, *args)
        best = min(best, time.thread_time() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="medium", choices=["small", "medium"])
    ap.add_argument("--points", type=int, default=60)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    us = budget(a.workload, a.points)
    eig = us[STAGES[EIG]]
    overhead = sum(v for k, v in us.items() if k not in (STAGES[EIG], STAGES[-1]))
    print(f"{a.workload}: first {a.points} points, warm, 1 thread (mean µs per point)")
    for k, v in us.items():
        print(f"  {k:55s} {v:8.1f}  {v / eig:7.1%}")
    label = "sum of the stages other than the eigenvalues"
    print(f"  {label:55s} {overhead:8.1f}  {overhead / eig:7.1%}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"workload": a.workload, "points": a.points, "us": us}, fh, indent=1)


if __name__ == "__main__":
    main()
