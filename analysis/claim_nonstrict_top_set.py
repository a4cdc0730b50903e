"""Claim: non-strict saddles occur only for S = {1, ..., s} with s < r.

Usage: python analysis/claim_nonstrict_top_set.py RUN_DIR

Passes when every point called a non-strict saddle — by the theory or by the spectrum —
has a top index set ``S = [s]`` with ``s < r``. Also prints the converse view: how the
points with ``S = [s]``, ``s < r`` split into strict and non-strict (both occur: the
condition is necessary, not sufficient), and that no point with a non-top ``S`` is
non-strict.  The run is aggregated in DuckDB (:class:`mcland.rundir.scan.Scan`), never loaded.
"""

from __future__ import annotations

import sys

from mcland.rundir.scan import Scan
from mcland.stats import Verdict, claim_main

CLAIM = "non-strict saddles occur only for S = {1..s} with s < r"
COLUMNS = ["theory_type", "numeric_type", "S", "s", "r"]
TOP = "S_set::BIGINT[] = range(1, s::BIGINT + 1)"  # S = {1, ..., s}
TYPES = {"theory": "coalesce(theory_type::VARCHAR, 'nan')",
         "spectrum": "coalesce(numeric_type::VARCHAR, 'nan')"}  # fmt: skip


def check(run_dir: str) -> Verdict:
    """Check the claim on every record of ``run_dir``."""
    v = Verdict(CLAIM)
    with Scan(run_dir) as scan:
        n = scan.count()
        v.require(n > 0, f"{n} points in the run")
        if not n:
            return v
        cand = f"({TOP} AND s < r)"
        for name, t in TYPES.items():
            ns = f"{t} = 'non_strict_saddle'"
            k, good, bad = scan.one(
                f"SELECT count(*) FILTER ({ns}), count(*) FILTER ({ns} AND {cand}), "
                f"count(*) FILTER ({ns} AND NOT {cand}) FROM records"
            )
            v.require(
                bad == 0,
                f"{k} non-strict saddles by the {name}: {good} with S = [s], s < r; {bad} otherwise",
            )
        for name, t in TYPES.items():
            n_cand, k_ns, k_st = scan.one(
                f"SELECT count(*), count(*) FILTER ({t} = 'non_strict_saddle'), "
                f"count(*) FILTER ({t} = 'strict_saddle') FROM records WHERE {cand}"
            )
            v.note(
                f"{n_cand} points with S = [s], s < r, by the {name}: {k_st} strict, "
                f"{k_ns} non-strict, {n_cand - k_st - k_ns} other"
            )
        non_top = scan.df(
            f"SELECT {TYPES['theory']} AS t, count(*) AS n FROM records WHERE NOT {TOP} "
            "GROUP BY ALL ORDER BY t"
        )
    v.note(
        f"{int(non_top['n'].sum())} points with a non-top S: theory types "
        + ", ".join(f"{k} {c}" for k, c in zip(non_top["t"], non_top["n"], strict=True))
    )
    return v


def main(argv: list[str]) -> int:
    """Run the check on ``argv = [RUN_DIR]``; return the exit status."""
    return claim_main(check, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
