"""A sample run across widths (issue 21 item 6's data; ``runs/wide.toml``), summarised:
type fractions and Morse index (``n_neg``) against the largest hidden width, and how the
spectra were stored (``spectrum_zeros``: structured rows store the k eigenvalues of the
compressed Hessian).

Usage::

    python benchmarks/wide_run.py OUT_DIR [--config runs/wide.toml] [--n 40] [--threads 2]

Writes (or resumes) the run directory OUT_DIR with :func:`mcland.run` and prints the wall
time, the machine's load and the tables; the output of the committed run is in
``benchmarks/results/wide-run.txt``.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import pandas as pd

import mcland


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--config", default="runs/wide.toml")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    print(f"load before: {os.getloadavg()}")
    t0 = time.perf_counter()
    summary = mcland.run(args.config, args.out, n=args.n, threads=args.threads, progress=False)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"{summary.n} points, {summary.computed} computed in {seconds:.1f} s "
          f"(kernels {summary.kernel_seconds:.1f} s), peak RSS {peak:.2f} GB, "
          f"load after: {os.getloadavg()}")  # fmt: skip
    cols = ["sample_id", "H", "dims", "N", "numeric_type", "theory_type", "verdict", "n_neg",
            "n_zero", "n_pos", "spectrum_zeros", "spectrum_w"]  # fmt: skip
    df = mcland.load(args.out, columns=cols)
    df["width"] = [int(max(d[1:-1])) for d in df["dims"]]
    df["width_bin"] = pd.cut(df["width"], [0, 31, 63, 127, 255, 511, 1023, 4096],
                             labels=["16-31", "32-63", "64-127", "128-255", "256-511",
                                     "512-1023", "1024+"])  # fmt: skip
    df["stored"] = df["spectrum_w"].map(len)
    df["structured"] = df["spectrum_zeros"] > 0
    full_ok = all(
        mcland.full_spectrum(s, z).size == n
        for s, z, n in zip(df["spectrum_w"], df["spectrum_zeros"], df["N"], strict=True)
    )
    print(f"stored + spectrum_zeros == N on every row: {full_ok}; "
          f"theory = numeric on {(df.theory_type == df.numeric_type).mean():.1%} of rows")  # fmt: skip
    pd.set_option("display.width", 160)
    by = df.groupby("width_bin", observed=True)
    table = pd.DataFrame({
        "points": by.size(),
        "N_median": by["N"].median(),
        "stored_median": by["stored"].median(),
        "structured": by["structured"].sum(),
        "n_neg_median": by["n_neg"].median(),
        "n_neg_max": by["n_neg"].max(),
    })  # fmt: skip
    print("\nby the largest hidden width")
    print(table.to_string())
    print("\nverdict fractions by the largest hidden width (95% Wilson intervals)")
    print(mcland.type_fractions(df, "width_bin", type_col="verdict").to_string(index=False))
    print("\nverdict by depth")
    print(pd.crosstab(df["H"], df["verdict"].astype(str)).to_string())
    print(f"\nlargest point: N = {df.N.max():,}, stored {int(df.stored[df.N.idxmax()])} "
          f"eigenvalues + {int(df.spectrum_zeros[df.N.idxmax()]):,} zeros; "
          f"median stored/N {np.median(df.stored / df.N):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
