"""Write runs/data/autoencoder16.csv, the data of runs/autoencoder*.toml (docs/groundtruth.md).

``X = diag(a) Had_16`` (16 features by 16 samples; Sylvester's Hadamard matrix), so
``X X^T = 16 diag(a^2)`` exactly; the autoencoder uses ``Y = X``.  The amplitudes
``a = mcland.classification.groundtruth.AMPLITUDES`` are the greedy sequence from 4 whose squares have
pairwise distinct sums over subsets of at most 4 elements (checked here), so the 2517
critical values of the 16-4-16 autoencoder are distinct integers.  One row per sample,
columns x1..x16 (x1 has the largest variance).  Deterministic: no randomness.

    python analysis/make_autoencoder_data.py [OUT.csv]
"""

from __future__ import annotations

import sys
from itertools import combinations
from pathlib import Path

import numpy as np

from mcland.classification.groundtruth import AMPLITUDES, autoencoder_data


def greedy_amplitudes(start: int = 4, count: int = 16, k_max: int = 4) -> list[int]:
    """The smallest increasing integers from ``start`` whose squares have distinct sums over
    all subsets of at most ``k_max`` elements."""

    def distinct(seq: list[int]) -> bool:
        sums = [sum(x * x for x in c) for k in range(k_max + 1) for c in combinations(seq, k)]
        return len(sums) == len(set(sums))

    seq: list[int] = []
    a = start
    while len(seq) < count:
        if distinct([*seq, a]):
            seq.append(a)
        a += 1
    return seq


def main() -> None:
    out = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).parents[1] / "runs/data/autoencoder16.csv"
    )
    assert sorted(AMPLITUDES) == greedy_amplitudes(), "AMPLITUDES are not the greedy sequence"
    X = autoencoder_data()
    header = ",".join(f"x{i + 1}" for i in range(X.shape[0]))
    np.savetxt(out, X.T, fmt="%d", delimiter=",", header=header, comments="")
    print(f"wrote {out}: {X.shape[1]} samples, {X.shape[0]} features")


if __name__ == "__main__":
    main()
