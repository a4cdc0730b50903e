"""Cost of the certify step of ``mcland classify`` (docs/certify.md, "Cost").

``python benchmarks/certify_cost.py`` prints: the exact evaluation per point on the
ambiguous LM endpoints of ``tests/certify_fixture.py``; ``mcland.classify`` with and
without the certify step (best of 3) on those 400 points and on 1,500 sampler points of
``runs/linnerud.toml``; the exact evaluation of the rows that needed it there; the exact
PSD proof (Bareiss) against N on exact global minimizers.
"""

import collections
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from certify_fixture import lm_points  # noqa: E402

import mcland  # noqa: E402
from mcland.classification import classify as classify_module  # noqa: E402
from mcland.classification.certify.exact_type import exact_certificate, exact_moments  # noqa: E402
from mcland.core.problem import Problem  # noqa: E402


def best_of(fn, n=3):
    best, out = 1e9, None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def with_without(points, X, Y):
    t_with, df = best_of(lambda: mcland.classify(points, X, Y, threads=1))
    real = classify_module.certify_rows
    classify_module.certify_rows = lambda *a, **k: {}
    try:
        t_without, _ = best_of(lambda: mcland.classify(points, X, Y, threads=1))
    finally:
        classify_module.certify_rows = real
    return t_with, t_without, df


def main():
    pts, X, Y = lm_points(400)
    problem, mom = Problem.from_data(X, Y), exact_moments(X, Y)
    t_with, t_without, df = with_without(pts, X, Y)
    amb = [i for i in range(len(pts)) if df.numeric_type[i] == "ambiguous"]
    dims = np.array([4, 2, 2, 2, 2])
    t0 = time.perf_counter()
    for i in amb:
        w = np.concatenate([W.ravel() for W in pts[i]])
        exact_certificate(dims, w, problem, mom, False)
    dt = (time.perf_counter() - t0) / len(amb)
    print(f"LM: {len(amb)} ambiguous rows (N = 20): {1e3 * dt:.1f} ms per exact evaluation")
    n_exact = int((df.decided_by != "float64").sum())
    print(
        f"classify 400 LM points: {t_without:.2f} s without certify, {t_with:.2f} s with ({n_exact} exact rows)"
    )

    _, Xl, Yl = mcland.draw_point(ROOT / "runs" / "linnerud.toml", 0)
    lin = [mcland.draw_point(ROOT / "runs" / "linnerud.toml", k)[0] for k in range(1500)]
    t_with, t_without, d = with_without(lin, Xl, Yl)
    print(
        f"classify 1500 linnerud sampler points: {t_without:.2f} s without certify, {t_with:.2f} s with"
    )
    print(
        collections.Counter(
            zip(d.numeric_type, d.decided_by, d.exact_type, d.stability, strict=True)
        )
    )
    pl, ml = Problem.from_data(Xl, Yl), exact_moments(Xl, Yl)
    for t in d.index[d.decided_by != "float64"]:
        dims = np.array([lin[t][0].shape[1]] + [a.shape[0] for a in lin[t]])
        w = np.concatenate([a.ravel() for a in lin[t]])
        t0 = time.perf_counter()
        c = exact_certificate(dims, w, pl, ml, False)
        dt = time.perf_counter() - t0
        print(
            f"  exact row {t}: dims {dims.tolist()}, N = {w.size}: {c.decided_by} {c.exact_type}, {1e3 * dt:.0f} ms"
        )

    for dd, r in ((4, 2), (6, 3), (8, 4), (10, 5)):
        Xg, Yg = np.eye(dd), np.diag(np.arange(2 * dd, dd, -1).astype(float))
        W1 = np.zeros((r, dd))
        W1[:, :r] = np.eye(r)
        W2 = np.zeros((dd, r))
        W2[:r, :] = np.diag(np.arange(2 * dd, 2 * dd - r, -1).astype(float))
        dims, w = np.array([dd, r, dd]), np.concatenate([W1.ravel(), W2.ravel()])
        t0 = time.perf_counter()
        c = exact_certificate(dims, w, Problem.from_data(Xg, Yg), exact_moments(Xg, Yg), True)
        dt = time.perf_counter() - t0
        print(
            f"exact PSD proof, global minimizer {dd}-{r}-{dd}, N = {w.size}: {c.decided_by} rank {c.exact_rank}, {1e3 * dt:.0f} ms"
        )


if __name__ == "__main__":
    main()
