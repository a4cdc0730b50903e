"""The ground-truth set's float figures by the structured path (issue 21): the same counts
and eigenvalues as the dense path, and the path chosen per depth as ``classify`` does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcland._kernels.hessian import assemble_hessian
from mcland.classification import groundtruth as gt
from mcland.core import linalg as la
from mcland.core.errors import TooLarge

ROOT = Path(__file__).resolve().parents[1]
AE = ROOT / "runs/autoencoder.toml"  # 16-4-...-4-16, depths 2 to 6
EPS = 2.0**-52


def test_structured_float_figures_equal_the_dense_ones():
    """Points of every depth, balanced and badly scaled (norms 1e-7 ... 1e7), every
    variant: every eigenvalue within 64 eps ||H||_F of the dense one (the structured
    path's stated agreement, docs/structured.md), identical cutoff counts where no
    eigenvalue is within that of the cutoff."""
    st, seed = gt.from_config(AE)
    X = st.X.astype(np.float64)
    plan = gt.plan(st, 6, seed)
    picked = [k for k, p in enumerate(plan) if p[0] > 2] + list(range(0, 2517, 400))
    compared = 0
    for k in picked:
        H, S, variant, bad = plan[k]
        rng = np.random.default_rng([seed, 1, k])
        A = gt.construct(st, H, S, variant, rng)
        e = gt.scale_exponents(rng, H, bad)
        W = [a.astype(np.float64) * 2.0 ** int(x) for a, x in zip(A, e, strict=True)]
        dims = np.array([W[0].shape[1], *(x.shape[0] for x in W)], np.int64)
        w = np.concatenate([x.ravel() for x in W])
        sxx = la.matmul(X, X.T)
        dense = la.eigvalsh(assemble_hessian(dims, w, sxx, sxx))
        structured = gt.structured_eigenvalues(dims, w, X)
        bound = 64 * EPS * np.linalg.norm(dense)  # 64 eps ||H||_F
        assert np.max(np.abs(structured - dense)) <= bound, k
        d = gt.float_figures(W, X, "dense")
        s = gt.float_figures(W, X, "structured")
        # counts at the cutoff agree unless an eigenvalue is within rounding of it (badly
        # scaled points: ||H|| up to 1e18, where the cutoff counts are wrong either way)
        if np.all(np.abs(np.abs(dense) - gt.CUTOFF) > bound):
            compared += 1
            for c in ("cutoff_n_neg", "cutoff_n_zero", "cutoff_n_pos"):
                assert s[c] == d[c], (k, c)
    assert compared >= len(picked) // 2


def test_the_float_path_is_chosen_per_depth_and_refused_when_nothing_fits(monkeypatch):
    st, _ = gt.from_config(AE)
    assert set(gt._paths(st, "auto").values()) == {"dense"}  # N <= 5,000: as before
    assert set(gt._paths(st, "structured").values()) == {"structured"}
    monkeypatch.setenv("MCLAND_MEMORY_LIMIT", "1000")
    with pytest.raises(TooLarge, match="groundtruth"):
        gt._paths(st, "auto")
