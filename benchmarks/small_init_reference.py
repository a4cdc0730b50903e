"""Small initialisation: are the saddles mcland reports as visited the ones the exact flow
visits?  (Issue 22, "the visited sequence found whenever the flow visits it".)

For the rows of ``runs/dynamics_small_init.toml`` with ``eps <= 1e-2`` (or a sample of
them), the same start is integrated by an independent stiff reference (SciPy's Radau IIA
at ``rtol = 1e-10`` on the NumPy gradient and Hessian of ``tests/flow_reference.py``, nothing
of mcland's kernels) up to the row's ``t_end``.  The reference's reading ``S(t) = {i : z_i >
1/2}`` changes where SciPy's event location finds a ``z_i`` crossing 1/2; each interval
of constant ``S`` is a visit, and the flow *dwells* in it when ``t ||grad L||^2 /
lambda_r`` falls to the dwell threshold 0.05 somewhere inside (evaluated on 256
log-spaced times per visit and at its ends).  The reference's visited sequence (the S of
each dwell, then the final S, repeats merged; docs/dynamics.md "Dwells and transits") is
compared with mcland's ``visited_S``, and with the theory's complete staircase
``[], [1], [1,2], ..., [1..r]``.

A disagreement is listed with the reference's smallest rate in the visits concerned: a
value near the threshold is a borderline call (both readings sample the rate at
different times), one far from it would be a miss.

    python benchmarks/small_init_reference.py --depths 2 \
        > benchmarks/results/small-init-reference.txt

``--entry-times`` instead compares the times the visits are entered, at several
integrator tolerances, on the first ``--per-depth`` points (eps 1e-2, 1e-4, 1e-8).

Imports the reference from ``tests/`` (``sys.path``), like benchmarks/certify_cost.py.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import naive  # noqa: E402
from flow_reference import (  # noqa: E402
    reference_flow,
    small_init_start,
    z_minus_half,
)

import mcland  # noqa: E402
from mcland.core.config import load_config  # noqa: E402
from mcland.core.problem import Problem  # noqa: E402
from mcland.flow.records import point_records  # noqa: E402
from mcland.points.plan import make_plan  # noqa: E402
from mcland.stats import wilson_interval  # noqa: E402

CONFIG = ROOT / "runs" / "dynamics_small_init.toml"
DWELL = 0.05  # the plateau threshold of the [dynamics] defaults, in units of lambda_r
GRID = 256


def reference_visits(w0, dims, X, Y, problem, r: int, t_end: float):
    """The reference's visits up to ``t_end``: a list of ``(S, t_enter, t_leave, rate_min)``."""
    lam_r = float(problem.lam[:r].min())

    zs = [z_minus_half(problem, dims, i) for i in range(r)]
    ref = reference_flow(w0, dims, X, Y, t_max=t_end, rtol=1e-10, crossings=tuple(zs))
    cuts = np.unique(np.concatenate([np.zeros(1), *ref.t_cross, [t_end]]))

    def S_at(t):
        w = ref.weights_at(t)[0]
        return [i + 1 for i in range(r) if zs[i](w) > 0]

    def rate(t):
        w = ref.weights_at(t)[0]
        g = naive.ravel_weights(naive.gradient(naive.unravel_weights(w, dims), X, Y))
        return t * float(g @ g) / lam_r

    visits = []
    for lo, hi in itertools.pairwise(cuts):
        if hi <= lo:
            continue
        S = S_at(0.5 * (lo + hi) if lo == 0.0 else math.sqrt(lo * hi))
        start = lo if lo > 0 else hi * 1e-12
        ts = np.concatenate([[lo, hi], np.geomspace(start, hi, GRID)])
        rmin = min(rate(t) for t in ts)
        if visits and visits[-1][0] == S:  # a crossing that did not change S (touch)
            S0, t0, _, r0 = visits[-1]
            visits[-1] = (S0, t0, hi, min(r0, rmin))
        else:
            visits.append((S, lo, hi, rmin))
    return visits, ref.status


def visited(visits) -> list[list[int]]:
    out: list[list[int]] = []
    for j, (S, _, _, rmin) in enumerate(visits):
        if (rmin <= DWELL or j == len(visits) - 1) and (not out or out[-1] != S):
            out.append(S)
    return out


def entry_times(cfg, plan, sids, rtols=(1e-6, 1e-8, 1e-10), eps=(1e-2, 1e-4, 1e-8)) -> None:
    """Relative error of each visit's entry time against the reference, per rtol."""
    refs: dict = {}
    for rtol in rtols:
        errs, evals, t0 = [], 0, time.perf_counter()
        for sid in sids:
            weights, X, Y = mcland.draw_point(cfg, sid)
            dims = [weights[0].shape[1]] + [W.shape[0] for W in weights]
            problem = Problem.from_data(X, Y)
            settings = cfg.dynamics.model_copy(update={"eps": list(eps), "rtol": rtol})
            for row in point_records(plan, settings, sid):
                evals += row["n_evals"]
                key = (sid, row["eps"])
                if key not in refs:
                    r = max(len(row["settled_S"]), *(len(S) for S in row["visited_S"]))
                    w0 = small_init_start(cfg.seed, sid, dims, X, Y, row["eps"])
                    vis = reference_visits(w0, dims, X, Y, problem, r, 1.3 * row["t_end"])[0]
                    refs[key] = {tuple(S): t for S, t, _, _ in vis[1:]}
                for v in row["visits"][1:]:
                    t_ref = refs[key].get(tuple(v["S"]))
                    if t_ref:
                        errs.append(abs(v["t_enter"] / t_ref - 1))
        e = np.array(errs)
        print(
            f"rtol {rtol:.0e}: {e.size} entries, relative error median {np.median(e):.2e}, "
            f"90% {np.quantile(e, 0.9):.2e}, largest {e.max():.2e}; {evals} evaluations "
            f"({time.perf_counter() - t0:.0f} s)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--depths", type=int, nargs="+", default=[2])
    ap.add_argument("--per-depth", type=int, default=0, help="points per depth (0: all)")
    ap.add_argument("--eps-max", type=float, default=1e-2)
    ap.add_argument("--entry-times", action="store_true", help="entry times vs rtol instead")
    args = ap.parse_args()
    cfg = load_config(CONFIG)
    plan = make_plan(cfg)
    if args.entry_times:
        H = args.depths[0]
        sids = [s for s in range(cfg.n) if len(mcland.draw_point(cfg, s)[0]) == H]
        entry_times(cfg, plan, sids[: args.per_depth or None])
        return
    eps = [e for e in cfg.dynamics.eps if e <= args.eps_max]
    settings = cfg.dynamics.model_copy(update={"eps": eps})
    print(f"# {' '.join(sys.argv)}\n# {CONFIG.name}, eps {eps}, dwell threshold {DWELL} lambda_r")
    t0 = time.perf_counter()
    by_depth: dict[int, list[int]] = {H: [] for H in args.depths}
    for sid in range(cfg.n):
        weights, _, _ = mcland.draw_point(cfg, sid)
        H = len(weights)
        if H in by_depth and (not args.per_depth or len(by_depth[H]) < args.per_depth):
            by_depth[H].append(sid)
    for H, sids in by_depth.items():
        agree = complete_ref = complete_mc = n = 0
        lines = []
        for sid in sids:
            weights, X, Y = mcland.draw_point(cfg, sid)
            dims = [weights[0].shape[1]] + [W.shape[0] for W in weights]
            problem = Problem.from_data(X, Y)
            rows = point_records(plan, settings, sid)
            for row in rows:
                r = int(max((len(S) for S in row["visited_S"]), default=0))
                r = max(r, len(row["settled_S"]))
                if r == 0 or row["status"] == "failed":
                    continue
                w0 = small_init_start(cfg.seed, sid, dims, X, Y, row["eps"])
                vis, status = reference_visits(w0, dims, X, Y, problem, r, row["t_end"])
                ref_seq = visited(vis)
                mine = [list(S) for S in row["visited_S"]]
                staircase = [list(range(1, k + 1)) for k in range(r + 1)]
                n += 1
                agree += ref_seq == mine
                complete_ref += ref_seq == staircase
                complete_mc += mine == staircase
                if ref_seq != mine:
                    detail = "; ".join(f"{S} {rm:.3g}" for S, _, _, rm in vis)
                    lines.append(
                        f"  sid {sid} eps {row['eps']:.0e}: mcland {mine}, reference {ref_seq}"
                        f" (reference visits, rate_min/lambda_r: {detail}; solver status {status})"
                    )
        lo, hi = wilson_interval(agree, n) if n else (math.nan, math.nan)
        print(
            f"depth {H}: {len(sids)} points, {n} rows: visited_S equal to the reference's in "
            f"{agree} ({agree / max(n, 1):.1%}, 95% Wilson [{lo:.3f}, {hi:.3f}]); "
            f"complete staircase: reference {complete_ref}, mcland {complete_mc}"
        )
        print("\n".join(lines) if lines else "  (no disagreement)")
        sys.stdout.flush()
    print(f"# {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
