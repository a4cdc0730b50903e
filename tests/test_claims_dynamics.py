"""The dynamics claim scripts (analysis/claim_escape_linear.py, claim_escape_nonstrict.py,
claim_small_init.py): on tiny dynamics runs, and their verdict logic on synthetic records
whose answer is known."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

import mcland
from mcland import MclandError
from mcland.flow.run import run

ROOT = Path(__file__).resolve().parents[1]
ANALYSIS = ROOT / "analysis"

TINY = {
    "n": 6,
    "seed": 41,
    "architecture": {"depth": [2, 3], "d_y": [2, 2], "d_x_extra": [0, 1], "hidden": [2, 3]},
    "data": {"m": 20},
    "output": {"shard_size": 3},
}
# escape: d_y 1-2 and no minimizers, so that the six points are three strict saddles at
# depth 2 and three W = 0 at depth 3 (seed 41)
ESCAPE = {
    "architecture": {"depth": [2, 3], "d_y": [1, 2], "d_x_extra": [0, 1], "hidden": [2, 3]},
    "points": {"weight_global": 0.0, "kill_weights": [0, 1, 4]},
    "dynamics": {"experiment": "escape", "deltas": [1e-2, 1e-3, 1e-4], "max_evals": 5000},
}
SMALL_INIT = {
    "dynamics": {
        "experiment": "small_init",
        "eps": [1e-2, 1e-3, 1e-4],
        "max_evals": 20000,
        "t_max_steps": 1e7,
    }
}
_RUNS: dict[str, Path] = {}


def script(name: str) -> ModuleType:
    """Load ``analysis/NAME.py`` as a module."""
    spec = importlib.util.spec_from_file_location(f"analysis_{name}", ANALYSIS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tiny_run(factory: pytest.TempPathFactory, extra: dict) -> Path:
    """A tiny dynamics run of :data:`TINY` updated with ``extra`` (once per session)."""
    key = extra["dynamics"]["experiment"]
    if key not in _RUNS:
        out = factory.mktemp("dyn") / key
        run({**TINY, **extra}, out, progress=False)
        _RUNS[key] = out
    return _RUNS[key]


# ---------------------------------------------------------------------- tiny runs


@pytest.mark.parametrize(
    ("name", "section"),
    [
        ("claim_escape_linear", ESCAPE),
        ("claim_escape_nonstrict", ESCAPE),
        ("claim_small_init", SMALL_INIT),
    ],
)
def test_claim_runs_on_a_tiny_run_and_writes_its_outputs(
    tmp_path_factory, tmp_path, name, section, capsys
):
    run_dir = tiny_run(tmp_path_factory, section)
    mod = script(name)
    assert mod.not_applicable(str(run_dir)) is None
    v = mod.check(str(run_dir))
    assert v.claim == mod.CLAIM and v.lines
    code = mod.main(
        [str(run_dir), "--tables", str(tmp_path / "t"), "--figures", str(tmp_path / "f")]
    )
    out = capsys.readouterr().out
    assert code == (0 if v.passed else 1)
    assert out.startswith(f"claim: {mod.CLAIM}")
    assert list((tmp_path / "t").glob("*.csv"))
    assert list((tmp_path / "f").glob("*.png"))


def test_claims_refuse_and_run_claims_skips_other_experiments(tmp_path_factory, capsys):
    escape = tiny_run(tmp_path_factory, ESCAPE)
    small = tiny_run(tmp_path_factory, SMALL_INIT)
    with pytest.raises(MclandError, match="not a dynamics run of the 'small_init'"):
        script("claim_small_init").check(str(escape))
    with pytest.raises(MclandError, match="not a dynamics run of the 'escape'"):
        script("claim_escape_linear").check(str(small))
    assert script("claim_escape_nonstrict").main([str(small)]) == 2
    assert "error: " in capsys.readouterr().err
    script("run_claims").main([str(small)])
    out = capsys.readouterr().out
    assert "claim: small init" in out
    assert "skip  strict saddles" in out and "skip  non-strict saddles" in out


# ---------------------------------------------------------------------- escape: synthetic


def _strict_rows(factor: float, depths=(2, 3), points=8, noise=0.0) -> pd.DataFrame:
    """Strict saddles with t_escape = factor ln(1/delta) / |eig| + c_point."""
    rng = np.random.default_rng(0)
    rows = []
    for H in depths:
        for j in range(points):
            sid = 100 * H + j
            lam = float(rng.uniform(0.5, 50))
            c = float(rng.uniform(-1, 3))
            for delta in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5):
                t = (factor * np.log(1 / delta) + c) / lam * (1 + noise * rng.standard_normal())
                rows.append((sid, H, "strict_saddle", "strict_saddle", delta, t, -lam, "escaped"))
    return pd.DataFrame(rows, columns=script("claim_escape_linear").COLUMNS)


def test_escape_linear_slope_one_passes_and_slope_two_fails():
    mod = script("claim_escape_linear")
    v, fits, table = mod.analyse(_strict_rows(1.0, noise=1e-4))
    assert v.passed, v.render()
    np.testing.assert_allclose(table["slope_mean"], 1.0, atol=1e-3)
    v2, _, table2 = mod.analyse(_strict_rows(2.0))
    assert not v2.passed
    np.testing.assert_allclose(table2["slope_mean"], 2.0, rtol=1e-12)
    np.testing.assert_allclose(fits["rms"], 0.0, atol=1e-2)


def test_escape_linear_needs_data_and_counts_censored_rows():
    mod = script("claim_escape_linear")
    df = _strict_rows(1.0, points=3)  # fewer than MIN_POINTS per depth: nothing judged
    assert not mod.analyse(df)[0].passed
    df = _strict_rows(1.0)
    df.loc[df.index[:3], ["t_escape", "status"]] = [np.nan, "budget"]  # delta 1e-1 not fitted
    v, _, table = mod.analyse(df)
    assert v.passed
    assert table.loc[table["H"] == 2, "censored_rows"].item() == 2  # the first point's two rows


def _nonstrict_rows(power: dict[int, float], points=6) -> pd.DataFrame:
    """W = 0 points with t_escape = C delta^-power[H], plus one S-empty W != 0 point."""
    rng = np.random.default_rng(1)
    rows = []
    for H, p in power.items():
        n_ranks = H * (H + 1) // 2
        for j in range(points + 1):
            zero = j < points
            sid = 100 * H + j
            C = float(rng.uniform(1, 100))
            ranks = [0] * n_ranks if zero else [1] * n_ranks
            n_kill = H if zero else H - 1
            pw = p if zero else n_kill - 2
            for delta in (1e-1, 1e-2, 1e-3, 1e-4):
                t = C * delta**-pw
                rows.append((sid, H, 0, n_kill, ranks, "non_strict_saddle", "non_strict_saddle", delta, t, "escaped", t, 1.0))  # fmt: skip
    return pd.DataFrame(rows, columns=script("claim_escape_nonstrict").COLUMNS)


def test_escape_nonstrict_h_minus_2_passes_and_h_minus_1_fails():
    mod = script("claim_escape_nonstrict")
    v, pts, table = mod.analyse(_nonstrict_rows({3: 1.0, 4: 2.0, 5: 3.0}))
    assert v.passed, v.render()
    zero = table[table["W0"]]
    np.testing.assert_allclose(zero["p_mean"], zero["H"] - 2, atol=1e-9)
    v2, _, _ = mod.analyse(_nonstrict_rows({3: 2.0, 4: 3.0}))
    assert not v2.passed
    assert sum("FAIL" in line for line in v2.lines) == 2  # both depths
    v3, _, _ = mod.analyse(_nonstrict_rows({3: 0.5}))  # too slow a growth fails as well
    assert not v3.passed


def test_escape_nonstrict_flags_a_w0_marker_disagreement():
    mod = script("claim_escape_nonstrict")
    df = _nonstrict_rows({3: 1.0})
    df.loc[df["sample_id"] == 300, "n_kill"] = 2  # W = 0 by the ranks, not by construction
    v, _, _ = mod.analyse(df)
    assert not v.passed
    assert any(line.startswith("FAIL  W = 0 by the ranks") for line in v.lines)


# ---------------------------------------------------------------------- small init: synthetic


def _plateau(t_start, t_end, loss, value, S, eig=-1.0):
    return {"t_start": t_start, "t_end": t_end, "loss": loss, "t_min_grad": t_end, "grad_min": 0.0,
            "value_index": 0, "value": value, "dist_tol": 0.0, "S": np.array(S, dtype=np.int8),
            "eig_min": eig, "numeric_type": "not_critical"}  # fmt: skip


T_CURVE = np.geomspace(1e-3, 1e12, 4000)


def _small_init_rows(H: int, q: float, points=6, staircase=True, off=0.0) -> pd.DataFrame:
    """Rows whose first plateau (S = []) ends at t = C eps^-q (depth >= 3) or
    C (1 + ln(1/eps)) (q = 0, depth 2), then S = [1], then [1, 2]."""
    rng = np.random.default_rng(2)
    values = np.array([1.0, 3.0, 7.0, 10.0])  # [1,2], [1], [2], []
    rows = []
    for j in range(points):
        C = float(rng.uniform(0.5, 2))
        for eps in (1e-1, 1e-2, 1e-3, 1e-4):
            t1 = C * eps**-q if q else C * (1 + np.log(1 / eps))
            second = [1] if staircase or j else [2]
            pl = [
                _plateau(0.0, t1, 10.0 + off, 10.0, [], eig=-eps ** (H - 2)),
                _plateau(1.1 * t1, 2 * t1, (3.0 if second == [1] else 7.0), 3.0 if second == [1] else 7.0, second),
            ]  # fmt: skip
            visited = [np.array(S, dtype=np.int8) for S in ([], second, [1, 2])]
            grid = T_CURVE
            loss = np.where(grid < 1.1 * t1, 10.0, 3.0)  # the first drop just after t1
            rows.append((j, H, 2, 2, eps, "global", visited, pl, values, T_CURVE, loss))
    return pd.DataFrame(rows, columns=script("claim_small_init").COLUMNS)


def test_small_init_staircase_and_eps_power_pass():
    mod = script("claim_small_init")
    v, tables = mod.analyse(pd.concat([_small_init_rows(3, 1.0), _small_init_rows(4, 2.0).assign(sample_id=lambda d: d["sample_id"] + 10)]))  # fmt: skip
    assert v.passed, v.render()
    d = tables["durations"]
    first = d[(d["k"] == 0) & (d["measure"] == "t_end")].set_index("H")
    np.testing.assert_allclose(first["q_mean"], [1.0, 2.0], atol=1e-9)
    drop = d[(d["k"] == 0) & (d["measure"] == "t_drop")].set_index("H")
    np.testing.assert_allclose(drop["q_mean"], [1.0, 2.0], atol=1e-2)  # curve resolution
    fits = tables["fits"]
    np.testing.assert_allclose(fits.loc[fits["k"] == 0].groupby("H")["q_eig"].mean(), [1.0, 2.0])


def test_small_init_depth2_log_law_passes():
    v, tables = script("claim_small_init").analyse(_small_init_rows(2, 0.0))
    assert v.passed, v.render()
    r2 = tables["durations"].query("k == 0")["r2_median"]
    assert r2.to_numpy() == pytest.approx([1.0, 1.0], abs=1e-4)  # t_end, t_drop


def test_small_init_wrong_exponent_fails():
    for q in (2.0, 0.5):  # eps^-2 and eps^-0.5 at depth 3
        v, _ = script("claim_small_init").analyse(_small_init_rows(3, q))
        assert not v.passed
        assert (
            sum(line.startswith("FAIL  t_") and "H = 3, S = [0]" in line for line in v.lines) == 2
        )


def test_small_init_non_top_set_and_off_value_fail():
    mod = script("claim_small_init")
    v, _ = mod.analyse(_small_init_rows(3, 1.0, staircase=False))  # point 0 visits [2]
    assert not v.passed
    assert any(line.startswith("FAIL  H = 3:") and "1 other" not in line for line in v.lines)
    v, _ = mod.analyse(_small_init_rows(3, 1.0, off=0.1))  # plateau loss 0.1 gap off its value
    assert not v.passed
    assert any(line.startswith("FAIL ") and "critical value" in line for line in v.lines)


def test_order_kind():
    mod = script("claim_small_init")
    assert mod.order_kind([[], [1], [1, 2]]) == "complete"
    assert mod.order_kind([[], [1, 2]]) == "staircase"
    assert mod.order_kind([[1], [1, 2]]) == "staircase"
    assert mod.order_kind([[], [2], [1, 2]]) == "other"
    assert mod.order_kind([[1, 2], [1]]) == "other"
    assert mod.top_size(np.array([1, 2, 3], dtype=np.int8)) == 3
    assert mod.top_size([2]) is None
    assert mcland.load is not None


def _visit(S, rate):
    return {"S": np.array(S, dtype=np.int8), "t_enter": 0.0, "t_leave": 0.0, "rate_min": rate,
            "plateau": rate <= 0.05}  # fmt: skip


def test_small_init_transits_are_not_saddles_visited():
    """A run with ``visits`` (issue 22): the claim reads the saddles visited from the visits
    where the flow dwelt (``rate_min <= plateau_threshold``, here 0.05) and the final one.
    Point 0 passes ``[2]`` and ``[1, 2]`` as transits (rates 30 and 8) before dwelling at
    ``[1]``: complete.  Read as every visit (0.8.0) it would be ``other`` and fail."""
    mod = script("claim_small_init")
    df = _small_init_rows(3, 1.0)
    steady = [_visit([], 0.0), _visit([1], 1e-9), _visit([1, 2], 1e-12)]
    transit = [_visit([], 0.0), _visit([2], 30.0), _visit([1, 2], 8.0), _visit([1], 1e-9),
               _visit([1, 2], 1e-12)]  # fmt: skip
    df["visits"] = [transit if sid == 0 else steady for sid in df["sample_id"]]
    df["visited_S"] = [[v["S"] for v in vs] for vs in df["visits"]]  # 0.8.0: every visit
    v, tables = mod.analyse(df)
    assert v.passed, v.render()
    assert any("complete staircases, H = 3: 18 of 18" in line for line in v.lines)
    assert any("every visit (transits included), H = 3: 15 complete, 0 with skips, 3 other"
               in line for line in v.lines)  # fmt: skip
    # a transit that is a dwell after all (rate below the threshold) is a visited saddle
    assert mod.dwelt_sets(transit, 10.0) == [[], [1, 2], [1], [1, 2]]
    assert mod.dwelt_sets(transit, 0.05) == [[], [1], [1, 2]]


def test_eigenvalues_from_the_critical_values():
    """``lambda`` recovered from ``tr(Syy) - sum_{i in S} lambda_i`` over ``|S| <= r``."""
    mod = script("claim_small_init")
    lam = np.array([5.0, 2.0, 0.5])
    for r in (1, 2, 3):
        values = [10.0 - sum(c) for k in range(r + 1) for c in itertools.combinations(lam, k)]
        np.testing.assert_allclose(mod.eigenvalues(values), lam)
    dw, sk = mod.step_ratios([[], [1, 2], [1, 2, 3]], values)
    assert dw == [2.0 / 0.5] and sk == [5.0 / 2.0]
    # depth 2's separation of the drops of modes k and k + 1 (by hand: 1 - sqrt(2/5), 1 - 1/2)
    sep = mod.step_separations([[], [1, 2], [1, 2, 3]], values, 1e-4)
    L = 2 * np.log(1e4)
    assert sep == [(pytest.approx(L * (1 - np.sqrt(0.4))), False), (pytest.approx(L * 0.5), True)]
