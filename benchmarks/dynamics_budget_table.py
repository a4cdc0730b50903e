"""Rows of dynamics runs by status, theory type and stratum, side by side (issue 22).

Usage: python benchmarks/dynamics_budget_table.py NAME=RUN_DIR [NAME=RUN_DIR ...]

For each run (an ``escape`` or ``small_init`` dynamics run directory): the rows by
``status`` and the point's ``theory_type``; the rows in ``budget`` (and
``escaped_budget``) by stratum ``(theory_type, H, n_kill, s)``; for escape runs the
non-strict rows at depths 3-4 timed (``t_escape`` not null) per delta; for small_init
runs the visited sequence's completeness (``[], [1], [1,2], ...`` by steps of one, as
``analysis/claim_small_init.py`` defines it) per depth and eps, and ``visits_resolved``
where the column exists.  Plain text on stdout.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from mcland.stats import load

BASE = ["sample_id", "H", "s", "n_kill", "theory_type", "status", "n_evals"]


def _complete(visited) -> bool:
    ks = []
    for S in visited:
        S = sorted(int(i) for i in S)
        if list(range(1, len(S) + 1)) != S:
            return False
        ks.append(len(S))
    return bool(ks) and ks[0] == 0 and all(b == a + 1 for a, b in itertools.pairwise(ks))


def report(name: str, run_dir: str) -> None:
    try:
        df = load(run_dir, columns=[*BASE, "delta", "t_escape"])
        kind = "escape"
    except Exception:  # a small_init run has no delta column
        df = load(run_dir, columns=[*BASE, "eps", "visited_S", "reached_global"])
        kind = "small_init"
    df["theory_type"] = df["theory_type"].astype(str)
    df["status"] = df["status"].astype(str)
    print(f"=== {name}: {run_dir} ({kind}, {len(df)} rows, {df['n_evals'].sum():,} evaluations)")
    print(pd.crosstab(df["status"], df["theory_type"], margins=True, margins_name="total"))
    cut = df[df["status"].isin(["budget", "escaped_budget"])]
    print("\nrows in budget / escaped_budget by stratum (theory_type, H, n_kill, s):")
    if len(cut):
        print(cut.groupby(["theory_type", "H", "n_kill", "s", "status"]).size().to_string())
    else:
        print("  none")
    if kind == "escape":
        ns = df[(df["theory_type"] == "non_strict_saddle") & df["H"].between(3, 4)]
        t = ns.groupby("delta")["t_escape"].agg(rows="size", timed="count")
        t["fraction"] = t["timed"] / t["rows"]
        print("\nnon-strict rows at depths 3-4 timed per delta:")
        print(t.sort_index(ascending=False).to_string())
        nz = ns[ns["s"] >= 1]
        t = nz.groupby("delta")["t_escape"].agg(rows="size", timed="count")
        print("... of which S non-empty (s >= 1):")
        print(t.sort_index(ascending=False).to_string())
    else:
        df["complete"] = [_complete(v) for v in df["visited_S"]]
        df["complete_global"] = df["complete"] & df["reached_global"].astype(bool)
        small = df[df["eps"] <= 1e-2]
        print("\nvisited sequence complete ([], [1], [1,2], ... by steps of one, the issue's"
              " count), and complete AND ending at the global minimum, rows with eps <= 1e-2:")  # fmt: skip
        for keys in (["H", "eps"], ["H"]):
            t = small.groupby(keys).agg(rows=("complete", "size"), complete=("complete", "sum"),
                                        to_global=("complete_global", "sum"))  # fmt: skip
            t["fraction"] = t["complete"] / t["rows"]
            t["fraction_to_global"] = t["to_global"] / t["rows"]
            print(t.to_string())
        schema = pq.read_schema(next(Path(run_dir).rglob("*.parquet")))
        if "visits_resolved" in schema.names:
            r = load(run_dir, columns=["H", "eps", "visits_resolved"])
            bad = r[~r["visits_resolved"].astype(bool)]
            print(
                "\nrows with visits_resolved false, per depth:", bad.groupby("H").size().to_dict()
            )
        else:
            print("\n(no visits_resolved column: a run written before issue 22)")
    print()


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    np.set_printoptions(linewidth=120)
    pd.set_option("display.width", 160)
    for arg in argv:
        name, _, run_dir = arg.partition("=")
        report(name, run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
