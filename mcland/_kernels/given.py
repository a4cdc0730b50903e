"""The batch loop over given points: analyse many user-supplied points of one data set.

The points come packed: their architectures ``dims_flat[dims_off[t]:dims_off[t + 1]]``
and flat layers ``w_flat[w_off[t]:w_off[t + 1]]`` (layout of :mod:`.dense`), so one call
covers points of mixed architectures.  Each point is analysed by the same
:func:`.classify.analyze` as the sampler's points (:func:`.batch.process_range`).
"""

from __future__ import annotations

import numpy as np

from mcland._kernels.bundles import PointOutput
from mcland._kernels.classify import analyze
from mcland._kernels.jit import jit


@jit
def classify_range(
    dims_flat, dims_off, w_flat, w_off, moments, thresholds, flags, out, start, stop, step
):
    """Analyse the given points ``start:stop:step`` (packed as in the module docstring;
    ``dims_flat``, ``dims_off``, ``w_off`` int64, ``w_flat`` float64) for the data
    ``moments`` (:class:`.bundles.Moments`) into row t of the fields of ``out``
    (:class:`.bundles.RangeOutput`; only ``row_float``, ``row_int``, ``s_mask``, ``ranks``,
    ``spectrum_w`` and ``spectrum`` are written).  ``nogil``: disjoint ranges run
    concurrently in threads (:func:`mcland.classification.classify.classify`)."""
    no_direction = np.zeros(0)
    work = np.empty(0)
    for t in range(start, stop, step):
        dims = dims_flat[dims_off[t] : dims_off[t + 1]].copy()
        w = w_flat[w_off[t] : w_off[t + 1]].copy()
        N = w.size
        if work.size < 2 * N * N:
            work = np.empty(2 * N * N)
        result = PointOutput(
            out.row_float[t], out.row_int[t], out.s_mask[t], out.ranks[t],
            out.spectrum_w[t], out.spectrum[t], no_direction,
        )  # fmt: skip
        analyze(dims, w, moments, thresholds, flags, result, work)
