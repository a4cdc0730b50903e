"""Exact medians in bounded memory (issue 24): `Scan.medians` (radix selection, DuckDB limited
to 64 MB) against `numpy.median` of the same values loaded with `mcland.load`, on the three
medians the claims print.  Usage: python benchmarks/analysis_medians_check.py RUN_DIR
(loads the run: about 1.5 GB at 2,000,000 points)."""

import sys

import numpy as np

import mcland
from mcland.rundir.scan import Scan

run = sys.argv[1]
df = mcland.load(
    run,
    columns=[
        "is_critical",
        "loss",
        "critical_value",
        "loss_tol",
        "H",
        "s",
        "r",
        "S",
        "eig_min_w",
        "tol_neg",
        "critical_values",
    ],
)
crit = df[df["is_critical"].to_numpy(bool)]
err = (np.abs(crit["loss"] - crit["critical_value"]) / crit["loss_tol"]).to_numpy()
cv = [np.asarray(v, float) for v in crit["critical_values"] if v is not None]
gap = np.array([(np.diff(v).min() if v.size > 1 else np.inf) / np.abs(v).max() for v in cv])
gap = gap[np.isfinite(gap)]
h2 = df[
    (df["H"] == 2)
    & (df["s"] < df["r"])
    & df["eig_min_w"].notna()
    & df["tol_neg"].notna()
    & (df["tol_neg"] > 0)
]
top = np.array(
    [
        list(np.asarray(S, int)) == list(range(1, s + 1))
        for S, s in zip(h2["S"], h2["s"], strict=True)
    ],
    bool,
)
ratio = (-h2["eig_min_w"] / h2["tol_neg"]).to_numpy()[top]
with Scan(run, memory_limit="64MB") as scan:
    a = scan.medians("abs(loss - critical_value) / loss_tol", "is_critical")["median"].iloc[0]
    b = scan.medians(
        "q",
        "isfinite(q)",
        source="(SELECT CASE WHEN len(critical_values) > 1 THEN list_min(list_transform(list_slice(critical_values, 2, len(critical_values)), lambda x, i: x - critical_values[i])) ELSE 'inf'::DOUBLE END / list_max(list_transform(critical_values, lambda c: abs(c))) AS q FROM records WHERE is_critical AND critical_values IS NOT NULL)",
    )["median"].iloc[0]
    c = scan.medians(
        "-eig_min_w / tol_neg",
        "H = 2 AND S_set::BIGINT[] = range(1, s::BIGINT + 1) AND s < r AND eig_min_w IS NOT NULL AND tol_neg IS NOT NULL AND tol_neg > 0",
    )["median"].iloc[0]
for name, got, want, n in (
    ("err/loss_tol", a, np.median(err), err.size),
    ("min_gap/scale", b, np.median(gap), gap.size),
    ("-eig_min_w/tol_neg", c, np.median(ratio), ratio.size),
):
    print(f"{name}: n = {n}, Scan.medians {got!r}, numpy.median {want!r}, equal {got == want}")
