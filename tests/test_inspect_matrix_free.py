"""``inspect`` with ``hessian = "matrix_free"`` (docs/classify.md "Matrix-free rows",
"inspect"): the returned and the printed enclosures contain the dense truth
(``numpy.linalg.eigvalsh`` of ``naive.hessian``, whitened, and the bands of
docs/numerics.md), the numeric type is decided only where the bounds prove it, ``auto``
takes the matrix-free path when neither spectrum fits, and what cannot fit is refused in one
line (exit 2)."""

from __future__ import annotations

import json
import re

import matrix_free_points as mp
import numpy as np
import pytest
from cli_helpers import cli, refused

from mcland.classification.classify import classify_table
from mcland.core import cost
from mcland.core.errors import TooLarge
from mcland.points.inspect import inspect_point

# sampled points of runs/quick.toml (types from the naive spectrum, as in
# tests/test_classify_matrix_free.py): a strict saddle the bounds decide, a non-strict
# saddle they leave open (n_neg in [0, 3])
STRICT, OPEN = 10, 4
FLOAT = r"(-?[0-9.]+e[+-][0-9]+)"


def _save(tmp_path, sample_id):
    W, X, Y = mp.sampled_point(sample_id)
    np.savez(tmp_path / "w.npz", **{f"W{h + 1}": w for h, w in enumerate(W)})
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    return W, X, Y


@pytest.mark.parametrize("sample_id", [STRICT, OPEN])
def test_inspect_bounds_enclose_the_dense_truth(sample_id):
    W, X, Y = mp.sampled_point(sample_id)
    ev, tz, tn = mp.dense_truth(W, X, Y)
    n_neg, n_zero, n_pos, _ = mp.counts(ev, tz, tn)
    rep = inspect_point(W, X, Y, hessian="matrix_free")
    assert rep.spectrum_method == "matrix_free"
    assert rep.eig_min_lo <= ev[0] <= rep.eig_min_hi
    assert rep.eig_max_lo <= ev[-1] <= rep.eig_max_hi
    assert rep.n_neg_lo <= n_neg <= rep.n_neg_hi
    assert rep.n_zero_lo <= n_zero <= rep.n_zero_hi
    assert rep.n_pos_lo <= n_pos <= rep.n_pos_hi
    assert rep.tol_zero == pytest.approx(tz, rel=1e-6)  # the dense path's bands
    # no point guess: no count, no spectrum
    assert (rep.n_neg, rep.n_zero, rep.n_pos) == (None, None, None)
    assert rep.eigenvalues.size == 0 and np.isnan(rep.eig_min_w) and np.isnan(rep.eig_min)
    assert ev.size == rep.N and rep.lanczos_products > 0 and rep.lanczos_seconds >= 0
    dense = inspect_point(W, X, Y, hessian="dense")
    assert dense.n_neg == n_neg  # the dense count the interval holds
    assert dense.spectrum_method == "dense" and dense.numeric_evidence is None
    assert np.isnan(dense.eig_min_lo) and dense.n_neg_lo is None
    assert dense.lanczos_products is None
    assert rep.theory_type == dense.theory_type  # the same first-order facts and certificate
    if sample_id == STRICT:  # a certified negative Ritz value proves it
        assert rep.numeric_type == dense.numeric_type == "strict_saddle"
        assert rep.verdict == "strict_saddle" and rep.proven_curvature == "negative"
        assert rep.eig_min_hi < -rep.tol_neg and "is proven" in rep.numeric_evidence
        # the theory's escape certificate, with its direction, as on the dense path
        assert rep.escape_curvature == pytest.approx(dense.escape_curvature, rel=1e-12)
        for V, V_dense in zip(rep.escape_direction, dense.escape_direction, strict=True):
            np.testing.assert_allclose(V, V_dense, rtol=1e-12, atol=1e-14)
        assert rep.escape_curvature >= rep.eig_min_lo  # a Rayleigh quotient
        # the analysis classify's rows get (one shared function)
        row = classify_table([W], X, Y, hessian="matrix_free", threads=1).to_pylist()[0]
        for name in ("eig_min_lo", "eig_min_hi", "eig_max_lo", "eig_max_hi", "n_neg_lo",
                     "n_neg_hi", "n_zero_lo", "n_zero_hi", "n_pos_lo", "n_pos_hi",
                     "lanczos_products", "numeric_type", "theory_type"):  # fmt: skip
            assert row[name] == getattr(rep, name), name
    else:  # the bounds do not decide it: ambiguous, with the reason
        assert dense.numeric_type == "non_strict_saddle"
        assert rep.numeric_type == rep.verdict == "ambiguous"
        assert rep.proven_curvature == "uncertain" and rep.n_neg_hi > n_neg
        assert "do not decide" in rep.numeric_evidence


def test_inspect_prints_the_bounds_rounded_outwards(capsys, tmp_path):
    W, X, Y = _save(tmp_path, STRICT)
    ev, tz, tn = mp.dense_truth(W, X, Y)
    n_neg, n_zero, n_pos, _ = mp.counts(ev, tz, tn)
    code, out, err = cli(capsys, "inspect", tmp_path / "w.npz", tmp_path / "d.npz",
                         "--hessian", "matrix_free")  # fmt: skip
    assert code == 0, err
    assert "answer         matrix_free" in out and "verdict        strict_saddle" in out
    for name, truth in (("lambda_min", ev[0]), ("lambda_max", ev[-1])):
        lo, hi = map(float, re.search(rf"{name} +in \[{FLOAT}, {FLOAT}\]", out).groups())
        assert lo <= truth <= hi, (name, lo, truth, hi)  # printed with 7 digits, outwards
    counts = re.search(r"negative in \[(\d+), (\d+)\], zero in \[(\d+), (\d+)\], "
                       r"positive in \[(\d+), (\d+)\]", out).groups()  # fmt: skip
    lo_hi = list(map(int, counts))
    for k, truth in enumerate((n_neg, n_zero, n_pos)):
        assert lo_hi[2 * k] <= truth <= lo_hi[2 * k + 1]
    assert re.search(r"cost +[1-9]\d* Hessian-vector products, [0-9.]+ s", out)
    assert "whitened       eig_min" not in out  # no spectrum line
    code, out, err = cli(capsys, "inspect", tmp_path / "w.npz", tmp_path / "d.npz",
                         "--hessian", "matrix_free", "--json")  # fmt: skip
    d = json.loads(out)
    assert d["spectrum_method"] == "matrix_free" and d["n_neg"] is None
    assert d["eig_min_lo"] <= ev[0] <= d["eig_min_hi"] and d["eigenvalues"] == []
    assert d["numeric_evidence"].startswith("lambda_min in [")
    code, out, err = cli(capsys, "inspect", tmp_path / "w.npz", tmp_path / "d.npz", "--json")
    d = json.loads(out)  # a dense report: the bounds are null, not NaN
    assert d["spectrum_method"] == "dense" and d["n_neg"] == n_neg
    assert d["eig_min_lo"] is None and d["n_neg_lo"] is None and d["numeric_evidence"] is None


def test_auto_takes_matrix_free_when_neither_spectrum_fits(capsys, tmp_path, monkeypatch):
    W, X, Y = _save(tmp_path, STRICT)  # N = 47: dense 53 kB, structured 168 kB
    monkeypatch.setenv(cost.MEMORY_ENV, "3e4")
    # the real bounds (108 kB) do not fit either: refused with their estimate
    with pytest.raises(TooLarge, match="inspect: the matrix-free bounds of N = 47 "):
        inspect_point(W, X, Y)
    real = cost.matrix_free_cost

    def cheap(dims, threads=1):  # as if the bounds fitted where no spectrum does
        c = real(dims, threads)
        return cost.MatrixFreeCost(c.N, 1000, c.flops, c.product_flops)

    monkeypatch.setattr(cost, "matrix_free_cost", cheap)
    rep = inspect_point(W, X, Y)
    assert rep.spectrum_method == "matrix_free" and rep.verdict == "strict_saddle"
    code, out, err = cli(capsys, "inspect", tmp_path / "w.npz", tmp_path / "d.npz")
    assert code == 0 and "answer         matrix_free" in out, err
    # a forced spectrum that cannot fit names the matrix-free alternative
    refused(capsys, tmp_path, "inspect", tmp_path / "w.npz", tmp_path / "d.npz",
            "--hessian", "structured", fragments=('"matrix_free" in mcland classify or inspect',))  # fmt: skip


def test_bad_input_is_one_line_exit_2(capsys, tmp_path, monkeypatch):
    _save(tmp_path, STRICT)
    w, d = tmp_path / "w.npz", tmp_path / "d.npz"
    refused(capsys, tmp_path, "inspect", w, d, "--hessian", "matrixfree",
            fragments=("'--hessian'", "matrix_free"))  # fmt: skip
    np.savez(tmp_path / "bad.npz", W1=np.ones((5, 3)), W2=np.ones((2, 4)))
    refused(capsys, tmp_path, "inspect", tmp_path / "bad.npz", d, "--hessian", "matrix_free",
            fragments=("shapes do not chain",))  # fmt: skip
    monkeypatch.setenv(cost.MEMORY_ENV, "3e4")
    refused(capsys, tmp_path, "inspect", w, d, "--hessian", "matrix_free",
            fragments=("inspect: the matrix-free bounds of N = 47 ", "memory limit 30.0 kB"))  # fmt: skip
