"""Draw time of the first n points of a sampling configuration, the draw alone (issue 21).

Usage::

    python benchmarks/wide_draw.py runs/wide.toml 400      # one JSON summary line, then per point

Prints ``{"n", "wall_s", "cpu_s", "w_sha256", "load"}`` (the SHA-256 runs over every drawn
weight vector in order: two installations drew the same points exactly when it agrees),
then ``(sample_id, dims, wall s, CPU s)`` per point.  Run it with another installation's
interpreter for a baseline (``benchmarks/results/draw-width.txt``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import tomllib


def main():
    from mcland._kernels.batch import draw_point
    from mcland.points.plan import make_plan

    with open(sys.argv[1], "rb") as fh:
        cfg = tomllib.load(fh)
    n = int(sys.argv[2])
    plan = make_plan(cfg, None, None, analyse=False)
    draw_point(plan.sampler, 10**6)  # compiled (or loaded) before the clock starts
    wall = cpu = 0.0
    rows = []
    digest = hashlib.sha256()
    for sid in range(n):
        c0 = time.process_time()
        t0 = time.perf_counter()
        p = draw_point(plan.sampler, sid)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        wall += dt
        cpu += dc
        digest.update(p.w.tobytes())
        rows.append((sid, [int(x) for x in p.dims], round(dt, 3), round(dc, 3)))
    summary = {"n": n, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}
    summary.update(w_sha256=digest.hexdigest(), load=os.getloadavg()[0])
    print(json.dumps(summary))
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
