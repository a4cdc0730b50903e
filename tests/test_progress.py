"""Progress for long points (issue 21, item 5): the predicted cost of wide architectures and a
heartbeat that keeps a progress bar's clock moving while one point computes."""

from __future__ import annotations

import threading
import time

import numpy as np
from click.testing import CliRunner

from mcland.cli import cli
from mcland.core.cost import structured_cost
from mcland.execution import progress


class _Bar:
    disable = False

    def __init__(self):
        self.refreshes = 0
        self.lock = threading.Lock()

    def refresh(self):
        with self.lock:
            self.refreshes += 1


def test_heartbeat_refreshes_while_the_body_runs_and_stops_after():
    bar = _Bar()
    with progress.heartbeat(bar, interval=0.01):
        time.sleep(0.2)
    seen = bar.refreshes
    assert seen >= 3
    time.sleep(0.05)
    assert bar.refreshes == seen  # the thread has ended
    off = _Bar()
    off.disable = True
    with progress.heartbeat(off, interval=0.01):
        time.sleep(0.05)
    assert off.refreshes == 0


def test_cost_lines_name_the_wide_architectures_only():
    wide, narrow = (6, 1024, 1024, 4), (6, 16, 16, 4)
    lines = progress.cost_lines([wide, narrow, wide], "auto", "classify")
    assert len(lines) == 1
    c = structured_cost(wide)
    assert "2 points 6-1024-1024-4" in lines[0]
    assert f"N = {c.N:,}" in lines[0] and f"{c.k:,}" in lines[0] and "structured" in lines[0]
    assert progress.cost_lines([narrow], "auto", "classify") == []


def test_inspect_progress_is_quiet_when_stderr_is_not_a_terminal(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    layers = [rng.standard_normal((3, 4)), rng.standard_normal((2, 3))]
    np.savez(tmp_path / "w.npz", W1=layers[0], W2=layers[1])
    np.savez(tmp_path / "d.npz", X=rng.standard_normal((4, 9)), Y=rng.standard_normal((2, 9)))
    monkeypatch.setattr(progress, "DENSE_AUTO_MAX_N", 1)  # the 18-parameter point is "wide"
    assert progress.cost_lines([[4, 3, 2]], "auto", "inspect")
    args = ["inspect", str(tmp_path / "w.npz"), str(tmp_path / "d.npz")]
    res = CliRunner().invoke(cli, args)  # stderr is not a terminal here
    assert res.exit_code == 0, res.output
    assert "mcland: inspect" not in res.output and "inspecting" not in res.output
    assert "architecture" in res.output
