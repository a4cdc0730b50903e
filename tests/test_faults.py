"""SIGKILL, SIGTERM or SIGINT a real ``mcland sample`` process at chosen moments, fill its
disk, race a second writer or a second attempt at a shard, corrupt a shard; resume, compare.

Each test starts ``python -m mcland.cli sample`` with the test-only hook of
:mod:`mcland.core.faults` set to *pause* at one moment of the run (for example between writing
a shard's temporary file and renaming it), waits until the process is there, kills it with
SIGKILL from outside, checks the directory is in the state that moment implies, resumes
the run, and compares it with an uninterrupted run: the same records bit for bit, every
sample id once, nothing left over.  (A subprocess starts in 2-3 s with a warm Numba cache.)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cli_helpers import cli, refused, tree
from run_helpers import assert_clean, assert_same_records

import mcland
from mcland.cli import EXIT_NOT_VERIFIED, EXIT_STORAGE_FULL
from mcland.core import faults
from mcland.execution import runner
from mcland.execution.compute import compute_shard
from mcland.points.plan import make_plan
from mcland.rundir import directory as rundir
from mcland.rundir import lock, runlog
from mcland.rundir.files import (
    CHECKSUM_DIR,
    MANIFEST,
    SHARD_GLOB,
    read_manifest,
    shard_name,
    tmp_name,
    verify_checksum,
)

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
    proc = start_paused(config, out, moment, count, flag)
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
    assert (out / MANIFEST).exists() is manifest
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


# ---------------------------------------------------------------------- helpers of the faults below


def start_paused(config: Path, out: Path, moment: str, count: int, flag: Path, *extra: str):
    """Start ``mcland sample`` and wait until it pauses at the ``count``-th ``moment``."""
    env = {**os.environ, faults.ENV: f"pause:{moment}:{count}:{flag}"}
    proc = subprocess.Popen(
        [*sample_cmd(config, out), "--threads", "1", *extra],
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
    return proc


def all_names(out: Path) -> list[str]:
    """Every path below ``out``, relative (temporary files hide in checksums/ too)."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*"))


def assert_nothing_partial(out: Path) -> None:
    """No temporary file anywhere, no lock, every shard present verifies."""
    assert not [n for n in all_names(out) if ".tmp-" in n], all_names(out)
    assert not (out / lock.LOCK_FILE).exists()
    for path in out.glob(SHARD_GLOB):
        assert verify_checksum(path) == "ok"


# ---------------------------------------------------------------------- one writer per directory


def test_second_writer_is_refused_and_a_dead_writers_lock_recovered(
    tmp_path, config, reference, capsys
):
    out = tmp_path / "run"
    first = start_paused(config, out, "batch-computed", 2, tmp_path / "flag")
    try:
        holder = lock.read_holder(out)
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
        before = tree(out)
        msg = refused(
            capsys,
            tmp_path,
            *sample_cmd(config, out)[3:],
            fragments=(f"pid {first.pid}", socket.gethostname(), holder["start"]),
        )
        assert "being written by" in msg
        assert tree(out) == before  # the second writer wrote nothing
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert lock.read_holder(out)["pid"] == first.pid  # left behind by the dead process
    summary = mcland.run(config, out, threads=1, progress=False)  # recovered: same host, pid gone
    assert summary.computed == N - SHARD
    assert_clean(out, N, SHARDS)
    assert_same_records(out, reference)


def test_lock_of_another_host_needs_force_unlock(tmp_path, config, reference, capsys):
    out = tmp_path / "run"
    out.mkdir()
    other = {
        "host": "elsewhere.example",
        "pid": 4242,
        "start": "2026-01-01T00:00:00Z",
        "token": "x",
    }
    (out / lock.LOCK_FILE).write_text(json.dumps(other))
    refused(
        capsys,
        tmp_path,
        *sample_cmd(config, out)[3:],
        fragments=("pid 4242 on host elsewhere.example", "--force-unlock", lock.LOCK_FILE),
    )
    code, _, err = cli(capsys, *sample_cmd(config, out)[3:], "--force-unlock")
    assert code == 0, err
    assert_clean(out, N, SHARDS)
    assert_same_records(out, reference)


def test_lock_is_exclusive_within_a_process_too(tmp_path):
    out = tmp_path / "run"
    with lock.holding(out) as held:
        assert lock.read_holder(out) == held.info
        with pytest.raises(lock.Locked, match="being written by"):
            lock.acquire(out)
    assert not out.exists()  # created for the lock, left empty: removed


# ---------------------------------------------------------------------- full disk


@pytest.mark.parametrize(("moment", "count", "done"), [("shard-tmp", 2, 1), ("manifest-tmp", 1, 0)])
def test_disk_full_stops_cleanly_then_resumes(
    tmp_path, config, reference, capsys, monkeypatch, moment, count, done
):
    out = tmp_path / "run"
    monkeypatch.setenv(faults.ENV, f"enospc:{moment}:{count}:{tmp_path / 'flag'}")
    monkeypatch.setattr(faults, "_seen", faults.Counter())
    code, stdout, err = cli(capsys, *sample_cmd(config, out)[3:], "--threads", "1")
    assert code == EXIT_STORAGE_FULL, err
    assert err.count("\n") == 1 and err.startswith("mcland: error: no space left"), err
    if done:
        assert f"{done} of {SHARDS} shards ({done * SHARD} of {N} points) complete in {out}" in err
        assert "rerun to resume: mcland sample" in err
        assert runlog.read(out)[-1]["completed"] is False
        assert_nothing_partial(out)
    else:
        assert not out.exists()  # nothing at all was written
    monkeypatch.delenv(faults.ENV)
    summary = mcland.run(config, out, threads=1, progress=False)
    assert summary.computed == N - done * SHARD
    assert_clean(out, N, SHARDS)
    assert_same_records(out, reference)


@pytest.fixture
def tiny_fs(tmp_path) -> Path:
    """A 64 KiB tmpfs (room for the manifest and one shard of this test's runs)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {res.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_real_full_filesystem_then_resume_with_space(tiny_fs, config, reference, capsys):
    out = tiny_fs / "run"
    code, _, err = cli(capsys, *sample_cmd(config, out)[3:], "--threads", "1")
    assert code == EXIT_STORAGE_FULL, err
    assert err.count("\n") == 1 and "no space left writing" in err, err
    assert f"of {SHARDS} shards" in err and str(out) in err
    assert_nothing_partial(out)
    done = len(shards(out))
    assert done < SHARDS
    subprocess.run(["mount", "-o", "remount,size=4m", str(tiny_fs)], check=True)
    summary = mcland.run(config, out, threads=1, progress=False)
    assert summary.computed == N - done * SHARD
    assert_clean(out, N, SHARDS)
    assert_same_records(out, reference)


# ---------------------------------------------------------------------- pre-emption

# moment, count, signal, extra options, shards finished when the run stops
PREEMPT = [
    ("manifest-written", 1, signal.SIGTERM, (), 0),  # before the first shard
    ("batch-computed", 2, signal.SIGTERM, (), 2),  # within the grace: shard 2 is finished
    ("batch-computed", 2, signal.SIGTERM, ("--grace", "0"), 1),  # no grace: abandoned
    ("shard-tmp", 2, signal.SIGTERM, ("--grace", "0"), 2),  # mid-write: the write completes
    ("shard-done", 1, signal.SIGINT, (), 1),  # Ctrl-C right after a rename
]


@pytest.mark.parametrize(
    ("moment", "count", "signum", "extra", "done"),
    PREEMPT,
    ids=[f"{m}-{c}-{s.name}{'-'.join(('', *e))}" for m, c, s, e, _ in PREEMPT],
)
def test_signal_stops_cleanly_then_resumes(
    tmp_path, config, reference, moment, count, signum, extra, done
):
    out = tmp_path / "run"
    proc = start_paused(config, out, moment, count, tmp_path / "flag", *extra)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=WAIT_LIMIT)
    assert proc.returncode == 128 + signum, err
    line = f"stopped by {signum.name}; {done} of {SHARDS} shards ({done * SHARD} of {N} points)"
    assert err.count("\n") == 1 and err.startswith(f"mcland: {line}"), err
    assert f"resume with: mcland sample {config} --out {out}" in err
    assert len(shards(out)) == done
    assert_nothing_partial(out)
    last = runlog.read(out)[-1]
    assert last["completed"] is False and "Interrupted" in last["error"]
    resumed = subprocess.run(
        sample_cmd(config, out), capture_output=True, text=True, timeout=WAIT_LIMIT, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"({N - done * SHARD} computed" in resumed.stdout
    assert_clean(out, N, SHARDS)
    assert_same_records(out, reference)


def test_sigterm_at_a_random_moment(tmp_path, config, reference):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [*sample_cmd(config, out), "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + WAIT_LIMIT
    while not (out / MANIFEST).exists() and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(random.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=WAIT_LIMIT)
    # 143: stopped; 0 or -SIGTERM: the run was over (the default action applies again
    # once mcland.run has returned), so the directory is complete
    assert proc.returncode in (0, 143, -signal.SIGTERM), err
    assert_nothing_partial(out)
    mcland.run(config, out, threads=1, progress=False)
    assert_clean(out, N, SHARDS)
    assert_same_records(out, reference)


# ---------------------------------------------------------------------- duplicate attempts


def test_racing_attempts_at_one_shard_leave_one_valid_shard(tmp_path, config, reference):
    out = tmp_path / "run"
    plan = make_plan(config)
    manifest = runner.manifest(plan, plan.config.output.shard_size)
    with rundir.writing(out, manifest) as st:
        assert st.missing == [0, 1, 2]
        # a temporary file of an attempt still writing shard 1 (another worker)
        other = out / tmp_name(shard_name(1))
        other.write_bytes(b"half a shard")
        barrier = threading.Barrier(4)

        def attempt(k: int) -> int:
            barrier.wait()
            return compute_shard(plan, out, manifest, k)

        with ThreadPoolExecutor(4) as ex:
            rows = list(ex.map(attempt, [1, 1, 1, 1]))
        assert rows == [SHARD] * 4
        assert other.exists()  # the other attempt's file is not touched by these
        other.unlink()
        for k in (0, 2):
            compute_shard(plan, out, manifest, k)
    assert tmp_name("x") != tmp_name("x")  # unique per attempt
    ref = rundir.shard_path(reference, 1).read_bytes()
    assert rundir.shard_path(out, 1).read_bytes() == ref  # the attempts wrote identical bytes
    assert rundir.scan(out).verified
    runlog.append(out, {"test": True})  # assert_clean expects a run log
    assert_clean(out, N, SHARDS)
    assert_same_records(out, reference)


# ---------------------------------------------------------------------- silent corruption


def flip_byte(path: Path) -> None:
    """Flip one bit in the middle of the shard's largest column chunk: a data page (the
    middle of the file can be the footer, whose metadata grew with the numerics
    fingerprint)."""
    rg = pq.ParquetFile(path).metadata.row_group(0)
    chunk = max(
        (rg.column(i) for i in range(rg.num_columns)), key=lambda c: c.total_compressed_size
    )
    start = min(o for o in (chunk.dictionary_page_offset, chunk.data_page_offset) if o is not None)
    data = bytearray(path.read_bytes())
    data[start + chunk.total_compressed_size // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_flipped_byte_is_found_refused_and_recomputed(tmp_path, reference, config, capsys):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    flip_byte(out / "part-000001.parquet")
    code, stdout, err = cli(capsys, "status", out, "--verify")
    assert code == EXIT_NOT_VERIFIED, err
    assert "part-000001.parquet corrupt" in stdout and "complete   no" in stdout
    code, stdout, _ = cli(capsys, "status", out, "--json")
    facts = json.loads(stdout)
    assert code == 0 and facts["complete"] is False and facts["verified"] is False
    assert list(facts["bad"]) == ["part-000001.parquet"]
    assert facts["done"] == ["part-000000.parquet", "part-000002.parquet"]
    with pytest.raises(mcland.MclandError, match=r"part-000001\.parquet fail"):
        mcland.load(out)
    with pytest.warns(RuntimeWarning, match=r"part-000001\.parquet"):
        skipped = mcland.load(out, verify="skip")
    assert skipped["sample_id"].tolist() == [*range(SHARD), *range(2 * SHARD, N)]
    summary = mcland.run(config, out, threads=1, progress=False)
    assert summary.computed == SHARD  # only the corrupt shard
    code, stdout, _ = cli(capsys, "status", out, "--verify")
    assert code == 0 and "verified   yes" in stdout
    assert_same_records(out, reference)


def test_shards_without_checksums_of_0_5_0_are_unverifiable(tmp_path, reference, capsys):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    shutil.rmtree(out / CHECKSUM_DIR)
    manifest = read_manifest(out)
    manifest["mcland_version"] = "0.5.0"
    (out / MANIFEST).write_text(json.dumps(manifest))
    for path in out.glob(SHARD_GLOB):
        t = pq.read_table(path)
        meta = {"mcland": json.dumps(manifest, sort_keys=True)}
        pq.write_table(t.replace_schema_metadata(meta), path)
    st = rundir.scan(out)
    assert st.complete and st.done == [0, 1, 2] and st.unverifiable == [0, 1, 2] and not st.bad
    code, stdout, _ = cli(capsys, "status", out)
    assert code == 0 and "unverifiable 3" in stdout and "complete   yes" in stdout
    code, stdout, _ = cli(capsys, "status", out, "--verify")
    assert code == EXIT_NOT_VERIFIED and "3 unverifiable" in stdout and "corrupt" not in stdout
    assert len(mcland.load(out)) == N  # read unverified
    # the same directory under 0.6.0 rules: missing checksums are bad, so recomputed
    assert rundir.has_checksums({"mcland_version": "0.6.0"})
    assert not rundir.has_checksums({"mcland_version": "0.5.0"})
