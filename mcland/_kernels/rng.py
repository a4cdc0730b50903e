"""Counter-based random streams: one independent SplitMix64 stream per sample.

A point's stream is derived from ``(seed, sample_id)`` alone, so its draws do not depend
on which thread computes it, on the batch it belongs to, or on how many points precede
it.  SplitMix64 (Steele, Lea & Flood 2014) passes BigCrush and needs one ``uint64`` of
state, kept in a length-1 array so kernels can advance it in place.

Normal draws use the ziggurat method of Marsaglia & Tsang (2000) in Doornik's (2005)
ZIGNOR form: 128 layers of equal area, the layer index and the value taken from disjoint
bits of one 64-bit output (as NumPy's generator does), exact wedge and tail rejection.
About 99 % of draws cost one integer hash and one comparison; the Box-Muller transform
used before 0.4.0 needed a logarithm, a square root, a sine and a cosine per pair, which
was a tenth of the sampler's non-LAPACK time on small networks.
"""

from __future__ import annotations

import numpy as np

from mcland._kernels.dense import as_matrix
from mcland._kernels.jit import jit, jit_inline

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_SALT = np.uint64(0xD1B54A32D192ED03)
_AUDIT = np.uint64(0xA0761D6478BD642F)

# ziggurat tables (Doornik 2005): C layers of area V under exp(-x^2/2), base tail from R
_ZIG_C = 128
_ZIG_R = 3.442619855899
_ZIG_V = 9.91256303526217e-3


def _ziggurat_tables(C: int = _ZIG_C, R: float = _ZIG_R, V: float = _ZIG_V) -> tuple:
    """Layer right edges ``x`` (C + 1,), ``x[0] = V / f(R)`` for the base layer, ``x[1] = R``,
    ``x[C] = 0``, and ratios ``ratio[i] = x[i + 1] / x[i]`` (C,): a uniform in
    ``(-x[i], x[i])`` lies inside the rectangle under the curve when its modulus is below
    ``x[i + 1]``."""
    x = np.zeros(C + 1)
    f = np.exp(-0.5 * R * R)
    x[0] = V / f
    x[1] = R
    for i in range(2, C):
        x[i] = np.sqrt(-2.0 * np.log(V / x[i - 1] + f))
        f = np.exp(-0.5 * x[i] * x[i])
    return x, x[1:] / x[:-1]


_ZIG_X, _ZIG_RATIO = _ziggurat_tables()
_LOW7 = np.uint64(0x7F)


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


@jit_inline  # tiny, called with literal arguments: no specialisation per literal
def integer(state, lo, hi):
    """Uniform integer in the closed range [lo, hi]."""
    return lo + int(uniform(state) * (hi - lo + 1))


@jit
def _normal_tail(state, negative):
    """A normal draw conditioned on ``|z| > R`` (Marsaglia 1964), with the given sign."""
    while True:
        x = np.log(1.0 - uniform(state)) / _ZIG_R  # log of a uniform in (0, 1]
        y = np.log(1.0 - uniform(state))
        if -2.0 * y >= x * x:
            return x - _ZIG_R if negative else _ZIG_R - x


@jit
def normal(state):
    """One standard normal draw (ziggurat, see the module docstring)."""
    while True:
        bits = next_u64(state)
        i = int(bits & _LOW7)
        u = 2.0 * (float(bits >> np.uint64(11)) * (1.0 / 9007199254740992.0)) - 1.0
        if abs(u) < _ZIG_RATIO[i]:  # inside the layer's rectangle: 99 % of draws
            return u * _ZIG_X[i]
        if i == 0:
            return _normal_tail(state, u < 0.0)
        x = u * _ZIG_X[i]  # in the wedge between the rectangle and the curve
        f0 = np.exp(-0.5 * (_ZIG_X[i] * _ZIG_X[i] - x * x))
        f1 = np.exp(-0.5 * (_ZIG_X[i + 1] * _ZIG_X[i + 1] - x * x))
        if f1 + uniform(state) * (f0 - f1) < 1.0:
            return x


@jit
def normal_matrix(state, rows, cols):
    """(rows, cols) standard normal draws, filled row by row."""
    flat = np.empty(rows * cols)
    for k in range(flat.size):
        flat[k] = normal(state)
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
