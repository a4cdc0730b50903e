"""Refinement table (issue 14, item 2): exact critical points of every type, perturbed
componentwise by a relative ``eps``, classified without and with ``refine``.

Usage: python analysis/refine_table.py [--n 600] [--per-type 20] [--seed 3] [--threads N]

Points: the sampler's exact critical points of ``runs/linnerud.toml`` (fixed data), up to
``--per-type`` of each type on which theory and float64 agree.  Each layer is multiplied
entrywise by ``1 + eps g`` (``g`` standard normal) for ``eps`` in 1e-8 ... 1e-3.  Printed per
(type, eps), as a Markdown table: how many points; without refine, how many keep their
nearest critical value; with refine, how many converge, come back to the same critical
value and to the same type, how many of the others are flagged by the stability columns
(``stability = unstable`` with the original type among ``possible_types``), and the median
and largest distance moved relative to ``||w||``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import mcland
from mcland.points.inspect import split_layers

ROOT = Path(__file__).resolve().parents[1]
TYPES = ("global_minimizer", "strict_saddle", "non_strict_saddle")
EPS = (1e-8, 1e-6, 1e-4, 1e-3)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--per-type", type=int, default=20)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="worker threads (default: all cores)")
    args = ap.parse_args(argv)
    cfg = mcland.load_config(ROOT / "runs" / "linnerud.toml")
    cfg = cfg.model_copy(update={"output": cfg.output.model_copy(update={"weights": True})})
    df = mcland.sample(cfg, n=args.n, threads=args.threads)
    _, X, Y = mcland.draw_point(cfg, 0)
    points = [
        split_layers(np.asarray(w), np.asarray(d, np.int64))
        for w, d in zip(df.weights, df.dims, strict=True)
    ]
    base = mcland.classify(points, X, Y, threads=args.threads)
    theory, numeric = base.theory_type.astype(str), base.numeric_type.astype(str)
    rng = np.random.default_rng(args.seed)
    lines = [
        "| type | eps | points | nearest value kept, no refine | refine converged "
        "| same value | same type | other type, flagged unstable | distance moved / ‖w‖ (median, max) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for typ in TYPES:
        pick = np.flatnonzero((theory == typ) & (numeric == typ))[: args.per_type]
        ref_base = base.iloc[pick].reset_index(drop=True)
        for eps in EPS:
            moved = [
                [W * (1 + eps * rng.standard_normal(W.shape)) for W in points[i]] for i in pick
            ]
            near = mcland.classify(moved, X, Y, threads=args.threads)
            ref = mcland.classify(moved, X, Y, refine=True, threads=args.threads)
            same_value = (
                ref.nearest_critical_index.to_numpy() == ref_base.nearest_critical_index.to_numpy()
            )
            same_type = ref.numeric_type.astype(str).to_numpy() == typ
            flagged = [
                s == "unstable" and typ in list(p)
                for s, p in zip(ref.stability.astype(str), ref.possible_types, strict=True)
            ]
            other = ~same_type
            kept = (
                near.nearest_critical_index.to_numpy() == ref_base.nearest_critical_index.to_numpy()
            )
            dist = ref.refine_distance_rel.to_numpy()
            lines.append(
                f"| {typ} | {eps:.0e} | {len(pick)} | {kept.sum()} | "
                f"{int(ref.refine_converged.sum())} | {same_value.sum()} | {same_type.sum()} | "
                f"{int(np.sum(np.array(flagged)[other]))} of {other.sum()} | "
                f"{np.median(dist):.1e}, {dist.max():.1e} |"
            )
    table = "\n".join(lines)
    print(table)
    return table


if __name__ == "__main__":
    main()
