"""Type counts by depth and theory/numeric agreement for a run directory.

Usage: python analysis/type_table.py RUN_DIR

Prints, per depth H, the number of points of each numeric type, then the confusion table
(numeric x theory) and every disagreement or ambiguous point (sample id, architecture,
eig_min, noise floor; the first 1000) so it can be re-inspected with ``mcland.draw_point``.
"""

from __future__ import annotations

import sys

import pandas as pd

from mcland.rundir.scan import Scan

MAX_LISTED = 1000  # disagreements printed (the first ones by sample id)


def _crosstab(scan: Scan, rows: str, cols: str) -> pd.DataFrame:
    """``pd.crosstab`` of two record columns, counted in SQL."""
    got = scan.df(
        f"SELECT {rows} AS a, {cols}::VARCHAR AS b, count(*) AS n FROM records "
        f"WHERE {rows} IS NOT NULL AND {cols} IS NOT NULL GROUP BY ALL"
    )
    table = got.pivot_table(index="a", columns="b", values="n", aggfunc="sum", fill_value=0)
    table.index.name, table.columns.name = rows.split("::")[0], cols
    return table


def main(run_dir: str) -> None:
    """Print the tables for ``run_dir`` (aggregated in DuckDB: any size)."""
    cols = ["sample_id", "H", "dims", "theory_type", "numeric_type", "eig_min_w", "noise_floor"]
    with Scan(run_dir) as scan:
        print(f"{scan.count()} points in {run_dir}\n")
        print(_crosstab(scan, "H", "numeric_type").to_string(), "\n")
        print(_crosstab(scan, "numeric_type::VARCHAR", "theory_type").to_string(), "\n")
        odd = "theory_type::VARCHAR IS DISTINCT FROM numeric_type::VARCHAR"
        n = scan.count(odd)
        listed = scan.df(
            f"SELECT {', '.join(cols)} FROM records WHERE {odd} ORDER BY _order LIMIT {MAX_LISTED}"
        )
    more = f" (the first {MAX_LISTED} below)" if n > MAX_LISTED else ""
    print(f"{n} points where theory and spectrum differ (ambiguous included){more}")
    if len(listed):
        print(listed.to_string(index=False))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
