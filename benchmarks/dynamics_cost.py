"""Cost per point of the dynamics experiments (``mcland.flow.records.point_records``).

Usage: python benchmarks/dynamics_cost.py [--points 30] [--depths 2 3 4]
       [--integrator explicit|rosenbrock|auto]

For each depth H, a configuration of small networks (``depth = [H, H]``, ``d_y`` 2-3,
``d_x_extra`` 0-1, hidden widths 2-4, ``m = 20``, seed 11) and each experiment at the
default ``[dynamics]`` settings but ``integrator``: ``point_records`` for sample ids
``0 .. points-1``, one thread, compiled and warmed on point 0 first.  Reported per line: seconds per point
(median, mean, max, ``time.perf_counter``), gradient evaluations per point (median) and
the statuses of the rows per delta / eps.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np

from mcland.core.config import Dynamics
from mcland.flow.records import point_records
from mcland.points.plan import make_plan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=30)
    ap.add_argument("--depths", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--integrator", choices=["explicit", "rosenbrock", "auto"], default="explicit")
    args = ap.parse_args()
    for H in args.depths:
        cfg = {
            "n": args.points,
            "seed": 11,
            "architecture": {"depth": [H, H], "d_y": [2, 3], "d_x_extra": [0, 1], "hidden": [2, 4]},
            "data": {"m": 20},
        }
        plan = make_plan(cfg)
        for experiment, key in (("escape", "delta"), ("small_init", "eps")):
            settings = Dynamics(experiment=experiment, integrator=args.integrator)
            point_records(plan, settings, 0)  # compile and warm
            seconds, evals = [], []
            statuses: dict[float, Counter] = {}
            for sid in range(args.points):
                t = time.perf_counter()
                rows = point_records(plan, settings, sid)
                seconds.append(time.perf_counter() - t)
                evals.append(sum(r["n_evals"] for r in rows))
                for r in rows:
                    statuses.setdefault(r[key], Counter())[r["status"]] += 1
            s = np.array(seconds)
            print(
                f"H={H} {experiment:10s} s/point median {np.median(s):.3f} mean {s.mean():.3f} "
                f"max {s.max():.2f}; evals/point median {int(np.median(evals))}",
                flush=True,
            )
            for value, counts in statuses.items():
                print(f"    {key} = {value:g}: {dict(sorted(counts.items()))}", flush=True)


if __name__ == "__main__":
    main()
