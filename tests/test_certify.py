"""Tests of mcland.classification.certify: exact evaluation on the stored floats, the exact PSD test, the
perturbation bound behind the stability answer, and the classify integration
(docs/certify.md).  References: ``fractions.Fraction`` for signs and exact values, the
float64 NumPy formulas (mcland.classification.refine.gradient / hessian) for values."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from certify_fixture import (
    cancelling,
    exact_global,
    kill23,
    lm_points,
    unbalanced,
    unbalanced_strict,
)

import mcland
from mcland._kernels.fields import TYPE_NAMES
from mcland.classification.certify import rows
from mcland.classification.certify.balance import balance_rows, layer_balance
from mcland.classification.certify.dyadic import Dyadic, floats, floats_wide, ldexp
from mcland.classification.certify.exact_type import (
    _balance,
    _quad,
    exact_certificate,
    exact_moments,
    exact_point,
    psd_rank,
)
from mcland.classification.certify.reference import certify_figures_reference
from mcland.classification.certify.rows import (
    COLUMNS,
    DEFAULT_REL,
    _fill_float64,
    certify_figures,
    certify_rows,
)
from mcland.classification.certify.stability import bounds_rows, perturbation_bounds
from mcland.classification.refine import gradient, hessian
from mcland.core.problem import Problem
from mcland.core.tolerances import EPS
from mcland.points.records import verdicts

ROOT = Path(__file__).resolve().parents[1]


def _flat(weights):
    dims = np.array([weights[0].shape[1]] + [W.shape[0] for W in weights], np.int64)
    return dims, np.concatenate([W.ravel() for W in weights])


def _frac(a):
    return [[Fraction(float(x)) for x in row] for row in np.atleast_2d(a)]


def _mm(A, B):
    return [
        [sum((A[i][k] * B[k][j] for k in range(len(B))), Fraction(0)) for j in range(len(B[0]))]
        for i in range(len(A))
    ]


def _quad_reference(weights, V, X, Y) -> Fraction:
    """``v^T Hess v`` in Fractions, independently of the block formulas: twice the t^2
    coefficient of ``L(W + t V) = ||P(t) X - Y||^2``, ``P(t)`` multiplied out as a
    polynomial in ``t`` truncated at degree 2."""
    Xf, Yf = _frac(X), _frac(Y)
    poly = None  # [c0, c1, c2], each a matrix
    for W, Vh in zip(weights, V, strict=True):
        Wf, Vf = _frac(W), _frac(Vh)
        if poly is None:
            zero = [[Fraction(0)] * len(Wf[0]) for _ in Wf]
            poly = [Wf, Vf, zero]
            continue
        c0 = _mm(Wf, poly[0])
        c1 = [
            [a + b for a, b in zip(r1, r2, strict=True)]
            for r1, r2 in zip(_mm(Wf, poly[1]), _mm(Vf, poly[0]), strict=True)
        ]
        c2 = [
            [a + b for a, b in zip(r1, r2, strict=True)]
            for r1, r2 in zip(_mm(Wf, poly[2]), _mm(Vf, poly[1]), strict=True)
        ]
        poly = [c0, c1, c2]
    A0 = _mm(poly[0], Xf)
    A1 = _mm(poly[1], Xf)
    A2 = _mm(poly[2], Xf)
    # L(t) = sum (A0 - Y + t A1 + t^2 A2)^2: t^2 coefficient = sum A1^2 + 2 (A0 - Y) A2
    c = Fraction(0)
    for i in range(len(A0)):
        for j in range(len(A0[0])):
            c += A1[i][j] ** 2 + 2 * (A0[i][j] - Yf[i][j]) * A2[i][j]
    return 2 * c


def _split(v, weights):
    out, k = [], 0
    for W in weights:
        out.append(v[k : k + W.size].reshape(W.shape))
        k += W.size
    return out


def _points():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((3, 6))
    Y = rng.standard_normal((2, 6))
    plain = [rng.standard_normal((2, 3)), rng.standard_normal((3, 2)), rng.standard_normal((2, 3))]
    return [
        (plain, X, Y),
        (unbalanced(plain, (4e1, 3e-11, 1.0)), X, Y),
        (kill23(1e-13, 1e-20)[0], *kill23(0, 0)[1:]),
    ]


@pytest.mark.parametrize("case", range(3))
def test_exact_gradient_and_hessian_match_float64(case):
    weights, X, Y = _points()[case]
    dims, w = _flat(weights)
    problem = Problem.from_data(X, Y)
    ex = exact_point(dims, w, *exact_moments(X, Y))
    Hf, Hn = ex.hess.to_float(), hessian(dims, w, problem)
    assert np.allclose(Hf, Hf.T, rtol=0, atol=0)
    scale = np.abs(Hn).max()
    assert np.abs(Hf - Hn).max() <= 1e-12 * scale
    gn = gradient(dims, w, problem)
    assert (
        np.abs(ex.grad.to_float() - gn).max()
        <= 1e-12 * max(np.abs(gn).max(), 1e-300) + 1e-14 * scale
    )


@pytest.mark.parametrize("case", range(3))
def test_exact_quadratic_form_equals_fraction_reference(case):
    weights, X, Y = _points()[case]
    dims, w = _flat(weights)
    ex = exact_point(dims, w, *exact_moments(X, Y))
    rng = np.random.default_rng(case)
    for v in [rng.standard_normal(w.size), np.linalg.eigh(ex.hess.to_float())[1][:, 0]]:
        sign, q, _ = _quad(ex.hess, v)
        ref = _quad_reference(weights, _split(v, weights), X, Y)
        assert sign == (ref > 0) - (ref < 0)
        assert q == pytest.approx(float(ref), rel=1e-15, abs=0)


def test_psd_rank_against_eigenvalues():
    rng = np.random.default_rng(3)
    for n, k in ((5, 5), (6, 3), (7, 1), (4, 0)):
        B = rng.integers(-9, 10, size=(n, k))
        A = Dyadic(np.array((B @ B.T).tolist(), dtype=object), 0)  # PSD, rank k
        assert psd_rank(A) == (True, int(np.linalg.matrix_rank(B @ B.T)))
        D = np.diag([-1] + [1] * (k - 1)) if k else None
        if k:
            A = Dyadic(np.array((B @ D @ B.T).tolist(), dtype=object), 0)
            assert psd_rank(A)[0] == (np.linalg.eigvalsh((B @ D @ B.T).astype(float))[0] >= -1e-9)
    for M in (
        [[0, 1], [1, 0]],
        [[1, 2], [2, 1]],
        [[0, 0], [0, -3]],
        [[1, 1, 0], [1, 1, 0], [0, 0, 0]],
    ):
        expect = bool(np.linalg.eigvalsh(np.array(M, float))[0] >= -1e-12)
        assert psd_rank(Dyadic(np.array(M, dtype=object), 0))[0] == expect


def test_tiny_strict_saddle_is_certified_by_exact():
    """W_2, W_3 of norms 1e-13, 1e-20 on a W_2 = W_3 = 0 configuration: float64 cannot
    decide (ambiguous); exactly a strict saddle, robust to a few-eps perturbation."""
    weights, X, Y = kill23(1e-13, 1e-20)
    r = mcland.certify_point(weights, X, Y)
    assert r["numeric_type"] == "ambiguous"
    assert (r["exact_type"], r["decided_by"]) == ("strict_saddle", "exact")
    assert r["exact_curvature"] < 0 and r["stability"] == "stable"
    dims, w = _flat(weights)
    c = exact_certificate(dims, w, Problem.from_data(X, Y), exact_moments(X, Y), False)
    ref = _quad_reference(weights, _split(c.direction, weights), X, Y)
    assert ref < 0  # the certificate, checked independently in Fractions


def test_tiny_layers_strict_componentwise_but_non_strict_normwise():
    """Norms 1e-20, 1e-35 on a W_2 = W_3 = 0 configuration: float64 reads non-strict; the
    floats are exactly strict and stay so under any few-eps *relative* perturbation (tiny
    layers stay tiny), but a normwise perturbation of the weights (which may zero the tiny
    layers) may make it non-strict: both readings of the issue are reported."""
    weights, X, Y = kill23(1e-20, 1e-35)
    r = mcland.certify_point(weights, X, Y)
    assert r["numeric_type"] == "non_strict_saddle"
    assert (r["exact_type"], r["stability"]) == ("strict_saddle", "stable")
    assert r["stability_scale"] > r["stability_bound"]
    assert r["normwise_stability"] == "unstable"
    assert "non_strict_saddle" in r["normwise_possible_types"]


def test_unbalanced_strict_saddle_is_certified_and_stable():
    """A sampler strict saddle rescaled to layer norms 4e1, 3e-11, 4e-6, 4.5e14: float64
    misreads it (the floor scales with the largest layers); exactly strict, and stable in
    balanced coordinates (a symmetry of L: same type, same relative perturbations)."""
    weights, X, Y = unbalanced_strict()
    r = mcland.certify_point(weights, X, Y)
    assert r["theory_type"] == "strict_saddle" and r["numeric_type"] != "strict_saddle"
    assert (r["exact_type"], r["decided_by"], r["stability"]) == (
        "strict_saddle",
        "exact",
        "stable",
    )
    dims, w = _flat(weights)
    k = layer_balance(dims, w)
    assert k.sum() == 0
    per = np.repeat(k, dims[1:] * dims[:-1])
    assert np.array_equal(np.ldexp(np.ldexp(w, -per), per), w)  # exact rescaling
    wb = np.ldexp(w, -per)
    nb = [np.linalg.norm(W) for W in _split(wb, weights)]
    assert max(nb) / min(nb) < 2.0 ** (len(nb) + 1)  # balanced (the rounding of k)
    problem, mom = Problem.from_data(X, Y), exact_moments(X, Y)
    plain = exact_certificate(dims, w, problem, mom, False, balance=False)
    assert plain.exact_type == "strict_saddle"  # same type without balancing


@pytest.mark.parametrize(
    ("make", "expect", "rank"),
    [(lambda: kill23(0.0, 0.0), "non_strict_saddle", 0), (exact_global, "global_minimizer", 3)],
)
def test_exact_psd_points_are_not_called_strict(make, expect, rank):
    weights, X, Y = make()
    dims, w = _flat(weights)
    problem = Problem.from_data(X, Y)
    assert np.all(gradient(dims, w, problem) == 0)  # exactly critical
    c = exact_certificate(dims, w, problem, exact_moments(X, Y), expect == "global_minimizer")
    assert (c.exact_type, c.decided_by, c.exact_rank) == (expect, "exact_inertia", rank)


def test_exact_rank_of_a_global_minimizer():
    """H = 2, X = I_6, Y = diag(12..7), W_2 W_1 = top-3 projection scaled: exactly critical
    global minimizer whose Hessian's kernel is the GL(3) symmetry: rank N - r^2 = 36 - 9."""
    d, r = 6, 3
    X, Y = np.eye(d), np.diag(np.arange(2 * d, d, -1).astype(float))
    W1 = np.zeros((r, d))
    W1[:, :r] = np.eye(r)
    W2 = np.zeros((d, r))
    W2[:r, :] = np.diag(np.arange(2 * d, 2 * d - r, -1).astype(float))
    dims, w = _flat([W1, W2])
    c = exact_certificate(dims, w, Problem.from_data(X, Y), exact_moments(X, Y), True)
    assert (c.exact_type, c.decided_by, c.exact_rank) == ("global_minimizer", "exact_inertia", 27)


def test_zero_point_is_stable_and_psd():
    """W = 0 (H = 3): Hessian exactly 0, and a relative perturbation keeps it 0."""
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    r = mcland.certify_point([np.zeros((2, 2))] * 3, X, Y)
    assert (r["exact_type"], r["decided_by"], r["stability"]) == (
        "non_strict_saddle",
        "exact_inertia",
        "stable",
    )
    assert r["stability_bound"] == 0.0


def test_stability_flips_above_the_curvature_gap_only():
    weights, X, Y = cancelling()
    r = mcland.certify_point(weights, X, Y)
    gap = r["stability_scale"]
    assert r["exact_type"] == "strict_saddle" and gap > 1
    # find the rel at which the bound reaches the gap, then step either side
    lo, hi = 1e-16, 1.0
    for _ in range(60):
        mid = np.sqrt(lo * hi)
        below = mcland.certify_point(weights, X, Y, rel=mid)["stability_bound"] < gap
        lo, hi = (mid, hi) if below else (lo, mid)
    small = mcland.certify_point(weights, X, Y, rel=lo / 2)
    large = mcland.certify_point(weights, X, Y, rel=hi * 2)
    # (beyond rel ~ 1e-9 the gradient bound already allows `not_critical`: a separate flip)
    assert not {"non_strict_saddle", "global_minimizer"} & set(small["possible_types"])
    assert large["stability"] == "unstable" and "non_strict_saddle" in large["possible_types"]
    assert mcland.certify_point(weights, X, Y)["possible_types"] == []  # default rel: stable
    assert small["stability_bound"] < gap <= large["stability_bound"]


def _perturb(a, rel, rng):
    return a * (1 + rel * rng.uniform(-1, 1, a.shape))


@pytest.mark.parametrize("rel", [1e-6, 1e-10])
def test_bound_holds_for_random_perturbations(rel):
    """The Weyl bound is an upper bound: exact change of the Hessian (spectral norm) and
    of the gradient under random componentwise perturbations of weights and data."""
    pts, Xl, Yl = lm_points(6)
    cases = [(p, Xl, Yl) for p in pts] + _points() + [cancelling()]
    rng = np.random.default_rng(5)
    for weights, X, Y in cases:
        dims, w = _flat(weights)
        problem = Problem.from_data(X, Y)
        norms = np.array([np.linalg.norm(W) for W in weights])
        P = weights[0]
        for W in weights[1:]:
            P = W @ P
        r_norm = np.linalg.norm(P @ problem.Sxx - problem.Syx) * (1 + 1e-12) + 1e-300
        beta, dgrad, _ = perturbation_bounds(
            norms,
            r_norm,
            np.linalg.eigvalsh(problem.Sxx)[-1],
            np.linalg.norm(X),
            np.linalg.norm(Y),
            rel,
        )
        ex0 = exact_point(dims, w, *exact_moments(X, Y))
        for _ in range(3):
            Xp, Yp = _perturb(X, rel, rng), _perturb(Y, rel, rng)
            wp = _perturb(w, rel, rng)
            ex1 = exact_point(dims, wp, *exact_moments(Xp, Yp))
            dH = (ex1.hess - ex0.hess).to_float()
            dg = (ex1.grad - ex0.grad).to_float()
            assert np.linalg.norm(dH, 2) <= beta
            assert np.linalg.norm(dg) <= dgrad


def test_robust_float64_non_strict_is_exactly_strict_and_stable():
    """LM endpoints on which the float64 floor is looser than the Hessian itself: float64
    reads non-strict, the exact form finds a negative direction larger than any few-eps
    perturbation can move (issue 14 item 3)."""
    pts, X, Y = lm_points(120)
    df = mcland.classify(pts, X, Y, threads=1)
    robust = df[(df.numeric_type == "non_strict_saddle") & (df.stability == "stable")]
    assert len(robust) >= 1
    for t in robust.index[:2]:
        assert robust.loc[t, "exact_type"] == "strict_saddle"
        assert -robust.loc[t, "exact_curvature"] > robust.loc[t, "stability_bound"]
        assert robust.loc[t, "noise_floor"] > 0.5 * robust.loc[t, "hess_norm_w"]


def test_classify_runs_exact_only_where_needed(monkeypatch):
    pts, X, Y = lm_points(40)
    calls = []
    real = exact_certificate

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(rows, "exact_certificate", spy)
    df = mcland.classify(pts, X, Y, threads=1)
    exact_rows = df["decided_by"] != "float64"
    assert len(calls) == int(exact_rows.sum())
    assert (df.loc[df.numeric_type == "ambiguous", "decided_by"] != "float64").all()
    assert (
        df.loc[df.decided_by == "float64", "exact_type"]
        == df.loc[df.decided_by == "float64", "numeric_type"]
    ).all()
    assert df["decided_by"].isin(["float64", "exact", "exact_inertia", "undecided"]).all()
    assert (df["stability_rel"] == DEFAULT_REL).all()
    with pytest.raises(mcland.MclandError, match="stability_rel"):
        mcland.classify(pts[:1], X, Y, stability_rel=-1.0)


def test_certify_columns_do_not_depend_on_threads_or_order():
    pts, X, Y = lm_points(30)
    cols = ["decided_by", "exact_type", "exact_curvature", "stability", "stability_bound"]
    a = mcland.classify(pts, X, Y, threads=1)[cols]
    b = mcland.classify(pts, X, Y, threads=2)[cols]
    c = mcland.classify(pts[::-1], X, Y, threads=2)[cols].iloc[::-1].reset_index(drop=True)
    for other in (b, c):
        for col in cols:
            assert a[col].tolist() == other[col].tolist() or np.array_equal(
                a[col], other[col], equal_nan=True
            )


def test_drawn_points_keep_their_verdicts():
    """The sampler's own exact points: the float64 record is untouched, strict saddles are
    stable, and a certified type other than the record's is only ever the unstable
    reading of a float just off the critical set (the record's type stays possible)."""
    seen = set()
    for k in range(40):
        W, X, Y = mcland.draw_point("runs/quick.toml", k)
        rep = mcland.inspect_point(W, X, Y)
        r = mcland.classify([W], X, Y, threads=1).iloc[0]
        assert (r.numeric_type, r.theory_type) == (rep.numeric_type, rep.theory_type)
        seen.add(r.numeric_type)
        if r.numeric_type == "strict_saddle":
            assert r.exact_type == "strict_saddle" and r.stability == "stable"
        elif r.exact_type != r.numeric_type:
            assert r.stability == "unstable" and r.numeric_type in r.possible_types
    assert seen == {"global_minimizer", "strict_saddle", "non_strict_saddle"}


def test_cli_stability_rel_option(tmp_path):
    from click.testing import CliRunner

    from mcland.cli import cli

    res = CliRunner().invoke(cli, ["classify", "--help"])
    assert "--stability-rel" in res.output
    pts, X, Y = lm_points(3)
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    folder = tmp_path / "pts"
    folder.mkdir()
    for i, p in enumerate(pts):
        np.savez(folder / f"p{i}.npz", **{f"W{h + 1}": W for h, W in enumerate(p)})
    bad = CliRunner().invoke(
        cli,
        [
            "classify",
            str(folder),
            "--data",
            str(tmp_path / "d.npz"),
            "--out",
            str(tmp_path / "o"),
            "--stability-rel",
            "2",
        ],
    )
    assert bad.exit_code == 2 and not (tmp_path / "o").exists()
    ok = CliRunner().invoke(
        cli,
        [
            "classify",
            str(folder),
            "--data",
            str(tmp_path / "d.npz"),
            "--out",
            str(tmp_path / "o"),
            "--stability-rel",
            "1e-8",
        ],
    )
    assert ok.exit_code == 0, ok.output
    df = mcland.load(tmp_path / "o")
    assert (df["stability_rel"] == 1e-8).all()


# ---------------------------------------------------------------- the bounds kernel
# mcland._kernels.stability.certify_bounds against the NumPy reference
# (certify.certify_figures_reference): same formulas and order of operations, but the
# layer norms (NumPy's pairwise sums) and the matrix products may round differently, so
# they agree to rounding (the bounds are sums of nonnegative terms: relative rounding).


def _analysed(cases):
    """Rows of the analysis (as mcland.classify computes them) for (weights, X, Y) of one
    data set."""
    from mcland.classification.analysis import analyze_points
    from mcland.classification.inputs import read_points
    from mcland.core.tolerances import Tolerances

    pts, X, Y = cases
    problem = Problem.from_data(X, Y)
    tol = Tolerances()
    given = read_points(pts, problem)
    out = analyze_points(given.dims, given.w, problem, tol, 1)
    spec = out.spectrum_w if out.spectrum_w.shape[1] else None
    return (given.dims, given.w, X, Y, problem, out.row_float, out.row_int, spec)


def _sampler_points(n):
    cfg = mcland.load_config("runs/linnerud.toml")
    cfg = cfg.model_copy(update={"output": cfg.output.model_copy(update={"weights": True})})
    _, X, Y = mcland.draw_point(cfg, 0)
    df = mcland.sample(cfg, n=n, threads=1)
    from mcland.points.inspect import split_layers

    pts = [
        split_layers(np.asarray(w), np.asarray(d, np.int64))
        for w, d in zip(df.weights, df.dims, strict=True)
    ]
    return pts, X, Y


def _assert_figures_agree(args, rel, dist, everything):
    from mcland._kernels import stability as ks

    a = certify_figures(*args, rel, dist, 1e-8, everything)
    b = certify_figures_reference(*args, rel, dist, 1e-8, everything)
    crit = b[2][:, ks.C_CRITICAL] == 1
    assert crit.any()
    assert np.array_equal(a[2][crit], b[2][crit])  # triage, verdicts, possible types
    assert np.array_equal(a[2][:, ks.C_CRITICAL], b[2][:, ks.C_CRITICAL])
    assert np.array_equal(a[0][crit], b[0][crit])  # balancing exponents
    for j, name in enumerate(ks.FIG_NAMES):
        np.testing.assert_allclose(a[1][crit, j], b[1][crit, j], rtol=1e-12, atol=0, err_msg=name)


@pytest.mark.parametrize("rel", [DEFAULT_REL, 1e-8])
def test_bounds_kernel_matches_reference_on_sampler_points(rel):
    args = _analysed(_sampler_points(300))
    _assert_figures_agree(args, rel, None, False)


def test_bounds_kernel_matches_reference_on_lm_points():
    args = _analysed(lm_points(40))
    n = len(args[1])
    dist = np.where(np.arange(n) % 3 == 0, 1e-9 * np.arange(n), np.nan)  # refine distances
    _assert_figures_agree(args, DEFAULT_REL, None, False)
    _assert_figures_agree(args, 1e-8, dist, True)
    cols = ["exact_type", "decided_by", "stability", "possible_types", "normwise_stability"]
    a = certify_rows(*args)
    b = certify_rows(*args, reference=True)
    for c in cols:
        assert a[c].tolist() == b[c].tolist(), c


def test_bounds_kernel_one_row_matches_perturbation_bounds():
    from mcland._kernels import stability as ks

    rng = np.random.default_rng(3)
    for _ in range(50):
        H = int(rng.integers(1, 7))
        norms = 10.0 ** rng.uniform(-8, 3, H)
        r_norm, sxx_2, xn, yn = 10.0 ** rng.uniform(-3, 3, 4)
        rel, dist, data_rel = 10.0 ** rng.uniform(-8, -2, 3)
        ref = bounds_rows(
            norms[None, :], np.array([r_norm]), sxx_2, xn, yn, rel, np.array([dist]), data_rel
        )
        got = ks.bounds(norms, r_norm, sxx_2, xn, yn, rel, dist, data_rel)
        # same operations in the same order (H <= 7: NumPy's row sums are sequential)
        np.testing.assert_allclose(got, [x[0] for x in ref], rtol=2 * EPS, atol=0)


def test_balance_kernel_matches_balance_rows():
    from mcland._kernels import stability as ks

    rng = np.random.default_rng(4)
    for _ in range(300):
        H = int(rng.integers(1, 7))
        norms = 10.0 ** rng.uniform(-40, 40, H) * (rng.uniform(size=H) > 0.15)
        big = norms * rng.uniform(0.3, 1.0, H)
        small = np.where(norms > 0, big * 10.0 ** rng.uniform(-300, 0, H), np.inf)
        k = np.zeros(H, np.int64)
        ks.balance(norms, big, small, k)
        ref = balance_rows(norms[None, :], big[None, :], small[None, :])[0]
        assert np.array_equal(k, ref), (norms, k, ref)


def _beta_decimal(norms, r_norm, sxx_2, x_norm, y_norm, rel):
    """The Weyl bound's formula (perturbation_bounds' docstring) as a difference of
    majorants, in 60-digit decimal arithmetic on the same float inputs."""
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = 60
        n = [Decimal(float(x)) for x in norms]
        rel, r = Decimal(rel), Decimal(float(r_norm))
        sxx, xn, yn = Decimal(float(sxx_2)), Decimal(float(x_norm)), Decimal(float(y_norm))
        n2 = [x + rel * x for x in n]
        c2 = 2 * rel + rel * rel

        def prod(v, skip=()):
            out = Decimal(1)
            for j, x in enumerate(v):
                if j not in skip:
                    out *= x
            return out

        H = len(n)
        sxx2, syx, syx2 = sxx + c2 * xn**2, xn * yn, xn * yn * (1 + c2)
        dR = prod(n2) * sxx2 - prod(n) * sxx + (syx2 - syx)
        p1 = sum(prod(n, (h,)) ** 2 for h in range(H))
        p1b = sum(prod(n2, (h,)) ** 2 for h in range(H))
        pairs = [(h, k) for h in range(H) for k in range(h + 1, H)]
        p2 = sum((2 * prod(n, hk) ** 2 for hk in pairs), Decimal(0)).sqrt() / 2
        p2b = sum((2 * prod(n2, hk) ** 2 for hk in pairs), Decimal(0)).sqrt() / 2
        return 2 * (p1b * sxx2 - p1 * sxx) + 4 * ((p2b - p2) * (r + dR) + p2 * dR)


def test_bound_evaluation_is_rounded_up():
    """The float64 bound is never below its exact value (same inputs): no cancellation
    in "majorant at n + eps minus majorant at n", layers from 1e-3 to 1e3 as the
    sampler's, tiny relative perturbations."""
    from mcland._kernels import stability as ks

    rng = np.random.default_rng(6)
    for _ in range(300):
        H = int(rng.integers(2, 7))
        norms = 10.0 ** rng.uniform(-3, 3, H)
        r_norm, sxx_2, xn, yn = 10.0 ** rng.uniform(-3, 3, 4)
        rel = float(10.0 ** rng.uniform(-16, -8))
        beta = ks.bounds(norms, r_norm, sxx_2, xn, yn, rel, 0.0, rel)[0]
        exact = _beta_decimal(norms, r_norm, sxx_2, xn, yn, rel)
        assert beta >= exact, (norms, rel, beta, exact)
        assert beta <= float(exact) * (1 + 1e-12)


def test_floats_of_integer_matrices_match_scalar_ldexp():
    """certify.floats (the int64 fast path and the fallback) gives exactly ldexp's
    floats, exponents down to subnormal and up to overflow."""
    rng = np.random.default_rng(8)
    for trial in range(200):
        top = 62 if trial % 2 else 120  # even trials: some entries beyond int64
        M = np.empty((6, 6), dtype=object)
        for idx in np.ndindex(M.shape):
            b = int(rng.integers(0, top + 1))
            v = int(rng.integers(0, 2**62)) >> max(62 - b, 0) << max(b - 62, 0)
            M[idx] = v * int(rng.choice([-1, 1])) if rng.uniform() < 0.9 else 0
        e = rng.integers(-1200, 1000, size=M.shape)
        ref = np.array([[ldexp(M[i, j], int(e[i, j])) for j in range(6)] for i in range(6)])
        with np.errstate(over="ignore"):
            assert np.array_equal(floats(M, e), ref), trial
            e0 = int(rng.integers(-1100, 900))
            ref0 = np.array([[ldexp(x, e0) for x in row] for row in M])
            assert np.array_equal(floats(M, e0), ref0), trial


def test_balanced_floats_from_the_rounded_hessian_are_the_same():
    """certify._balance with the float Hessian (rescaled by np.ldexp where exact) gives the
    same floats as converting the integers again, entries down to subnormal and zero and
    up to overflow."""
    rng = np.random.default_rng(9)
    cases = [exact_point(*_flat(p[0]), *exact_moments(p[1], p[2])).hess for p in _points()]
    for _ in range(60):
        M = np.empty((5, 5), dtype=object)
        for idx in np.ndindex(M.shape):
            b = int(rng.integers(0, 200))
            v = int(rng.integers(1, 2**62)) >> max(62 - b, 0) << max(b - 62, 0)
            M[idx] = v * int(rng.choice([-1, 1])) if rng.uniform() < 0.8 else 0
        cases.append(Dyadic(M, int(rng.integers(-1250, 900))))
    for hess in cases:
        with np.errstate(over="ignore"):
            Hf = hess.to_float()
            k, B = _balance(hess, Hf)
            k0, B0 = _balance(hess)
        assert np.array_equal(k, k0) and np.array_equal(B, B0)


def _fill_float64_naive(n, rows, fig, code, rel):
    """Row by row, as :func:`mcland.classification.certify.rows._fill_float64` was written before it was
    vectorised: the reference for its table lookups."""
    from mcland._kernels import stability as ks

    cols = {c: [None] * n for c in COLUMNS}
    for t in rows.tolist():
        c = code[t]
        v = int(c[ks.C_VERDICT])
        cols["exact_type"][t] = ks.TYPES[v]
        cols["decided_by"][t] = "float64"
        cols["stability"][t] = ks.STABILITIES[c[ks.C_STAB]]
        cols["possible_types"][t] = [ks.TYPES[i] for i in range(4) if c[ks.C_POSSIBLE] >> i & 1]
        cols["stability_scale"][t] = float(fig[t, ks.G_GAP]) if v == ks.T_STRICT else 0.0
        cols["stability_bound"][t] = float(fig[t, ks.G_BETA])
        cols["stability_rel"][t] = rel
        cols["stability_method"][t] = ks.METHODS[c[ks.C_METHOD]]
        cols["normwise_stability"][t] = ks.STABILITIES[c[ks.C_STAB_N]]
        cols["normwise_possible_types"][t] = [
            ks.TYPES[i] for i in range(4) if c[ks.C_POSSIBLE_N] >> i & 1
        ]
    return cols


def test_float64_columns_are_the_codes_read_row_by_row():
    from mcland._kernels import stability as ks

    rng = np.random.default_rng(4)
    n = 300
    code = np.zeros((n, len(ks.CODE_NAMES)), np.int64)
    code[:, ks.C_VERDICT] = rng.integers(0, 3, n)
    code[:, ks.C_STAB] = rng.integers(0, 3, n)
    code[:, ks.C_STAB_N] = rng.integers(0, 3, n)
    code[:, ks.C_POSSIBLE] = rng.integers(0, 16, n)
    code[:, ks.C_POSSIBLE_N] = rng.integers(0, 16, n)
    code[:, ks.C_METHOD] = rng.integers(0, 3, n)
    fig = rng.standard_normal((n, len(ks.FIG_NAMES)))
    rows = np.sort(rng.choice(n, 200, replace=False))
    got = {c: np.full(n, None, object) for c in COLUMNS}
    _fill_float64(got, rows, fig, code, 1e-8)
    want = _fill_float64_naive(n, rows, fig, code, 1e-8)
    for c in COLUMNS:
        assert got[c].tolist() == want[c], c


def test_wide_int_rounding_is_ldexp_entry_by_entry():
    """``floats_wide`` (NumPy object loops) gives the very floats of ``ldexp`` per entry:
    64-bit cut toward zero, one rounding, overflow to inf, for ints of 1 to 2,000 bits."""
    rng = np.random.default_rng(0)
    vals = [0, 2**64 - 1, 2**64, 2**64 + 1, 2**53 + 1, -(2**53 + 1), (2**64 - 1) << 900, 2**1100]
    # a tie one bit below the 64-bit cut: the cut decides the rounding (up here, to even if
    # cut one bit shorter)
    vals += [s * (((2**52) << 12 | 1 << 11 | 1 << 1) << k) for k in (0, 7, 500) for s in (1, -1)]
    for bits in (1, 52, 53, 54, 63, 64, 65, 100, 300, 1100, 2000):
        for _ in range(50):
            n = int(rng.integers(1, 2**62)) << max(bits - 62, 0) | int(rng.integers(0, 2**20))
            vals.append(n if rng.random() < 0.5 else -n)
    M = np.empty(len(vals), object)
    M[:] = vals
    e = rng.integers(-1200, 200, len(vals))
    want = np.array([ldexp(n, int(k)) for n, k in zip(vals, e, strict=True)])
    assert np.isinf(want).any() and (want == 0).sum() > 1  # overflow and underflow covered
    assert floats_wide(M, e).tobytes() == want.tobytes()


def test_the_verdict_is_the_certified_type_where_decided():
    """``verdict`` (the column to group by) is ``exact_type`` wherever the floats' type is
    decided, never the float64 ``numeric_type`` when the exact evaluation overrules it."""
    pts, X, Y = lm_points(40)
    df = mcland.classify(pts, X, Y, threads=1)
    decided = df["exact_type"].notna()
    assert (df.loc[decided, "verdict"].astype(str) == df.loc[decided, "exact_type"]).all()
    rest = df.loc[~decided]
    expect = np.where(
        rest["numeric_type"].astype(str) == "not_critical", "not_critical", "ambiguous"
    )
    assert (rest["verdict"].astype(str).to_numpy() == expect).all()
    # the points where float64 and the exact type differ are grouped by the exact one
    overruled = decided & (df["exact_type"] != df["numeric_type"].astype(str))
    assert overruled.any(), "the LM endpoints include points whose float64 type is overruled"
    assert (
        df.loc[overruled, "verdict"].astype(str) != df.loc[overruled, "numeric_type"].astype(str)
    ).all()


def test_sampled_verdicts_are_the_agreeing_type_else_ambiguous():
    names = np.array(TYPE_NAMES)
    theory = np.array([0, 1, 2, 3, 1, 2, 4])
    numeric = np.array([0, 1, 2, 3, 2, 4, 4])
    assert names[verdicts(theory, numeric)].tolist() == [
        "global_minimizer", "strict_saddle", "non_strict_saddle", "not_critical",
        "ambiguous", "ambiguous", "ambiguous",
    ]  # fmt: skip
    df = mcland.sample(ROOT / "runs" / "quick.toml", n=200, threads=1)
    agree = df["theory_type"] == df["numeric_type"]
    assert (df.loc[agree, "verdict"] == df.loc[agree, "numeric_type"]).all()
    assert (df.loc[~agree, "verdict"].astype(str) == "ambiguous").all()
    for k in (0, 1, 2, 3):  # inspect_point reaches the record's verdict
        W, X, Y = mcland.draw_point(ROOT / "runs" / "quick.toml", k)
        assert mcland.inspect_point(W, X, Y).verdict == str(df["verdict"][k])
