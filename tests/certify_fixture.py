"""Deterministic points like those of issue 14 item 3, for tests/test_certify.py and the
examples of docs/certify.md: Levenberg-Marquardt endpoints from random starts on one small
data set, and constructed near-degenerate points (no binary fixture files).

``python tests/certify_fixture.py [n]`` prints the table "float64 verdict vs exact verdict
vs stability" for ``n`` LM points (default 200) and the constructed points, with the cost
of the exact evaluation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from mcland._kernels.dense import layer_offsets, prod, product_table
from mcland._kernels.hessian import assemble_hessian, gradient, residual
from mcland.core.problem import Problem

LM_DIMS = (4, 2, 2, 2, 2)  # d_0 .. d_H, H = 4: N = 8 + 4 + 4 + 4 = 20
LM_SEED = 14


def lm_data(seed: int = LM_SEED) -> tuple[np.ndarray, np.ndarray]:
    """The one small data set of the LM points: X (4, 12), Y (2, 12), Gaussian, seeded."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((LM_DIMS[0], 12))
    T = rng.standard_normal((LM_DIMS[-1], LM_DIMS[0]))
    TX = (T[:, :, None] * X[None, :, :]).sum(axis=1)  # no BLAS: bit-reproducible
    Y = TX + 0.5 * rng.standard_normal((LM_DIMS[-1], 12))
    return X, Y


def _lm(dims: np.ndarray, w: np.ndarray, problem: Problem, steps: int) -> np.ndarray:
    """Levenberg-Marquardt on the gradient as :func:`mcland.classification.refine.refine_point` does
    (MINPACK, Hessian as Jacobian), with the gradient from the Numba kernels instead of
    NumPy's BLAS products, whose last bits may depend on memory alignment: on these
    degenerate points LM amplifies such bits, and the fixture must be bit-reproducible."""
    H = dims.size - 1
    off = layer_offsets(dims)

    def grad(x):
        table, toff = product_table(x, dims, off)
        return gradient(
            table,
            toff,
            dims,
            off,
            residual(prod(table, toff, dims, H, 1), problem.Sxx, problem.Syx),
        )

    def jac(x):
        upper = np.triu(assemble_hessian(dims, x, problem.Sxx, problem.Syx))
        return upper + np.triu(upper, 1).T

    with np.errstate(all="ignore"):
        res = least_squares(
            grad, w, jac=jac, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=steps
        )
    return np.asarray(res.x, dtype=np.float64)


def lm_points(n: int, seed: int = LM_SEED) -> tuple[list[list[np.ndarray]], np.ndarray, np.ndarray]:
    """``n`` endpoints of Levenberg-Marquardt (:func:`_lm`, 400 gradient evaluations) from
    random starts: Gaussian layers, each scaled by
    ``10**U(-8, 1)`` (small layers end at degenerate configurations: tiny layers,
    ``W_2 = W_3 = 0``-like points)."""
    X, Y = lm_data(seed)
    problem = Problem.from_data(X, Y)
    dims = np.array(LM_DIMS, np.int64)
    rng = np.random.default_rng(seed + 1)
    points = []
    for _ in range(n):
        layers = [
            rng.standard_normal((dims[h], dims[h - 1])) * 10.0 ** rng.uniform(-8, 1)
            for h in range(1, dims.size)
        ]
        w = np.concatenate([W.ravel() for W in layers])
        w = _lm(dims, w, problem, 400)
        points.append(_split(w, dims))
    return points, X, Y


def _split(w: np.ndarray, dims) -> list[np.ndarray]:
    out, k = [], 0
    for h in range(1, len(dims)):
        size = dims[h] * dims[h - 1]
        out.append(w[k : k + size].reshape(dims[h], dims[h - 1]).copy())
        k += size
    return out


def hadamard_data() -> tuple[np.ndarray, np.ndarray]:
    """Integer data with ``Syx[:, 2:] = 0`` exactly: X (4, 8), Y (2, 8); rows 3, 4 of X and
    the rows of Y are distinct rows of the 8 x 8 Sylvester-Hadamard matrix (orthogonal),
    rows 1, 2 of X small integers (Sxx invertible, Sigma with distinct eigenvalues)."""
    h2 = np.array([[1, 1], [1, -1]])
    had = np.kron(np.kron(h2, h2), h2).astype(np.float64)
    X = np.vstack([[3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8], had[1], had[2]])
    Y = np.vstack([had[3] + 2 * X[0] - X[1], had[4] * 2 + X[0]])
    Y = Y - np.outer(Y @ had[1] / 8, had[1]) - np.outer(Y @ had[2] / 8, had[2])  # exact
    return X.astype(np.float64), Y


def kill23(
    tiny2: float, tiny3: float, seed: int = 0
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """``W_2 = W_3 = 0``-type point for the Hadamard data (dims 4-2-2-2-2): ``W_1``'s
    rows in the null space of ``Syx`` (exactly: ``e_3``, ``e_4`` scaled), ``W_4`` O(1), and
    ``W_2``, ``W_3`` random of norms ``tiny2``, ``tiny3`` (0 gives the exact non-strict
    saddle, whose Hessian is exactly zero)."""
    X, Y = hadamard_data()
    rng = np.random.default_rng(seed)
    W1 = np.array([[0.0, 0.0, 1.5, -0.5], [0.0, 0.0, 0.25, 2.0]])
    W2 = rng.standard_normal((2, 2))
    W3 = rng.standard_normal((2, 2))
    W2 *= tiny2 / np.linalg.norm(W2)
    W3 *= tiny3 / np.linalg.norm(W3)
    W4 = rng.standard_normal((2, 2))
    return [W1, W2, W3, W4], X, Y


def exact_global() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """An exactly critical global minimizer with a nonzero PSD Hessian: ``X = I``,
    ``Y = diag(4, 1)``, ``W_1 = [[2, 0]]``, ``W_2 = [[2], [0]]`` (``r = 1``,
    ``W_2 W_1 = diag(4, 0)``); its Hessian is singular (the rescaling symmetry)."""
    return [np.array([[2.0, 0.0]]), np.array([[2.0], [0.0]])], np.eye(2), np.diag([4.0, 1.0])


def cancelling(seed: int = 3) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """O(1) layers whose product cancels to rounding (dims 2-2-2-2, ``H = 3``):
    ``W_2 = [[1, -1], [1, -1]]`` kills the direction ``(1, 1)``, ``W_1``'s rows are ``x``
    and ``x`` rounded through ``3 (x / 3)``, so ``W_2 W_1`` is ``~1e-16``, not 0;
    ``W_3 W_2 = 0``; ``x`` is chosen so that ``(1, 2) Syx x = 0`` (the remaining
    gradient condition), up to rounding: within rounding of the critical point
    ``W_{3:1} = 0``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2, 10))
    Y = rng.standard_normal((2, 10)) + X
    Syx = Y @ X.T
    z = Syx.T @ np.array([1.0, 2.0])
    x = np.array([-z[1], z[0]]) / np.linalg.norm(z)
    W1 = np.vstack([x, 3.0 * (x / 3.0) * (1 + 2.0**-52)])
    W2 = np.array([[1.0, -1.0], [1.0, -1.0]])
    W3 = np.array([[1.0, -1.0], [2.0, -2.0]])
    return [W1, W2, W3], X, Y


def unbalanced(point: list[np.ndarray], norms=(4e1, 3e-11, 4e-6, 4e6)) -> list[np.ndarray]:
    """``point`` with its layers rescaled to the Frobenius ``norms`` and the last one
    compensating, so the product ``W_{H:1}`` (hence criticality, S, the type) is the same
    up to rounding; the Hessian is congruent to the original one (same inertia)."""
    out = [W * (t / np.linalg.norm(W)) for W, t in zip(point[:-1], norms[:-1], strict=True)]
    c = np.prod([np.linalg.norm(W) / t for W, t in zip(point[:-1], norms[:-1], strict=True)])
    return [*out, point[-1] * c]


def constructed() -> list[tuple[str, list[np.ndarray], np.ndarray, np.ndarray]]:
    """The constructed points: ``(name, weights, X, Y)``."""
    pts = [("kill23_exact", *kill23(0.0, 0.0)), ("exact_global", *exact_global())]
    for t2, t3 in ((1e-13, 1e-20), (1e-20, 1e-35), (1e-13, 1e-13)):
        pts.append((f"kill23_{t2:.0e}_{t3:.0e}", *kill23(t2, t3)))
    pts.append(("cancelling", *cancelling()))
    W, X, Y = unbalanced_strict()
    pts.append(("unbalanced_strict", W, X, Y))
    return pts


def unbalanced_strict() -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Point 71 of ``runs/quick.toml`` (a strict saddle, H = 4, ``eig_min_w = -30.5``)
    rescaled to layer norms 4e1, 3e-11, 4e-6 (the last compensates: 4.5e14): the same point up to
    the rescaling symmetry, so a strict saddle, on wildly unbalanced layers."""
    from mcland import draw_point

    W, X, Y = draw_point(Path(__file__).resolve().parent.parent / "runs" / "quick.toml", 71)
    return unbalanced(W), X, Y


if __name__ == "__main__":  # pragma: no cover - the docs' table
    import collections
    import sys
    import time

    import mcland
    from mcland.classification.classify import certify_point

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    t0 = time.perf_counter()
    points, X, Y = lm_points(n)
    print(f"{n} LM points in {time.perf_counter() - t0:.1f} s")
    for rel in (4 * 2.0**-52, 1e-8):
        mcland.classify(points[:2], X, Y, stability_rel=rel, threads=1)  # warm
        t0 = time.perf_counter()
        df = mcland.classify(points, X, Y, stability_rel=rel, threads=1)
        dt = time.perf_counter() - t0
        n_exact = int((df["decided_by"] != "float64").sum())
        print(
            f"\nclassify, stability_rel = {rel:.3g}: {dt:.2f} s, {n_exact} rows evaluated exactly"
        )
        cols = ["numeric_type", "theory_type", "decided_by", "exact_type", "stability"]
        table = collections.Counter(
            (
                *[str(r[k]) for k in cols],
                ",".join(r["possible_types"]),
                r["normwise_stability"],
                ",".join(r["normwise_possible_types"]),
            )
            for _, r in df.iterrows()
        )
        print("count |", " | ".join([*cols, "possible_types", "normwise", "normwise_possible"]))
        for k, v in sorted(table.items()):
            print(v, "|", " | ".join(k))
    # the exact answer on every point (what classify skips on float64-decided rows)
    t0 = time.perf_counter()
    full = [certify_point(p, X, Y) for p in points]
    dt = time.perf_counter() - t0
    print(f"\ncertify_point on all {n}: {dt:.2f} s ({1e3 * dt / n:.1f} ms per point)")
    table = collections.Counter(
        (
            r["numeric_type"],
            r["decided_by"],
            str(r["exact_type"]),
            r["stability"],
            r["normwise_stability"],
        )
        for r in full
    )
    for k, v in sorted(table.items()):
        print(v, "|", " | ".join(k))
    rel_curv = [
        r["exact_curvature"] / r["exact_hess_norm"]
        for r in full
        if r["numeric_type"] == "non_strict_saddle" and r["exact_type"] == "strict_saddle"
    ]
    if rel_curv:
        print(
            "non-strict by float64, strict exactly: curvature / ||Hess||_F in",
            min(rel_curv),
            max(rel_curv),
        )
    print("\nconstructed points")
    for name, W, Xc, Yc in constructed():
        r = certify_point(W, Xc, Yc)
        print(
            name,
            {
                k: r[k]
                for k in (
                    "numeric_type",
                    "theory_type",
                    "decided_by",
                    "exact_type",
                    "exact_curvature",
                    "stability",
                    "possible_types",
                    "stability_scale",
                    "stability_bound",
                    "normwise_stability",
                    "normwise_possible_types",
                )
            },
        )
