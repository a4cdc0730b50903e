"""Counter-based random streams: one independent SplitMix64 stream per sample.

A point's stream is derived from ``(seed, sample_id)`` alone, so its draws do not depend
on which thread computes it, on the batch it belongs to, or on how many points precede
it.  SplitMix64 (Steele, Lea & Flood 2014) passes BigCrush and needs one ``uint64`` of
state, kept in a length-1 array so kernels can advance it in place.
"""

from __future__ import annotations

import numpy as np

from mcland._jit import jit
from mcland._kernels.dense import as_matrix

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SALT = np.uint64(0xD1B54A32D192ED03)
_AUDIT = np.uint64(0xA0761D6478BD642F)
_TWO_PI = 2.0 * np.pi


@jit
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@jit
def stream(seed, sample_id):
    """State of the stream of point ``sample_id`` of a run seeded with ``seed``."""
    state = np.empty(1, np.uint64)
    state[0] = _mix(_mix(np.uint64(seed) + _GOLDEN) ^ _mix(np.uint64(sample_id) * _SALT + _GOLDEN))
    return state


@jit
def audit_uniform(seed, sample_id):
    """A uniform in [0, 1) for point ``sample_id`` from a stream of its own, independent of
    the point's draws (which must not change when a point is picked for an audit)."""
    state = stream(seed, sample_id)
    state[0] = _mix(state[0] ^ _AUDIT)
    return uniform(state)


@jit
def next_u64(state):
    state[0] += _GOLDEN
    return _mix(state[0])


@jit
def uniform(state):
    """Uniform float in [0, 1) with 53 random bits."""
    return float(next_u64(state) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@jit
def integer(state, lo, hi):
    """Uniform integer in the closed range [lo, hi]."""
    return lo + int(uniform(state) * (hi - lo + 1))


@jit
def normal_matrix(state, rows, cols):
    """(rows, cols) standard normal draws, filled row by row with both values of each
    Box-Muller pair."""
    flat = np.empty(rows * cols)
    for k in range(0, flat.size, 2):
        u1 = 1.0 - uniform(state)  # in (0, 1]
        u2 = uniform(state)
        rad = np.sqrt(-2.0 * np.log(u1))
        flat[k] = rad * np.cos(_TWO_PI * u2)
        if k + 1 < flat.size:
            flat[k + 1] = rad * np.sin(_TWO_PI * u2)
    return as_matrix(flat, 0, rows, cols)


@jit
def categorical(state, weights):
    """Index drawn with probability proportional to ``weights`` (non-negative, sum > 0)."""
    total = 0.0
    for k in range(weights.size):
        total += weights[k]
    u = uniform(state) * total
    acc = 0.0
    for k in range(weights.size):
        acc += weights[k]
        if u < acc and weights[k] > 0.0:
            return k
    for k in range(weights.size - 1, -1, -1):
        if weights[k] > 0.0:
            return k
    return 0


@jit
def permutation(state, n):
    """Uniform random permutation of 0..n-1 (Fisher-Yates)."""
    p = np.arange(n)
    for i in range(n - 1, 0, -1):
        j = integer(state, 0, i)
        t = p[i]
        p[i] = p[j]
        p[j] = t
    return p
