"""The ``mcland`` command line: options, output directories, ``inspect``, a real run.

Contract (README, "Command line"): bad input of any kind ends with ONE line
``mcland: error: ...`` on stderr and exit status 2, never a traceback, and writes nothing.

Most tests call :func:`mcland.cli.main` in-process (fast: the Numba kernels are compiled or
loaded from the cache once per session); two tests run ``python -m mcland.cli`` in a real
subprocess, which may take about a minute when the Numba cache is cold.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import cli, refused, tree

import mcland

# ---------------------------------------------------------------------- helpers

TINY_TOML = """\
n = 20
seed = 1

[architecture]
depth = [2, 3]
d_y = [1, 2]
d_x_extra = [0, 1]
hidden = [1, 3]

[data]
m = 10

[output]
shard_size = 10
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A small configuration: 10-point shards, depth 2-3, widths <= 3."""
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML, encoding="utf-8")
    return path


def sample_args(config: Path, out: Path, *extra: object) -> list[object]:
    return ["sample", config, "--out", out, "--no-progress", "--threads", "1", *extra]


# ---------------------------------------------------------------------- sample options


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--n", "0"], ("'--n'", "0")),
        (["--n", "-3"], ("'--n'",)),
        (["--n", "ten"], ("'--n'", "ten")),
        (["--threads", "0"], ("'--threads'", "0")),
        (["--seed", "abc"], ("'--seed'", "abc")),
        (["--seed", "1.5"], ("'--seed'", "1.5")),
        (["--seed", "-1"], ("'--seed'",)),
        (["--bogus"], ("--bogus",)),
    ],
    ids=["n=0", "n<0", "n=ten", "threads=0", "seed=abc", "seed=1.5", "seed<0", "bogus"],
)
def test_bad_option(capsys, tmp_path, tiny, extra, fragments):
    refused(capsys, tmp_path, *sample_args(tiny, tmp_path / "out"), *extra, fragments=fragments)
    assert not (tmp_path / "out").exists()


def test_missing_out_option(capsys, tmp_path, tiny):
    refused(capsys, tmp_path, "sample", tiny, fragments=("--out",))


# ---------------------------------------------------------------------- output directory


def test_out_is_non_empty_foreign_directory(capsys, tmp_path, tiny):
    out = tmp_path / "mine"
    (out / "sub").mkdir(parents=True)
    (out / "notes.txt").write_text("keep me\n")
    (out / "sub" / "data.csv").write_text("a,b\n1,2\n")
    refused(capsys, tmp_path, *sample_args(tiny, out), fragments=(str(out), "no mcland run"))
    assert (out / "notes.txt").read_text() == "keep me\n"


def test_out_with_unreadable_manifest(capsys, tmp_path, tiny):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text("{not json")
    refused(capsys, tmp_path, *sample_args(tiny, out), fragments=("run.json",))


def test_out_is_a_regular_file(capsys, tmp_path, tiny):
    out = tmp_path / "afile"
    out.write_text("x")
    refused(capsys, tmp_path, *sample_args(tiny, out), fragments=("afile",))


def test_out_parent_is_a_regular_file(capsys, tmp_path, tiny):
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "run"
    refused(capsys, tmp_path, *sample_args(tiny, out), fragments=("cannot write to", "afile"))


@pytest.mark.parametrize(
    ("extra", "key"),
    [(["--seed", "2"], "seed"), (["--n", "25"], "n")],
    ids=["seed", "n"],
)
def test_out_holds_a_different_run(capsys, tmp_path, tiny, extra, key):
    out = tmp_path / "run"
    code, _, err = cli(capsys, *sample_args(tiny, out, "--n", "20", "--seed", "1"))
    assert code == 0, err
    assert len(mcland.load(out)) == 20
    overrides = {"--n": "20", "--seed": "1"} | dict(zip(extra[::2], extra[1::2], strict=True))
    args = [x for kv in overrides.items() for x in kv]
    msg = refused(
        capsys, tmp_path, *sample_args(tiny, out, *args), fragments=(str(out), "different run")
    )
    differing = re.search(r"differs in: ([^)]*)\)", msg)
    assert differing, msg
    assert key in differing.group(1).split(", ")


def test_out_holds_a_run_with_another_config_file(capsys, tmp_path, tiny):
    out = tmp_path / "run"
    code, _, err = cli(capsys, *sample_args(tiny, out))
    assert code == 0, err
    other = tmp_path / "other.toml"
    other.write_text(TINY_TOML.replace("hidden = [1, 3]", "hidden = [1, 2]"))
    refused(capsys, tmp_path, *sample_args(other, out), fragments=("differs in: config",))


# ---------------------------------------------------------------------- a successful run


def test_sample_run_and_resume(capsys, tmp_path, tiny):
    out = tmp_path / "run"
    out.mkdir()  # an existing empty directory is fine
    args = ["sample", tiny, "--out", out, "--n", "30", "--seed", "3", "--no-progress"]

    code, stdout, err = cli(capsys, *args)
    assert code == 0, err
    assert "agreement" in stdout
    assert "wrote 30 points" in stdout and "(30 computed" in stdout
    first = mcland.load(out)
    assert len(first) == 30
    assert first["sample_id"].tolist() == list(range(30))
    assert (first["seed"] == 3).all()
    assert sorted(p.name for p in out.iterdir()) == [
        "checksums",
        "part-000000.parquet",
        "part-000001.parquet",
        "part-000002.parquet",
        "run.json",
        "runlog.jsonl",
    ]
    manifest = json.loads((out / "run.json").read_text())
    assert (manifest["n"], manifest["seed"], manifest["shards"]) == (30, 3, 3)

    # same command again: resumes, nothing recomputed, nothing duplicated
    files = tree(out)
    code, stdout, err = cli(capsys, *args)
    assert code == 0, err
    assert "(0 computed" in stdout and "agreement" in stdout
    assert tree(out) == files
    again = mcland.load(out)
    assert again["sample_id"].tolist() == list(range(30))

    # a lost shard is recomputed, identically, whatever the thread count
    (out / "part-000001.parquet").unlink()
    code, stdout, err = cli(capsys, *args, "--threads", "2")
    assert code == 0, err
    assert "(10 computed" in stdout
    redone = mcland.load(out)
    assert redone["sample_id"].tolist() == list(range(30))
    cols = ["sample_id", "H", "d_x", "d_y", "loss", "theory_type", "numeric_type", "eig_min_w"]
    assert redone[cols].equals(first[cols])


# ---------------------------------------------------------------------- inspect


def _data(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.standard_normal((3, 10))
    Y = rng.standard_normal((2, 3)) @ X + 0.5 * rng.standard_normal((2, 10))
    path = tmp_path / "data.npz"
    np.savez(path, X=X, Y=Y)
    return path, X, Y


def _global_min(X: np.ndarray, Y: np.ndarray) -> dict[str, np.ndarray]:
    # W_2 W_1 = Syx Sxx^-1 with a hidden layer as wide as d_y: a global minimizer, S = {1, 2}
    return {"W1": Y @ X.T @ np.linalg.inv(X @ X.T), "W2": np.eye(2)}


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    return _data(tmp_path)


@pytest.fixture
def good_weights(tmp_path, data) -> Path:
    path = tmp_path / "w.npz"
    np.savez(path, **_global_min(data[1], data[2]))
    return path


def test_inspect_human_report(capsys, good_weights, data):
    code, out, err = cli(capsys, "inspect", good_weights, data[0])
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("architecture   (3, 2, 2)  (H = 2, r = 2, N = 10)")
    assert lines[1].startswith("critical       True")
    assert "S              {1, 2}" in lines
    assert "theory type    global_minimizer" in lines
    assert "numeric type   global_minimizer" in lines
    assert any(line.startswith("Hessian        eig_min ") for line in lines)
    assert any(line.startswith("whitened       eig_min ") and "inertia" in line for line in lines)


@pytest.mark.parametrize(
    ("point", "critical", "theory", "numeric", "S"),
    [
        ("global", True, "global_minimizer", "global_minimizer", [1, 2]),
        ("zero", True, "strict_saddle", "strict_saddle", []),
        ("random", False, "not_critical", "not_critical", None),
    ],
    ids=["global-min", "zero", "random"],
)
def test_inspect_json(capsys, tmp_path, data, point, critical, theory, numeric, S):
    path, X, Y = data
    rng = np.random.default_rng(11)
    weights = {
        "global": _global_min(X, Y),
        "zero": {"W1": np.zeros((2, 3)), "W2": np.zeros((2, 2))},
        "random": {"W1": rng.standard_normal((2, 3)), "W2": rng.standard_normal((2, 2))},
    }[point]
    np.savez(tmp_path / "w.npz", **weights)
    code, out, err = cli(capsys, "inspect", tmp_path / "w.npz", path, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert {"theory_type", "numeric_type", "S", "eigenvalues", "is_critical"} <= set(report)
    assert report["is_critical"] is critical
    assert (report["theory_type"], report["numeric_type"]) == (theory, numeric)
    if S is not None:
        assert report["S"] == S
    eig = report["eigenvalues"]
    assert len(eig) == 10 and eig == sorted(eig)
    assert report["dims"] == [3, 2, 2]


def _weights_case(tmp_path: Path, X: np.ndarray, Y: np.ndarray, case: str) -> Path:
    g = _global_min(X, Y)
    path = tmp_path / "w.npz"
    if case == "missing":
        return tmp_path / "nope.npz"
    if case == "not-npz":
        path.write_text("W1 = 1\n")
        return path
    arrays = {
        "no-W": {"A": g["W1"], "B": g["W2"]},
        "empty": {},
        "gap": {"W1": g["W1"], "W3": g["W2"]},
        "W0": {"W0": g["W1"], "W1": g["W2"]},
        "one-layer": {"W1": Y @ np.linalg.pinv(X)},
        "no-chain": {"W1": g["W1"], "W2": np.eye(3)},
        "d_x": {"W1": np.ones((2, 4)), "W2": np.eye(2)},
        "d_y": {"W1": g["W1"], "W2": np.ones((1, 2))},
        "nan": {"W1": np.where(np.eye(2, 3) > 0, np.nan, g["W1"]), "W2": np.eye(2)},
        "inf": {"W1": g["W1"], "W2": np.array([[np.inf, 0.0], [0.0, 1.0]])},
        "1-D": {"W1": g["W1"][0], "W2": np.eye(2)},
    }[case]
    np.savez(path, **arrays)
    return path


WEIGHT_CASES = [
    ("missing", ("nope.npz", "no such file")),
    ("not-npz", ("not a readable .npz file",)),
    ("no-W", ("no arrays named W1, W2", "has: A, B")),
    ("empty", ("no arrays named W1",)),
    ("gap", ("without gaps", "found W1, W3")),
    ("W0", ("without gaps", "W0")),
    ("one-layer", ("H >= 2",)),
    ("no-chain", ("shapes do not chain", "W_2 is (3, 3)")),
    ("d_x", ("R^4 -> R^2", "d_x = 3, d_y = 2")),
    ("d_y", ("R^3 -> R^1", "d_x = 3, d_y = 2")),
    ("nan", ("W_1 has 2 NaN or infinite entries",)),
    ("inf", ("W_2 has 1 NaN or infinite entries",)),
    ("1-D", ("W_1 must be 2-D",)),
]


@pytest.mark.parametrize(("case", "fragments"), WEIGHT_CASES, ids=[c[0] for c in WEIGHT_CASES])
def test_inspect_bad_weights(capsys, tmp_path, data, case, fragments):
    weights = _weights_case(tmp_path, data[1], data[2], case)
    refused(capsys, tmp_path, "inspect", weights, data[0], fragments=fragments)


@pytest.mark.parametrize(
    ("arrays", "fragments"),
    [
        ({"Y": "Y"}, ("missing array(s) X", "has: Y")),
        ({"X": "X"}, ("missing array(s) Y",)),
        ({"X": "X", "Y": "Y-short"}, ("X has 10 samples", "Y has 9")),
        ({"X": "X-nan", "Y": "Y"}, ("X has 1 NaN",)),
        ({"X": "X-row", "Y": "Y"}, ("d_y = 2 > d_x = 1",)),
    ],
    ids=["no-X", "no-Y", "different-m", "nan", "d_y>d_x"],
)
def test_inspect_bad_data(capsys, tmp_path, good_weights, data, arrays, fragments):
    _, X, Y = data
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    pool = {"X": X, "Y": Y, "Y-short": Y[:, :-1], "X-nan": X_nan, "X-row": X[:1]}
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{k: pool[v] for k, v in arrays.items()})
    refused(capsys, tmp_path, "inspect", good_weights, bad, fragments=fragments)


def test_inspect_missing_data_file(capsys, tmp_path, good_weights):
    refused(
        capsys,
        tmp_path,
        "inspect",
        good_weights,
        tmp_path / "nope.npz",
        fragments=("nope.npz", "no such file"),
    )


# ---------------------------------------------------------------------- known bugs


@pytest.mark.parametrize("which", ["weights", "data"])
def test_refuses_npy_instead_of_npz(capsys, tmp_path, good_weights, data, which):
    npy = tmp_path / "arr.npy"
    np.save(npy, np.eye(2))
    args = [npy, data[0]] if which == "weights" else [good_weights, npy]
    refused(capsys, tmp_path, "inspect", *args, fragments=("arr.npy",))


def test_refuses_huge_weights(capsys, tmp_path, data):
    g = _global_min(data[1], data[2])
    np.savez(tmp_path / "w.npz", W1=g["W1"] * 1e200, W2=g["W2"] * 1e200)
    refused(capsys, tmp_path, "inspect", tmp_path / "w.npz", data[0])


# ---------------------------------------------------------------------- real subprocesses


def _mcland(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcland.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.slow
def test_subprocess_sample(tmp_path, tiny):
    proc = _mcland(
        "sample", tiny, "--out", "run", "--n", "12", "--seed", "5", "--no-progress", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "agreement" in proc.stdout
    assert proc.stderr == ""
    assert mcland.load(tmp_path / "run")["sample_id"].tolist() == list(range(12))


@pytest.mark.slow
def test_subprocess_error(tmp_path):
    (tmp_path / "bad.toml").write_text("n = 20\n[architecture]\ndepht = [2, 3]\n")
    before = tree(tmp_path)
    proc = _mcland("sample", "bad.toml", "--out", "run", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(
        "mcland: error: bad.toml: unknown key 'architecture.depht' (did you mean 'depth'?)"
    )
    assert tree(tmp_path) == before


def test_spectrum_free_run_reports_its_audit(capsys, tmp_path):
    path = tmp_path / "free.toml"
    path.write_text(
        TINY_TOML.replace("n = 20", "n = 60")
        + "\n[classify]\nspectrum_free = true\naudit_fraction = 0.5\n",
        encoding="utf-8",
    )
    code, out, err = cli(capsys, "sample", path, "--out", tmp_path / "run", "--no-progress")
    assert code == 0, err
    records = mcland.load(tmp_path / "run")
    audited = int(records["audit_type"].notna().sum())
    assert 10 < audited < 50  # each point drawn with probability 1/2
    assert f"spectrum-free audit: {audited} points also decomposed, 0 with another" in out
    assert records.loc[records["audit_type"].isna(), "eig_min_w"].isna().all()
