"""``classify --refine`` with mcland's own Levenberg-Marquardt on rebalanced layers (this
version) against SciPy's MINPACK (``least_squares(method="lm")``, the refinement up to
0.8.0, loaded from git commit ``0d37f0e``), on the same points in the same process.

Usage: ``python benchmarks/refine_vs_minpack.py [--n 300] [--reps 2] [--table]``.

Points: ``--n`` exact critical points of ``runs/linnerud.toml`` (seed 7), each perturbed
entrywise by ``1 + eps g`` with ``eps`` 1e-8, 1e-6, 1e-4, 1e-3 in turn (the refine input of
``benchmarks/numerics_independence.py``).  Per ``eps`` and solver: rows refined (``grad_rel``
above 1e-12), converged, the verdicts (certified type, or ``ambiguous``), rows whose verdict
is the unperturbed point's, the distance moved over ``||w||`` (median, max), and the time spent
in ``refine_point`` per refined row (best of ``--reps``, the solvers interleaved, after a
warm-up).  ``--table`` also prints ``analysis/refine_table.py --threads 1`` under each solver.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

import mcland
from mcland.classification import classify as classify_module
from mcland.points.inspect import split_layers

ROOT = Path(__file__).resolve().parents[1]
MINPACK_COMMIT = "0d37f0e"
EPS = (1e-8, 1e-6, 1e-4, 1e-3)


def minpack_refine():
    """``refine_point`` of commit :data:`MINPACK_COMMIT` (MINPACK) as a function."""
    text = subprocess.run(
        ["git", "show", f"{MINPACK_COMMIT}:mcland/classification/refine.py"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "refine_minpack.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("refine_minpack", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.refine_point


def timed(fn, clock):
    def wrapped(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            clock.append(time.perf_counter() - t)

    return wrapped


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--table", action="store_true")
    a = ap.parse_args()
    cfg = mcland.load_config(ROOT / "runs" / "linnerud.toml")
    cfg = cfg.model_copy(update={"output": cfg.output.model_copy(update={"weights": True})})
    df = mcland.sample(cfg, n=a.n, seed=7, threads=1)
    _, X, Y = mcland.draw_point(cfg, 0)
    points = [
        split_layers(np.asarray(w), np.asarray(d, np.int64))
        for w, d in zip(df.weights, df.dims, strict=True)
    ]
    base = mcland.classify(points, X, Y, threads=1)
    rng = np.random.default_rng(0)
    eps_of = np.array([EPS[i % 4] for i in range(len(points))])
    moved = [
        [W * (1 + e * rng.standard_normal(W.shape)) for W in p]
        for p, e in zip(points, eps_of, strict=True)
    ]
    solvers = {"minpack": minpack_refine(), "own": classify_module.refine_point}
    clocks: dict[str, list[float]] = {}
    out = {}
    mcland.classify(moved[:8], X, Y, refine=True, threads=1)  # warm-up (compilation)
    for _ in range(a.reps):
        for name, fn in solvers.items():
            clock: list[float] = []
            classify_module.refine_point = timed(fn, clock)
            try:
                out[name] = mcland.classify(moved, X, Y, refine=True, threads=1)
            finally:
                classify_module.refine_point = solvers["own"]
            if name not in clocks or sum(clock) < sum(clocks[name]):
                clocks[name] = clock
    verdict0 = base.verdict.astype(str).to_numpy()
    lines = [
        f"# benchmarks/refine_vs_minpack.py --n {a.n} --reps {a.reps}" + (" --table" * a.table)
    ]
    lines.append(f"# unperturbed verdicts: {dict(sorted(Counter(verdict0).items()))}")
    lines.append(
        "| eps | solver | rows | refined | converged | same verdict | certified | ambiguous "
        "| verdicts | distance / ‖w‖ (median, max) |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for e in EPS:
        rows = eps_of == e
        for name in solvers:
            r = out[name]
            v = r.verdict.astype(str).to_numpy()[rows]
            refined = (r.input_grad_rel.to_numpy() > 1e-12)[rows]
            dist = r.refine_distance_rel.to_numpy()[rows]
            counts = dict(sorted(Counter(v).items()))
            lines.append(
                f"| {e:.0e} | {name} | {rows.sum()} | {refined.sum()} | "
                f"{int(r.refine_converged.to_numpy()[rows].sum())} | "
                f"{int((v == verdict0[rows]).sum())} | "
                f"{int(np.isin(v, ['global_minimizer', 'strict_saddle', 'non_strict_saddle']).sum())}"
                f" | {int((v == 'ambiguous').sum())} | {counts} | "
                f"{np.median(dist):.1e}, {dist.max():.1e} |"
            )
    diff = (out["own"].verdict.astype(str) != out["minpack"].verdict.astype(str)).to_numpy()
    lines.append(f"rows whose verdict differs between the solvers: {int(diff.sum())}")
    for i in np.flatnonzero(diff):
        lines.append(
            f"  row {i} eps {eps_of[i]:.0e} dims {list(map(int, df.dims[i]))}: unperturbed "
            f"{verdict0[i]}, minpack {out['minpack'].verdict.astype(str)[i]}, "
            f"own {out['own'].verdict.astype(str)[i]}"
        )
    for name in solvers:
        c = np.array(clocks[name])
        lines.append(
            f"time in refine_point, {name}: {c.sum():.2f} s for {c.size} refined rows, "
            f"{1e3 * c.mean():.2f} ms per row (median {1e3 * np.median(c):.2f} ms, max "
            f"{1e3 * c.max():.1f} ms)"
        )
    ratio = np.sum(clocks["own"]) / np.sum(clocks["minpack"])
    lines.append(f"own / minpack time: {ratio:.2f}")
    if a.table:
        from importlib import import_module

        sys.path.insert(0, str(ROOT / "analysis"))
        refine_table = import_module("refine_table")
        for name, fn in solvers.items():
            classify_module.refine_point = fn
            lines.append(f"\nanalysis/refine_table.py --threads 1, {name}:")
            with contextlib.redirect_stdout(io.StringIO()):  # it prints its table too
                lines.append(refine_table.main(["--threads", "1"]))
        classify_module.refine_point = solvers["own"]
    text = "\n".join(lines)
    print(text)
    print(f"# load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
