"""Benchmark two critical-point finders on the 16-4-16 autoencoder (docs/results.md).

Starts: snapshots of gradient-descent trajectories on ``L = ||W_2 W_1 X - X||_F^2``
(``runs/data/autoencoder16.csv``, scaled by ``1/sqrt(lam_1)`` so that ``lam_1 = 1``), from
small random initialisations, perturbed by a relative ``1e-2`` Gaussian.  Finders, each with
a fixed budget of iterations:

* ``gradnorm``: gradient descent on ``||grad L||^2 / 2`` (gradient ``Hess grad L``) with an
  Armijo backtracking line search;
* ``newton_mr``: Newton-MR, ``p = -MINRES(Hess, grad L)`` (``scipy.sparse.linalg.minres``),
  backtracking on ``||grad L||^2``.

Where each stops is classified by ``mcland.classify(..., refine=True)``; per finder: the
fraction of stops that are critical (``grad_rel <= 1e-8``, before refinement), whose loss
matches an enumerated critical value (within ``1e-6 tr(Syy)``), the error of the index from
the eigenvalue cutoff ``-1e-5`` against mcland's index of the refined point, and the
fraction not near any critical point (refinement did not converge or moved the point by more
than ``1e-2 max(||w||, 1)``).  Figure: loss against index fraction ``n_neg / N``.

    python analysis/finder_benchmark.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.sparse.linalg import minres
from threadpoolctl import threadpool_limits

import mcland
from mcland.classification import groundtruth as gt
from mcland.core import naive

ROOT = Path(__file__).resolve().parents[1]
CUTOFF = -1e-5  # the usual eigenvalue cutoff: an eigenvalue below it counts as negative
MATCH_RTOL = 1e-6  # a loss matches a critical value within MATCH_RTOL tr(Syy)
# a stop is "not near a critical point" if refinement fails or moves it by more than
# FAR_RTOL max(||w||, 1) (with lam_1 = 1 the balanced critical points have norms of order 1;
# a point of norm 1e-3 next to W = 0 is near it)
FAR_RTOL = 1e-2


def problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``X`` (scaled so that ``lam_1 = 1``), the sorted critical values and their ``n_neg``
    fractions (exact set at depth 2, from :mod:`mcland.classification.groundtruth`, scaled alike)."""
    X = gt.autoencoder_data().astype(np.float64)
    scale = 1.0 / np.sqrt(16.0 * gt.AMPLITUDES[0] ** 2)
    return X * scale, scale


def grad_flat(w, dims, X):
    return naive.ravel_weights(naive.gradient(naive.unravel_weights(w, dims), X, X))


def hess(w, dims, X):
    return naive.hessian(naive.unravel_weights(w, dims), X, X)


def starts(X, dims, n, rng, gd_steps):
    """``n`` perturbed snapshots of gradient-descent trajectories (step 0.05, as ``lam_1 = 1``)."""
    N = sum(a * b for a, b in zip(dims[1:], dims[:-1], strict=True))
    out = []
    while len(out) < n:
        w = 1e-3 * rng.standard_normal(N)
        snaps = np.unique(np.geomspace(1, gd_steps, 6).astype(int))
        for t in range(1, gd_steps + 1):
            w = w - 0.05 * grad_flat(w, dims, X)
            if t in snaps and len(out) < n:
                out.append(w + 1e-2 * np.linalg.norm(w) / np.sqrt(N) * rng.standard_normal(N))
    return out


def gradnorm(w, dims, X, budget):
    """Armijo backtracking descent on ``f = ||g||^2 / 2``, ``grad f = Hess g``."""
    g = grad_flat(w, dims, X)
    f = 0.5 * g @ g
    for _ in range(budget):
        d = hess(w, dims, X) @ g
        if not d @ d > 0:
            break
        step = 1.0
        while step > 1e-20:
            w_new = w - step * d
            g_new = grad_flat(w_new, dims, X)
            f_new = 0.5 * g_new @ g_new
            if f_new <= f - 1e-4 * step * (d @ d):
                break
            step *= 0.5
        else:
            break
        w, g, f = w_new, g_new, f_new
    return w


def newton_mr(w, dims, X, budget):
    """Newton-MR: ``p = -MINRES(Hess, g)``, backtracking on ``||g||^2``."""
    g = grad_flat(w, dims, X)
    f = g @ g
    for _ in range(budget):
        Hm = hess(w, dims, X)
        p, _ = minres(Hm, -g, rtol=1e-10, maxiter=200)
        step = 1.0
        while step > 1e-20:
            w_new = w + step * p
            g_new = grad_flat(w_new, dims, X)
            f_new = g_new @ g_new
            if f_new <= f + 1e-4 * step * 2 * (p @ (Hm @ g)):
                break
            step *= 0.5
        else:
            break
        w, g, f = w_new, g_new, f_new
    return w


def run(n: int, budget: int, gd_steps: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    X, scale = problem()
    dims = (16, 4, 16)
    rng = np.random.default_rng(seed)
    w0 = starts(X, dims, n, rng, gd_steps)
    st = gt.setting(gt.autoencoder_data(), gt.autoencoder_data(), (2,), 4)
    values = np.array([float(v) for v in st.sorted_values()[0]]) * scale**2
    tr_syy = st.tr_syy * scale**2
    rows = []
    for name, finder in (("gradnorm", gradnorm), ("newton_mr", newton_mr)):
        t0 = time.perf_counter()
        stops = [finder(w.copy(), dims, X, budget) for w in w0]
        elapsed = time.perf_counter() - t0
        df = mcland.classify(
            [naive.unravel_weights(w, dims) for w in stops], X, X, refine=True, threads=1
        )
        cut = np.array([np.sum(np.linalg.eigvalsh(hess(w, dims, X)) < CUTOFF) for w in stops])
        loss = df["input_loss"].to_numpy()
        norms = np.array([np.linalg.norm(w) for w in stops])
        near = np.min(np.abs(loss[:, None] - values[None, :]), axis=1) <= MATCH_RTOL * tr_syy
        rows.append(
            pd.DataFrame(
                {
                    "finder": name,
                    "seconds": elapsed / n,
                    "critical": df["input_grad_rel"].to_numpy() <= 1e-8,
                    "loss_matches": near,
                    "cutoff_n_neg": cut,
                    "n_neg": df["n_neg"].to_numpy(),
                    "refined_critical": df["refine_converged"].to_numpy(bool),
                    "far": ~df["refine_converged"].to_numpy(bool)
                    | (df["refine_distance"].to_numpy() > FAR_RTOL * np.maximum(norms, 1.0)),
                    "loss": loss,
                    "theory_type": df["theory_type"].astype(str).to_numpy(),
                }
            )
        )
    per_point = pd.concat(rows, ignore_index=True)
    per_point["index_err"] = per_point["cutoff_n_neg"] - per_point["n_neg"]
    ok = per_point["refined_critical"]
    table = per_point.groupby("finder").agg(
        stops=("critical", "size"),
        critical=("critical", "mean"),
        loss_matches=("loss_matches", "mean"),
        index_wrong=("index_err", lambda s: float(np.mean(s[ok[s.index]] != 0))),
        index_abs_err=("index_err", lambda s: float(np.mean(np.abs(s[ok[s.index]])))),
        not_near=("far", "mean"),
        s_per_point=("seconds", "first"),
    )
    return table, per_point


def figure(per_point: pd.DataFrame, path: Path) -> None:
    """Loss against index fraction: the recovered points (cutoff index) beside the exact set."""
    _, scale = problem()
    st = gt.setting(gt.autoencoder_data(), gt.autoencoder_data(), (2,), 4)
    N = 128
    ref = gt.generate(st, 0, 0)  # every index set once, exact inertia (about 30 s)
    ref["loss"] = ref["loss_exact"].astype(float) * scale**2
    cols = ["S", "critical_value_index", "loss_exact", "n_neg", "n_zero", "n_pos", "type"]
    ref[cols].to_csv(path.with_suffix(".exact.csv"), index=False)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.scatter(
        ref["n_neg"] / N,
        ref["loss"],
        s=30,
        facecolors="none",
        edgecolors="0.6",
        label="exact set (2517)",
    )
    for name, marker in (("gradnorm", "x"), ("newton_mr", "+")):
        g = per_point[per_point["finder"] == name]
        ax.scatter(
            g["cutoff_n_neg"] / N,
            g["loss"],
            marker=marker,
            s=25,
            label=f"{name} stops (cutoff index)",
        )
    ax.set_xlabel("index fraction n_neg / N")
    ax.set_ylabel("loss (lam_1 = 1)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 starts, budget 5: a smoke test")
    ap.add_argument("--out", type=Path, default=None, help="write table.md and the figure here")
    args = ap.parse_args()
    n, budget, gd = (4, 5, 20) if args.quick else (60, 50, 400)
    with threadpool_limits(1):
        table, per_point = run(n, budget, gd)
    print(f"starts {n}, budget {budget} iterations, GD steps {gd}")
    print(table.to_string(float_format=lambda v: f"{v:.3g}"))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out / "finder_benchmark.csv")
        figure(per_point, args.out / "finder_benchmark.png")


if __name__ == "__main__":
    main()
