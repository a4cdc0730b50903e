"""The report's width section: type fractions and the Hessian index against width.

The width of a point is its largest hidden width ``w = max(d_1, …, d_{H−1})``; points are
grouped in octave bands ``2^k <= w < 2^(k+1)`` (``band = k``).  Everything is aggregated
in DuckDB (counts per band and type, exact medians by :meth:`~mcland.rundir.scan.Scan.medians`),
never loaded.  The section appears on runs whose widths span enough
(:func:`width_spread`): at least :data:`MIN_BANDS` bands of :data:`MIN_BAND_POINTS` points,
the widest reaching :data:`MIN_WIDTH` — the runs of ``runs/wide.toml`` and the like; the
small-width runs (quick, paper: hidden widths up to 8, where width is entangled with the
bottleneck ``r``) have their fractions against ``r`` instead.

What the theory predicts (docs/theory.md): the type of a critical point is decided by its
index set ``S``, the ranks of the partial products and ``r``; no width enters.  So the
theory's type and the spectrum's should agree at every width, the index ``n_neg`` should
be 0 at minimizers and non-strict saddles and at least 1 at strict saddles, and, under a
design whose recipe and kill weights do not depend on width (``runs/wide.toml``; there
``r = d_y`` at every point since every hidden width exceeds ``d_x``), the theory's type
fractions should not depend on the width band.  The claim
``analysis/claim_width_agreement.py`` tests the first two; this section shows all three.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mcland import stats as an
from mcland.report.html import Section, figure, note, p, table
from mcland.rundir.scan import Scan

WIDTH_SQL = "list_max(dims[2:H::INTEGER])"
"""SQL of a point's largest hidden width ``max(d_1, …, d_{H−1})`` (``dims`` is 1-based
in SQL: ``dims[1] = d_0``)."""
BAND_SQL = f"floor(log2({WIDTH_SQL} + 0.5))::INTEGER"
"""SQL of a point's octave band ``k = floor(log2 w)`` (``w + 0.5`` is never a power of 2,
so rounding cannot move a power of 2 down a band)."""
MIN_BANDS = 3
MIN_BAND_POINTS = 5
MIN_WIDTH = 16
TYPES3 = an.TYPES[:3]


def band_label(k: int) -> str:
    """``"16-31"`` for the band ``k = 4``."""
    return f"{2**k}-{2 ** (k + 1) - 1}"


def band_counts(scan: Scan, where: str = "TRUE") -> pd.DataFrame:
    """Per band (ascending): ``band``, ``w_min``, ``w_max`` (the widths present), ``points``."""
    return scan.df(
        f"SELECT {BAND_SQL} AS band, min({WIDTH_SQL})::BIGINT AS w_min, "
        f"max({WIDTH_SQL})::BIGINT AS w_max, count(*) AS points FROM records "
        f"WHERE H >= 2 AND ({where}) GROUP BY band ORDER BY band"
    )


def width_spread(scan: Scan) -> str | None:
    """Why the run's widths do not span enough for the width section, or None when they do:
    at least :data:`MIN_BANDS` octave bands of :data:`MIN_BAND_POINTS` points or more, the
    widest of them holding a width of at least :data:`MIN_WIDTH`."""
    bands = band_counts(scan)
    full = bands[bands["points"] >= MIN_BAND_POINTS]
    if len(full) < MIN_BANDS:
        return (
            f"{len(full)} octave band(s) of the largest hidden width hold {MIN_BAND_POINTS} or "
            f"more points (at least {MIN_BANDS} needed)"
        )
    if int(full["w_max"].max()) < MIN_WIDTH:
        return (
            f"the widest such band reaches width {int(full['w_max'].max())} "
            f"(at least {MIN_WIDTH} needed)"
        )
    return None


def fractions_by_band(scan: Scan, type_col: str) -> pd.DataFrame:
    """:func:`mcland.stats.type_fractions` of ``type_col`` per band (column ``band``)."""
    tidy = an.type_fractions(scan, BAND_SQL, type_col=type_col, where="H >= 2")
    return tidy.rename(columns={BAND_SQL: "band"})


def band_table(scan: Scan) -> pd.DataFrame:
    """Per band: points, width range, median N, theory/spectrum agreement, ambiguous
    verdicts (95% Wilson intervals), and the index and nullity of the whitened Hessian.

    Columns: ``band``, ``widths``, ``points``, ``N_median``, ``agree``, ``agree_lo``,
    ``agree_hi``, ``ambiguous``, ``ambiguous_lo``, ``ambiguous_hi``, ``strict``
    (numeric strict saddles with an inertia), ``n_neg_median``, ``n_neg_max`` (over those
    strict saddles), ``index_fraction_median`` (their ``n_neg / N``),
    ``index_per_width_median`` (their ``n_neg / w``), ``zero_fraction_median`` (``n_zero / N``
    over every point with an inertia).  Medians as :func:`numpy.median`.
    """
    base = band_counts(scan)
    got = scan.df(
        f"SELECT {BAND_SQL} AS band, "
        "count(*) FILTER (theory_type::VARCHAR = numeric_type::VARCHAR) AS agree, "
        "count(*) FILTER (verdict::VARCHAR = 'ambiguous') AS ambiguous, "
        "count(*) FILTER (numeric_type::VARCHAR = 'strict_saddle' AND n_neg IS NOT NULL) "
        "AS strict, max(n_neg) FILTER (numeric_type::VARCHAR = 'strict_saddle') AS n_neg_max "
        "FROM records WHERE H >= 2 GROUP BY band ORDER BY band"
    )
    strict = "H >= 2 AND numeric_type::VARCHAR = 'strict_saddle' AND n_neg IS NOT NULL"
    inert = "H >= 2 AND n_neg IS NOT NULL AND n_zero IS NOT NULL"

    def med(value: str, where: str) -> pd.Series:
        m = scan.medians(value, where, by=[BAND_SQL])
        return pd.Series(m["median"].to_numpy(float), index=m["g0"].to_numpy(int))

    cols = {
        "N_median": med("N::DOUBLE", "H >= 2"),
        "n_neg_median": med("n_neg::DOUBLE", strict),
        "index_fraction_median": med("n_neg::DOUBLE / N", strict),
        "index_per_width_median": med(f"n_neg::DOUBLE / {WIDTH_SQL}", strict),
        "zero_fraction_median": med("n_zero::DOUBLE / N", inert),
    }
    out = base.merge(got, on="band")
    n = out["points"].to_numpy()
    for c in ("agree", "ambiguous"):
        out[f"{c}_lo"], out[f"{c}_hi"] = an.wilson_interval(out[c].to_numpy(), n)
        out[c] = out[c] / n
    for c, s in cols.items():
        out[c] = out["band"].map(s).astype(float)
    out["widths"] = [f"{a}-{b}" for a, b in zip(out["w_min"], out["w_max"], strict=True)]
    return out[
        ["band", "widths", "points", "N_median", "agree", "agree_lo", "agree_hi", "ambiguous",
         "ambiguous_lo", "ambiguous_hi", "strict", "n_neg_median", "n_neg_max",
         "index_fraction_median", "index_per_width_median", "zero_fraction_median"]
    ]  # fmt: skip


def depth_band_counts(scan: Scan) -> pd.DataFrame:
    """Points per depth (rows ``H``) and band (columns, labelled), zeros included."""
    got = scan.df(
        f"SELECT H::INTEGER AS H, {BAND_SQL} AS band, count(*) AS n FROM records "
        "WHERE H >= 2 GROUP BY ALL"
    )
    wide = got.pivot(index="H", columns="band", values="n").fillna(0).astype("int64")
    wide = wide.sort_index().reindex(columns=sorted(wide.columns))
    wide.columns = [band_label(int(k)) for k in wide.columns]
    return wide


def index_by_depth(scan: Scan) -> pd.DataFrame:
    """Per depth and band: ``H``, ``band``, ``strict`` (numeric strict saddles with an
    inertia) and ``n_neg_median`` (their median index, as :func:`numpy.median`)."""
    strict = "H >= 2 AND numeric_type::VARCHAR = 'strict_saddle' AND n_neg IS NOT NULL"
    m = scan.medians("n_neg::DOUBLE", strict, by=["H::INTEGER", BAND_SQL])
    return pd.DataFrame(
        {
            "H": m["g0"].astype("int64"),
            "band": m["g1"].astype("int64"),
            "strict": m["n"].astype("int64"),
            "n_neg_median": m["median"].astype(float),
        }
    )


def index_cells(by_depth: pd.DataFrame) -> pd.DataFrame:
    """Depth x band: ``median (count)`` of the strict saddles' index."""
    cell = [
        f"{m:.4g} ({n})" for m, n in zip(by_depth["n_neg_median"], by_depth["strict"], strict=True)
    ]
    wide = by_depth.assign(cell=cell).pivot(index="H", columns="band", values="cell")
    wide = wide.reindex(columns=sorted(wide.columns)).fillna("")
    wide.columns = [band_label(int(k)) for k in wide.columns]
    return wide


def fraction_cells(tidy: pd.DataFrame, types: list[str]) -> pd.DataFrame:
    """Per band: ``fraction [lo, hi]`` of each type."""
    rows = []
    for k, g in tidy.groupby("band", sort=True):
        row = {"band": band_label(int(k)), "points": int(g["total"].iloc[0])}
        for t in types:
            r = g[g["type"] == t].iloc[0]
            row[t] = f"{r['fraction']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] ({int(r['count'])})"
        rows.append(row)
    return pd.DataFrame(rows)


def band_rows(bands: pd.DataFrame) -> pd.DataFrame:
    """:func:`band_table` as shown: bands labelled, ``agree`` and ``ambiguous`` as
    ``fraction [lo, hi]``."""
    shown = bands.assign(band=[band_label(int(k)) for k in bands["band"]])
    for c in ("agree", "ambiguous"):
        shown[c] = [
            f"{f:.3f} [{lo:.3f}, {hi:.3f}]"
            for f, lo, hi in zip(shown[c], shown[f"{c}_lo"], shown[f"{c}_hi"], strict=True)
        ]
    return shown.drop(columns=[c for c in shown.columns if c.endswith(("_lo", "_hi"))])


def present(numeric: pd.DataFrame, theory: pd.DataFrame) -> list[str]:
    """The types shown: the three main ones and any other that occurs."""
    seen = set(numeric.loc[numeric["count"] > 0, "type"]) | set(
        theory.loc[theory["count"] > 0, "type"]
    )
    return [t for t in an.TYPES if t in seen or t in TYPES3]


def width_section(scan: Scan, out: Path) -> Section | None:
    """Type fractions (theory and spectrum) and the Hessian index against the largest
    hidden width, in octave bands; None for a run whose widths do not span enough
    (:func:`width_spread`)."""
    if width_spread(scan) is not None:
        return None
    from mcland.report import width_figures  # matplotlib only when drawn

    sec = Section("width", "Width: type fractions and Hessian index vs width")
    numeric = fractions_by_band(scan, "numeric_type")
    theory = fractions_by_band(scan, "theory_type")
    bands = band_table(scan)
    by_depth = index_by_depth(scan)
    width_figures.width_axis(theory, numeric, bands, by_depth, out / "width.png")
    types = present(numeric, theory)
    sec.add(
        figure("width.png", "type fractions and Hessian index vs width"),
        p(
            "Width w = the largest hidden width max(d_1, …, d_{H−1}), in octave bands "
            "2^k ≤ w < 2^(k+1). Left: fraction of each type by the theory (dashed, open "
            "markers) and by the spectrum (solid), 95% Wilson intervals. Right: the index "
            "n_neg of the numeric strict saddles, median per depth H, against the band "
            "(dotted: n_neg = w; at depth 2 the index is (d_y − s) d_1 minus a count of "
            "pairs, analysis/claim_depth2_index.py)."
        ),
        note(
            "The theory's classification holds no width: at every width theory and spectrum "
            "should agree, with n_neg = 0 at minimizers and non-strict saddles and n_neg ≥ 1 "
            "at strict saddles (analysis/claim_width_agreement.py). Fractions describe the "
            "sampling design; with recipe and kill weights that do not depend on width, the "
            "theory's fractions should not change across bands within a depth."
        ),
        p("Per band: agreement of theory and spectrum, ambiguous verdicts [95% interval]:"),
        table(band_rows(bands), scroll=False),
        p(
            "Type fractions by the spectrum (numeric type) per band: fraction [95% interval] (count)"
        ),
        table(fraction_cells(numeric, types), scroll=False),
        p("Type fractions by the theory per band:"),
        table(fraction_cells(theory, types), scroll=False),
        note(
            "Bands mix depths: the largest of H − 1 hidden widths grows with H, and only H ≥ 3 "
            "has non-strict saddles, so the fractions per band move with the depth mix. "
            "Compare within a depth (points per depth and band below; the claim tests the "
            "theory's fractions across bands within each depth)."
        ),
        p("Points per depth H (rows) and band of w (columns):"),
        table(depth_band_counts(scan), index=True, scroll=False),
        p("Index n_neg of the numeric strict saddles per depth and band: median (count)"),
        table(index_cells(by_depth), index=True, scroll=False),
    )
    return sec
