"""The run log (``DIR/runlog.jsonl``): one line per session, outside the run's identity."""

from __future__ import annotations

import json
import os
import socket

import pytest
from cli_helpers import cli
from sampled_run import SMALL_RUN_CONFIG

import mcland
from mcland.execution import runner
from mcland.report.sections import wall_time
from mcland.rundir import runlog
from mcland.rundir.files import read_manifest

N, SHARD = 40, 20
CFG = {**SMALL_RUN_CONFIG, "n": N, "output": {"shard_size": SHARD}}


def lines(run_dir) -> list[dict]:
    text = (run_dir / runlog.LOG_FILE).read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_a_run_writes_one_line(tmp_path):
    out = tmp_path / "run"
    summary = mcland.run(CFG, out, threads=1, progress=False)
    (entry,) = lines(out)
    assert entry["completed"] is True and entry["error"] is None
    assert (entry["points"], entry["shards"], entry["points_done"], entry["n"]) == (N, 2, N, N)
    assert entry["host"] == socket.gethostname() and entry["hosts"] == [entry["host"]]
    assert entry["pid"] == os.getpid()
    assert entry["mcland_version"] == mcland.__version__
    assert (entry["threads"], entry["workers"], entry["scheduler"]) == (1, None, None)
    assert entry["start"].endswith("Z") and entry["end"] >= entry["start"]
    # the session spans loading the kernels and computing; it closes a few statements before
    # run() stops its own clock, and the log keeps milliseconds: 10 ms of slack
    assert entry["wall_seconds"] > 0 and summary.seconds <= entry["wall_seconds"]
    manifest = read_manifest(out)  # the log is not part of the run's identity
    assert not {"wall_seconds", "host", "pid", "start"} & set(manifest)


def test_a_resume_appends_a_line_and_a_finished_rerun_none(tmp_path):
    out = tmp_path / "run"
    mcland.run(CFG, out, threads=1, progress=False)
    (out / "part-000001.parquet").unlink()
    mcland.run(CFG, out, threads=2, progress=False)  # the manifest still matches
    first, second = lines(out)
    assert (second["points"], second["shards"], second["points_done"]) == (SHARD, 1, N)
    assert second["threads"] == 2 and second["completed"] is True
    assert second["start"] >= first["end"]
    before = (out / runlog.LOG_FILE).read_bytes()
    summary = mcland.run(CFG, out, threads=1, progress=False)  # nothing to do: no line
    assert summary.computed == 0
    assert (out / runlog.LOG_FILE).read_bytes() == before
    total = runlog.summarise(runlog.read(out))
    assert (total.sessions, total.points, total.completed) == (2, N + SHARD, 2)  # one redone
    assert total.wall_seconds == pytest.approx(first["wall_seconds"] + second["wall_seconds"])


def test_an_interrupted_session_is_logged_as_not_completed(tmp_path, monkeypatch):
    out = tmp_path / "run"
    real = runner.compute_shard

    def interrupted(plan, run_dir, manifest, k, *args, **kwargs):
        if k == 1:
            raise KeyboardInterrupt
        return real(plan, run_dir, manifest, k, *args, **kwargs)

    monkeypatch.setattr(runner, "compute_shard", interrupted)
    with pytest.raises(KeyboardInterrupt):
        mcland.run(CFG, out, threads=1, progress=False)
    monkeypatch.setattr(runner, "compute_shard", real)
    mcland.run(CFG, out, threads=1, progress=False)
    first, second = lines(out)
    assert (first["completed"], first["error"], first["points"]) == (
        False,
        "KeyboardInterrupt",
        SHARD,
    )
    assert (second["completed"], second["points"], second["points_done"]) == (True, SHARD, N)
    assert "1 session(s) did not complete" in wall_time(out)[0]


def test_a_refused_run_writes_no_line(tmp_path):
    out = tmp_path / "run"
    mcland.run(CFG, out, threads=1, progress=False)
    before = (out / runlog.LOG_FILE).read_bytes()
    with pytest.raises(mcland.MclandError, match="different run"):
        mcland.run({**CFG, "seed": 1}, out, threads=1, progress=False)
    assert (out / runlog.LOG_FILE).read_bytes() == before


def test_read_skips_a_truncated_line_and_a_missing_log_is_empty(tmp_path):
    assert runlog.read(tmp_path) == []
    runlog.append(tmp_path, {"wall_seconds": 2.5, "host": "a", "points": 3, "completed": True})
    with open(tmp_path / runlog.LOG_FILE, "a", encoding="utf-8") as f:
        f.write('{"wall_seconds": 1')  # a crash mid-write
    runlog.append(tmp_path, {"wall_seconds": 1.0, "hosts": ["b", "c"], "completed": False})
    assert len((tmp_path / runlog.LOG_FILE).read_text().splitlines()) == 3
    total = runlog.summarise(runlog.read(tmp_path))  # the truncated line is skipped
    assert (total.sessions, total.wall_seconds, total.hosts) == (2, 3.5, ["a", "b", "c"])
    assert (total.points, total.completed) == (3, 1)


def test_format_seconds():
    assert runlog.format_seconds(4.25) == "4.2 s"
    assert runlog.format_seconds(125) == "2 min 5 s"
    assert runlog.format_seconds(3 * 3600 + 7 * 60 + 9) == "3 h 7 min"


def test_status_shows_the_last_session(tmp_path, capsys):
    out = tmp_path / "run"
    mcland.run(CFG, out, threads=1, progress=False)
    code, stdout, err = cli(capsys, "status", out)
    assert (code, err) == (0, "")
    *_, last, verdict = stdout.splitlines()
    assert last.startswith("last run   ") and f"{N} points in" in last and "completed" in last
    assert verdict == "complete   yes"
    (out / runlog.LOG_FILE).unlink()  # a run written before run logs
    code, stdout, err = cli(capsys, "status", out)
    assert code == 0 and "last run" not in stdout


def test_a_distributed_run_records_its_workers(tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "run"
    mcland.run(CFG, out, workers=2, progress=False)
    (entry,) = lines(out)
    assert (entry["workers"], entry["threads"], entry["completed"]) == (2, None, True)
    assert entry["hosts"] == [socket.gethostname()]  # loopback workers: this host
    assert entry["points"] == N
