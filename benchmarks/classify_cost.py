"""``classify`` against ``sample`` on the same points: cost per point and agreement.

Usage: python benchmarks/classify_cost.py [--n 4000] [--rounds 3] [--json PATH] [--config TOML]

Draws ``--n`` points of ``--config`` (default ``runs/linnerud.toml``; fixed data, ``output.weights = true``) with
:func:`mcland.sample`, then classifies the same weights with :func:`mcland.classify`, both
on one thread with warm kernels, ``--rounds`` times interleaved (sample, classify, sample,
...).  Reported: the ratio of the two wall times per round and its median (the issue's
target is at most 1.2), and whether every point came back with the sampler's ``S``,
``theory_type``, ``numeric_type`` and inertia ``(n_neg, n_zero, n_pos)`` (the check runs
on every point; ``--n 100000`` is the large check quoted in the notes).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import mcland
from mcland.point import split_layers

ROOT = Path(__file__).resolve().parents[1]
SAME = ["s", "theory_type", "numeric_type", "n_neg", "n_zero", "n_pos"]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--config",
        type=Path,
        default=ROOT / "runs" / "linnerud.toml",
        help="a configuration on fixed data (default runs/linnerud.toml)",
    )
    args = ap.parse_args(argv)
    cfg = mcland.load_config(args.config)
    cfg = cfg.model_copy(update={"output": cfg.output.model_copy(update={"weights": True})})
    _, X, Y = mcland.draw_point(cfg, 0)
    mcland.sample(cfg, n=50, threads=1)  # warm both paths
    small = mcland.sample(cfg, n=50, threads=1)
    mcland.classify(_points(small), X, Y, threads=1)
    rounds = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        drawn = mcland.sample(cfg, n=args.n, threads=1)
        t1 = time.perf_counter()
        points = _points(drawn)
        t2 = time.perf_counter()
        given = mcland.classify(points, X, Y, threads=1)
        t3 = time.perf_counter()
        rounds.append({"sample_s": t1 - t0, "classify_s": t3 - t2, "ratio": (t3 - t2) / (t1 - t0)})
        print(
            f"sample {t1 - t0:7.2f} s   classify {t3 - t2:7.2f} s   ratio {rounds[-1]['ratio']:.3f}"
        )
    differ = {
        c: int((drawn[c].astype(str).to_numpy() != given[c].astype(str).to_numpy()).sum())
        for c in SAME
    }
    out = {
        "n": args.n,
        "rounds": rounds,
        "median_ratio": float(np.median([r["ratio"] for r in rounds])),
        "points_differing_per_column": differ,
        "all_agree": not any(differ.values()),
    }
    print(f"median classify/sample per point: {out['median_ratio']:.3f} (target <= 1.2)")
    print(f"points differing from the sampler's record, per column: {differ}")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return out


def _points(df) -> list[list[np.ndarray]]:
    return [
        split_layers(np.asarray(w), np.asarray(d, np.int64))
        for w, d in zip(df.weights, df.dims, strict=True)
    ]


if __name__ == "__main__":
    main()
