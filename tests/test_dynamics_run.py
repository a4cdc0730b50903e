"""``mcland dynamics`` run directories: the same records as the in-memory
:func:`mcland.flow.run.dynamics` whatever the threads and shard size, after a SIGKILL
and a resume, and with Dask workers; bad ``[dynamics]`` input refused in one line (the
machinery of ``mcland sample``, :mod:`mcland.execution.runner`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import cli, refused
from test_config import merged, to_toml

import mcland
from mcland.core import faults
from mcland.flow.run import dynamics
from mcland.rundir import directory as rundir
from mcland.rundir.files import read_manifest

# small: 8 points, depths 2-3, a cheap budget; the escape rows include strict saddles,
# W = 0 and minimizers, the small_init rows plateaus (checked below, so the comparison is
# not vacuous)
CONFIG = {
    "n": 8,
    "seed": 7,
    "architecture": {"depth": [2, 3], "d_y": [1, 2], "d_x_extra": [0, 1], "hidden": [2, 3]},
    "data": {"m": 20},
    "points": {"weight_global": 0.3},
    "output": {"shard_size": 3},
}
SECTIONS = {
    "escape": {"experiment": "escape", "deltas": [1e-2, 1e-4], "max_evals": 3000},
    "small_init": {
        "experiment": "small_init",
        "eps": [1e-2, 1e-3],
        "max_evals": 3000,
        "t_max_steps": 1e6,
    },
}


def write(directory: Path, experiment: str, **output) -> Path:
    """The configuration file of ``experiment`` (output section patched with ``output``)."""
    cfg = merged(CONFIG, {"dynamics": SECTIONS[experiment], "output": output})
    path = directory / f"{experiment}.toml"
    path.write_text(to_toml(cfg), encoding="utf-8")
    return path


@pytest.fixture(scope="module", params=sorted(SECTIONS))
def expected(request) -> tuple[str, pd.DataFrame]:
    """The experiment and its in-memory records (one thread)."""
    exp = request.param
    df = dynamics({**CONFIG, "dynamics": SECTIONS[exp]}, threads=1)
    assert len(df) == CONFIG["n"] * 2
    if exp == "escape":
        assert df["t_escape"].notna().any() and (df["status"] == "relaxed").any()
    else:
        assert (df["n_plateaus"] > 0).any()
    return exp, df.reset_index(drop=True)


def _same(run_dir: Path, df: pd.DataFrame) -> None:
    got = mcland.load(run_dir).reset_index(drop=True)
    assert list(got.columns) == list(df.columns)
    pd.testing.assert_frame_equal(got, df, check_categorical=False)


def _args(config: Path, out: Path, *extra: object) -> tuple[object, ...]:
    return ("dynamics", config, "--out", out, "--no-progress", *extra)


def test_threads_and_shard_sizes_give_the_in_memory_records(expected, capsys, tmp_path):
    exp, df = expected
    for threads, size in [(1, 3), (2, 5)]:
        out = tmp_path / f"run-{threads}-{size}"
        config = write(tmp_path, exp, shard_size=size)
        code, _, err = cli(capsys, *_args(config, out, "--threads", threads))
        assert code == 0, err
        _same(out, df)
        st = rundir.scan(out)
        assert st.complete and st.verified and read_manifest(out)["kind"] == "dynamics"


def test_sigkill_after_the_first_shard_then_resume(expected, tmp_path):
    exp, df = expected
    config, out, flag = write(tmp_path, exp, shard_size=2), tmp_path / "run", tmp_path / "fired"
    cmd = [sys.executable, "-m", "mcland.cli", *map(str, _args(config, out, "--threads", "2"))]
    env = {**os.environ, faults.ENV: f"kill:shard-done:1:{flag}"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9 and flag.exists(), proc.stderr
    st = rundir.scan(out)
    assert st.done == [0] and st.missing == [1, 2, 3]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "(6 points computed" in proc.stdout
    _same(out, df)


def test_dask_workers_give_the_same_records(expected, capsys, tmp_path):
    pytest.importorskip("distributed")
    exp, df = expected
    out = tmp_path / "dask"
    code, _, err = cli(capsys, *_args(write(tmp_path, exp), out, "--workers", "2"))
    assert code == 0, err
    _same(out, df)


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"deltas": []}, "dynamics.deltas: List should have at least 1 item"),
        ({"deltas": [-1e-3]}, "dynamics.deltas.0: Input should be greater than 0"),
        ({"eps": [0.0]}, "dynamics.eps.0: Input should be greater than 0"),
        ({"max_evals": 0}, "dynamics.max_evals: Input should be greater than or equal to 10"),
        ({"t_max_steps": -1.0}, "dynamics.t_max_steps: Input should be greater than 0"),
        ({"deltaz": [1e-3]}, "unknown key 'dynamics.deltaz'"),
    ],
    ids=["empty", "negative-delta", "zero-eps", "evals", "time", "unknown-key"],
)
def test_bad_dynamics_section_is_refused_by_the_cli(capsys, tmp_path, patch, fragment):
    cfg = merged(CONFIG, {"dynamics": {**SECTIONS["escape"], **patch}})
    path = tmp_path / "bad.toml"
    path.write_text(to_toml(cfg), encoding="utf-8")
    refused(capsys, tmp_path, *_args(path, tmp_path / "out"), fragments=(fragment,))
    assert not (tmp_path / "out").exists()
