"""Distributed runs on a real Dask ``LocalCluster`` (loopback, 2 worker processes).

The dataset written by the workers must equal the in-process one byte for byte on the
records; a worker that dies has its shard redone; a resume on the cluster redoes only the
shards that are missing or bad.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import assert_bad_input, cli, tree
from run_helpers import assert_clean, assert_same_records

import mcland
from mcland.core import faults
from mcland.execution import cluster as distributed
from mcland.rundir import directory as rundir
from mcland.rundir import lock

dd = pytest.importorskip("distributed")

N, SHARD, SHARDS = 120, 30, 4
TOML = f"""\
n = {N}
seed = 5
[architecture]
depth = [2, 4]
d_y = [1, 3]
hidden = [1, 4]
[output]
shard_size = {SHARD}
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dask") / "dask.toml"
    path.write_text(TOML, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(config, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    mcland.run(config, out, threads=2, progress=False)
    return out


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """Address of a 2-process local cluster on the loopback interface."""
    with dd.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",  # any free port: clusters may run side by side
    ) as cluster:
        yield cluster.scheduler_address


def test_cluster_run_equals_in_process_run(tmp_path, config, reference, scheduler):
    out = tmp_path / "run"
    summary = mcland.run(config, out, scheduler=scheduler, progress=False)
    assert summary.computed == N and summary.n == N
    assert_clean(out, N, SHARDS)
    assert_same_records(out, reference)
    assert rundir.scan(out).complete


def test_in_process_run_resumed_on_the_cluster(capsys, tmp_path, config, reference, scheduler):
    out = tmp_path / "run"
    shutil.copytree(reference, out)  # written in-process
    (out / "part-000001.parquet").unlink()
    (out / "part-000003.parquet").write_bytes(b"not parquet")
    code, stdout, err = cli(capsys, "sample", config, "--out", out, "--scheduler", scheduler)
    assert code == 0, err
    assert f"({2 * SHARD} computed" in stdout and "agreement" in stdout
    assert_clean(out, N, SHARDS)
    assert_same_records(out, reference)


@pytest.mark.parametrize(
    ("action", "moment", "workers"),
    [
        ("kill", "shard-task", 2),
        ("kill", "shard-tmp", 2),
        ("term", "shard-tmp", 2),
        ("kill", "shard-task", 1),  # the only worker dies: the scattered job dies with it
    ],
)
def test_dead_worker_has_its_shard_redone(
    tmp_path, config, reference, monkeypatch, action, moment, workers
):
    """A worker SIGKILLs itself at the start of its first shard task, or between writing the
    shard's temporary file and renaming it, or receives SIGTERM (pre-emption) there; the run
    still completes, and a dead attempt's temporary file is removed at its end.

    The job is scattered to the workers once; Dask's active memory manager keeps one copy
    of it (``broadcast=True`` is undone), so a worker's death may take the job with it and
    cancel every waiting task ("lost dependencies").  With one worker that always happens:
    the run must scatter the job again and carry on, not count it as the shards' failures.
    """
    flag = tmp_path / "killed"
    monkeypatch.setenv(faults.ENV, f"{action}:{moment}:1:{flag}")  # inherited by the workers
    out = tmp_path / "run"
    summary = mcland.run(config, out, workers=workers, progress=False)
    assert flag.exists()  # a worker did die
    assert summary.computed == N
    assert_clean(out, N, SHARDS)
    assert_same_records(out, reference)


def test_locked_directory_is_refused_before_starting_a_cluster(capsys, tmp_path, config):
    out = tmp_path / "run"
    with lock.holding(out):
        before = tree(tmp_path)
        code, stdout, err = cli(capsys, "sample", config, "--out", out, "--workers", "2")
        assert_bad_input(code, stdout, err, "being written by", f"pid {os.getpid()}")
        assert tree(tmp_path) == before


def test_task_failures_are_retried_then_reported(tmp_path, config, scheduler, monkeypatch):
    """A shard that keeps failing ends the run with one clear error; the others are kept."""
    calls = []

    def flaky(plan, run_dir, manifest, k):
        calls.append(k)
        if k == 2:
            raise OSError("disk full")
        return distributed.shard_task(plan, run_dir, manifest, k)

    monkeypatch.setattr(distributed, "shard_task", flaky)
    out = tmp_path / "run"
    with pytest.raises(mcland.MclandError, match=r"part-000002\.parquet: OSError: disk full"):
        mcland.run(config, out, scheduler=scheduler, progress=False)
    st = rundir.scan(out)
    assert (st.done, st.missing) == ([0, 1, 3], [2])


def test_unreachable_scheduler_writes_nothing(capsys, tmp_path, config, monkeypatch):
    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT", "1s")
    before = tree(tmp_path)
    for address in ("tcp://127.0.0.1:1", "nonsense://x"):
        code, out, err = cli(
            capsys, "sample", config, "--out", tmp_path / "run", "--scheduler", address
        )
        assert_bad_input(code, out, err, "cannot connect to the Dask scheduler", address)
    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not both"),
        (["--workers", "2", "--threads", "2"], "--threads is for in-process runs"),
        (["--workers", "0"], "'--workers'"),
    ],
    ids=["both", "threads", "zero"],
)
def test_bad_distributed_options(capsys, tmp_path, config, args, fragment):
    before = tree(tmp_path)
    code, out, err = cli(capsys, "sample", config, "--out", tmp_path / "run", *args)
    assert_bad_input(code, out, err, fragment)
    assert tree(tmp_path) == before


def test_a_job_lost_too_often_ends_the_run_with_one_clear_error(tmp_path, config, monkeypatch):
    """Past ``JOB_LOSSES`` losses of the scattered job the run stops and says why."""
    monkeypatch.setattr(distributed, "JOB_LOSSES", 0)
    monkeypatch.setenv(faults.ENV, f"kill:shard-task:1:{tmp_path / 'killed'}")
    out = tmp_path / "run"
    with pytest.raises(mcland.MclandError, match=r"job.s data was lost with dying workers 1 time"):
        mcland.run(config, out, workers=1, progress=False)
    assert rundir.scan(out).missing  # nothing claimed done that was not written
