"""Matrix-free extremes of an MNIST-shaped linear network (issue 21, item 2).

Usage: python benchmarks/matrix_free_demo.py [--dims 784,256,256,10] [--m 4000] [--steps 300]
       [--block 16] [--max-products 400] [--threads 2] [--seed 0] [--out FILE] [--json FILE]

A ``784-256-256-10`` deep linear network (N = 268,800 parameters; its dense Hessian would
take 578 GB) is trained by plain gradient descent on generated data (no downloads):
Gaussian inputs ``X`` (784 x m), a rank-5 teacher ``T`` and Gaussian noise, ``Y = T X +
0.5 Z``, both scaled by ``1/sqrt(m)`` so that ``Sxx ~ I``.  At the trained point, in whitened
coordinates (``W_1 Sxx^{1/2}``, ``Sxx = I``, as the classification uses), it reports the
certified enclosures of ``lambda_min`` and ``lambda_max`` and the proven inertia bounds of
:func:`mcland.core.extremes.matrix_free_spectrum`, with the predicted and measured time and
memory.  Then the same for a balanced strict saddle of the same architecture and data
(the top singular direction of ``Syx`` dropped, four kept), where negative curvature is
proven without the N x N matrix.

Timings are indicative (a shared 2-core machine); the memory peak is the process' maximum
resident set (``ru_maxrss``, interpreter and compiled kernels included) and the arrays'
predicted bytes (:func:`mcland.core.extremes.matrix_free_cost`).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

from mcland._kernels import hvp as khvp
from mcland.core.blas import one_blas_thread
from mcland.core.extremes import matrix_free_cost, matrix_free_spectrum
from mcland.core.naive import loss_and_gradient_moments

ROOT = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def data(dims, m, rng):
    """Gaussian inputs, rank-5 teacher, noise; moments ``Sxx``, ``Syx``, ``tr(Syy)``."""
    d_x, d_y = dims[0], dims[-1]
    X = rng.standard_normal((d_x, m)) / np.sqrt(m)
    U, _ = np.linalg.qr(rng.standard_normal((d_y, 5)))
    V, _ = np.linalg.qr(rng.standard_normal((d_x, 5)))
    T = U @ np.diag([5.0, 4.0, 3.0, 2.0, 1.0]) @ V.T
    Y = T @ X + 0.5 * rng.standard_normal((d_y, m)) / np.sqrt(m)
    return X @ X.T, Y @ X.T, float(np.sum(Y * Y))


def train(dims, Sxx, Syx, tr_syy, steps, rng):
    """Plain gradient descent from ``N(0, 1/d_{h-1})`` layers; the step is a tenth of
    ``2 / lambda_max`` at the start (power iteration on the Hessian's products)."""
    H = len(dims) - 1
    weights = [
        rng.standard_normal((dims[h], dims[h - 1])) / np.sqrt(dims[h - 1]) for h in range(1, H + 1)
    ]
    w = np.concatenate([W.ravel() for W in weights])
    f = khvp.hvp_factors(np.array(dims, np.int64), w, Sxx, Syx)
    v = rng.standard_normal((1, w.size))
    u = np.empty_like(v)
    work = np.empty(khvp.work_size(f.dims))
    lam = 0.0
    for _ in range(30):
        v /= np.linalg.norm(v)
        khvp.hvp_rows(f, v, u, 0, 1, work)
        lam = float(v[0] @ u[0])
        v, u = u, v
    eta = 0.2 / lam
    losses = []
    for _ in range(steps):
        L, grads = loss_and_gradient_moments(weights, Sxx, Syx, tr_syy)
        losses.append(L)
        weights = [W - eta * G for W, G in zip(weights, grads, strict=True)]
    L, grads = loss_and_gradient_moments(weights, Sxx, Syx, tr_syy)
    losses.append(L)
    gnorm = float(np.sqrt(sum(np.sum(G * G) for G in grads)))
    return weights, eta, lam, losses, gnorm


def whitened(weights, Sxx, Syx):
    mu, E = np.linalg.eigh(Sxx)
    K = (E * np.sqrt(mu)) @ E.T
    K_inv = (E / np.sqrt(mu)) @ E.T
    return [weights[0] @ K, *weights[1:]], Syx @ K_inv


def balanced_saddle(dims, Syx_w, rng):
    """Balanced critical point keeping singular directions 2..5 of the whitened ``Syx``
    (the top one dropped): ``W_1 = O_1 D V_S^T``, ``W_h = O_h D O_{h-1}^T``, ``W_H = U_S D
    O_{H-1}^T``, ``D = diag(s_S)^{1/H}``: a strict saddle."""
    U, s, Vt = np.linalg.svd(Syx_w, full_matrices=False)
    S = [1, 2, 3, 4]
    H = len(dims) - 1
    D = np.diag(s[S] ** (1.0 / H))
    O = [Vt[S].T]
    for h in range(1, H):
        O.append(np.linalg.qr(rng.standard_normal((dims[h], len(S))))[0])
    O.append(U[:, S])
    return [O[h] @ D @ O[h - 1].T for h in range(1, H + 1)]


def analyse(label, dims, weights_w, Syx_w, args, lines, out):
    d = np.array(dims, np.int64)
    w = np.concatenate([W.ravel() for W in weights_w])
    Sxx = np.eye(dims[0])
    cost = matrix_free_cost(
        d, block=args.block, max_products=args.max_products, n_want=args.block, threads=args.threads
    )
    r0 = rss_mib()
    c0 = time.process_time()
    t0 = time.perf_counter()
    e = matrix_free_spectrum(
        d,
        w,
        Sxx,
        Syx_w,
        block=args.block,
        max_products=args.max_products,
        threads=args.threads,
        seed=args.seed,
    )
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    c = e.columns()
    lines += [
        f"## {label}",
        f"predicted: {cost.product_madds:.3g} multiply-adds per product, {cost.madds:.3g} in all "
        f"(cap), arrays {cost.bytes / 2**20:.0f} MiB",
        f"measured: {wall:.1f} s wall, {cpu:.1f} s CPU, products {e.product_seconds:.1f} s wall "
        f"({e.lanczos_products} products, basis {e.lanczos_basis}, "
        f"block {e.lanczos_block}, converged {e.lanczos_converged}); max RSS {rss_mib():.0f} MiB "
        f"(before {r0:.0f} MiB)",
        f"lambda_min in [{e.eig_min_lo:.6g}, {e.eig_min_hi:.6g}]  (Ritz {e.eig_min_ritz:.6g}, "
        f"an eigenvalue within {e.eig_min_resid:.2g})",
        f"lambda_max in [{e.eig_max_lo:.6g}, {e.eig_max_hi:.6g}]  (Ritz {e.eig_max_ritz:.6g}, "
        f"an eigenvalue within {e.eig_max_resid:.2g})",
        f"n_neg in [{e.n_neg_lo}, {e.n_neg_hi}], n_zero in [{e.n_zero_lo}, {e.n_zero_hi}], "
        f"n_pos in [{e.n_pos_lo}, {e.n_pos_hi}], band in [{e.n_band_lo}, {e.n_band_hi}] "
        f"(N = {e.N}); curvature: {e.curvature}",
        f"noise floor {e.noise_floor:.3g} (tol_zero {e.tol_zero:.3g}, tol_neg {e.tol_neg:.3g}), "
        f"||H||_F {e.hess_norm_w:.4g}, product error {e.op_error:.2g}, Ritz error "
        f"{e.ritz_error:.2g}, ||Q^T Q - I||_F {e.orth_defect:.2g}, rank bound {e.rank_bound}",
    ]
    if args.dense_check and args.dense_check >= e.N:
        lines += dense_check(dims, weights_w, Syx_w, e)
    lines.append("")
    out[label] = {
        **{k: (v.item() if hasattr(v, "item") else v) for k, v in c.items()},
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "max_rss_mib": rss_mib(),
        "predicted_bytes": cost.bytes,
        "predicted_madds": cost.madds,
        "product_madds": cost.product_madds,
    }


def dense_check(dims, weights_w, Syx_w, e) -> list[str]:
    """The dense truth where it fits: ``naive.hessian`` (whitened data ``X X^T = I``,
    ``Y X^T = Syx_w``) and ``eigvalsh``, counted with the same bands."""
    from mcland.core import naive

    d_x = dims[0]
    Z, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((d_x + 1, d_x + 1)))
    X = Z[:, :d_x].T
    ev = np.linalg.eigvalsh(naive.hessian(weights_w, X, Syx_w @ X))
    n_neg = int(np.sum(ev < -e.tol_neg))
    n_zero = int(np.sum(np.abs(ev) <= e.tol_zero))
    n_pos = int(np.sum(ev > e.tol_zero))
    inside = (
        e.n_neg_lo <= n_neg <= e.n_neg_hi
        and e.n_zero_lo <= n_zero <= e.n_zero_hi
        and e.n_pos_lo <= n_pos <= e.n_pos_hi
        and e.eig_min_lo <= ev[0] <= e.eig_min_hi
        and e.eig_max_lo <= ev[-1] <= e.eig_max_hi
    )
    return [
        f"dense check: lambda_min {ev[0]:.6g}, lambda_max {ev[-1]:.6g}, (n_neg, n_zero, n_pos) "
        f"= ({n_neg}, {n_zero}, {n_pos}); inside the bounds: {inside}"
    ]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", default="784,256,256,10")
    ap.add_argument("--m", type=int, default=4000)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--block", type=int, default=16)
    ap.add_argument("--max-products", type=int, default=400)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--dense-check", type=int, default=0, help="compare with the dense spectrum when N <= this"
    )
    ap.add_argument("--out", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    dims = [int(x) for x in args.dims.split(",")]
    rng = np.random.default_rng(args.seed)
    lines = [
        f"# matrix-free extremes, {'-'.join(map(str, dims))} "
        f"(N = {sum(dims[h] * dims[h - 1] for h in range(1, len(dims))):,})",
        f"numpy {np.__version__}; block {args.block}, at most {args.max_products} products, "
        f"{args.threads} threads; timings indicative (shared 2-core machine)",
        "",
    ]
    out: dict = {
        "dims": dims,
        "m": args.m,
        "steps": args.steps,
        "block": args.block,
        "max_products": args.max_products,
        "threads": args.threads,
    }
    with one_blas_thread():
        Sxx, Syx, tr_syy = data(dims, args.m, rng)
        # warm the kernels (compilation is not the measured cost)
        small = [4, 3, 3, 2]
        matrix_free_spectrum(
            small,
            np.ones(sum(small[h] * small[h - 1] for h in range(1, 4))),
            np.eye(4),
            np.ones((2, 4)),
            block=2,
            max_products=8,
            threads=args.threads,
        )
        t0 = time.perf_counter()
        weights, eta, lam0, losses, gnorm = train(dims, Sxx, Syx, tr_syy, args.steps, rng)
        t_train = time.perf_counter() - t0
    lines += [
        "## training",
        f"{args.steps} steps of gradient descent, step {eta:.3g} (= 0.2 / lambda_max at the start, "
        f"{lam0:.4g}); loss {losses[0]:.5g} -> {losses[-1]:.5g} (teacher noise floor "
        f"~{0.25 * dims[-1]:.3g}); ||grad|| {gnorm:.3g}; {t_train:.1f} s",
        "",
    ]
    out["training"] = {
        "eta": eta,
        "lambda_max_start": lam0,
        "loss_start": losses[0],
        "loss_end": losses[-1],
        "grad_norm": gnorm,
        "seconds": t_train,
    }
    Ww, Syx_w = whitened(weights, Sxx, Syx)
    analyse("trained point (whitened)", dims, Ww, Syx_w, args, lines, out)
    saddle = balanced_saddle(dims, Syx_w, rng)
    L, grads = loss_and_gradient_moments(saddle, np.eye(dims[0]), Syx_w, tr_syy)
    lines.append(
        f"balanced saddle: loss {L:.5g}, ||grad|| {np.sqrt(sum(np.sum(G * G) for G in grads)):.2g}"
    )
    analyse("balanced strict saddle (top direction dropped)", dims, saddle, Syx_w, args, lines, out)
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float) + "\n")
    return out


if __name__ == "__main__":
    main()
