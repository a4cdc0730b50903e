"""Analysis at any run size (issue 24): the DuckDB scan (mcland.rundir.scan), the helpers of
mcland.stats on a run directory, bounded lists, the streamed comparison and the analysis
on a Dask worker.  Their answers are checked against the in-memory DataFrame path (the
0.7.1 code, unchanged) and against NumPy; the report and claims against 0.7.1's output in
tests/test_analysis_same.py."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from test_analysis_same import no_png  # noqa: F401  autouse: figures drawn, PNGs not rendered

import mcland
from mcland import stats as an
from mcland.execution.cluster import on_cluster
from mcland.report import build_report, landscape, sections
from mcland.rundir import files as storage
from mcland.rundir import select
from mcland.rundir.compare import compare_runs
from mcland.rundir.scan import Scan
from mcland.stats import median_interval, median_intervals

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "analysis071"
SAMPLE_RUNS = ["sample", "tampered", "free", "linnerud"]


@pytest.fixture
def copy(tmp_path):
    """A writable copy of a reference run directory."""

    def make(name: str) -> Path:
        dst = tmp_path / name
        shutil.copytree(DATA / name / "run", dst)
        return dst

    return make


# --- the helpers on a run directory equal the DataFrame path ---------------------------------
@pytest.mark.parametrize("name", SAMPLE_RUNS)
def test_stats_of_a_run_directory_equal_those_of_its_dataframe(name):
    run = DATA / name / "run"
    df = mcland.load(run)
    for by, col in (("H", "numeric_type"), (["H", "r"], "theory_type"), ("s", "numeric_type")):
        pd.testing.assert_frame_equal(
            an.type_fractions(df, by, type_col=col), an.type_fractions(run, by, type_col=col)
        )
    pd.testing.assert_frame_equal(an.confusion(df), an.confusion(run))
    audited = df[df["audit_type"].notna()]
    pd.testing.assert_frame_equal(
        an.confusion(audited, "numeric_type", "audit_type"),
        an.confusion(run, "numeric_type", "audit_type", where="audit_type IS NOT NULL"),
    )
    odd = an.disagreements(run)
    expected = an.disagreements(df).reset_index(drop=True)
    assert odd.attrs["total"] == len(expected)
    assert odd["sample_id"].tolist() == expected["sample_id"].tolist()
    inert, _ = an.drop_null(df, ["n_neg", "n_zero"])
    st = an.strata(run)
    pd.testing.assert_frame_equal(st, an.strata(inert))
    assert st.attrs["total"] == len(st) and st.attrs["flagged"] == int((~st["constant"]).sum())
    crit, _ = an.drop_null(df[df["is_critical"].to_numpy(bool)], ["critical_values"])
    matched = pd.concat([crit[["d_y", "r"]], an.match_critical_values(crit)], axis=1)
    pd.testing.assert_frame_equal(an.coverage(run), an.coverage(matched), check_dtype=False)


def test_per_point_results_of_a_run_are_the_first_rows_with_the_total():
    run = DATA / "tampered" / "run"
    odd = an.disagreements(run, limit=2)
    assert odd.attrs["total"] == 4 and len(odd) == 2
    expected = an.disagreements(mcland.load(run))["sample_id"].tolist()
    assert odd["sample_id"].tolist() == expected[:2] and len(expected) == 4
    flagged = an.strata(run, limit=1, flagged_only=True)
    assert len(flagged) == 1 and flagged.attrs["flagged"] == 2 and not flagged["constant"].any()


# --- the scan ----------------------------------------------------------------------------------
def test_case_colliding_columns_are_read_under_their_sql_names():
    run = DATA / "sample" / "run"
    df = mcland.load(run, columns=["sample_id", "s", "S", "s_drawn", "S_drawn"])
    with Scan(run) as scan:
        got = scan.df(
            "SELECT sample_id, s, S_set, s_drawn, S_drawn_set FROM records ORDER BY _order"
        )
    assert got["sample_id"].tolist() == df["sample_id"].tolist()
    assert got["s"].tolist() == df["s"].tolist()
    assert [list(x) for x in got["S_set"]] == [list(x) for x in df["S"]]
    assert [list(x) for x in got["S_drawn_set"]] == [list(x) for x in df["S_drawn"]]
    assert (df["s"] == df["S"].map(len)).all() and df["s"].max() > 0  # the two differ in kind


def test_scan_checks_checksums_as_load_does(copy):
    run = copy("sample")
    first = sorted(run.glob("part-*.parquet"))[0]
    data = bytearray(first.read_bytes())
    data[100] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(mcland.MclandError, match="checksum"):
        Scan(run)
    with pytest.warns(RuntimeWarning, match="checksum"), Scan(run, verify="skip") as scan:
        assert scan.count() == 200


def test_scan_orders_records_as_load_does_whatever_the_key(copy):
    """``_order`` is the position in ``mcland.load``'s frame: from the key the kind names
    (``row`` of a classify run; ``sample_id`` times the records per id plus the row within
    the point for a dynamics run), or from the shard order for a classify run keyed by a
    user column (its kind names no key); a run written before ``verdict`` reads it null."""
    for name, cols in (("classify", ["row"]), ("small_init", ["sample_id", "eps"])):
        df = mcland.load(DATA / name / "run")
        with Scan(DATA / name / "run") as scan:
            got = scan.df(f"SELECT {', '.join(cols)}, _order FROM records ORDER BY _order")
            assert scan.count("verdict IS NULL") == len(df) > 0
        assert got["_order"].tolist() == sorted(set(got["_order"]))  # distinct
        pd.testing.assert_frame_equal(got[cols], df[cols], check_dtype=False)
    run = copy("classify")
    manifest = storage.read_manifest(run)
    manifest["key"] = "name"  # as if keyed by a user column: the kind names no key
    (run / storage.MANIFEST).write_text(json.dumps(manifest))
    with Scan(run) as scan:
        assert scan.key is None
        got = scan.df("SELECT row, _order FROM records ORDER BY _order")
    assert got["row"].tolist() == mcland.load(run)["row"].tolist()
    assert got["_order"].tolist() != got["row"].tolist()  # shard position, not the key


def test_scan_reads_a_complete_run_by_its_glob_and_an_incomplete_one_by_its_list(copy):
    """A complete run is read through its shard glob (one pattern, not a file per shard in
    every query); an incomplete one, where a shard may still appear between two queries,
    through the list of its verified shards; the same records either way."""
    run = copy("sample")
    with Scan(run) as scan:
        assert scan._file_list() == f"'{run / 'part-*.parquet'}'"
        ids = scan.df("SELECT sample_id FROM records ORDER BY _order")["sample_id"].tolist()
    last = sorted(run.glob("part-*.parquet"))[-1]
    kept = len(ids) - pq.read_metadata(last).num_rows
    last.unlink()
    with Scan(run) as scan:
        assert scan._file_list().startswith("[")
        got = scan.df("SELECT sample_id FROM records ORDER BY _order")["sample_id"].tolist()
    assert got == ids[:kept] and 0 < kept < len(ids)


@pytest.mark.parametrize("seed", range(6))
def test_exact_order_statistics_equal_numpy(seed):
    """Medians and the order-statistic intervals of median_interval, per group, on values
    with ties, infinities and NaN, in groups of 1 to 60 values."""
    rng = np.random.default_rng(seed)
    groups, values = [], []
    for g in range(8):
        n = int(rng.integers(1, 60))
        x = (
            rng.choice([0.0, 1.0, -2.5, 3.0, np.inf, -np.inf], n)
            if g % 3 == 0
            else rng.normal(size=n)
        )
        if g == 5:
            x[0] = np.nan
        groups += [g] * n
        values += list(x)
    frame = pd.DataFrame({"g": groups, "x": values})
    with Scan(DATA / "sample" / "run") as scan:  # Arrow keeps NaN apart from null, as Parquet
        scan.add_table("t", pa.table({"g": pa.array(groups), "x": pa.array(values)}))
        med = scan.medians("x", "TRUE", ["g"], source="t")
        ends = median_intervals(scan, "x", "TRUE", ["g"], source="t")
    for g, x in frame.groupby("g")["x"]:
        want = np.median(x.to_numpy())
        got = med.loc[med["g0"] == g, "median"].iloc[0]
        assert (np.isnan(want) and np.isnan(got)) or got == want, (g, got, want)
        m, lo, hi = median_interval(x.to_numpy())
        row = ends[ends["g0"] == g].iloc[0]
        for a, b in ((row["median"], m), (row["lo"], lo), (row["hi"], hi)):
            assert (np.isnan(a) and np.isnan(b)) or a == b, (g, a, b)


def _reference_sort(values: list) -> list[float]:
    """``values`` (floats, NaN, None) in the order the order statistics promise, by
    Python's own sort: numbers ascending with -0.0 before 0.0, then NaN, then null (NaN)."""

    def key(v):
        if v is None:
            return (2, 0.0, 0)
        if math.isnan(v):
            return (1, 0.0, 0)
        return (0, v, 0 if math.copysign(1.0, v) < 0 else 1)

    return [np.nan if v is None else v for v in sorted(values, key=key)]


def _same(a: float, b: float) -> bool:
    """Equal floats, NaN equal to NaN, the sign of a zero included."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


@pytest.mark.parametrize("seed", range(3))
def test_bounded_order_statistics_split_fetch_and_tie_exactly(seed, monkeypatch):
    """Every rank of groups built to take every path of the radix selection (tiny fetch
    and bucket bounds force splits down to single keys and several passes): values that
    differ only in their last bits, a few values tied many times, both zeros, infinities,
    NaN, nulls, a NaN-only and a null-only group, a single value; a group without rows and
    ranks beyond a group give NaN."""
    monkeypatch.setattr(select, "FETCH", 3)
    monkeypatch.setattr(select, "FETCH_TOTAL", 7)
    monkeypatch.setattr(select, "MAX_BUCKETS", 40)
    rng = np.random.default_rng(seed)
    near = [float(v) for v in 1.5 + np.arange(-40, 40) * np.spacing(1.5)]  # last bits only
    data = {
        "spread": list(rng.normal(size=70) * 10.0 ** rng.integers(-5, 5, 70)),
        "near": list(rng.choice(near, 90)),
        "ties": list(rng.choice([-0.0, 0.0, 2.0, -3.0, 2.0 + 2**-40], 80)),
        "odd": [*rng.choice([np.inf, -np.inf, np.nan, 1.0, -0.0], 30), 5e-324, -5e-324],
        "nulls": [None, 1.0, None, 0.0, -1.0, np.nan, -0.0, None, 5e-324],
        "nan only": [np.nan] * 4,
        "null only": [None] * 3,
        "one": [7.25],
    }
    groups = [g for g, xs in data.items() for _ in xs]
    values = [v for xs in data.values() for v in xs]
    order = rng.permutation(len(values))  # rows in no particular order
    table = pa.table({
        "g": pa.array([groups[k] for k in order]),
        "x": pa.array([values[k] for k in order], type=pa.float64()),
    })  # fmt: skip
    wanted = [(g, i) for g, xs in data.items() for i in range(1, len(xs) + 3)]
    wanted += [("absent", 1)]
    with Scan(DATA / "sample" / "run") as scan:
        scan.add_table("t", table)
        got = scan.order_statistics(
            "x", "TRUE", ["g"], pd.DataFrame(wanted, columns=["g0", "i"]), source="t"
        )
        counts = select.Selection(scan, "x", "TRUE", ["g"], source="t").counts
    assert got[["g0", "i"]].values.tolist() == [list(w) for w in wanted]
    for (g, i), x in zip(wanted, got["x"], strict=True):
        ref = _reference_sort(data.get(g, []))
        want = ref[i - 1] if i <= len(ref) else np.nan
        assert _same(float(x), float(want)), (g, i, x, want)
    assert counts["g0"].tolist() == sorted(data)
    n = {g: len(xs) for g, xs in data.items()}
    nan = {g: sum(v is not None and math.isnan(v) for v in xs) for g, xs in data.items()}
    assert counts["n"].tolist() == [n[g] for g in sorted(data)]
    assert counts["nan"].tolist() == [nan[g] for g in sorted(data)]


def test_order_statistics_of_millions_of_rows_fit_in_a_few_megabytes():
    """Medians of 3,000,000 values in 3 groups under a 10 MB DuckDB memory limit, equal to
    NumPy's (a window sort over the rows, 0.8.0's first way, fails there for lack of
    memory); an empty selection gives one group of none."""
    n = 3_000_000
    src = f"(SELECT ((i * 7919) % 1000003)::DOUBLE / 7 AS x, i % 3 AS g FROM range({n}) t(i))"
    i = np.arange(n, dtype=np.int64)
    x = ((i * 7919) % 1000003).astype(float) / 7
    with Scan(DATA / "sample" / "run", memory_limit="10MB", threads=2) as scan:
        med = scan.medians("x", "TRUE", ["g"], source=src)
        none = scan.medians("x", "x < 0", source=src)
    assert med["n"].tolist() == [1_000_000] * 3
    assert med["median"].tolist() == [float(np.median(x[i % 3 == g])) for g in range(3)]
    assert none["n"].tolist() == [0] and np.isnan(none["median"].iloc[0])


# --- bounded lists in the report ----------------------------------------------------------------
def test_report_lists_are_bounded_and_say_what_they_leave_out(copy, tmp_path, monkeypatch):
    monkeypatch.setattr(sections, "MAX_CSV_ROWS", 2)
    monkeypatch.setattr(sections, "MAX_LISTED", 1)
    monkeypatch.setattr(landscape, "MAX_FLAGGED", 1)
    monkeypatch.setattr(landscape, "MAX_SCATTER", 5)
    run = copy("tampered")
    page = build_report(run, tmp_path / "out")
    text = page.read_text(encoding="utf-8")
    odd = pd.read_csv(page.parent / "disagreements.csv")
    assert odd["sample_id"].tolist() == an.disagreements(run)["sample_id"].tolist()[:2]
    assert (
        "4 points where theory and spectrum differ or either is ambiguous (the first 2 by " in text
    )
    assert "… 3 more rows not shown here." in text
    assert len(pd.read_csv(page.parent / "strata_flagged.csv")) == 1
    assert "2 are not constant (the 1 largest in strata_flagged.csv)" in text
    assert re.search(r"The figure draws the first 5 of them by sample id", text)


# --- compare, streamed ---------------------------------------------------------------------------
def _reshard(src: Path, dst: Path, sizes: list[int]) -> Path:
    """``src`` rewritten into shards of the given sizes (as another shard plan would), the
    type codes of the first shard with another dictionary (the types in the order they
    occur there, as a dictionary encoding of the text makes them)."""
    dst.mkdir()
    shutil.copy(src / "run.json", dst / "run.json")
    table = pa.concat_tables(pq.read_table(f) for f in sorted(src.glob("part-*.parquet")))
    start = 0
    for k, n in enumerate(sizes):
        part = table.slice(start, n)
        if k == 0:
            i = part.schema.get_field_index("numeric_type")
            text = part.column(i).cast(pa.string()).combine_chunks()
            codes = pc.dictionary_encode(text)
            codes = pa.DictionaryArray.from_arrays(codes.indices.cast(pa.int8()), codes.dictionary)
            assert codes.dictionary != part.column(i).chunk(0).dictionary
            part = part.set_column(i, part.schema.field(i), codes)
        pq.write_table(part, dst / storage.shard_name(k))
        start += n
    assert start == table.num_rows
    return dst


def test_compare_streams_equal_runs_with_other_shard_plans(copy, tmp_path):
    a = copy("sample")
    b = _reshard(a, tmp_path / "b", [7, 150, 1, 142])
    got = compare_runs(a, b)
    facts = {k: got[k] for k in ("rows", "duplicate_ids", "ids_are_0_to_n-1",
                                 "columns_differing", "equal")}  # fmt: skip
    assert facts == {"rows": [300, 300], "duplicate_ids": 0, "ids_are_0_to_n-1": True,
                     "columns_differing": [], "equal": True}  # fmt: skip
    assert not got["numerics_differ"]


def test_compare_finds_a_changed_value_a_missing_shard_and_overlaps(copy, tmp_path):
    a = copy("sample")
    b = _reshard(a, tmp_path / "b", [100, 100, 100])
    last = b / storage.shard_name(2)
    t = pq.read_table(last)
    loss = t.column("loss").to_numpy().copy()
    loss[-1] = np.nextafter(loss[-1], np.inf)  # one ulp, on the last record
    pq.write_table(t.set_column(t.schema.get_field_index("loss"), "loss", pa.array(loss)), last)
    got = compare_runs(a, b)
    assert got["columns_differing"] == ["loss"] and not got["equal"]
    last.unlink()
    got = compare_runs(a, b)
    assert got["rows"] == [300, 200] and not got["equal"]
    c = _reshard(a, tmp_path / "c", [100, 100, 100])
    shutil.copy(c / storage.shard_name(1), c / storage.shard_name(3))  # ids 100..199 twice
    got = compare_runs(c, a)
    assert got["rows"] == [400, 300] and got["duplicate_ids"] == 100
    assert not got["ids_are_0_to_n-1"] and not got["equal"]


# --- on a cluster: the same analysis where the data is --------------------------------------------
def _claims(argv: list[str]) -> str:
    from test_analysis_same import normalise, script

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = script("run_claims").main(argv)
    return normalise(buf.getvalue(), Path(argv[0])) + f"exit {code}\n"


def test_report_claims_and_compare_on_a_local_dask_cluster_are_the_same(copy, tmp_path):
    distributed = pytest.importorskip("distributed")
    run = copy("tampered")
    # one local cluster for the four (each --workers N would start its own): the paths
    # through --scheduler ADDRESS; --workers N differs only in the cluster it starts
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:  # fmt: skip
        there = {"scheduler": cluster.scheduler_address}
        assert on_cluster(os.getpid, **there) != os.getpid()  # it does run on a worker
        page = build_report(run, tmp_path / "there", **there)
        claims = _claims([str(run), "--scheduler", there["scheduler"]])
        compared = on_cluster(compare_runs, run, DATA / "sample" / "run", **there)
    assert page == tmp_path / "there" / "report.html"
    here = build_report(run, tmp_path / "here").read_text(encoding="utf-8")
    assert page.read_text(encoding="utf-8") == here
    for csv in ("disagreements.csv", "strata_flagged.csv"):
        assert (tmp_path / "there" / csv).read_bytes() == (tmp_path / "here" / csv).read_bytes()
    assert claims == _claims([str(run)])
    assert compared == compare_runs(run, DATA / "sample" / "run")
