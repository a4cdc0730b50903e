"""Records independent of the process's BLAS kernels, import order and heap (issue 23).

The reference is every kind of run (``sample`` of ``runs/quick.toml`` and
``runs/paper.toml``, ``groundtruth``, ``classify`` of its export and of points evaluated
exactly, ``dynamics``) through the command line's entry point in this process. Against it, bit for
bit, ONE child process that differs in everything that used to leak into the records:

* *notebook order*: ``import numpy, scipy.linalg`` (and a call into each library's LAPACK,
  so both OpenBLAS instances are loaded and initialised) before ``import mcland``;
* ``OPENBLAS_CORETYPE`` forced to an old kernel (``Prescott``: SSE3, no AVX, no FMA) for
  NumPy's and SciPy's OpenBLAS, where this process runs the CPU's own (AVX-512 on the
  development VM);
* ``MALLOC_PERTURB_`` set: freshly allocated heap memory is filled with another byte (no
  recorded number may depend on memory nobody initialised).

``classify --refine`` (of points perturbed by 1e-8 to 1e-3 relative) is one of the kinds,
and is run again in a second child, in the usual import order, with another
``MALLOC_PERTURB_`` and two threads: up to 0.8.0 its Levenberg-Marquardt (SciPy's MINPACK)
read memory it had not initialised, and its records differed from process to process.

Every shard also carries the same numerics fingerprint (:mod:`mcland.core.numerics`). A
single child (not one per kind or per kernel) keeps the cost down; each OpenBLAS kernel
forced in turn and real ``dask worker`` processes are checked by
``benchmarks/numerics_independence.py`` (output in
``benchmarks/results/numerics-independence.txt``). Breaking the fix was seen to fail this
test: LAPACK through SciPy's instance (``MCLAND_LAPACK=shared`` in the child) fails
``sample_quick`` in 21 columns.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from run_helpers import assert_same_records

import mcland
import mcland.cli
from mcland._kernels import lapack_library
from mcland.core import numerics
from mcland.rundir.compare import compare_runs, record_bytes

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs"
AE4 = [[7, 7, 7, 7], [5, -5, 5, -5], [3, 3, -3, -3], [1, -1, -1, 1]]  # diag(7,5,3,1) Had_4

# Each kind of run: the command line after ``mcland``; ``{d}`` is the inputs' folder,
# ``{out}`` the output.
KINDS = {
    "sample_quick": ["sample", "{d}/quick.toml", "--n", "120", "--out", "{out}"],
    "sample_paper": ["sample", "{d}/paper.toml", "--n", "40", "--out", "{out}"],
    "groundtruth": ["groundtruth", "{d}/ae4.toml", "--n", "3", "--out", "{out}"],
    "classify": [
        "classify",
        "{d}/gt/points.parquet",
        "--data",
        "{d}/gt/data.npz",
        "--out",
        "{out}",
        "--shard-size",
        "9",
    ],
    "classify_exact": [
        "classify",
        "{d}/lin.parquet",
        "--data",
        "{d}/lin.npz",
        "--out",
        "{out}",
        "--shard-size",
        "30",
    ],
    "classify_refine": [
        "classify",
        "{d}/refine.parquet",
        "--data",
        "{d}/lin.npz",
        "--refine",
        "--out",
        "{out}",
        "--shard-size",
        "20",
    ],
    "dynamics": ["dynamics", "{d}/dynamics.toml", "--n", "4", "--out", "{out}"],
}

NOTEBOOK = """
import sys, json
import numpy, scipy.linalg, threadpoolctl
numpy.linalg.eigh(numpy.eye(3) + 1.0); scipy.linalg.eigh(numpy.eye(3) + 1.0)
def blas():
    return sorted(i["filepath"] for i in threadpoolctl.threadpool_info())
before = blas()
import mcland.cli
from mcland._kernels import lapack_library
print(json.dumps([lapack_library.describe(), before == blas()]))
for argv in json.loads(sys.argv[1]):
    mcland.cli.main(argv)
"""


def _argv(kind: str, inputs: Path, out: Path) -> list[str]:
    return [a.format(d=inputs, out=out) for a in KINDS[kind]] + (
        ["--no-progress"] if KINDS[kind][0] != "groundtruth" else []
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("inputs")
    text = (RUNS / "quick.toml").read_text(encoding="utf-8")
    (d / "quick.toml").write_text(text.replace("shard_size = 5000", "shard_size = 60"))
    text = (RUNS / "paper.toml").read_text(encoding="utf-8")
    (d / "paper.toml").write_text(text.replace("shard_size = 20000", "shard_size = 20"))
    text = (RUNS / "dynamics_quick.toml").read_text(encoding="utf-8")
    (d / "dynamics.toml").write_text(text.replace("shard_size = 100", "shard_size = 2"))
    (d / "data").mkdir()
    rows = ["x1,x2,x3,x4", *(",".join(str(AE4[i][j]) for i in range(4)) for j in range(4))]
    (d / "data" / "ae4.csv").write_text("\n".join(rows) + "\n")
    (d / "ae4.toml").write_text(
        "n = 10\nseed = 7\n[architecture]\ndepth = [2, 4]\nhidden = [2, 2]\n[data]\n"
        'source = "csv"\npath = "data/ae4.csv"\nx_columns = ["x1", "x2", "x3", "x4"]\n'
        'y_columns = ["x1", "x2", "x3", "x4"]\n'
    )
    _exact_input(d)
    return d


def _exact_input(d: Path) -> None:
    """60 points of ``runs/linnerud.toml`` (one data set), every second one perturbed by
    1e-9 relative: about a third of the points are evaluated exactly (``exact_grad_rel`` set),
    which runs the certificates' norms and ``eigh`` on the Python side.  The same 60 points
    perturbed by 1e-8, 1e-6, 1e-4, 1e-3 relative in turn, for ``classify --refine``
    (``refine.parquet``): MINPACK's refined points differed on 2 of them between
    ``MALLOC_PERTURB_`` unset, 165 and 42."""
    cfg = tomllib.loads((RUNS / "linnerud.toml").read_text(encoding="utf-8"))
    cfg["data"]["path"] = str(RUNS / "data" / "linnerud.csv")
    cfg["output"]["weights"] = True
    cfg["n"] = 60
    df = mcland.sample(cfg)
    data = pd.read_csv(cfg["data"]["path"])
    X = data[cfg["data"]["x_columns"]].to_numpy(float).T
    Y = data[cfg["data"]["y_columns"]].to_numpy(float).T
    rng = np.random.default_rng(5)
    w = [
        np.asarray(x, float) * (1 + (k % 2) * 1e-9 * rng.standard_normal(len(x)))
        for k, x in enumerate(df["weights"])
    ]
    dims = [[int(v) for v in x] for x in df["dims"]]
    pq.write_table(pa.table({"dims": dims, "w": w}), d / "lin.parquet")
    eps = (1e-8, 1e-6, 1e-4, 1e-3)
    w = [
        np.asarray(x, float) * (1 + eps[k % 4] * rng.standard_normal(len(x)))
        for k, x in enumerate(df["weights"])
    ]
    pq.write_table(pa.table({"dims": dims, "w": w}), d / "refine.parquet")
    np.savez(d / "lin.npz", X=X, Y=Y)


def _run_here(inputs: Path, out: Path) -> None:
    """Every kind through ``mcland.cli.main`` in this process (the classify run reads the
    ground-truth export)."""
    cwd = Path.cwd()
    os.chdir(inputs)
    try:
        for kind in KINDS:
            mcland.cli.main(_argv(kind, inputs, out / kind))
            if kind == "groundtruth" and not (inputs / "gt").exists():
                shutil.copytree(out / kind, inputs / "gt")
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("here")
    _run_here(inputs, root)
    assert mcland.load(root / "classify_exact")["exact_grad_rel"].notna().sum() >= 10
    return root


def _groundtruth_columns_differing(a: Path, b: Path) -> list[str]:
    ta = pq.read_table(a / "points.parquet").replace_schema_metadata(None)
    tb = pq.read_table(b / "points.parquet").replace_schema_metadata(None)
    return [
        c for c in ta.column_names if record_bytes(ta.select([c])) != record_bytes(tb.select([c]))
    ]


def test_another_process_gives_the_same_records(inputs, reference, tmp_path):
    """Notebook order, NumPy's and SciPy's OpenBLAS forced to ``Prescott``, another heap
    fill: every kind of run gives this process's records, under one fingerprint."""
    env = {k: v for k, v in os.environ.items() if k != "MCLAND_LAPACK"}
    env.update(OPENBLAS_CORETYPE="Prescott", MALLOC_PERTURB_="165")
    argvs = [_argv(kind, inputs, tmp_path / kind) for kind in KINDS]
    proc = subprocess.run(
        [sys.executable, "-c", NOTEBOOK, json.dumps(argvs)],
        env=env,
        capture_output=True,
        text=True,
        cwd=inputs,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # mcland's LAPACK instance is the same library on the same kernel as this process's,
    # and is not one of the libraries threadpoolctl manages (it limits itself to one thread)
    described, unchanged = json.loads(proc.stdout.splitlines()[0])
    assert described == lapack_library.describe() and unchanged, proc.stdout[:2000]
    for kind in KINDS:
        if kind == "groundtruth":  # one Parquet file, its metadata aside
            differ = _groundtruth_columns_differing(tmp_path / kind, reference / kind)
            assert not differ, f"groundtruth: columns differ: {differ}"
            continue
        try:
            assert_same_records(tmp_path / kind, reference / kind)
        except AssertionError as exc:
            raise AssertionError(f"{kind}: {exc}") from None
        report = compare_runs(tmp_path / kind, reference / kind)
        assert report["equal"] and not report["numerics_differ"], (kind, report)
        assert len(report["numerics"]["a"]) == 1 and "None" not in report["numerics"]["a"]


PLAIN = """
import sys, json
import mcland.cli
mcland.cli.main(json.loads(sys.argv[1]))
"""


def test_refine_in_a_third_process_gives_the_same_records(inputs, reference, tmp_path):
    """``classify --refine`` once more: mcland imported first, another heap fill than the
    other child's (``MALLOC_PERTURB_`` 42 against 165), two threads."""
    env = {k: v for k, v in os.environ.items() if k != "MCLAND_LAPACK"}
    env.update(MALLOC_PERTURB_="42")
    out = tmp_path / "classify_refine"
    argv = [*_argv("classify_refine", inputs, out), "--threads", "2"]
    proc = subprocess.run(
        [sys.executable, "-c", PLAIN, json.dumps(argv)],
        env=env,
        capture_output=True,
        text=True,
        cwd=inputs,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    refined = mcland.load(out)
    assert refined.refine_converged.all() and (refined.refine_distance > 0).sum() >= 30
    assert_same_records(out, reference / "classify_refine")
    assert compare_runs(out, reference / "classify_refine")["equal"]


def test_a_run_under_mixed_numerics_is_reported(inputs, reference, tmp_path, monkeypatch):
    """A shard computed under another fingerprint (here: this process told it has another
    one): the resume warns, ``mcland status --verify`` fails and says why, the run log and
    ``compare_runs`` report it; the records themselves are untouched."""
    out = tmp_path / "mixed"
    shutil.copytree(reference / "sample_quick", out)
    (out / "part-000001.parquet").unlink()
    ours = numerics.fingerprint()
    other = {**ours, "lapack": {**ours["lapack"], "core": "Prescott"}}
    other["key"] = numerics.key(other)
    monkeypatch.setattr(numerics, "fingerprint", lambda: other)
    with pytest.warns(RuntimeWarning, match="MIXED: shards computed under 2 fingerprints"):
        mcland.cli.main(_argv("sample_quick", inputs, out))
    monkeypatch.undo()
    assert numerics.of_shard(out / "part-000001.parquet")["key"] == other["key"] != ours["key"]
    with pytest.raises(SystemExit) as exit_status:
        mcland.cli.main(["status", str(out), "--verify"])
    assert exit_status.value.code != 0
    facts = json.loads(_stdout(["status", str(out), "--json"]))
    assert facts["mixed_numerics"] is True and facts["verified"] is False
    assert any(re.search(r"numerics +MIXED", line) for line in facts["numerics"])
    log = [json.loads(line) for line in (out / "runlog.jsonl").read_text().splitlines()]
    assert log[-1]["shard_numerics"] == {other["key"]: ["part-000001.parquet"]}
    report = compare_runs(out, reference / "sample_quick")
    assert report["equal"] and report["numerics_differ"] is True
    same = compare_runs(reference / "sample_quick", reference / "sample_quick")
    assert same["numerics_differ"] is False


def _stdout(argv: list[str]) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        mcland.cli.main(argv)
    return buf.getvalue()
