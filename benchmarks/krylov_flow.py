"""Escape flows from drawn saddles with the dense and the matrix-free (Krylov) implicit steps
(issue 21; docs/dynamics.md, "Matrix-free implicit steps").

Usage::

    python benchmarks/krylov_flow.py [--hidden 4 8 16 32 64 128 256 512] [--out FILE]

For each hidden width ``d``: point 0 of depth 3, ``d_x = 6``, ``d_y = 4``, hidden widths
``d`` (``m = 40``, seed 5, saddles only; :func:`mcland.draw_point`), perturbed by ``delta =
1e-3`` (relative to ``||W*||``, a fixed random direction), followed by
:func:`mcland.flow.gradient_flow.integrate` at ``rtol = 1e-6`` until the loss crosses the
level half-way down to the next critical value (``loss_stop``).  One child process per
flow (kernels loaded from the cache, compiled and warmed on a tiny problem first), under
``/usr/bin/time -f %M`` for its peak memory.  Lines: ``rosenbrock`` with the dense steps
(``N <=`` :data:`DENSE_LIMIT`, at width 64 a budget of 40 evaluations: the time per step
only), ``rosenbrock`` with the Krylov steps (forced at every width), ``auto`` (the default
choice of path), ``explicit``.  Columns: flow seconds (``time.perf_counter`` around the
flow, compile excluded), gradient evaluations + Hessian-vector products (``n_evals``), the
products alone, conjugate-gradient iterations (per solve), accepted / rejected steps,
``t_escape`` and its relative difference to the Krylov line's, peak RSS.  The machine's
load (``uptime``) is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DENSE_LIMIT = 1_400  # widths whose dense flows are run in full (N <= this)
ROOT = Path(__file__).resolve().parents[1]


def _config(hidden: int) -> dict:
    return {
        "n": 1, "seed": 5, "data": {"m": 40},
        "architecture": {"depth": [3, 3], "d_y": [4, 4], "d_x_extra": [2, 2],
                         "hidden": [hidden, hidden]},
        "points": {"weight_global": 0.0, "weight_top_saddle": 1.0, "weight_other_saddle": 1.0},
    }  # fmt: skip


def one(hidden: int, mode: str) -> dict:
    """One flow in this process: ``mode`` dense | krylov | auto | explicit."""
    import mcland
    from mcland.core import naive
    from mcland.flow import gradient_flow as gf
    from mcland.points.inspect import check_weights

    W, X, Y = mcland.draw_point(_config(hidden), 0)
    dims, w_star = check_weights(W, X.shape[0], Y.shape[0])
    problem = gf.flow_problem(dims, X, Y)
    V = np.random.default_rng(1).standard_normal(w_star.size)
    w0 = w_star + 1e-3 * np.linalg.norm(w_star) * V / np.linalg.norm(V)
    L_star = naive.loss(W, X, Y)
    values = naive.critical_values(X, Y, int(min(dims)))
    level = L_star - 0.5 * (L_star - values[values < L_star * (1 - 1e-9)].max())
    integrator = {"dense": "rosenbrock", "krylov": "rosenbrock"}.get(mode, mode)
    if mode == "dense":
        gf.DENSE_STIFF_MAX_N = 10**9
    elif mode == "krylov":
        gf.DENSE_STIFF_MAX_N = 0
    max_evals = 40 if mode == "dense" and w_star.size > DENSE_LIMIT else 2_000_000
    # warm up (cache load) on a tiny problem of the same kernel
    tiny = np.array([2, 2, 2, 2], np.int64)
    tp = gf.flow_problem(tiny, np.eye(2), np.eye(2))
    limit = gf.DENSE_STIFF_MAX_N
    if mode == "auto" and w_star.size > limit:
        gf.DENSE_STIFF_MAX_N = 0  # load the kernel the flow below takes
    gf.integrate(tiny, np.full(12, 0.5), tp, t_max=1e-3, w_ref=np.zeros(12), integrator=integrator)
    gf.DENSE_STIFF_MAX_N = limit
    t0 = time.perf_counter()
    r = gf.integrate(dims, w0, problem, t_max=1e9, rtol=1e-6, w_ref=w_star, loss_mark=level,
                     loss_stop=level, max_evals=max_evals, integrator=integrator)  # fmt: skip
    seconds = time.perf_counter() - t0
    return {
        "hidden": hidden, "mode": mode, "N": int(w_star.size), "seconds": seconds,
        "status": r.status, "t_escape": r.t_mark, "n_evals": r.n_evals, "n_hvps": r.n_hvps,
        "iters": r.krylov_iters, "steps": r.n_steps, "rejected": r.n_rejected,
        "stiff": r.n_stiff_steps, "krylov": r.krylov, "hessians": r.n_hessians,
    }  # fmt: skip


def _run(hidden: int, mode: str) -> dict:
    cmd = ["/usr/bin/time", "-f", "%M", sys.executable, __file__, "--one", str(hidden), mode]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
    row = json.loads(p.stdout.strip().splitlines()[-1])
    row["rss_mb"] = int(p.stderr.strip().splitlines()[-1]) / 1024
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128, 256, 512])
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/krylov-flow.txt"))
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one[0]), args.one[1])))
        return
    lines = [
        f"# python benchmarks/krylov_flow.py --hidden {' '.join(map(str, args.hidden))}",
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load before: "
        + os.popen("uptime").read().strip(),
        "# depth 3, d_x 6, d_y 4, escape from point 0 (delta 1e-3, rtol 1e-6) to the level "
        "half-way down; seconds indicative (shared 2-core machine)",
        f"{'hidden':>6} {'N':>8} {'path':>9} {'status':>13} {'s':>8} {'n_evals':>9} "
        f"{'hvps':>9} {'it/solve':>8} {'steps':>6} {'rej':>4} {'t_escape':>12} "
        f"{'vs krylov':>9} {'RSS MB':>7}",
    ]
    print("\n".join(lines), flush=True)
    for hidden in args.hidden:
        rows = {}
        for mode in ("krylov", "dense", "auto", "explicit"):
            if mode == "dense" and hidden > 64:
                continue
            rows[mode] = row = _run(hidden, mode)
            ref = rows["krylov"]["t_escape"]
            rel = abs(row["t_escape"] / ref - 1) if row["t_escape"] == row["t_escape"] else np.nan
            solves = 4 * (row["steps"] + row["rejected"])
            per = row["iters"] / solves if row["iters"] else 0.0
            path = mode if mode != "auto" else ("auto-kry" if row["krylov"] else "auto-dns")
            line = (
                f"{hidden:>6} {row['N']:>8} {path:>9} {row['status']:>13} "
                f"{row['seconds']:>8.2f} {row['n_evals']:>9} {row['n_hvps']:>9} {per:>8.1f} "
                f"{row['steps']:>6} {row['rejected']:>4} {row['t_escape']:>12.6g} {rel:>9.1e} "
                f"{row['rss_mb']:>7.0f}"
            )
            lines.append(line)
            print(line, flush=True)
    lines.append("# load after: " + os.popen("uptime").read().strip())
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
