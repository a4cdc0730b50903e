"""Compare the reference runs of issue 20: mcland 0.7.1 (commit 8317bb0) against the
layered package (commit 80801d1), made by make_refs.sh into ROOT/before and ROOT/after.

usage: python compare_all.py ROOT
Prints, per kind of run, whether every shard is byte-identical (sha256) and, for sample and
dynamics runs, mcland's own comparison of the records.  For the classify run with
``--refine`` it also lists the columns that differ and on how many rows, and does the same
for two runs of 0.7.1 itself (ROOT/before/cls_refine_t1, ..._t1b, both ``--threads 1``).
"""

import hashlib
import pathlib
import sys

import pyarrow.parquet as pq

from mcland.rundir.compare import compare_runs


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shards_identical(a, b):
    shards = sorted(a.glob("part-*.parquet"))
    names_b = sorted(p.name for p in b.glob("part-*.parquet"))
    same = [p.name for p in shards] == names_b and all(
        digest(p) == digest(b / p.name) for p in shards
    )
    return len(shards), same


def differing_columns(a, b):
    ta = pq.ParquetDataset(sorted(a.glob("part-*.parquet"))).read().to_pandas()
    tb = pq.ParquetDataset(sorted(b.glob("part-*.parquet"))).read().to_pandas()
    out = {}
    for c in ta.columns:
        x, y = ta[c].map(repr), tb[c].map(repr)
        n = int((x != y).sum())
        if n:
            out[c] = n
    return len(ta), out


root = pathlib.Path(sys.argv[1])
for kind in ["quick", "paper", "dyn", "cls", "cls_refine"]:
    a, b = root / "before" / kind, root / "after" / kind
    n, same = shards_identical(a, b)
    line = f"{kind:11s} shards={n} byte-identical={same}"
    if kind in ("quick", "paper", "dyn"):
        res = compare_runs(a, b)
        line += f"  compare: equal={res['equal']} rows={res['rows']}"
    print(line)
    if not same:
        rows, cols = differing_columns(a, b)
        print(f"    rows={rows}; columns differing (rows): {cols}")
a, b = root / "before" / "cls_refine_t1", root / "before" / "cls_refine_t1b"
rows, cols = differing_columns(a, b)
print(f"0.7.1 against itself, classify --refine --threads 1 twice: rows={rows}; differing: {cols}")
ta = pq.read_table(root / "before/truth/points.parquet")
tb = pq.read_table(root / "after/truth/points.parquet")
same = digest(root / "before/truth/points.parquet") == digest(root / "after/truth/points.parquet")
print(
    f"groundtruth points.parquet rows={ta.num_rows} byte-identical={same} "
    f"columns equal={all(ta.column(c).equals(tb.column(c)) for c in ta.column_names)}"
)
