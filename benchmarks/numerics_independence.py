"""Issue 23's "must show", as a script (too costly for the test suite): the same records,
bit for bit, for every kind of run, whatever the process computes them.

Reference: the plain command line, one ``mcland`` process per kind, no
``OPENBLAS_CORETYPE``. Compared with it (``mcland.rundir.compare.compare_runs`` and, for
the ground-truth export, column by column):

* ``notebook``: one process that imports NumPy and SciPy (and calls their LAPACK) before
  mcland, then runs every kind through ``mcland.cli.main``;
* ``kernel=K``: the same, with ``OPENBLAS_CORETYPE=K`` for each OpenBLAS kernel the machine
  runs (a kernel counts when SciPy's OpenBLAS reports it once forced);
* ``dask-worker``: ``dask scheduler`` and ``dask worker --nthreads 1 --nworkers 2`` started
  by Dask's command line on loopback, every kind that runs on Dask with ``--scheduler``;
* ``classify --refine`` twice more with ``--threads 1``, once with ``--threads 2`` and
  twice with ``MALLOC_PERTURB_`` set (another heap fill).

Usage: ``python benchmarks/numerics_independence.py OUT [--quick N] [--paper N]
[--dynamics N] [--refine-points N]``; prints the table it writes to
``OUT/numerics-independence.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import mcland
from mcland.rundir.compare import compare_runs, record_bytes

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs"
BIN = Path(sys.executable).parent
KERNELS = ("Prescott", "Nehalem", "Sandybridge", "Haswell", "Zen", "SkylakeX", "Cooperlake")
ON_DASK = ("sample_quick", "sample_paper", "classify", "classify_refine", "dynamics")

NOTEBOOK = """
import sys, json
import numpy, scipy.linalg
numpy.linalg.eigh(numpy.eye(3) + 1.0); scipy.linalg.eigh(numpy.eye(3) + 1.0)
import mcland.cli
for argv in json.loads(sys.argv[1]):
    mcland.cli.main(argv)
"""


def kinds(a: argparse.Namespace) -> dict[str, list[str]]:
    return {
        "sample_quick": ["sample", "{d}/quick.toml", "--n", str(a.quick), "--out", "{out}"],
        "sample_paper": ["sample", "{d}/paper.toml", "--n", str(a.paper), "--out", "{out}"],
        "groundtruth": [
            "groundtruth",
            str(RUNS / "autoencoder.toml"),
            "--n",
            str(a.truth),
            "--out",
            "{out}",
        ],
        "classify": ["classify", "{d}/points.parquet", "--data", "{d}/data.npz", "--out", "{out}"],
        "classify_refine": [
            "classify",
            "{d}/refine.parquet",
            "--data",
            "{d}/data.npz",
            "--refine",
            "--out",
            "{out}",
        ],
        "dynamics": [
            "dynamics",
            str(RUNS / "dynamics_quick.toml"),
            "--n",
            str(a.dynamics),
            "--out",
            "{out}",
        ],
    }


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "MCLAND_LAPACK")}
    e.update(extra)
    return e


def script(name: str) -> list[str]:
    path = BIN / name
    return [str(path)] if path.exists() else [sys.executable, "-m", name]


def argv(spec: dict[str, list[str]], kind: str, d: Path, out: Path) -> list[str]:
    return [x.format(d=d, out=out) for x in spec[kind]] + (
        ["--no-progress"] if spec[kind][0] != "groundtruth" else []
    )


def check(proc: subprocess.CompletedProcess) -> None:
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])


def inputs(d: Path, a: argparse.Namespace) -> None:
    """Configurations with small shards (so several shards and workers), and a classify
    input: ``refine_points`` points of ``runs/linnerud.toml``, every tenth perturbed by
    1e-7 relative (as the issue-20 reference input); the refine input: the same points,
    each perturbed, by 1e-8, 1e-6, 1e-4, 1e-3 relative in turn."""
    d.mkdir(parents=True, exist_ok=True)
    for name, old, new in (
        ("quick", "shard_size = 5000", f"shard_size = {max(1, a.quick // 4)}"),
        ("paper", "shard_size = 20000", f"shard_size = {max(1, a.paper // 4)}"),
    ):
        text = (RUNS / f"{name}.toml").read_text(encoding="utf-8")
        (d / f"{name}.toml").write_text(text.replace(old, new))
    cfg = tomllib.loads((RUNS / "linnerud.toml").read_text(encoding="utf-8"))
    cfg["data"]["path"] = str(RUNS / "data" / "linnerud.csv")
    cfg["output"]["weights"] = True
    cfg["n"] = a.refine_points
    df = mcland.sample(cfg, seed=7)
    data = pd.read_csv(cfg["data"]["path"])
    X = data[cfg["data"]["x_columns"]].to_numpy(float).T
    Y = data[cfg["data"]["y_columns"]].to_numpy(float).T
    rng = np.random.default_rng(0)
    w = []
    for i, x in enumerate(df["weights"]):
        x = np.asarray(x, float)
        w.append(x * (1 + 1e-7 * rng.standard_normal(x.size)) if i % 10 == 0 else x)
    dims = [[int(v) for v in x] for x in df["dims"]]
    pq.write_table(pa.table({"dims": dims, "w": w}), d / "points.parquet")
    eps = (1e-8, 1e-6, 1e-4, 1e-3)
    w = [
        np.asarray(x, float) * (1 + eps[i % 4] * rng.standard_normal(len(x)))
        for i, x in enumerate(df["weights"])
    ]
    pq.write_table(pa.table({"dims": dims, "w": w}), d / "refine.parquet")
    np.savez(d / "data.npz", X=X, Y=Y)


def available_kernels() -> list[str]:
    probe = (
        "import scipy.linalg, threadpoolctl; "
        "print(threadpoolctl.threadpool_info()[0].get('architecture'))"
    )
    seen: dict[str, str] = {}
    for k in KERNELS:
        out = subprocess.run(
            [sys.executable, "-c", probe],
            env=env(OPENBLAS_CORETYPE=k),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        seen.setdefault(out.lower(), k)
    return sorted(set(seen.values()), key=KERNELS.index)


def same(kind: str, a: Path, b: Path) -> str:
    if kind == "groundtruth":
        ta = pq.read_table(a / "points.parquet").replace_schema_metadata(None)
        tb = pq.read_table(b / "points.parquet").replace_schema_metadata(None)
        differ = [
            c
            for c in ta.column_names
            if record_bytes(ta.select([c])) != record_bytes(tb.select([c]))
        ]
        fa = json.loads(pq.read_schema(a / "points.parquet").metadata[b"mcland.numerics"])
        fb = json.loads(pq.read_schema(b / "points.parquet").metadata[b"mcland.numerics"])
        verdict = "equal" if not differ and ta.num_rows == tb.num_rows else f"DIFFER {differ}"
        return f"{verdict} rows={ta.num_rows} numerics={fa['key']}/{fb['key']}"
    r = compare_runs(a, b)
    verdict = "equal" if r["equal"] else f"DIFFER {r['columns_differing']}"
    return (
        f"{verdict} rows={r['rows'][0]} numerics={','.join(r['numerics']['a'])}/"
        f"{','.join(r['numerics']['b'])}{' MIXED' if r['numerics_differ'] else ''}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dask_runs(spec, d: Path, out: Path, logs: Path) -> None:
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = []
    with open(logs / "scheduler.log", "w") as s_log, open(logs / "workers.log", "w") as w_log:
        try:
            procs.append(
                subprocess.Popen(
                    [
                        *script("dask"),
                        "scheduler",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--no-dashboard",
                    ],
                    env=env(),
                    stdout=subprocess.DEVNULL,
                    stderr=s_log,
                )
            )
            procs.append(
                subprocess.Popen(
                    [
                        *script("dask"),
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "2",
                        "--no-dashboard",
                        "--host",
                        "127.0.0.1",
                    ],
                    env=env(),
                    stdout=subprocess.DEVNULL,
                    stderr=w_log,
                )
            )
            deadline = time.monotonic() + 120
            while True:
                try:
                    with Client(address, timeout=5) as c:
                        if len(c.scheduler_info()["workers"]) == 2:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("dask workers did not start")
                time.sleep(0.5)
            for kind in ON_DASK:
                check(
                    subprocess.run(
                        [
                            *script("mcland"),
                            *argv(spec, kind, d, out / kind),
                            "--scheduler",
                            address,
                        ],
                        env=env(),
                        capture_output=True,
                        text=True,
                        cwd=d,
                    )
                )
        finally:
            for p in reversed(procs):
                p.terminate()
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--quick", type=int, default=4000)
    p.add_argument("--paper", type=int, default=2000)
    p.add_argument("--truth", type=int, default=40)
    p.add_argument("--dynamics", type=int, default=30)
    p.add_argument("--refine-points", type=int, default=600)
    a = p.parse_args()
    spec = kinds(a)
    out: Path = a.out
    if out.exists():
        shutil.rmtree(out)
    d = out / "inputs"
    inputs(d, a)
    lines = [
        f"# benchmarks/numerics_independence.py {out} --quick {a.quick} --paper {a.paper} "
        f"--truth {a.truth} --dynamics {a.dynamics} --refine-points {a.refine_points}",
        f"# mcland {mcland.__version__}, {platform.machine()}, shared 2-core VM under load; "
        "reduced sizes (see the arguments)",
    ]
    t0 = time.time()
    ref = out / "cli"
    for kind in spec:  # the reference: the plain command line, one process per kind
        check(
            subprocess.run(
                [*script("mcland"), *argv(spec, kind, d, ref / kind)],
                env=env(),
                capture_output=True,
                text=True,
                cwd=d,
            )
        )
    lines.append(
        f"# reference: `mcland KIND ...` per kind, plain environment ({time.time() - t0:.0f} s)"
    )
    variants: list[tuple[str, dict[str, str]]] = [("notebook", env())]
    kernels = available_kernels()
    lines.append(f"# OpenBLAS kernels this machine runs: {', '.join(kernels)}")
    variants += [(f"kernel={k}", env(OPENBLAS_CORETYPE=k)) for k in kernels]
    for name, e in variants:
        t = time.time()
        argvs = [argv(spec, kind, d, out / name / kind) for kind in spec]
        check(
            subprocess.run(
                [sys.executable, "-c", NOTEBOOK, json.dumps(argvs)],
                env=e,
                capture_output=True,
                text=True,
                cwd=d,
            )
        )
        for kind in spec:
            lines.append(f"{name:20s} {kind:16s} {same(kind, out / name / kind, ref / kind)}")
        lines.append(f"# {name}: {time.time() - t:.0f} s")
    t = time.time()
    (out / "dask-logs").mkdir()
    dask_runs(spec, d, out / "dask-worker", out / "dask-logs")
    for kind in ON_DASK:
        lines.append(
            f"{'dask-worker':20s} {kind:16s} {same(kind, out / 'dask-worker' / kind, ref / kind)}"
        )
    lines.append(f"# dask-worker: {time.time() - t:.0f} s")
    for name, threads, heap in (
        ("refine-t1-a", "1", None),
        ("refine-t1-b", "1", None),
        ("refine-t2", "2", None),
        ("refine-heap42", "1", "42"),
        ("refine-heap165-t2", "2", "165"),
    ):
        check(
            subprocess.run(
                [
                    *script("mcland"),
                    *argv(spec, "classify_refine", d, out / name),
                    "--threads",
                    threads,
                ],
                env=env(**({"MALLOC_PERTURB_": heap} if heap else {})),
                capture_output=True,
                text=True,
                cwd=d,
            )
        )
        lines.append(
            f"{name:20s} {'classify_refine':16s} {same('classify_refine', out / name, ref / 'classify_refine')}"
        )
    lines.append(f"# total {time.time() - t0:.0f} s")
    text = "\n".join(lines) + "\n"
    (out / "numerics-independence.txt").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
