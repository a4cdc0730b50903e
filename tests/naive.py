"""NumPy references for the tests: :mod:`mcland.core.naive` (shared with the benchmark's
baseline) plus the reader of the independently labelled fixtures."""

from pathlib import Path

import numpy as np

from mcland.core.naive import *  # noqa: F403
from mcland.core.naive import unravel_weights

# ------------------------------------------------------------------- fixtures

TYPE_NAMES = ("global_minimizer", "strict_saddle", "non_strict_saddle", "not_critical")


FIXTURES_PATH = Path(__file__).resolve().parent / "data" / "fixtures" / "critical_points.npz"


def load_fixtures(path=None):
    """Read the ragged fixture file (see tests/data/fixtures/README.md).

    Default path: :data:`FIXTURES_PATH` (tests/data/fixtures/critical_points.npz).
    Returns a list of dicts with keys: dims (tuple), weights (list of (d_h, d_{h-1})),
    X (d_0, m), Y (d_H, m), num, th (int type codes 0..3, see TYPE_NAMES), eigmin,
    scale, loss (floats), S (tuple of 1-based ints, or None when smask == -1).
    """
    if path is None:
        path = FIXTURES_PATH
    with np.load(path) as npz:
        f = {k: npz[k] for k in npz.files}
    seg = lambda name, i: f[name][f[name + "_off"][i] : f[name + "_off"][i + 1]]  # noqa: E731
    points = []
    for i in range(len(f["num"])):
        dims = tuple(int(d) for d in seg("dims", i))
        m = int(f["m"][i])
        smask = int(f["smask"][i])
        points.append(
            dict(
                dims=dims,
                weights=unravel_weights(seg("w", i), dims),
                X=seg("x", i).reshape(dims[0], m).copy(),
                Y=seg("y", i).reshape(dims[-1], m).copy(),
                num=int(f["num"][i]),
                th=int(f["th"][i]),
                eigmin=float(f["eigmin"][i]),
                scale=float(f["scale"][i]),
                S=None if smask == -1 else tuple(j + 1 for j in range(dims[-1]) if smask >> j & 1),
                loss=float(f["loss"][i]),
            )
        )
    return points


# ------------------------------------------------------- the draw, row by row (0.9.0)


def ordered_dot(x, y):
    """``sum_k x[k] y[k]`` from 0.0 in ascending k, one rounding per operation (the order
    of every dense kernel's sums)."""
    s = 0.0
    for a, b in zip(x.tolist(), y.tolist(), strict=True):
        s += a * b
    return s


def ordered_matmul_nt(A, B):
    """``A @ B.T`` with every entry an :func:`ordered_dot` (as ``dense.matmul_nt``)."""
    return np.array([[ordered_dot(a, b) for b in B] for a in A]).reshape(A.shape[0], B.shape[0])


def ordered_matmul(A, B):
    """``A @ B`` with every entry an :func:`ordered_dot` (as ``dense.matmul``)."""
    return ordered_matmul_nt(A, np.ascontiguousarray(B.T))


def orthogonal_reference(q):
    """The rows of ``q`` orthonormalised as the sampler did up to 0.9.0, row by row:
    for each row j, modified Gram-Schmidt against rows 0 .. j-1 twice, then divided by
    its norm (a copy; NumPy's elementwise ``q_j - d q_i`` rounds as the kernel's loop)."""
    q = np.array(q, dtype=float)
    for j in range(q.shape[0]):
        for _ in range(2):
            for i in range(j):
                d = ordered_dot(q[i], q[j])
                q[j] = q[j] - d * q[i]
        q[j] = q[j] / np.sqrt(ordered_dot(q[j], q[j]))
    return q
