"""``classify --refine``'s numerics (:mod:`mcland.classification.refine`): the SVD and dot
products it adds to :mod:`mcland.core.linalg` against plain references, and the power-of-two
rebalancing its iterations run on, which must be an exact symmetry of the problem (the
refinement as a whole is checked by tests/test_classify.py, its independence of the process
by tests/test_numerics_independence.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcland.classification import refine
from mcland.core import linalg as la
from mcland.core.problem import Problem
from mcland.points.inspect import split_layers

EPS = np.finfo(float).eps


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (5, 7), (12, 12)])
def test_svd_against_numpy(rng, shape):
    A = rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 3)
    U, s, Vt = la.svd(A)
    m, n = shape
    assert U.shape == (m, m) and s.shape == (min(m, n),) and Vt.shape == (n, n)
    assert np.all(np.diff(s) <= 0) and np.all(s >= 0)
    tol = 50 * max(m, n) * EPS
    np.testing.assert_allclose(s, np.linalg.svd(A, compute_uv=False), rtol=0, atol=tol * s[0])
    S = np.zeros(shape)
    S[: s.size, : s.size] = np.diag(s)
    np.testing.assert_allclose(U @ S @ Vt, A, rtol=0, atol=tol * s[0])
    np.testing.assert_allclose(U.T @ U, np.eye(m), rtol=0, atol=tol)
    np.testing.assert_allclose(Vt @ Vt.T, np.eye(n), rtol=0, atol=tol)
    with pytest.raises(np.linalg.LinAlgError):
        la.svd(A * np.nan)


def test_dot_sums_in_row_major_order(rng):
    a = rng.standard_normal((3, 5)) * 10.0 ** rng.uniform(-5, 5, (3, 5))
    b = rng.standard_normal((3, 5))
    s = 0.0
    for x, y in zip(a.ravel().tolist(), b.ravel().tolist(), strict=True):
        s += x * y
    assert la.dot(a, b) == s  # bit for bit
    t = 0.0
    for x, y in zip(a.T.ravel().tolist(), b.T.ravel().tolist(), strict=True):
        t += x * y
    assert la.dot(a.T, b.T) == t  # the order of the arrays given, not of their memory
    exact = math.fsum(x * y for x, y in zip(a.ravel().tolist(), b.ravel().tolist(), strict=True))
    bound = a.size * EPS * math.fsum(abs(x * y) for x, y in zip(a.ravel(), b.ravel(), strict=True))
    assert abs(la.dot(a, b) - exact) <= bound
    with pytest.raises(ValueError, match="sizes"):
        la.dot(a, b[:2])


def test_the_iterations_rescaling_is_an_exact_symmetry(rng):
    """A point whose layer norms span 1e-3 ... 1e3: the rescaling is one power of two per layer,
    the exponents sum to 0, the rescaled layers' norms are within a factor 2 of their geometric
    mean, and the rescaled point has the same end-to-end product and loss bit for bit and the
    gradient rescaled exactly (``dL/d(c W_h) = dL/dW_h / c``): the iterations solve the same
    problem, and scaling their result back is exact."""
    dims = np.array([3, 4, 2, 5, 3], np.int64)
    sizes = dims[1:] * dims[:-1]
    layer_scale = np.array([1e-3, 1.0, 30.0, 1e3])
    w = np.concatenate(
        [rng.standard_normal(n) * c for n, c in zip(sizes, layer_scale, strict=True)]
    )
    X, Y = rng.standard_normal((3, 10)), rng.standard_normal((3, 10))
    problem = Problem.from_data(X, Y)
    scale = refine._balancing(dims, w)
    per_layer = [
        scale[a:b] for a, b in zip(np.cumsum(sizes) - sizes, np.cumsum(sizes), strict=True)
    ]
    assert all(np.all(p == p[0]) for p in per_layer)
    k = [math.frexp(p[0])[1] - 1 for p in per_layer]
    assert all(p[0] == 2.0**e for p, e in zip(per_layer, k, strict=True)) and sum(k) == 0
    assert len(set(k)) > 1  # this point is rescaled
    wb = w * scale
    norms = np.array([np.linalg.norm(W) for W in split_layers(wb, dims)])
    mean = math.exp(np.mean(np.log(norms)))
    assert np.all(norms <= 2 * mean) and np.all(norms >= mean / 2)

    def product(x):
        P = np.eye(dims[0])
        for W in split_layers(x, dims):
            P = la.matmul(W, P)
        return P

    assert np.array_equal(product(wb), product(w))
    g, gb = refine.gradient(dims, w, problem), refine.gradient(dims, wb, problem)
    assert np.array_equal(gb, g / scale)
    assert np.array_equal(wb / scale, w)
