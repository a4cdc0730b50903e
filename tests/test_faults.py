"""SIGKILL a real ``mcland sample`` process at chosen moments, resume, compare.

Each test starts ``python -m mcland.cli sample`` with the test-only hook of
:mod:`mcland._faults` set to *pause* at one moment of the run (for example between writing
a shard's temporary file and renaming it), waits until the process is there, kills it with
SIGKILL from outside, checks the directory is in the state that moment implies, resumes
the run, and compares it with an uninterrupted run: the same records bit for bit, every
sample id once, nothing left over.  (A subprocess starts in 2-3 s with a warm Numba cache.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_helpers import assert_clean, assert_same_records

import mcland
from mcland import _faults, rundir, storage

N, SHARD, SHARDS = 60, 20, 3
TOML = f"""\
n = {N}
seed = 7
[architecture]
depth = [2, 4]
d_y = [1, 3]
hidden = [1, 4]
[output]
shard_size = {SHARD}
"""
WAIT_LIMIT = 600.0  # seconds; only a safety net against a hung child, not a timing assertion


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "faults.toml"
    path.write_text(TOML, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(config, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    mcland.run(config, out, threads=1, progress=False)
    return out


def sample_cmd(config: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mcland.cli",
        "sample",
        str(config),
        "--out",
        str(out),
        "--no-progress",
    ]


def kill_at(config: Path, out: Path, moment: str, count: int, flag: Path) -> None:
    """Run ``mcland sample`` until it pauses at the ``count``-th ``moment``, then SIGKILL it."""
    env = {**os.environ, _faults.ENV: f"pause:{moment}:{count}:{flag}"}
    proc = subprocess.Popen(
        [*sample_cmd(config, out), "--threads", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + WAIT_LIMIT
    while not flag.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"never reached {moment} #{count} (exit {proc.returncode}): {err}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def names(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir())


def leftovers(out: Path) -> list[str]:
    return [n for n in names(out) if n.startswith(".tmp-")]


def shards(out: Path) -> list[str]:
    return [n for n in names(out) if n.startswith("part-")]


# moment, count, state of the directory at the kill: (has run.json, finished shards, tmp files)
MOMENTS = [
    ("manifest-tmp", 1, (False, 0, 1)),  # run.json being written
    ("manifest-written", 1, (True, 0, 0)),  # before the first shard
    ("batch-computed", 2, (True, 1, 0)),  # second shard computed, not written
    ("shard-tmp", 2, (True, 1, 1)),  # during the write of the second shard
    ("shard-done", 1, (True, 1, 0)),  # right after the first rename
    ("all-shards", 1, (True, 3, 0)),  # every shard written, before the summary
]


@pytest.mark.parametrize(
    ("moment", "count", "state"), MOMENTS, ids=[f"{m}-{c}" for m, c, _ in MOMENTS]
)
def test_sigkill_then_resume(tmp_path, config, reference, moment, count, state):
    out = tmp_path / "run"
    kill_at(config, out, moment, count, tmp_path / "flag")
    manifest, finished, tmp = state
    assert (out / storage.MANIFEST).exists() is manifest
    assert len(shards(out)) == finished
    assert len(leftovers(out)) == tmp
    summary = mcland.run(config, out, threads=1, progress=False)
    assert summary.computed == N - finished * SHARD  # finished shards are kept
    assert_clean(out, N, SHARDS)
    assert_same_records(out, reference)


def test_killed_three_times_then_resumed_from_the_command_line(tmp_path, config, reference):
    out = tmp_path / "run"
    kill_at(config, out, "shard-tmp", 1, tmp_path / "flag1")  # mid-write of shard 0
    assert shards(out) == [] and len(leftovers(out)) == 1
    kill_at(config, out, "shard-done", 1, tmp_path / "flag2")  # shard 0 redone
    assert shards(out) == ["part-000000.parquet"] and leftovers(out) == []
    kill_at(config, out, "shard-tmp", 1, tmp_path / "flag3")  # mid-write of shard 1
    assert shards(out) == ["part-000000.parquet"] and len(leftovers(out)) == 1
    st = rundir.scan(out)
    assert (st.done, st.missing, len(st.leftovers)) == ([0], [1, 2], 1)
    proc = subprocess.run(
        sample_cmd(config, out),
        capture_output=True,
        text=True,
        timeout=WAIT_LIMIT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"({N - SHARD} computed" in proc.stdout
    assert_clean(out, N, SHARDS)
    assert_same_records(out, reference)
