"""Classify records of this checkout against another's, column by column (issue 21, item 2:
the records of small inputs must not change but for new columns).

Writes, with the checkout's own code (run it with each checkout's interpreter, from the
checkout's root), the classify tables of the given points of
``tests/data/analysis071/make.py`` (16 points of mixed architectures, without and with
``refine``) and of one random 6-80-80-4 point (N = 7,200: ``auto`` takes the structured
path); then compares two such outputs bit for bit (pyarrow ``Array.equals``)::

    /work/main/.venv/bin/python benchmarks/classify_identity.py write OUT_MAIN   # in main
    .venv/bin/python benchmarks/classify_identity.py write OUT_NEW               # here
    .venv/bin/python benchmarks/classify_identity.py compare OUT_MAIN OUT_NEW
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

NAMES = ("given", "refine", "structured")


def write(out: Path) -> None:
    from mcland.classification.classify import classify_table

    root = Path.cwd()
    sys.path.insert(0, str(root / "tests"))
    make_py = root / "tests" / "data" / "analysis071" / "make.py"
    src = (
        make_py.read_text()
        .replace(
            "from mcland.point import split_layers",
            "from mcland.points.inspect import split_layers",
        )
        .replace("from mcland import classify_run, dynamics_run", "")
        .replace("from mcland.report import build_report", "")
    )  # 0.7.1's imports, not needed for the points
    make = types.ModuleType("make")
    make.__file__ = str(make_py)
    exec(compile(src, str(make_py), "exec"), make.__dict__)
    out.mkdir(parents=True, exist_ok=True)
    pts, X, Y = make.given_points()
    pq.write_table(classify_table(pts, X, Y, threads=2), out / "given.parquet")
    pq.write_table(classify_table(pts, X, Y, refine=True, threads=2), out / "refine.parquet")
    rng = np.random.default_rng(3)
    dims = [6, 80, 80, 4]
    Xw, Yw = rng.standard_normal((6, 40)), rng.standard_normal((4, 40))
    W = [rng.standard_normal((dims[h], dims[h - 1])) / np.sqrt(dims[h - 1]) for h in range(1, 4)]
    pq.write_table(classify_table([W], Xw, Yw, threads=2), out / "structured.parquet")


def compare(a_dir: Path, b_dir: Path) -> int:
    bad = 0
    for name in NAMES:
        a, b = pq.read_table(a_dir / f"{name}.parquet"), pq.read_table(b_dir / f"{name}.parquet")
        shared = [c for c in a.column_names if c in b.column_names]
        differ = [c for c in shared if not a.column(c).equals(b.column(c))]
        new = [c for c in b.column_names if c not in a.column_names]
        nulls = [c for c in new if c != "spectrum_method" and b.column(c).null_count != b.num_rows]
        print(
            f"{name}: rows {a.num_rows} / {b.num_rows}; {len(shared)} of {len(a.column_names)} "
            f"columns shared, differing: {differ}; order kept: "
            f"{b.column_names[: len(a.column_names)] == a.column_names}; new: {new}; "
            f"spectrum_method {b.column('spectrum_method').value_counts().to_pylist() if 'spectrum_method' in new else '-'}; "
            f"new columns not all null: {nulls}"
        )  # fmt: skip
        bad += bool(differ) or a.num_rows != b.num_rows or bool(nulls)
    return int(bad > 0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["write"] and len(sys.argv) == 3:
        write(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["compare"] and len(sys.argv) == 4:
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
