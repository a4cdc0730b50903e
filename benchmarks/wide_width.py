"""The report's width section as text: the tables of ``mcland report``'s "Width" section
(:mod:`mcland.report.width`) for a run, and its figure.

Usage::

    python benchmarks/wide_width.py RUN_DIR [--figure PNG]

Prints, per octave band of the largest hidden width, the agreement, the ambiguous
verdicts, the index of the strict saddles and the type fractions by the spectrum and by
the theory (95% Wilson intervals); the output of the committed run of ``runs/wide.toml``
is ``benchmarks/results/wide-width.txt``.  Aggregated in DuckDB, as in the report.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from mcland.report import width_figures
from mcland.report.width import (
    WIDTH_SQL,
    band_rows,
    band_table,
    fraction_cells,
    fractions_by_band,
    index_by_depth,
    index_cells,
    present,
    width_spread,
)
from mcland.rundir.scan import Scan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--figure", type=Path, help="write the section's figure here")
    args = ap.parse_args()
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    with Scan(args.run_dir) as scan:
        print(
            f"run {args.run_dir}: {scan.count()} of {scan.manifest['n']} points; load {os.getloadavg()}"
        )
        print(f"width spread: {width_spread(scan) or 'enough for the width section'}\n")
        bands = band_table(scan)
        numeric = fractions_by_band(scan, "numeric_type")
        theory = fractions_by_band(scan, "theory_type")
        by_band = index_by_depth(scan)
        strict = "theory_type::VARCHAR = 'strict_saddle' AND n_neg IS NOT NULL"
        by_depth = scan.df(
            f"SELECT H::INTEGER AS H, recipe::VARCHAR AS recipe, count(*) AS strict, "
            "count(*) FILTER (n_neg <= 2) AS n_neg_le_2, min(n_neg) AS n_neg_min, "
            f"max(n_neg) AS n_neg_max FROM records WHERE {strict} GROUP BY ALL ORDER BY ALL"
        )
        med = scan.medians("n_neg::DOUBLE", strict, by=["H::INTEGER", "recipe::VARCHAR"])
        per_w = scan.medians(
            f"n_neg::DOUBLE / {WIDTH_SQL}", strict, by=["H::INTEGER", "recipe::VARCHAR"]
        )
        by_depth["n_neg_median"] = med["median"].to_numpy()
        by_depth["n_neg_over_w_median"] = per_w["median"].to_numpy()
    if args.figure:
        width_figures.width_axis(theory, numeric, bands, by_band, args.figure)
    print("per band of the largest hidden width w (agree, ambiguous: fraction [95% Wilson])")
    print(band_rows(bands).to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print("\ntype fractions by the spectrum (numeric_type): fraction [95% Wilson] (count)")
    print(fraction_cells(numeric, present(numeric, theory)).to_string(index=False))
    print("\ntype fractions by the theory (theory_type)")
    print(fraction_cells(theory, present(numeric, theory)).to_string(index=False))
    print("\nindex n_neg of the numeric strict saddles per depth and band: median (count)")
    print(index_cells(by_band).to_string())
    print(
        "\nindex n_neg of the theory's strict saddles by depth and recipe (w: largest hidden width)"
    )
    print(by_depth.to_string(index=False, float_format=lambda x: f"{x:.4g}"))


if __name__ == "__main__":
    main()
