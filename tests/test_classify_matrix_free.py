"""``classify`` with ``hessian = "matrix_free"`` (docs/classify.md "Matrix-free rows"): the
rows' proven enclosures and inertia intervals contain the dense truth (``naive.hessian``
and ``numpy.linalg.eigvalsh`` of the whitened Hessian, the bands of docs/numerics.md), the
numeric type is decided only where the bounds prove it, ``auto`` takes the matrix-free
path when neither spectrum fits, and a forced path that cannot fit is refused in one
line."""

from __future__ import annotations

import matrix_free_points as mp
import numpy as np
import pytest
from cli_helpers import refused

from mcland.classification.classify import classify_table
from mcland.core import cost
from mcland.core.errors import MclandError, TooLarge

# sampled points of runs/quick.toml (each with its own data): a strict saddle (N = 47), a
# global minimizer (N = 55), non-strict saddles (N = 56, 64; the bounds prove the second
# one PSD, not the first); types from the naive spectrum
POINTS = {
    10: "strict_saddle",
    0: "global_minimizer",
    4: "non_strict_saddle",
    5: "non_strict_saddle",
}
UNDECIDED = ("exact", "exact_inertia", "undecided")  # the certificate's own answers


def _truth_type(ev, tn, tz, loss, global_value, loss_tol):
    """The type the dense spectrum gives (docs/numerics.md), from the naive eigenvalues."""
    if ev[0] < -tn:
        return "strict_saddle"
    assert ev[0] >= -tz  # none of these points has an eigenvalue in the band
    return "global_minimizer" if abs(loss - global_value) <= loss_tol else "non_strict_saddle"


@pytest.mark.parametrize("sample_id", list(POINTS))
def test_matrix_free_rows_enclose_the_dense_truth(sample_id):
    W, X, Y = mp.sampled_point(sample_id)
    ev, tz, tn = mp.dense_truth(W, X, Y)
    row = classify_table([W], X, Y, hessian="matrix_free", threads=1).to_pylist()[0]
    assert row["spectrum_method"] == "matrix_free"
    n_neg, n_zero, n_pos, n_band = mp.counts(ev, tz, tn)
    assert n_band == 0
    for name, truth in (("n_neg", n_neg), ("n_zero", n_zero), ("n_pos", n_pos)):
        assert row[f"{name}_lo"] <= truth <= row[f"{name}_hi"], (name, row, truth)
        assert row[name] is None  # no point guess
    assert row["eig_min_lo"] <= ev[0] <= row["eig_min_hi"]
    assert row["eig_max_lo"] <= ev[-1] <= row["eig_max_hi"]
    for name in ("eig_min_w", "eig_max_w", "spectrum_w", "spectrum"):
        assert row[name] is None, name
    # the bands are the dense path's: its floor, from the same assembly-error model
    assert row["tol_zero"] == pytest.approx(tz, rel=1e-6)
    assert row["lanczos_products"] > 0
    truth = _truth_type(ev, tn, tz, row["loss"], row["global_min_value"], row["loss_tol"])
    assert truth == POINTS[sample_id]
    # the numeric type only where the bounds prove it, never a wrong one
    assert row["numeric_type"] in (truth, "ambiguous")
    if truth == "strict_saddle":  # a certified negative Ritz value proves it
        assert row["n_neg_lo"] >= 1 and row["eig_min_hi"] < -row["tol_neg"]
        assert row["numeric_type"] == "strict_saddle"
    if row["numeric_type"] == "strict_saddle":  # decided only where proven
        assert row["eig_min_hi"] < -row["tol_neg"]
    elif row["numeric_type"] != "ambiguous":
        assert row["eig_min_lo"] >= -row["tol_zero"] and row["n_neg_hi"] == 0
    if row["numeric_type"] == "ambiguous":
        assert row["n_neg_lo"] == 0 and (row["n_neg_hi"] > 0 or row["eig_min_lo"] < -tz)
        assert row["decided_by"] in UNDECIDED  # the exact evaluation answers instead
    else:
        assert row["decided_by"] == "matrix_free" and row["verdict"] == truth


def test_dense_rows_say_so_and_have_no_bounds():
    W, X, Y = mp.sampled_point(10)
    row = classify_table([W], X, Y, hessian="dense", threads=1).to_pylist()[0]
    assert row["spectrum_method"] == "dense" and row["n_neg"] == 1
    for name in ("eig_min_lo", "eig_max_hi", "n_neg_lo", "n_pos_hi", "lanczos_products"):
        assert row[name] is None, name


def test_auto_takes_matrix_free_when_neither_spectrum_fits(monkeypatch):
    dims = (20, 40, 40, 20)  # N = 3,200: dense 164 MB, structured 72 MB, matrix-free 22 MB
    assert cost.choose_hessian("auto", dims, "t", matrix_free=True) == "dense"
    monkeypatch.setenv(cost.MEMORY_ENV, "4e7")
    assert cost.choose_hessian("auto", dims, "t", matrix_free=True) == "matrix_free"
    with pytest.raises(TooLarge, match='hessian = "matrix_free" in mcland classify'):
        cost.choose_hessian("auto", dims, "t")  # sample, groundtruth: no bounds-only rows
    with pytest.raises(TooLarge, match=r'"structured" \(no N x N matrix\) or "matrix_free"'):
        cost.choose_hessian("dense", dims, "t", matrix_free=True)
    monkeypatch.setenv(cost.MEMORY_ENV, "1e6")  # nothing fits: refused with the estimate
    with pytest.raises(TooLarge, match="matrix-free bounds of N = 3,200 parameters need"):
        cost.choose_hessian("auto", dims, "t", matrix_free=True)
    with pytest.raises(MclandError, match="for mcland classify and inspect only"):
        cost.choose_hessian("matrix_free", dims, "sample")


def test_forced_paths_that_cannot_fit_exit_2_in_one_line(capsys, tmp_path, monkeypatch):
    W, X, Y = mp.sampled_point(10)  # N = 47
    (tmp_path / "net").mkdir()
    np.savez(tmp_path / "net" / "p.npz", **{f"W{h + 1}": w for h, w in enumerate(W)})
    np.savez(tmp_path / "data.npz", X=X, Y=Y)
    out = tmp_path / "out"
    monkeypatch.setenv(cost.MEMORY_ENV, "3e4")  # dense: 2 x 8 x 47^2 = 35 kB
    common = (tmp_path / "net", "--data", tmp_path / "data.npz", "--out", out, "--threads", 1)
    refused(
        capsys, tmp_path, "classify", *common, "--hessian", "dense",
        fragments=("classify: the dense Hessian of N = 47 ", "needs 35.3 kB", '"matrix_free"'),
    )  # fmt: skip
    refused(
        capsys, tmp_path, "classify", *common, "--hessian", "matrix_free",
        fragments=("classify: the matrix-free bounds of N = 47 ", "memory limit"),
    )  # fmt: skip
    refused(
        capsys, tmp_path, "inspect", tmp_path / "net" / "p.npz", tmp_path / "data.npz",
        "--hessian", "matrix_free", fragments=("inspect: the matrix-free bounds of N = 47 ",),
    )  # fmt: skip
    assert not out.exists()


def test_a_mixed_batch_gives_each_row_its_solo_record(monkeypatch):
    """Dense and matrix-free rows in one call (``auto`` with architectures on either side of
    the limit): each row is the record of its point classified alone."""
    from mcland.classification import analysis

    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((6, 30)), rng.standard_normal((4, 30))
    pts = [
        [rng.standard_normal((d[h], d[h - 1])) for h in range(1, len(d))]
        for d in ((6, 3, 4), (6, 5, 4), (6, 2, 2, 4))
    ]
    solo = [
        classify_table([p], X, Y, hessian=mode, threads=1)
        for p, mode in zip(pts, ("dense", "matrix_free", "dense"), strict=True)
    ]
    choose = analysis.choose_hessian

    def free_for_one(mode, key, *args, **kw):  # as if (6, 5, 4) did not fit
        return "matrix_free" if tuple(key) == (6, 5, 4) else choose(mode, key, *args, **kw)

    monkeypatch.setattr(analysis, "choose_hessian", free_for_one)
    mixed = classify_table(pts, X, Y, hessian="auto", threads=2)
    assert mixed.column("spectrum_method").to_pylist() == ["dense", "matrix_free", "dense"]
    for i, one in enumerate(solo):
        row = mixed.slice(i, 1)
        assert [
            c for c in one.column_names if c != "row" and not row.column(c).equals(one.column(c))
        ] == []
