"""Claim: W = 0 (every layer zero) is a non-strict saddle for every depth H >= 3.

Usage: python analysis/claim_zero_nonstrict.py RUN_DIR

Two sources of W = 0 points:

* the run: a record is W = 0 when every single-layer rank ``rk W_{h:h}`` in ``ranks`` is 0
  (the sampler produces them with S = {} and every complement block killed); counted per
  depth, with their theory and numeric types;
* constructed: W = 0 on random Gaussian data (fixed seed) for H = 3..8, five random
  architectures per depth, classified by ``mcland.inspect_point`` — independent of the
  sampler's recipes, and covering depths the run may not reach.

Passes when every W = 0 point with H >= 3 is a non-strict saddle by the theory and by the
spectrum. W = 0 at H = 2 is shown for contrast (a strict saddle, as every H = 2 saddle).
"""

from __future__ import annotations

import sys

import numpy as np

from mcland import inspect_point
from mcland.rundir.scan import Scan, literal
from mcland.stats import TYPES, Verdict, claim_main

CLAIM = "W = 0 is a non-strict saddle for every H >= 3"
COLUMNS = ["sample_id", "H", "ranks", "theory_type", "numeric_type"]
CONSTRUCT_DEPTHS = range(2, 9)
PER_DEPTH = 5
SEED = 20210728
# W = 0: every single-layer rank rk W_{h:h} (1-based index h(h+1)/2 of ranks) is 0
ZERO = "NOT list_bool_or(list_transform(range(1, H + 1), lambda a: ranks[a * (a + 1) // 2] <> 0))"


def layer_ranks(ranks: object, H: int) -> np.ndarray:
    """Ranks of the single layers ``W_{h:h}``, h = 1..H, from a ``ranks`` cell."""
    r = np.asarray(ranks, dtype=int)
    return r[[a * (a - 1) // 2 + a - 1 for a in range(1, H + 1)]]


def constructed(rng: np.random.Generator) -> list[tuple[int, tuple[int, ...], str, str]]:
    """Classify W = 0 on random data: ``(H, dims, theory_type, numeric_type)`` per case."""
    out = []
    for H in CONSTRUCT_DEPTHS:
        for _ in range(PER_DEPTH):
            d_y = int(rng.integers(1, 5))
            d_x = d_y + int(rng.integers(0, 3))
            dims = (d_x, *(int(h) for h in rng.integers(1, 7, size=H - 1)), d_y)
            X = rng.standard_normal((d_x, 40))
            Y = rng.standard_normal((d_y, d_x)) @ X + 0.5 * rng.standard_normal((d_y, 40))
            W = [np.zeros((dims[h + 1], dims[h])) for h in range(H)]
            rep = inspect_point(W, X, Y)
            out.append((H, dims, rep.theory_type, rep.numeric_type))
    return out


def check(run_dir: str) -> Verdict:
    """Check the claim on the W = 0 records of ``run_dir`` and on constructed points."""
    v = Verdict(CLAIM)
    with Scan(run_dir) as scan:
        n, dropped = scan.one(
            "SELECT count(*) FILTER (ranks IS NOT NULL), count(*) FILTER (ranks IS NULL) "
            "FROM records"
        )
        zero = f"ranks IS NOT NULL AND {ZERO}"
        pairs = scan.df(
            f"SELECT * FROM (SELECT H, theory_type::VARCHAR AS t, numeric_type::VARCHAR AS u, "
            f"count(*) AS c FROM records WHERE {zero} GROUP BY ALL) ORDER BY H, "
            f"list_position({literal(TYPES)}, t) NULLS LAST, "
            f"list_position({literal(TYPES)}, u) NULLS LAST"
        )
        per_h = scan.df(
            f"SELECT H, count(*) AS n, count(*) FILTER (theory_type = 'non_strict_saddle' AND "
            f"numeric_type = 'non_strict_saddle') AS ok FROM records WHERE {zero} "
            "GROUP BY H ORDER BY H"
        )
    v.note(
        f"run: {int(per_h['n'].sum())} of {n} points have W = 0"
        + (f" ({dropped} without ranks)" if dropped else "")
    )
    for H, g, ok_n in zip(per_h["H"], per_h["n"], per_h["ok"], strict=True):
        p = pairs[(pairs["H"] == H) & pairs["t"].notna() & pairs["u"].notna()]
        kinds = ", ".join(
            f"{t}/{u} {c}" for t, u, c in zip(p["t"], p["u"], p["c"], strict=True) if c
        )
        line = f"run, H = {H}: {g} points W = 0 (theory/numeric: {kinds})"
        if H >= 3:
            v.require(bool(ok_n == g), line)
        else:
            v.note(line + " — H = 2, contrast")
    z = per_h
    run_depths = sorted(int(h) for h in z["H"] if h >= 3)
    v.note(f"run covers W = 0 at depths {run_depths or 'none'}")
    cases = constructed(np.random.default_rng(SEED))
    for H in CONSTRUCT_DEPTHS:
        cs = [c for c in cases if c[0] == H]
        types = sorted({f"{t}/{n}" for _, _, t, n in cs})
        line = f"constructed, H = {H}: {len(cs)} random architectures, e.g. {cs[0][1]} -> {', '.join(types)}"
        if H >= 3:
            v.require(all(t == n == "non_strict_saddle" for _, _, t, n in cs), line)
        else:
            v.note(line + " — H = 2, contrast")
    return v


def main(argv: list[str]) -> int:
    """Run the check on ``argv = [RUN_DIR]``; return the exit status."""
    return claim_main(check, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
