"""Exact eigenvalue counts beyond a threshold, for one drawn point: how many eigenvalues of
the Hessian of the stored floats lie below ``-2**s`` and above ``+2**s``.

Usage: python analysis/shifted_inertia.py CONFIG SAMPLE_ID [--shift -10] [--rebalanced]

The exact inertia of a point that is critical only to rounding is no arbiter of its float64
counts: its symmetry zeros are exactly tiny nonzero numbers of either sign.  Counting
beyond a threshold placed in the spectrum's gap is: ``#{lambda < -t}`` is the number of
negative eigenvalues of ``Hess + t I`` and ``#{lambda > t}`` that of ``t I - Hess``, both exact integer matrices here (``mcland.classification.certify.exact_type.exact_point``: the
Hessian of the stored floats as ``M * 2**e``, ``M`` Python integers, original coordinates,
data moments exact too).  The negative count is Jacobi's rule (sign changes along the
leading principal minors, computed fraction-free by Bareiss elimination), or the exact
LDL inertia of :func:`mcland.classification.exact.inertia` when a leading minor vanishes.  ``--rebalanced``
counts for the point's power-of-two rebalanced form (:func:`mcland.classification.rebalance.rebalance`),
which has the same exact inertia by Sylvester's law; the float64 counts of both analyses
are printed beside.  Used for sample 32436 of runs/linnerud.toml (docs/classify.md#speed):
``python analysis/shifted_inertia.py runs/linnerud.toml 32436`` (about 3 minutes).
"""

from __future__ import annotations

import argparse
import time
from itertools import pairwise
from pathlib import Path

import numpy as np

import mcland
from mcland.classification import exact
from mcland.classification.certify.exact_type import exact_moments, exact_point
from mcland.classification.rebalance import rebalance


def negatives(A: np.ndarray) -> int:
    """Exact number of negative eigenvalues of the symmetric integer matrix ``A``."""
    a = [[int(x) for x in row] for row in A]
    n, prev, signs = len(a), 1, [1]
    for k in range(n):
        p = a[k][k]
        if p == 0:  # Jacobi's rule needs nonzero leading minors
            return exact.inertia(A)[0]
        signs.append(1 if p > 0 else -1)
        for i in range(k + 1, n):
            aik = a[i][k]
            for j in range(k + 1, n):
                a[i][j] = (a[i][j] * p - aik * a[k][j]) // prev  # exact (Bareiss)
        prev = p
    return sum(x != y for x, y in pairwise(signs))


def shifted_counts(dims: np.ndarray, w: np.ndarray, X: np.ndarray, Y: np.ndarray, s: int):
    """``(#{lambda < -2**s}, #{lambda > 2**s}, N)`` for the Hessian at the flat point ``w``."""
    Sxx, Syx = exact_moments(X, Y)
    hess = exact_point(dims, w, Sxx, Syx).hess
    M, e = hess.M, hess.e
    N = M.shape[0]
    if s >= e:
        shift, A = 1 << (s - e), M
    else:  # scale M up instead: same signs
        shift, A = 1, M * (1 << (e - s))
    eye = np.empty((N, N), object)
    eye[:] = 0
    for i in range(N):
        eye[i, i] = shift
    return negatives(A + eye), negatives(eye - A), N  # #{lambda < -t}, #{t - lambda < 0}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("sample_id", type=int)
    ap.add_argument("--shift", type=int, default=-10, help="s of the threshold 2**s")
    ap.add_argument("--rebalanced", action="store_true")
    args = ap.parse_args(argv)
    W, X, Y = mcland.draw_point(args.config, args.sample_id)
    dims = np.array([W[0].shape[1], *(V.shape[0] for V in W)], np.int64)
    w = np.concatenate([V.ravel() for V in W])
    rec = mcland.classify([W], X, Y, threads=1).iloc[0]
    print(f"sample {args.sample_id} of {args.config}: dims {dims.tolist()}, N = {w.size}")
    print(f"classify: n_neg {rec.n_neg}, n_zero {rec.n_zero}, n_pos {rec.n_pos}, "
          f"rebalanced {bool(rec.rebalanced)}, tol_zero {rec.noise_floor:.3e}")  # fmt: skip
    if args.rebalanced:
        w = np.asarray(rebalance([dims], [w])[0][0])
    t0 = time.perf_counter()
    below, above, N = shifted_counts(dims, w, X, Y, args.shift)
    which = "rebalanced" if args.rebalanced else "as given"
    print(f"exact, {which}: {below} eigenvalues < -2^{args.shift}, {above} > 2^{args.shift}, "
          f"{N - below - above} in between  [{time.perf_counter() - t0:.0f} s]")  # fmt: skip
    return {"below": below, "above": above, "N": N}


if __name__ == "__main__":
    main()
