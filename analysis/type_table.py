"""Type counts by depth and theory/numeric agreement for a run directory.

Usage: python analysis/type_table.py RUN_DIR

Prints, per depth H, the number of points of each numeric type, then the confusion table
(numeric x theory) and every disagreement or ambiguous point (sample id, architecture,
eig_min, noise floor) so it can be re-inspected with ``mcland.draw_point``.
"""

from __future__ import annotations

import sys

import pandas as pd

import mcland


def main(run_dir: str) -> None:
    """Print the tables for ``run_dir``."""
    cols = ["sample_id", "H", "dims", "theory_type", "numeric_type", "eig_min_w", "noise_floor"]
    df = mcland.load(run_dir, columns=cols)
    print(f"{len(df)} points in {run_dir}\n")
    print(pd.crosstab(df["H"], df["numeric_type"]).to_string(), "\n")
    print(pd.crosstab(df["numeric_type"], df["theory_type"]).to_string(), "\n")
    odd = df[(df["theory_type"] != df["numeric_type"])]
    print(f"{len(odd)} points where theory and spectrum differ (ambiguous included)")
    if len(odd):
        print(odd.to_string(index=False))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
