"""Engine comparison for issue 24 (results: benchmarks/results/analysis_engines.md): three analysis queries on one run directory, by four
engines (pandas as mcland 0.7.1 does it, DuckDB, polars lazy/streaming, pyarrow scanner +
numpy).  One query and engine per process: `python engines.py RUN ENGINE QUERY` prints a
JSON line with the wall time and a digest of the result (compared across engines)."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

TYPES = ["global_minimizer", "strict_saddle", "non_strict_saddle", "not_critical", "ambiguous"]


def files(run):
    return sorted(str(p) for p in Path(run).glob("part-*.parquet"))


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- pandas (0.7.1)
def pandas_q(run, q):
    import mcland
    from mcland import stats as an

    if q == "fractions":
        df = mcland.load(run, columns=["H", "r", "numeric_type", "theory_type"], verify="off")
        out = {}
        for by in ("H", "r"):
            t = an.type_fractions(df, by)
            out[by] = sorted(
                (int(a), b, int(c))
                for a, b, c in zip(t[by], t["type"], t["count"], strict=True)
                if c
            )
        conf = an.confusion(df, "numeric_type", "theory_type")
        out["conf"] = sorted(
            (a, b, int(conf.loc[a, b])) for a in TYPES for b in TYPES if conf.loc[a, b]
        )
        return out
    if q == "strata":
        df = mcland.load(
            run, columns=["dims", "S", "ranks", "n_neg", "n_zero", "numeric_type"], verify="off"
        )
        df, _ = an.drop_null(df, ["n_neg", "n_zero"])
        st = an.strata(df)
        return {
            "n": len(st),
            "flagged": int((~st["constant"]).sum()),
            "multi": int((st["n"] > 1).sum()),
            "top": [
                (list(r.dims), list(r.S), list(r.ranks), int(r.n)) for r in st.head(25).itertuples()
            ],
        }
    if q == "critvals":
        df = mcland.load(
            run,
            columns=["is_critical", "d_y", "r", "loss", "loss_tol", "critical_values"],
            verify="off",
        )
        crit, _ = an.drop_null(df[df["is_critical"].to_numpy(bool)], ["critical_values"])
        m = an.match_critical_values(crit)
        import pandas as pd

        mm = pd.concat([crit[["d_y", "r"]], m], axis=1)
        cov = an.coverage(mm, by=("d_y", "r"))
        return [
            (int(r.d_y), int(r.r), int(r.points), int(r.n_values), int(r.reached), int(r.unmatched))
            for r in cov.itertuples()
        ] + [int(m["n_within"].sum()), float(m["distance"].max())]
    raise ValueError(q)


# ---------------------------------------------------------------------------- DuckDB
def duckdb_q(run, q):
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET memory_limit = '1GB'")
    con.execute("SET preserve_insertion_order = false")
    src = "read_parquet(" + repr(files(run)) + ")"
    if q == "fractions":
        out = {}
        for by in ("H", "r"):
            rows = con.execute(
                f"SELECT {by}, numeric_type::VARCHAR, count(*) FROM {src} GROUP BY ALL"
            ).fetchall()
            out[by] = sorted((int(a), b, int(c)) for a, b, c in rows)
        rows = con.execute(
            f"SELECT numeric_type::VARCHAR, theory_type::VARCHAR, count(*) FROM {src} GROUP BY ALL"
        ).fetchall()
        out["conf"] = sorted((a, b, int(c)) for a, b, c in rows)
        return out
    if q == "strata":
        con.execute(f"""CREATE TEMP TABLE st AS SELECT dims, S_1 AS S, ranks, count(*) AS n,
            min(n_neg) a, max(n_neg) b, min(n_zero) c, max(n_zero) d,
            count(DISTINCT numeric_type) AS k
            FROM {src} WHERE n_neg IS NOT NULL AND n_zero IS NOT NULL GROUP BY dims, S_1, ranks""")
        n, flagged, multi = con.execute(
            "SELECT count(*), count(*) FILTER (a <> b OR c <> d OR k > 1), count(*) FILTER (n > 1) FROM st"
        ).fetchone()
        top = con.execute(
            "SELECT dims, S, ranks, n FROM st ORDER BY n DESC, dims, S, ranks LIMIT 25"
        ).fetchall()
        return {
            "n": n,
            "flagged": flagged,
            "multi": multi,
            "top": [(list(a), list(b), list(c), int(d)) for a, b, c, d in top],
        }
    if q == "critvals":
        rows = con.execute(f"""
            WITH m AS (SELECT d_y, r, loss_tol, list_transform(critical_values, lambda v: abs(v - loss)) AS g
                       FROM {src} WHERE is_critical AND critical_values IS NOT NULL),
            p AS (SELECT d_y, r, len(g) AS nv, list_position(g, list_min(g)) - 1 AS pos, list_min(g) AS dist,
                         len(list_filter(g, lambda x: x <= loss_tol)) AS nw, list_min(g) <= loss_tol AS matched FROM m)
            SELECT d_y, r, count(*), max(nv), count(DISTINCT pos) FILTER (matched), count(*) FILTER (NOT matched),
                   sum(nw), max(dist)
            FROM p GROUP BY d_y, r ORDER BY d_y, r""").fetchall()
        return [tuple(int(x) for x in r[:6]) for r in rows] + [
            int(sum(r[6] for r in rows)),
            float(max(r[7] for r in rows)),
        ]
    raise ValueError(q)


# ---------------------------------------------------------------------------- polars
def polars_q(run, q):
    import polars as pl

    lf = pl.scan_parquet(files(run))
    eng = "streaming"
    if q == "fractions":
        out = {}
        for by in ("H", "r"):
            d = lf.group_by(by, "numeric_type").len().collect(engine=eng)
            out[by] = sorted((int(a), str(b), int(c)) for a, b, c in d.iter_rows())
        d = lf.group_by("numeric_type", "theory_type").len().collect(engine=eng)
        out["conf"] = sorted((str(a), str(b), int(c)) for a, b, c in d.iter_rows())
        return out
    if q == "strata":
        st = (
            lf.filter(pl.col("n_neg").is_not_null() & pl.col("n_zero").is_not_null())
            .group_by("dims", "S", "ranks")
            .agg(
                n=pl.len(),
                a=pl.col("n_neg").min(),
                b=pl.col("n_neg").max(),
                c=pl.col("n_zero").min(),
                d=pl.col("n_zero").max(),
                k=pl.col("numeric_type").n_unique(),
            )
            .collect(engine=eng)
        )
        flagged = st.filter(
            (pl.col("a") != pl.col("b")) | (pl.col("c") != pl.col("d")) | (pl.col("k") > 1)
        ).height
        top = st.sort(["n", "dims", "S", "ranks"], descending=[True, False, False, False]).head(25)
        return {
            "n": st.height,
            "flagged": flagged,
            "multi": st.filter(pl.col("n") > 1).height,
            "top": [
                (list(a), list(b), list(c), int(d))
                for a, b, c, d in top.select("dims", "S", "ranks", "n").iter_rows()
            ],
        }
    if q == "critvals":
        g = (pl.col("critical_values") - pl.col("loss")).list.eval(pl.element().abs())
        p = (
            lf.filter(pl.col("is_critical") & pl.col("critical_values").is_not_null())
            .select("d_y", "r", "loss_tol", g.alias("g"))
            .select(
                "d_y",
                "r",
                nv=pl.col("g").list.len(),
                pos=pl.col("g").list.arg_min(),
                dist=pl.col("g").list.min(),
                nw=(pl.col("g") - pl.col("loss_tol")).list.eval(pl.element() <= 0).list.sum(),
                matched=pl.col("g").list.min() <= pl.col("loss_tol"),
            )
        )
        d = (
            p.group_by("d_y", "r")
            .agg(
                pl.len(),
                pl.col("nv").max(),
                pl.col("pos").filter(pl.col("matched")).n_unique(),
                (~pl.col("matched")).sum(),
                pl.col("nw").sum(),
                pl.col("dist").max(),
            )
            .sort("d_y", "r")
            .collect(engine=eng)
        )
        rows = list(d.iter_rows())
        return [tuple(int(x) for x in r[:6]) for r in rows] + [
            int(sum(r[6] for r in rows)),
            float(max(r[7] for r in rows)),
        ]
    raise ValueError(q)


# ---------------------------------------------------------------------------- pyarrow + numpy
def pyarrow_q(run, q):
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    dset = ds.dataset(files(run), format="parquet")

    def batches(cols, filt=None):
        return dset.to_batches(columns=cols, filter=filt, batch_size=1 << 17)

    if q == "fractions":
        out = {}
        for by in ("H", "r"):
            parts = [
                pa.table(b).group_by([by, "numeric_type"]).aggregate([([], "count_all")])
                for b in batches([by, "numeric_type"])
            ]
            t = (
                pa.concat_tables(parts)
                .group_by([by, "numeric_type"])
                .aggregate([("count_all", "sum")])
            )
            out[by] = sorted(
                (int(a), str(b), int(c))
                for a, b, c in zip(*[t[c].to_pylist() for c in t.column_names], strict=True)
            )
        parts = [
            pa.table(b).group_by(["numeric_type", "theory_type"]).aggregate([([], "count_all")])
            for b in batches(["numeric_type", "theory_type"])
        ]
        t = (
            pa.concat_tables(parts)
            .group_by(["numeric_type", "theory_type"])
            .aggregate([("count_all", "sum")])
        )
        out["conf"] = sorted(
            (str(a), str(b), int(c))
            for a, b, c in zip(*[t[c].to_pylist() for c in t.column_names], strict=True)
        )
        return out
    if q == "strata":
        parts = []
        filt = pc.field("n_neg").is_valid() & pc.field("n_zero").is_valid()
        for b in batches(["dims", "S", "ranks", "n_neg", "n_zero", "numeric_type"], filt):
            keys = {
                k: pc.binary_join(pc.cast(b[k], pa.list_(pa.string())), ",")
                for k in ("dims", "S", "ranks")
            }
            code = pc.cast(
                pc.dictionary_encode(b["numeric_type"]).indices, pa.int8()
            )  # per-batch dict!
            bit = pa.array(
                np.left_shift(
                    1,
                    np.asarray([TYPES.index(s) for s in b["numeric_type"].dictionary.to_pylist()]),
                )[b["numeric_type"].indices.to_numpy(zero_copy_only=False)]
            )
            t = pa.table({**keys, "n_neg": b["n_neg"], "n_zero": b["n_zero"], "bit": bit})
            parts.append(
                t.group_by(["dims", "S", "ranks"]).aggregate(
                    [
                        ([], "count_all"),
                        ("n_neg", "min"),
                        ("n_neg", "max"),
                        ("n_zero", "min"),
                        ("n_zero", "max"),
                        ("bit", "bit_wise_or" if False else "max"),
                        ("bit", "min"),
                    ]
                )
            )
            del code
        t = (
            pa.concat_tables(parts)
            .group_by(["dims", "S", "ranks"])
            .aggregate(
                [
                    ("count_all", "sum"),
                    ("n_neg_min", "min"),
                    ("n_neg_max", "max"),
                    ("n_zero_min", "min"),
                    ("n_zero_max", "max"),
                    ("bit_max", "max"),
                    ("bit_min", "min"),
                ]
            )
        )
        n = t.num_rows
        d = {c: t[c].to_numpy() for c in t.column_names if c not in ("dims", "S", "ranks")}
        flagged = int(
            (
                (d["n_neg_min_min"] != d["n_neg_max_max"])
                | (d["n_zero_min_min"] != d["n_zero_max_max"])
                | (d["bit_max_max"] != d["bit_min_min"])
            ).sum()
        )
        order = np.lexsort((np.arange(n), -d["count_all_sum"]))[:25]
        return {
            "n": n,
            "flagged": flagged,
            "multi": int((d["count_all_sum"] > 1).sum()),
            "top": [
                (
                    [int(x) for x in t["dims"][i].as_py().split(",")],
                    [int(x) for x in t["S"][i].as_py().split(",") if x],
                    [int(x) for x in t["ranks"][i].as_py().split(",")],
                    int(d["count_all_sum"][i]),
                )
                for i in order
            ],
        }
    if q == "critvals":
        acc = {}
        nwt, dmax = 0, -np.inf
        filt = pc.field("is_critical") & pc.field("critical_values").is_valid()
        for b in batches(["d_y", "r", "loss", "loss_tol", "critical_values"], filt):
            if not b.num_rows:
                continue
            cv = b["critical_values"]
            off = cv.offsets.to_numpy()
            flat = cv.values.to_numpy()[off[0] : off[-1]]
            off = off - off[0]
            nv = np.diff(off)
            rep = np.repeat(np.arange(b.num_rows), nv)
            gaps = np.abs(flat - b["loss"].to_numpy()[rep])
            mn = np.minimum.reduceat(gaps, off[:-1])
            first = np.flatnonzero(gaps == mn[rep])
            first = first[np.r_[True, rep[first][1:] != rep[first][:-1]]]
            pos = first - off[:-1]
            tol = b["loss_tol"].to_numpy()
            nw = np.add.reduceat(gaps <= tol[rep], off[:-1])
            matched = mn <= tol
            nwt += int(nw.sum())
            dmax = max(dmax, float(mn.max()))
            dy, r = b["d_y"].to_numpy(), b["r"].to_numpy()
            for key in set(zip(dy.tolist(), r.tolist(), strict=True)):
                sel = (dy == key[0]) & (r == key[1])
                a = acc.setdefault(key, [0, 0, set(), 0])
                a[0] += int(sel.sum())
                a[1] = max(a[1], int(nv[sel].max()))
                a[2].update(pos[sel & matched].tolist())
                a[3] += int((sel & ~matched).sum())
        return [(k[0], k[1], a[0], a[1], len(a[2]), a[3]) for k, a in sorted(acc.items())] + [
            nwt,
            dmax,
        ]
    raise ValueError(q)


if __name__ == "__main__":
    run, engine, q = sys.argv[1:4]
    t0 = time.perf_counter()
    res = globals()[f"{engine}_q"](run, q)
    dt = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "engine": engine,
                "query": q,
                "seconds": round(dt, 3),
                "digest": digest(res),
                "sample": str(res)[:300],
            }
        )
    )
