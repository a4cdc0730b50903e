"""Kernels of the benchmark's floor: the pipeline's Hessians, and LAPACK alone on them."""

from __future__ import annotations

import numpy as np

from mcland._kernels.batch import draw_point
from mcland._kernels.classify import whitened_problem
from mcland._kernels.hessian import assemble_hessian
from mcland._kernels.jit import jit
from mcland._kernels.lapack import eigvalsh_destroy


@jit
def point_hessian(sampler, sample_id):
    """The whitened Hessian (N, N) that the pipeline decomposes for point ``sample_id`` of
    the run ``sampler`` (:class:`.bundles.Sampler`), as the pipeline holds it: its upper
    triangle, C order (see :func:`.hessian.hessian_into`)."""
    point = draw_point(sampler, sample_id)
    moments = point.moments
    w_white, Syx_white = whitened_problem(
        point.dims, point.w, moments.Syx, moments.K, moments.K_inv
    )
    return assemble_hessian(point.dims, w_white, np.eye(point.dims[0]), Syx_white)


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
