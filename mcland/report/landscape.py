"""The report's landscape sections: Hessian spectra and the stratified inertia tables.

The run is queried (:class:`~mcland.rundir.scan.Scan`), not loaded: histograms come from counts
per value, the scatter of strict saddles from the first :data:`MAX_SCATTER` of them, the
spectral densities from the spectra of at most :data:`MAX_SPECTRA_PER_ARCH` points per
architecture (loaded by sample id)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from mcland import stats as an
from mcland.points.records import full_spectrum
from mcland.report import figures
from mcland.report.html import Section, figure, note, p, table
from mcland.report.sections import DESIGN_NOTE, MAX_LISTED, fmt_tuple, value_counts
from mcland.rundir.scan import Scan, literal, median_of_counts

N_SPECTRAL_ARCHS = 3
MAX_SPECTRA_PER_ARCH = 400
MAX_SCATTER = 20_000  # points drawn in a scatter plot: the first ones by sample id
MAX_FLAGGED = 100_000  # non-constant strata written to strata_flagged.csv


def representative_architectures(
    df: pd.DataFrame | Scan,
    k: int = N_SPECTRAL_ARCHS,
    min_points: int = 10,
    min_params: int = 10,
) -> list[tuple[int, ...]]:
    """Up to ``k`` frequent architectures, preferring distinct depths.

    Candidates are the architectures with at least ``min_params`` parameters and at least
    ``min_points`` points (each condition dropped if no architecture meets it), by
    decreasing count; the most frequent one of each depth is taken first,
    then the next most frequent overall.  ``df``: records with ``dims``, or a run.
    """
    if isinstance(df, pd.DataFrame):
        counts = df["dims"].map(an.as_key).value_counts()
    else:
        counts = value_counts(df, "dims")
    n_par = np.array([sum(a * b for a, b in itertools.pairwise(d)) for d in counts.index])
    if (n_par >= min_params).any():  # skip trivial architectures when there is a choice
        counts = counts[n_par >= min_params]
    cand = counts[counts >= min_points] if (counts >= min_points).any() else counts
    picks: list[tuple[int, ...]] = []
    depths: set[int] = set()
    for arch in cand.index:  # one per depth first
        if len(picks) < k and len(arch) - 1 not in depths:
            picks.append(arch)
            depths.add(len(arch) - 1)
    picks += [a for a in cand.index if a not in picks][: k - len(picks)]
    return sorted(picks, key=len)


def _spectral_panels(scan: Scan) -> list[tuple[str, pd.DataFrame]]:
    """Scaled whitened spectra of up to :data:`MAX_SPECTRA_PER_ARCH` points per architecture."""
    spec_col, norm_col = "spectrum_w", "hess_norm_w"
    panels = []
    for arch in representative_architectures(scan):
        ids = scan.df(
            f"SELECT sample_id FROM records WHERE dims = {literal(arch)}::SMALLINT[] "
            f"ORDER BY _order LIMIT {MAX_SPECTRA_PER_ARCH}"
        )["sample_id"].to_numpy()
        if not ids.size:
            continue
        got = scan.df(  # the range of the ids prunes the row groups read
            f"SELECT sample_id, numeric_type, {norm_col}, {spec_col}, spectrum_zeros FROM records "
            f"WHERE sample_id BETWEEN {int(ids.min())} AND {int(ids.max())} "
            f"AND sample_id IN ({', '.join(str(int(i)) for i in ids)}) ORDER BY _order"
        )
        got, _ = an.drop_null(got, [spec_col, norm_col])
        if not len(got):
            continue
        norms = got[norm_col].to_numpy()
        norms = np.where(norms > 0, norms, 1.0)  # a zero Hessian's eigenvalues stay at 0
        zeros = got["spectrum_zeros"].fillna(0).to_numpy()  # structured rows (docs/structured.md)
        scaled = [
            full_spectrum(s, int(z)) / n
            for s, z, n in zip(got[spec_col], zeros, norms, strict=True)
        ]
        g = pd.DataFrame({"numeric_type": got["numeric_type"].astype(str), "scaled": scaled})
        title = f"dims {fmt_tuple(arch)}, N = {len(scaled[0])}"
        panels.append((title, g))
    return panels


def spectra_section(scan: Scan, out: Path, has_spectra: bool) -> Section:
    """Index and nullity by type, spectral densities, eig_min_w vs escape curvature.

    ``has_spectra`` says whether the run's shards have the ``spectrum_w`` column.
    """
    sec = Section("spectra", "Hessian spectra")
    _add_inertia(sec, scan, out)
    _add_spectral_density(sec, scan, out, has_spectra)
    _add_escape(sec, scan, out)
    return sec


def _add_inertia(sec: Section, scan: Scan, out: Path) -> None:
    """Inertia (n_neg, n_zero) of the whitened Hessian by numeric type: figure and table."""
    have = an.not_null(["n_neg", "n_zero", "N"])
    dropped = scan.count(f"NOT ({have})")
    if dropped:
        sec.add(p(f"{dropped} points have no inertia (spectrum-free run, not audited); left out."))
    if not scan.count(have):
        return
    hist = {
        col: scan.df(
            f"SELECT numeric_type::VARCHAR AS numeric_type, {col} AS value, count(*) AS n "
            f"FROM records WHERE {have} GROUP BY ALL ORDER BY ALL"
        )
        for col in ("n_neg", "n_zero")
    }
    figures.inertia(hist, out / "inertia.png")
    summ = scan.df(
        f"SELECT numeric_type::VARCHAR AS numeric_type, count(*) AS points, "
        f"min(n_neg) AS n_neg_min, max(n_neg) AS n_neg_max, min(n_zero) AS n_zero_min, "
        f"max(n_zero) AS n_zero_max FROM records WHERE {have} GROUP BY ALL ORDER BY ALL"
    )
    # exact medians from the counts per distinct value (few: integers, and n_zero / N
    # from the distinct (n_zero, N) pairs, divided as pandas divides them)
    pairs = scan.df(
        f"SELECT numeric_type::VARCHAR AS t, n_zero, N, count(*) AS n FROM records "
        f"WHERE {have} GROUP BY ALL"
    )
    ratio = pairs["n_zero"].to_numpy(float) / pairs["N"].to_numpy(float)
    med: dict[str, list[float]] = {"n_neg_median": [], "n_zero_median": [],
                                   "n_zero_over_N_median": []}  # fmt: skip
    for t in summ["numeric_type"]:
        for name, col in (("n_neg_median", "n_neg"), ("n_zero_median", "n_zero")):
            h = hist[col][hist[col]["numeric_type"] == t]
            med[name].append(median_of_counts(h["value"].to_numpy(), h["n"].to_numpy()))
        mine = (pairs["t"] == t).to_numpy()
        med["n_zero_over_N_median"].append(
            median_of_counts(ratio[mine], pairs["n"].to_numpy()[mine])
        )
    # as pandas gives them: a column with nulls anywhere in the run is float
    kind = {c: "float64" if scan.count(f"{c} IS NULL") else "int32" for c in ("n_neg", "n_zero")}
    summ = pd.DataFrame(
        {
            "numeric_type": summ["numeric_type"],
            "points": summ["points"].astype("int64"),
            "n_neg_min": summ["n_neg_min"].astype(kind["n_neg"]),
            "n_neg_median": med["n_neg_median"],
            "n_neg_max": summ["n_neg_max"].astype(kind["n_neg"]),
            "n_zero_min": summ["n_zero_min"].astype(kind["n_zero"]),
            "n_zero_median": med["n_zero_median"],
            "n_zero_max": summ["n_zero_max"].astype(kind["n_zero"]),
            "n_zero_over_N_median": med["n_zero_over_N_median"],
        }
    )
    sec.add(
        p(
            "Inertia of the whitened Hessian (congruent to ∇²L, same counts): n_neg "
            "eigenvalues below −tol_neg, n_zero within ±tol_zero (the invariance "
            "W_h → G_h W_h G_{h−1}⁻¹ alone gives every point a large null space)."
        ),
        figure("inertia.png", "distributions of n_neg and n_zero by type"),
        table(summ),
    )


def _add_spectral_density(sec: Section, scan: Scan, out: Path, has_spectra: bool) -> None:
    """Densities of the normalised whitened spectra, or a note that none are stored."""
    stored = has_spectra and scan.count("spectrum_w IS NOT NULL") > 0
    panels = _spectral_panels(scan) if stored else []
    if panels:
        figures.spectral_density(panels, out / "spectral_density.png")
        sec.add(
            p(
                "Spectral density of the whitened Hessian (spectrum_w) for the most frequent "
                f"architecture at up to {N_SPECTRAL_ARCHS} depths, pooled over at most {MAX_SPECTRA_PER_ARCH} "
                "points each; every eigenvalue is divided by its point's Frobenius norm "
                "||∇²L_w||_F so that points with differently scaled data can be pooled (a zero "
                "Hessian, e.g. W = 0 with H ≥ 3, contributes N eigenvalues at 0)."
            ),
            figure("spectral_density.png", "spectral densities"),
        )
    else:
        sec.add(
            p(
                "No stored whitened spectra (spectrum_w): rerun with [output] spectrum = true "
                "(and classify.spectrum_free = false) for spectral densities."
            )
        )


ROTATION, OPEN_PAIR = "rotation (S not a top set)", "open layer pair (S = [s])"


def _add_escape(sec: Section, scan: Scan, out: Path) -> None:
    """eig_min_w against the escape certificate's curvature of theory-strict saddles."""
    strict = "theory_type = 'strict_saddle'"
    where = f"{strict} AND {an.not_null(['escape_curvature', 'eig_min_w'])}"
    n = scan.count(where)
    dropped_e = scan.count(strict) - n
    if not n:
        return
    kind = f"CASE WHEN open_h1 IS NOT NULL THEN '{OPEN_PAIR}' ELSE '{ROTATION}' END"
    counts = dict(
        scan.con.sql(f"SELECT {kind}, count(*) FROM records WHERE {where} GROUP BY ALL").fetchall()
    )
    hi_e, lo_e, over = scan.one(
        f"SELECT greatest(max(escape_curvature), max(eig_min_w)), "
        f"least(min(escape_curvature), min(eig_min_w)), "
        f"count(*) FILTER (eig_min_w > escape_curvature + tol_zero) FROM records WHERE {where}"
    )
    drawn = scan.df(
        f"SELECT escape_curvature, eig_min_w, {kind} AS kind FROM records WHERE {where} "
        f"ORDER BY _order LIMIT {MAX_SCATTER}"
    )
    figures.escape(drawn, out / "escape.png", counts=counts, limits=(-hi_e, -lo_e))
    sampled = (
        f" The figure draws the first {MAX_SCATTER:,} of them by sample id (sample ids are "
        "independent draws, so these are a random sample); the counts are of all."
        if n > MAX_SCATTER
        else ""
    )
    sec.add(
        p(
            f"{n} theory-strict saddles with a certificate"
            + (f" ({dropped_e} without eig_min_w or certificate left out)" if dropped_e else "")
            + ". The certificate's curvature is a Rayleigh quotient of the whitened Hessian, "
            f"so eig_min_w ≤ escape_curvature: {over} points exceed it by more than tol_zero."
            + sampled
        ),
        figure("escape.png", "eig_min_w vs escape curvature"),
    )


def strata_section(scan: Scan, out: Path) -> Section:
    """n_neg / n_zero per (architecture, S, rank profile), non-constant strata flagged."""
    sec = Section("strata", "Stratified inertia: architecture × S × rank profile")
    sec.add(note(DESIGN_NOTE))
    dropped = scan.count(f"NOT ({an.not_null(['n_neg', 'n_zero'])})")
    if dropped:
        sec.add(p(f"{dropped} points without inertia left out."))
    views = an.strata_tables(
        scan, ("dims", "S", "ranks"), {"largest": (25, False), "flagged": (MAX_FLAGGED, True)}
    )
    largest, flagged = (_shown(views[k]) for k in ("largest", "flagged"))
    total, multi, n_flagged = (largest.attrs[k] for k in ("total", "multi", "flagged"))
    flagged.to_csv(out / "strata_flagged.csv", index=False)
    where = (
        "all in strata_flagged.csv"
        if len(flagged) == n_flagged
        else f"the {len(flagged):,} largest in strata_flagged.csv"
    )
    sec.add(
        p(
            "A stratum is one architecture (d_0, …, d_H), one index set S and one rank profile "
            "(numerical ranks of all partial products W_{a:b}, in the order of the ranks "
            "column). Within a stratum n_neg, n_zero and the numeric type are expected to be "
            "constant; strata where they vary are flagged (red rows)."
        ),
        p(
            f"{total} strata; {multi} hold two or more points (these alone can be checked); "
            f"{n_flagged} are not constant ({where})."
        ),
    )
    if n_flagged:
        sec.add(
            p("Non-constant strata:"),
            table(
                flagged,
                flag=[True] * len(flagged),
                max_rows=MAX_LISTED,
                total=n_flagged,
            ),
        )
    sec.add(p("The 25 largest strata:"), table(largest, flag=~largest["constant"].to_numpy()))
    return sec


def _shown(st: pd.DataFrame) -> pd.DataFrame:
    """Strata with their keys written as in the page."""
    return st.assign(
        dims=st["dims"].map(fmt_tuple),
        S=st["S"].map(lambda v: fmt_tuple(v, braces=True)),
        ranks=st["ranks"].map(fmt_tuple),
    )
