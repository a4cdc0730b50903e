"""The ground-truth set (docs/groundtruth.md): enumeration of the critical values with
``|S| <= r``, exact inertia, the export and its read-back, the command's bad input, and the
finder benchmark's smoke run."""

from __future__ import annotations

import itertools
import subprocess
import sys
from math import comb
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from cli_helpers import assert_bad_input, cli, tree

import mcland
from mcland._kernels.whiten import critical_values_into, n_critical_values
from mcland.classification import exact
from mcland.classification import groundtruth as gt
from mcland.core import naive
from mcland.points.records import BatchOutput

ROOT = Path(__file__).resolve().parents[1]
AE2 = ROOT / "runs/autoencoder2.toml"


def naive_values(lam, tr_syy, r):
    """Every ``|S| <= r`` by itertools, subtracting ``lam_i`` in increasing ``i`` (the
    kernel's order, so the comparison is bit for bit), sorted."""
    vals = []
    for k in range(min(r, lam.size) + 1):
        for S in itertools.combinations(range(lam.size), k):
            v = tr_syy
            for i in S:
                v -= lam[i]
            vals.append(v)
    return np.sort(np.array(vals))


@pytest.mark.parametrize("d_y", [1, 2, 5, 12, 13, 16])
def test_enumeration_matches_naive(rng, d_y):
    lam = np.sort(rng.uniform(0.1, 10.0, d_y))[::-1].copy()
    tr_syy = float(lam.sum() + 3.0)
    for r in range(d_y + 1):
        count = n_critical_values(d_y, r)
        assert count == sum(comb(d_y, k) for k in range(r + 1))
        out = np.full(count, np.nan)
        assert critical_values_into(lam, tr_syy, r, out) == count
        np.testing.assert_array_equal(out, naive_values(lam, tr_syy, r))
    assert n_critical_values(16, 4) == 2517
    assert n_critical_values(4096, 4096) == 1 << 62  # saturated, no overflow


def test_record_stores_2517_values_for_16_4_16(tmp_path):
    """A sampled 16-4-16 record carries all 2517 values (null before: d_y > 12), equal to
    the naive reference; a buffer for d_y = 16 has 4096 columns, for d_y <= 12 2**d_y."""
    assert BatchOutput.allocate(1, 2, 16, 1, False, False, False).critical_values.shape[1] == 4096
    assert BatchOutput.allocate(1, 2, 5, 1, False, False, False).critical_values.shape[1] == 32
    code = subprocess.run(
        [sys.executable, "-m", "mcland.cli", "sample", str(AE2), "--out", str(tmp_path / "run"),
         "--n", "3", "--threads", "1", "--no-progress"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert code.returncode == 0, code.stderr
    df = pd.read_parquet(tmp_path / "run" / "part-000000.parquet")
    X = gt.autoencoder_data().astype(float)
    ref = naive.critical_values(X, X, 4)
    for values in df["critical_values"]:
        assert len(values) == 2517
        np.testing.assert_allclose(values, ref, rtol=1e-12)


def test_exact_inertia_against_eigvalsh(rng):
    for t in range(300):
        n = int(rng.integers(1, 10))
        k = int(rng.integers(0, n + 1))
        B = rng.integers(-3, 4, (n, k))
        M = B @ np.diag(rng.choice([-1, 1], k)) @ B.T
        if t % 3 == 0:
            np.fill_diagonal(M, 0)  # exercises the zero-diagonal congruence
        ev = np.linalg.eigvalsh(M.astype(float))
        tol = 1e-9 * max(1.0, np.abs(ev).max())
        expected = (int(np.sum(ev < -tol)), int(np.sum(np.abs(ev) <= tol)), int(np.sum(ev > tol)))
        assert exact.inertia(exact.as_exact(M)) == expected


def test_exact_hessian_matches_naive(rng):
    """The object-arithmetic Hessian equals the float reference on integer points (where
    float64 is exact: small integers)."""
    for dims in ((3, 2, 3), (4, 2, 3, 4), (2, 3, 1, 2, 2)):
        W = [rng.integers(-2, 3, (b, a)) for a, b in itertools.pairwise(dims)]
        X = rng.integers(-2, 3, (dims[0], 6))
        Y = rng.integers(-2, 3, (dims[-1], 6))
        sxx, syx = exact.as_exact(X @ X.T), exact.as_exact(Y @ X.T)
        Hx = exact.hessian([exact.as_exact(w) for w in W], sxx, syx)
        Hf = naive.hessian([w.astype(float) for w in W], X.astype(float), Y.astype(float))
        np.testing.assert_array_equal(Hx.astype(float), Hf)


def test_every_critical_value_of_16_4_16_with_exact_inertia():
    """All 2517 index sets at depth 2, each an exactly critical point (checked in
    ``label``) at its own critical value, with an exact inertia; where the float64 spectrum
    is clearly resolved (every eigenvalue farther than 1e-6 ||H|| from 0, or exactly 0 by
    the label's count) it agrees."""
    st, seed = gt.from_config(AE2)
    df = gt.generate(st, 0, seed)
    assert len(df) == 2517
    assert sorted(df["critical_value_index"]) == list(range(2517))
    assert (df["n_neg"] + df["n_zero"] + df["n_pos"] == 128).all()
    assert set(df["type"]) == {"global_minimizer", "strict_saddle"}
    assert (df["type"] == "global_minimizer").sum() == 1
    # index of the 2-layer autoencoder at S: exact counts agree with the balanced float64
    # spectrum (well conditioned: eigenvalues 0 or >= 16 lam-gaps, ||H|| ~ 1e6)
    assert df["cutoff_agrees"].all()
    # independent check: the global minimizer has n_zero = dim of the GL(4) orbit = 16
    glob = df[df["type"] == "global_minimizer"].iloc[0]
    assert (glob["n_neg"], glob["n_zero"]) == (0, 16)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cfg = tmp_path_factory.mktemp("cfg") / "ae34.toml"
    text = AE2.read_text().replace("depth = [2, 2]", "depth = [3, 4]")
    cfg.write_text(text.replace('path = "data/', f'path = "{ROOT}/runs/data/'))
    out = tmp_path_factory.mktemp("gt") / "set"
    df = gt.export(cfg, out, 6, 5)
    return df, out


def test_export_read_back(exported):
    df, out = exported
    assert len(df) == 12 and sorted(set(df["H"])) == [3, 4]
    table = pq.read_table(out / "points.parquet").to_pandas()
    data = np.load(out / "data.npz")
    X = data["X"]
    np.testing.assert_array_equal(X, data["Y"])
    assert (table["scale_exponents"].map(lambda e: np.abs(e).max()) > 0).sum() == 6
    eps = np.finfo(float).eps
    for row in table.itertuples():
        z = np.load(out / "npz" / f"point-{row.point_id:06d}.npz")
        layers = [z[f"W{h}"] for h in range(1, row.H + 1)]
        np.testing.assert_array_equal(np.concatenate([w.ravel() for w in layers]), row.w)
        for name in ("n_neg", "n_zero", "n_pos", "critical_value", "s"):
            assert z[name] == getattr(row, name)
        assert z["type"] == row.type
        np.testing.assert_array_equal(z["S"], row.S)
        # independent float64 check, at the balanced point 2^{-e_h} W_h (exact: powers of 2)
        # whose Hessian is congruent to the exported one; there the spectrum is resolved
        balanced = [w * 2.0 ** -int(e) for w, e in zip(layers, row.scale_exponents, strict=True)]
        assert all(np.array_equal(b, np.round(b)) for b in balanced)  # integer frame
        ev = np.linalg.eigvalsh(naive.hessian(balanced, X, X))
        floor = 1e3 * ev.size * eps * np.abs(ev).max()
        assert np.all((np.abs(ev) > 1e3 * floor) | (np.abs(ev) <= floor))  # resolved
        counts = (np.sum(ev < -floor), np.sum(np.abs(ev) <= floor), np.sum(ev > floor))
        assert counts == (row.n_neg, row.n_zero, row.n_pos)
        assert abs(naive.loss(layers, X, X) - row.critical_value) <= 1e-9 * row.critical_value
    # mcland reads the Parquet file as POINTS: every point critical, S as labelled
    rec = mcland.classify(out / "points.parquet", X, X, threads=1)
    assert rec["is_critical"].all()
    assert [list(s) for s in rec["S"]] == [list(s) for s in table["S"]]


def test_export_command_and_bad_input(capsys, tmp_path, exported):
    gauss = tmp_path / "gauss.toml"
    gauss.write_text("n = 3\n")
    hid = tmp_path / "hid.toml"
    hid.write_text(AE2.read_text().replace("hidden = [4, 4]", "hidden = [3, 4]"))
    notae = tmp_path / "notae.toml"
    notae.write_text(
        (ROOT / "runs/linnerud.toml")
        .read_text()
        .replace("hidden = [1, 5]", "hidden = [2, 2]")
        .replace('"data/', f'"{ROOT}/runs/data/')
    )
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("keep")
    for args, frag in (
        ([gauss, "--out", tmp_path / "o1"], "fixed data"),
        ([hid, "--out", tmp_path / "o2"], "one hidden width"),
        ([notae, "--out", tmp_path / "o3"], "Y must equal X"),
        ([tmp_path / "missing.toml", "--out", tmp_path / "o4"], "cannot read"),
        ([AE2, "--out", full], "not an empty directory"),
        ([AE2, "--out", tmp_path / "o5", "--n", "-1"], "--n"),
    ):
        before = tree(tmp_path)
        assert_bad_input(*cli(capsys, "groundtruth", *args), frag)
        assert tree(tmp_path) == before


def test_finder_benchmark_quick():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "analysis/finder_benchmark.py"), "--quick"],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "gradnorm" in proc.stdout and "newton_mr" in proc.stdout


def test_classify_leaves_too_many_values_null():
    """16-5-16: 6885 critical values (> 4096) are not stored, and classify does not fail;
    16-4-16: the 2517 are."""
    X = gt.autoencoder_data().astype(float)
    st = gt.setting(X, X, (2,), 5)
    A5 = gt.construct(st, 2, (0, 1, 2), "frame", np.random.default_rng(1))
    st4 = gt.setting(X, X, (2,), 4)
    A4 = gt.construct(st4, 2, (0, 1, 2), "frame", np.random.default_rng(1))
    rec = mcland.classify([[a.astype(float) for a in A5], [a.astype(float) for a in A4]], X, X)
    assert rec["is_critical"].all()
    assert rec["critical_values"].iloc[0] is None
    assert len(rec["critical_values"].iloc[1]) == 2517
