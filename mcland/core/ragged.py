"""Ragged arrays: many 1-D arrays of different lengths as one flat array and offsets.

Given points come in thousands to millions, each a short array (its architecture, its flat
weights).  A Python list of small arrays costs a Python step per point in every pass over
them; a :class:`Ragged` keeps them as one contiguous ``flat`` array with ``off`` offsets,
which the kernels read directly and NumPy reduces in one call (``np.add.reduceat``), while
still behaving as a read-only sequence of the per-point arrays (views into ``flat``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np


@dataclass(frozen=True, eq=False)
class Ragged(Sequence):
    """``n`` 1-D arrays stored back to back.

    Attributes
    ----------
    flat : ndarray (off[-1],)
        The arrays, concatenated.
    off : ndarray (n + 1,) int64
        Array ``t`` is ``flat[off[t]:off[t + 1]]``; ``off[0] = 0``, nondecreasing.
    """

    flat: np.ndarray
    off: np.ndarray

    @classmethod
    def from_arrays(cls, arrays: Sequence[np.ndarray], dtype: type = np.float64) -> Ragged:
        """The arrays of a sequence (a :class:`Ragged` is returned as it is when its
        ``flat`` has ``dtype``), flattened and converted to ``dtype``."""
        if isinstance(arrays, Ragged) and arrays.flat.dtype == dtype:
            return arrays
        off = np.zeros(len(arrays) + 1, np.int64)
        np.cumsum([np.size(a) for a in arrays], out=off[1:])
        flat = (
            np.concatenate(arrays, axis=None).astype(dtype, copy=False)
            if len(arrays)
            else np.zeros(0, dtype)
        )
        return cls(flat, off)

    @classmethod
    def from_lengths(cls, flat: np.ndarray, lengths: np.ndarray) -> Ragged:
        """``flat`` cut into consecutive arrays of the given ``lengths`` (summing to
        ``flat.size``)."""
        off = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=off[1:])
        if off[-1] != flat.size:
            raise ValueError(f"lengths sum to {off[-1]}, flat has {flat.size} entries")
        return cls(flat, off)

    def __len__(self) -> int:
        return self.off.size - 1

    def __getitem__(self, t):  # type: ignore[override]
        if isinstance(t, slice | np.ndarray | list):
            return self.take(np.arange(len(self))[t] if isinstance(t, slice) else t)
        t = range(len(self))[t]  # negative indices and bounds, as for a list
        return self.flat[self.off[t] : self.off[t + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        flat, bounds = self.flat, self.off.tolist()
        return (flat[a:b] for a, b in pairwise(bounds))

    @property
    def lengths(self) -> np.ndarray:
        """(n,) int64: the length of each array."""
        return np.diff(self.off)

    def position(self) -> np.ndarray:
        """(off[-1],) int64: each element's index inside its own array."""
        return np.arange(self.flat.size) - np.repeat(self.off[:-1], self.lengths)

    def place_into(self, out: np.ndarray, starts: np.ndarray) -> None:
        """Write array ``t`` into ``out[starts[t] : starts[t] + len]`` for every ``t``
        (``out`` 1-D, ``starts`` (n,)); the rest of ``out`` is left as it is."""
        out[np.repeat(starts, self.lengths) + self.position()] = self.flat

    def take(self, ids: Sequence[int] | np.ndarray) -> Ragged:
        """The arrays ``ids`` (in that order) as a new :class:`Ragged`."""
        ids = np.asarray(ids, np.int64)
        lengths = self.lengths[ids]
        off = np.zeros(ids.size + 1, np.int64)
        np.cumsum(lengths, out=off[1:])
        source = np.arange(off[-1]) - np.repeat(off[:-1] - self.off[ids], lengths)
        return Ragged(self.flat[source], off)

    def padded(self, width: int, fill: float = 0) -> np.ndarray:
        """(n, width) array: array ``t`` in row ``t``, left-aligned, the rest ``fill``
        (``width`` at least the longest array)."""
        out = np.full((len(self), width), fill, self.flat.dtype)
        self.pad_into(out)
        return out

    def pad_into(self, out: np.ndarray) -> None:
        """Write array ``t`` into ``out[t, :len]`` for every ``t`` (``out`` (n, width));
        the rest of ``out`` is left as it is."""
        lengths = self.lengths
        for length in np.unique(lengths).tolist():  # one gather per distinct length
            rows = np.flatnonzero(lengths == length)
            out[rows, :length] = self.flat[self.off[rows, None] + np.arange(length)]
