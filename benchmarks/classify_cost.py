"""``classify`` against ``sample`` on the same points: cost per point and agreement.

Usage: python benchmarks/classify_cost.py [--n 4000] [--rounds 3] [--json PATH] [--config TOML] [--runs]

Draws ``--n`` points of ``--config`` (default ``runs/linnerud.toml``; fixed data, ``output.weights = true``) with
:func:`mcland.sample`, then classifies the same weights with :func:`mcland.classify`, both
on one thread with warm kernels, ``--rounds`` times interleaved (sample, classify, sample,
...).  Reported: the ratio of the two wall times per round and its median (the issue's
target is at most 1.2), and whether every point came back with the sampler's ``S``,
``theory_type``, ``numeric_type`` and inertia ``(n_neg, n_zero, n_pos)`` (the check runs
on every point; ``--n 100000`` is the large check quoted in the notes).

``--runs`` compares run directories instead, as a user would run them, in fresh processes
(interpreter start and kernel loading included): ``mcland sample CONFIG --out A --threads 1``
against ``mcland classify POINTS --data DATA --out B --threads 1``, POINTS being the
Parquet file (``dims``, ``w``) of A's weights, written between the two and not timed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import mcland
from mcland.points.inspect import split_layers

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
    ap.add_argument("--runs", action="store_true", help="compare run directories (CLI)")
    args = ap.parse_args(argv)
    cfg = mcland.load_config(args.config)
    cfg = cfg.model_copy(update={"output": cfg.output.model_copy(update={"weights": True})})
    _, X, Y = mcland.draw_point(cfg, 0)
    if args.runs:
        return _runs(args, cfg, X, Y)
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
    return _summary(args, rounds, drawn, given)


def _runs(args: argparse.Namespace, cfg, X: np.ndarray, Y: np.ndarray) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def timed(*cmd: object) -> float:
        t0 = time.perf_counter()
        subprocess.run([*map(str, cmd)], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0

    mcland_cli = [sys.executable, "-c", "from mcland.cli import main; main()"]
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        config = tmp / "config.toml"
        config.write_text(_with_weights(args.config), encoding="utf-8")
        np.savez(tmp / "data.npz", X=X, Y=Y)
        common = ["--threads", "1", "--no-progress"]
        for k in range(args.rounds):
            a, b = tmp / f"sample{k}", tmp / f"classify{k}"
            t_sample = timed(*mcland_cli, "sample", config, "--out", a, "--n", args.n, *common)
            drawn = mcland.load(a)
            points = tmp / "points.parquet"
            pq.write_table(
                pa.table({
                    "dims": pa.array([list(d) for d in drawn.dims], pa.list_(pa.int64())),
                    "w": pa.array([list(w) for w in drawn.weights], pa.list_(pa.float64())),
                }),
                points,
            )  # fmt: skip
            t_classify = timed(
                *mcland_cli, "classify", points, "--data", tmp / "data.npz", "--out", b, *common
            )
            given = mcland.load(b)
            ratio = t_classify / t_sample
            rounds.append({"sample_s": t_sample, "classify_s": t_classify, "ratio": ratio})
            print(
                f"run dirs: sample {t_sample:7.2f} s   classify {t_classify:7.2f} s   ratio {ratio:.3f}"
            )
    return _summary(args, rounds, drawn, given)


def _with_weights(path: Path) -> str:
    """The TOML of ``path`` with ``output.weights = true`` and the data path made absolute
    (scalars, strings and flat lists: what run configurations hold)."""
    import tomllib

    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    doc.setdefault("output", {})["weights"] = True
    if "path" in doc.get("data", {}):
        doc["data"]["path"] = str((path.parent / doc["data"]["path"]).resolve())
    value = lambda v: str(v).lower() if isinstance(v, bool) else json.dumps(v)  # noqa: E731
    top = [f"{k} = {value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    tables = [
        f"[{k}]\n" + "\n".join(f"{kk} = {value(vv)}" for kk, vv in v.items())
        for k, v in doc.items()
        if isinstance(v, dict)
    ]
    return "\n".join(top) + "\n\n" + "\n\n".join(tables) + "\n"


def _summary(args: argparse.Namespace, rounds: list[dict], drawn, given) -> dict:
    differ = {
        c: int((drawn[c].astype(str).to_numpy() != given[c].astype(str).to_numpy()).sum())
        for c in SAME
    }
    out = {
        "n": args.n,
        "mode": "run directories (CLI)" if args.runs else "in memory",
        "config": str(args.config),
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
