"""Exact arithmetic on float64 values: every float is a *dyadic* rational, an integer times a
power of two, so a float matrix is exactly an integer matrix times one power of two
(:class:`Dyadic`), and sums and products of them are exact in Python integers.  Rounding back
to float64 (:func:`floats`) is correct rounding, ties to even.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dyadic:
    """An exact matrix ``M * 2**e``: ``M`` an integer (Python ``int``, object dtype) array."""

    M: np.ndarray
    e: int

    @staticmethod
    def of(a: np.ndarray) -> Dyadic:
        """The exact value of the float array ``a`` (finite)."""
        a = np.asarray(a, dtype=np.float64)
        m, ex = np.frexp(a)
        mant = (m * 2.0**53).astype(np.int64)  # exact: |m| < 1 has 53 bits
        ex = ex.astype(np.int64) - 53
        nz = mant != 0
        e0 = int(ex[nz].min()) if nz.any() else 0
        M = np.empty(a.shape, dtype=object)
        flat = M.reshape(-1)
        for i, (mi, ei) in enumerate(zip(mant.ravel().tolist(), ex.ravel().tolist(), strict=True)):
            flat[i] = mi << (ei - e0) if mi else 0
        return Dyadic(M, e0)

    @staticmethod
    def eye(n: int) -> Dyadic:
        M = np.zeros((n, n), dtype=object)
        for i in range(n):
            M[i, i] = 1
        return Dyadic(M, 0)

    def __matmul__(self, other: Dyadic) -> Dyadic:
        return Dyadic(ints(self.M.dot(other.M)), self.e + other.e)

    def align(self, e: int) -> np.ndarray:
        """``M`` at the exponent ``e <= self.e``."""
        s = self.e - e
        return self.M if s == 0 else ints(np.vectorize(lambda x: x << s, otypes=[object])(self.M))

    def __add__(self, other: Dyadic) -> Dyadic:
        e = min(self.e, other.e)
        return Dyadic(ints(self.align(e) + other.align(e)), e)

    def __sub__(self, other: Dyadic) -> Dyadic:
        e = min(self.e, other.e)
        return Dyadic(ints(self.align(e) - other.align(e)), e)

    @property
    def T(self) -> Dyadic:
        return Dyadic(self.M.T, self.e)

    def times2(self, k: int) -> Dyadic:
        """``self * 2**k``."""
        return Dyadic(self.M, self.e + k)

    def to_float(self) -> np.ndarray:
        return floats(self.M, self.e)


def ints(M: np.ndarray) -> np.ndarray:
    """``M`` as an object array of Python ints (NumPy may hand back an int64 zero)."""
    M = np.asarray(M, dtype=object)
    return M


def ldexp(n: int, e: int) -> float:
    """``float(n * 2**e)`` (rounded toward zero beyond 64 bits: relative error < 2**-63)."""
    n = int(n)
    if n == 0:
        return 0.0
    sh = n.bit_length() - 64 if n > 0 else (-n).bit_length() - 64
    if sh > 0:
        n = n >> sh if n > 0 else -((-n) >> sh)
        e += sh
    try:
        return math.ldexp(float(n), e)
    except OverflowError:
        return math.copysign(math.inf, n)


def floats(M: np.ndarray, e: int | np.ndarray) -> np.ndarray:
    """:func:`ldexp` elementwise: ``float(M * 2**e)`` for the object array of ints ``M``
    and integer exponents ``e`` (broadcast to ``M.shape``).  Through int64 when every entry
    fits (then ``float(n)`` is the same conversion and ``np.ldexp`` the same C ``ldexp``:
    identical results), else entry by entry."""
    ee = np.broadcast_to(np.asarray(e, np.int64), M.shape)
    try:
        ints = np.array(M.ravel().tolist(), dtype=np.int64).reshape(M.shape)
    except OverflowError:
        return floats_wide(np.asarray(M, object), ee)
    with np.errstate(over="ignore"):
        return np.ldexp(ints.astype(np.float64), ee)


_bit_length = np.frompyfunc(int.bit_length, 1, 1)


def floats_wide(M: np.ndarray, ee: np.ndarray) -> np.ndarray:
    """:func:`ldexp` elementwise for ints beyond int64, with NumPy's object loops instead
    of a Python call per entry: each magnitude cut to its 64 leading bits (toward zero),
    converted exactly to uint64, rounded once to float64 (as ``float(n)`` rounds), scaled
    by ``np.ldexp`` (the same C ``ldexp``; overflow gives ``inf``)."""
    mag = np.abs(M)
    shift = np.maximum(_bit_length(mag).astype(np.int64) - 64, 0)
    top = (mag >> shift.astype(object)).astype(np.uint64)  # < 2**64: exact
    with np.errstate(over="ignore"):
        out = np.ldexp(top.astype(np.float64), ee + shift)
    return np.where(M < 0, -out, out).astype(np.float64)


def dot_int(a: np.ndarray, b: np.ndarray) -> int:
    return int(sum(x * y for x, y in zip(a.ravel().tolist(), b.ravel().tolist(), strict=True)))
