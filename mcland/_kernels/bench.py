"""Kernels of the benchmark's floor: the pipeline's Hessians, and LAPACK alone on them."""

from __future__ import annotations

import numpy as np

from mcland._jit import jit
from mcland._kernels.batch import draw_point
from mcland._kernels.classify import whitened_problem
from mcland._kernels.hessian import assemble_hessian
from mcland._kernels.lapack import eigvalsh_destroy


@jit
def point_hessian(seed, sample_id, prm, kill_w, fx, fy):
    """The whitened Hessian (N, N) that the pipeline decomposes for point ``sample_id``, as
    the pipeline holds it: its upper triangle, C order (see :func:`.hessian.hessian_into`)."""
    dims, w, X, Y, inS, recipe, kill_mask, a, b, ok, pb = draw_point(
        seed, sample_id, prm, kill_w, fx, fy
    )
    K, Kinv, Syx = pb[4], pb[5], pb[1]
    ww, Syx_w = whitened_problem(dims, w, Syx, K, Kinv)
    eye = np.eye(dims[0])
    return assemble_hessian(dims, ww, eye, Syx_w)


@jit
def eigvalsh_range(packed, offsets, sizes, out, start, stop, step):
    """``out[t] = min eigenvalue`` of the Hessians ``t`` in ``range(start, stop, step)``, stored
    row-major one after the other in ``packed`` (``offsets[t]``, size ``sizes[t]``): the
    same in-place LAPACK call as the pipeline's and nothing else, so ``packed`` is
    overwritten (the caller restores it between timings)."""
    ev = np.empty(sizes[start:stop].max() if stop > start else 0)
    for t in range(start, stop, step):
        N = sizes[t]
        eigvalsh_destroy(packed[offsets[t] : offsets[t] + N * N].reshape((N, N)), ev)
        out[t] = ev[0]
