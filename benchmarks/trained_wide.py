"""Trained wide linear networks, classified (issue 21, item 7).

Usage: python benchmarks/trained_wide.py [--nets 64,256,256,10 784,256,256,10]
       [--m 2000 4000] [--steps 300 3000] [--hessian structured auto] [--threads 2]
       [--matrix-free 784,256,256,10] [--work DIR] [--out FILE.json]

For each architecture a bias-free linear network is trained by plain gradient descent on
generated data (no downloads), saved as mcland reads user networks (a folder holding one
``.npz`` with ``W1 .. WH``; ``data.npz`` with ``X`` (d_x, m) and ``Y`` (d_y, m), samples as
columns: docs/classify.md), and classified by the command line in a fresh process,
``mcland classify NET/ --data data.npz --out OUT --hessian H --threads T``, timed (wall
time of the whole command: start-up, loading, compilation or cache loading, analysis,
certification, writing) with the load average before and after (the machine may be
shared: timings are indicative; the memory peak ``/usr/bin/time -f %M`` is not).

Data (seed ``[--seed, i]`` for net ``i``): ``X`` Gaussian (d_x, m); a teacher
``T = U diag(s) V^T`` of rank ``min(d_x, d_y)``, singular values evenly spaced from 5 to 1;
``Y = T X + 0.5 Z`` (Z Gaussian); both divided by ``sqrt(m)`` (so ``Sxx = X X^T ≈ I``).

Training: layers ``N(0, 1/d_{h-1})``; ``--steps`` steps of gradient descent on
``||W_H ... W_1 X - Y||_F^2`` (:func:`loss_and_gradient`, the textbook formulas through
thin products) with the fixed step ``lr / lambda_max``, ``lambda_max`` the largest Hessian
eigenvalue at the start (power iteration on exact Hessian-vector products,
:mod:`mcland._kernels.hvp`); the step is halved only if the loss rises by more than
``1e-9`` relative (divergence; it did not happen here).  Printed: the step, the loss and
``grad_rel`` (``||grad|| / g_scale``, mcland's criticality measure) along the way and at
the end.  Gradient descent is run until ``grad_rel`` stops decreasing (it reaches the
rounding level of the gradient, ~1e-17), so the trained point is critical to rounding.

Then the records' key columns (:data:`COLUMNS`).  ``--matrix-free NETS`` adds, for the
same saved point, the proven enclosures of ``lambda_min``, ``lambda_max`` and the inertia
bounds of :func:`mcland.core.extremes.matrix_free_spectrum` (whitened coordinates, as the
records), with their time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MCLAND = Path(sys.executable).with_name("mcland")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_data(dims, m, rng):
    """``X`` (d_x, m), ``Y`` (d_y, m) of the module docstring."""
    d_x, d_y = dims[0], dims[-1]
    r = min(d_x, d_y)
    X = rng.standard_normal((d_x, m))
    U, _ = np.linalg.qr(rng.standard_normal((d_y, r)))
    V, _ = np.linalg.qr(rng.standard_normal((d_x, r)))
    T = U @ np.diag(np.linspace(5.0, 1.0, r)) @ V.T
    Y = T @ X + 0.5 * rng.standard_normal((d_y, m))
    return X / np.sqrt(m), Y / np.sqrt(m)


def g_scale(weights, Sxx, Syx) -> float:
    """mcland's criticality scale (:mod:`mcland.core.tolerances`)."""
    n = [np.linalg.norm(W) for W in weights]
    prod = float(np.prod(n))
    total = prod * np.linalg.norm(Sxx) + np.linalg.norm(Syx)
    return sum(2.0 * float(np.prod(n[:h] + n[h + 1 :])) * total for h in range(len(n)))


def lambda_max(dims, weights, Sxx, Syx, rng, iters=50) -> float:
    """The largest Hessian eigenvalue (power iteration on exact Hessian-vector products)."""
    from mcland._kernels import hvp as khvp

    w = np.concatenate([W.ravel() for W in weights])
    f = khvp.hvp_factors(np.array(dims, np.int64), w, Sxx, Syx)
    v = rng.standard_normal((1, w.size))
    u = np.empty_like(v)
    work = np.empty(khvp.work_size(f.dims))
    lam = 0.0
    for _ in range(iters):
        v /= np.linalg.norm(v)
        khvp.hvp_rows(f, v, u, 0, 1, work)
        lam = float(v[0] @ u[0])
        v, u = u, v
    return lam


def loss_and_gradient(weights, Sxx, Syx, tr_syy):
    """``(L, [dL/dW_1, ..., dL/dW_H])`` through thin products only (``d_y`` rows):
    ``A_h = W_H ... W_{h+1}`` from the top, ``R = A_0 Sxx - Syx``, ``C_h = R B_h^T`` with
    ``B_h = W_{h-1} ... W_1`` from the bottom, ``dL/dW_h = 2 A_h^T C_h``; the same
    formulas as :func:`mcland.core.naive.loss_and_gradient_moments` without its
    ``d_x x d_x`` identity products (``O(d_y N + d_y d_x^2)`` per step)."""
    H = len(weights)
    A = [None] * (H + 1)
    A[H] = np.eye(weights[-1].shape[0])
    for h in range(H, 0, -1):
        A[h - 1] = A[h] @ weights[h - 1]
    P = A[0]
    PS = P @ Sxx
    L = float(tr_syy - 2.0 * np.sum(P * Syx) + np.sum(PS * P))
    C = PS - Syx
    grads = []
    for h in range(1, H + 1):
        grads.append(2.0 * A[h].T @ C)
        C = C @ weights[h - 1].T
    return L, grads


def train(dims, X, Y, rng, lr, steps):
    """Gradient descent of the module docstring; returns the layers and a summary."""
    Sxx, Syx, tr_syy = X @ X.T, Y @ X.T, float(np.sum(Y * Y))
    H = len(dims) - 1
    weights = [
        rng.standard_normal((dims[h], dims[h - 1])) / np.sqrt(dims[h - 1]) for h in range(1, H + 1)
    ]
    lam0 = lambda_max(dims, weights, Sxx, Syx, rng)
    eta = lr / lam0
    t0 = time.perf_counter()
    L, grads = loss_and_gradient(weights, Sxx, Syx, tr_syy)
    loss0, halvings, history = L, 0, []
    step = 0
    while step < steps:
        new = [W - eta * G for W, G in zip(weights, grads, strict=True)]
        L_new, g_new = loss_and_gradient(new, Sxx, Syx, tr_syy)
        if L_new > L + 1e-9 * abs(L):  # diverging: halve the step, do not move
            eta /= 2.0
            halvings += 1
            continue
        weights, L, grads = new, L_new, g_new
        step += 1
        if step % max(1, steps // 10) == 0:
            gn = float(np.sqrt(sum(np.sum(G * G) for G in grads)))
            history.append((step, L, gn / g_scale(weights, Sxx, Syx)))
    gnorm = float(np.sqrt(sum(np.sum(G * G) for G in grads)))
    return weights, {
        "lr": lr,
        "lambda_max_start": lam0,
        "eta_start": lr / lam0,
        "eta_end": eta,
        "halvings": halvings,
        "steps": steps,
        "loss_start": loss0,
        "loss_end": L,
        "grad_norm": gnorm,
        "grad_rel": gnorm / g_scale(weights, Sxx, Syx),
        "history": history,
        "lambda_max_end": lambda_max(dims, weights, Sxx, Syx, rng),
        "seconds": time.perf_counter() - t0,
    }


COLUMNS = [
    "N", "loss", "grad_rel", "verdict", "theory_type", "numeric_type", "n_neg", "n_zero",
    "n_pos", "eig_min_w", "eig_max_w", "noise_floor", "decided_by", "exact_type", "stability",
]  # fmt: skip


def classify(
    net_dir: Path, data: Path, out: Path, hessian: str, threads: int, timeout: float | None
) -> dict:
    """``mcland classify`` in a fresh process, timed; its records' key columns.  Stopped
    (SIGKILL to that child) after ``timeout`` seconds, and said so."""
    cmd = [
        str(MCLAND), "classify", str(net_dir), "--data", str(data), "--out", str(out),
        "--hessian", hessian, "--threads", str(threads),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    load0 = load_average()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", *cmd],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        proc = subprocess.CompletedProcess(
            cmd, -9, (exc.stdout or b"").decode(), f"stopped after {timeout:.0f} s (--timeout)"
        )
    wall = time.perf_counter() - t0
    res = {
        "command": " ".join(["mcland", *cmd[1:]]),
        "returncode": proc.returncode,
        "wall_s": wall,
        "load_before": load0,
        "load_after": load_average(),
        "peak_mb": None,
        "stdout": proc.stdout.strip(),
        "stderr": proc.stderr.strip()[-2000:],
    }
    tail = proc.stderr.strip().splitlines()
    if tail and tail[-1].isdigit():
        res["peak_mb"] = int(tail[-1]) / 1024.0
        res["stderr"] = "\n".join(tail[:-1])[-2000:]
    if proc.returncode == 0:
        import mcland

        df = mcland.load(out)
        res["records"] = [
            {c: (v.item() if hasattr(v, "item") else v) for c, v in row.items()}
            for row in df[[c for c in COLUMNS if c in df.columns]].to_dict("records")
        ]
    return res


def matrix_free(dims, weights, X, Y, threads, block, max_products) -> dict:
    """Proven enclosures of lambda_min, lambda_max and inertia bounds (whitened)."""
    from mcland.core.extremes import matrix_free_spectrum

    Sxx, Syx = X @ X.T, Y @ X.T
    mu, E = np.linalg.eigh(Sxx)
    root, inv = (E * np.sqrt(mu)) @ E.T, (E / np.sqrt(mu)) @ E.T
    Ww = [weights[0] @ root, *weights[1:]]
    w = np.concatenate([W.ravel() for W in Ww])
    t0 = time.perf_counter()
    e = matrix_free_spectrum(
        np.array(dims, np.int64), w, np.eye(dims[0]), Syx @ inv,
        block=block, max_products=max_products, threads=threads, seed=0,
    )  # fmt: skip
    cols = {k: (v.item() if hasattr(v, "item") else v) for k, v in e.columns().items()}
    cols["seconds"] = time.perf_counter() - t0
    return cols


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", nargs="+", default=["64,256,256,10", "784,256,256,10"])
    ap.add_argument("--m", type=int, nargs="+", default=[2000, 4000], help="samples, per net")
    ap.add_argument("--hessian", nargs="+", default=["structured", "auto"], help="per net")
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("--lr", type=float, default=1.0, help="step = lr / lambda_max(start)")
    ap.add_argument("--steps", type=int, nargs="+", default=[300, 3000], help="GD steps, per net")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--matrix-free", nargs="*", default=[], help="nets also run matrix-free")
    ap.add_argument("--block", type=int, default=16)
    ap.add_argument("--max-products", type=int, default=400)
    ap.add_argument("--timeout", type=float, default=None, help="seconds per classify")
    ap.add_argument("--work", type=Path, default=Path("/tmp/mcland-trained-wide"))
    ap.add_argument("--out", type=Path, help="write the JSON summary here")
    args = ap.parse_args(argv)
    summary = {"numpy": np.__version__, "threads": args.threads, "nets": []}
    for i, spec in enumerate(args.nets):
        dims = [int(x) for x in spec.split(",")]
        m = args.m[min(i, len(args.m) - 1)]
        hessian = args.hessian[min(i, len(args.hessian) - 1)]
        rng = np.random.default_rng([args.seed, i])
        X, Y = make_data(dims, m, rng)
        os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
        steps = args.steps[min(i, len(args.steps) - 1)]
        weights, info = train(dims, X, Y, rng, args.lr, steps)
        name = "-".join(map(str, dims))
        work = args.work / name
        (work / "net").mkdir(parents=True, exist_ok=True)
        np.savez(work / "net" / f"{name}.npz", **{f"W{h + 1}": W for h, W in enumerate(weights)})
        np.savez(work / "data.npz", X=X, Y=Y)
        out = work / "classified"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        entry = {"dims": dims, "m": m, "N": sum(a * b for a, b in itertools.pairwise(dims)),
                 "training": info}  # fmt: skip
        print(f"## {name} (N = {entry['N']:,}), m = {m}", flush=True)
        print(
            f"training: {info['steps']} GD steps, step {info['eta_start']:.4g} "
            f"(= {args.lr} / lambda_max(start) = {info['lambda_max_start']:.4g}; final step "
            f"{info['eta_end']:.4g}, {info['halvings']} halvings), loss {info['loss_start']:.6g}"
            f" -> {info['loss_end']:.10g}, ||grad|| {info['grad_norm']:.3g} (grad_rel "
            f"{info['grad_rel']:.3g}), lambda_max(end) {info['lambda_max_end']:.4g}, "
            f"{info['seconds']:.1f} s",
            flush=True,
        )
        print(
            "  (step, loss, grad_rel): "
            + ", ".join(f"({k}, {L:.10g}, {g:.2g})" for k, L, g in info["history"]),
            flush=True,
        )
        if spec in args.matrix_free:
            mf = matrix_free(dims, weights, X, Y, args.threads, args.block, args.max_products)
            entry["matrix_free"] = mf
            print(
                f"matrix-free, whitened ({mf['seconds']:.1f} s, {mf.get('lanczos_products')} "
                f"products, load {load_average()}): lambda_min in [{mf['eig_min_lo']:.6g}, "
                f"{mf['eig_min_hi']:.6g}] (Ritz {mf['eig_min_ritz']:.6g} +- "
                f"{mf['eig_min_resid']:.2g}), lambda_max in [{mf['eig_max_lo']:.6g}, "
                f"{mf['eig_max_hi']:.6g}] (Ritz {mf['eig_max_ritz']:.6g} +- "
                f"{mf['eig_max_resid']:.2g}), n_neg in [{mf['n_neg_lo']}, {mf['n_neg_hi']}], "
                f"n_zero in [{mf['n_zero_lo']}, {mf['n_zero_hi']}], n_pos in [{mf['n_pos_lo']}, "
                f"{mf['n_pos_hi']}], curvature {mf['curvature']}, spectrum_method {mf['spectrum_method']}, floor {mf['noise_floor']:.3g}",
                flush=True,
            )
        res = classify(work / "net", work / "data.npz", out, hessian, args.threads, args.timeout)
        entry["classify"] = res
        print(f"$ {res['command']}", flush=True)
        print(
            f"exit {res['returncode']}, {res['wall_s']:.1f} s wall (load, startup and "
            f"compilation included), peak {res['peak_mb'] or float('nan'):.0f} MB, load "
            f"{res['load_before']} -> {res['load_after']}",
            flush=True,
        )
        if res["stdout"]:
            print(res["stdout"])
        if res["returncode"] != 0:
            print(res["stderr"])
        for row in res.get("records", []):
            print("  " + ", ".join(f"{k} {_fmt(v)}" for k, v in row.items()), flush=True)
        summary["nets"].append(entry)
        print(flush=True)
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1, default=str) + "\n")


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


if __name__ == "__main__":
    main()
