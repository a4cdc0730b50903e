"""The report's landscape sections: Hessian spectra and the stratified inertia tables."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from mcland import stats as an
from mcland.report import figures
from mcland.report.html import Section, figure, note, p, table
from mcland.report.sections import DESIGN_NOTE, MAX_LISTED, fmt_tuple
from mcland.rundir.files import load

N_SPECTRAL_ARCHS = 3
MAX_SPECTRA_PER_ARCH = 400


def representative_architectures(
    df: pd.DataFrame, k: int = N_SPECTRAL_ARCHS, min_points: int = 10, min_params: int = 10
) -> list[tuple[int, ...]]:
    """Up to ``k`` frequent architectures, preferring distinct depths.

    Candidates are the architectures with at least ``min_params`` parameters and at least
    ``min_points`` points (each condition dropped if no architecture meets it), by
    decreasing count; the most frequent one of each depth is taken first,
    then the next most frequent overall.
    """
    counts = df["dims"].map(an.as_key).value_counts()
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


def _spectral_panels(run_dir: Path, df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Scaled whitened spectra of up to :data:`MAX_SPECTRA_PER_ARCH` points per architecture."""
    spec_col, norm_col = "spectrum_w", "hess_norm_w"
    dims = df["dims"].map(an.as_key)
    panels = []
    for arch in representative_architectures(df):
        ids = df.loc[dims == arch, "sample_id"].to_numpy()[:MAX_SPECTRA_PER_ARCH]
        got = load(
            run_dir,
            columns=["sample_id", "numeric_type", norm_col, spec_col],
            filters=[("sample_id", "in", ids.tolist())],
        )
        got, _ = an.drop_null(got, [spec_col, norm_col])
        if not len(got):
            continue
        norms = got[norm_col].to_numpy()
        norms = np.where(norms > 0, norms, 1.0)  # a zero Hessian's eigenvalues stay at 0
        scaled = [np.asarray(s) / n for s, n in zip(got[spec_col], norms, strict=True)]
        g = pd.DataFrame({"numeric_type": got["numeric_type"].astype(str), "scaled": scaled})
        title = f"dims {fmt_tuple(arch)}, N = {len(scaled[0])}"
        panels.append((title, g))
    return panels


def spectra_section(run_dir: Path, df: pd.DataFrame, out: Path, has_spectra: bool) -> Section:
    """Index and nullity by type, spectral densities, eig_min_w vs escape curvature.

    ``has_spectra`` says whether the run's shards have the ``spectrum_w`` column.
    """
    sec = Section("spectra", "Hessian spectra")
    _add_inertia(sec, df, out)
    _add_spectral_density(sec, run_dir, df, out, has_spectra)
    _add_escape(sec, df, out)
    return sec


def _add_inertia(sec: Section, df: pd.DataFrame, out: Path) -> None:
    """Inertia (n_neg, n_zero) of the whitened Hessian by numeric type: figure and table."""
    inert, dropped = an.drop_null(df, ["n_neg", "n_zero", "N"])
    if dropped:
        sec.add(p(f"{dropped} points have no inertia (spectrum-free run, not audited); left out."))
    if len(inert):
        figures.inertia(inert, out / "inertia.png")
        summ = (
            inert.assign(
                zero_frac=inert["n_zero"] / inert["N"],
                numeric_type=inert["numeric_type"].astype(str),
            )
            .groupby("numeric_type")
            .agg(
                points=("n_neg", "size"),
                n_neg_min=("n_neg", "min"),
                n_neg_median=("n_neg", "median"),
                n_neg_max=("n_neg", "max"),
                n_zero_min=("n_zero", "min"),
                n_zero_median=("n_zero", "median"),
                n_zero_max=("n_zero", "max"),
                n_zero_over_N_median=("zero_frac", "median"),
            )
            .reset_index()
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


def _add_spectral_density(
    sec: Section, run_dir: Path, df: pd.DataFrame, out: Path, has_spectra: bool
) -> None:
    """Densities of the normalised whitened spectra, or a note that none are stored."""
    panels = _spectral_panels(run_dir, df) if has_spectra else []
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


def _add_escape(sec: Section, df: pd.DataFrame, out: Path) -> None:
    """eig_min_w against the escape certificate's curvature of theory-strict saddles."""
    esc, dropped_e = an.drop_null(
        df[df["theory_type"].astype(str) == "strict_saddle"], ["escape_curvature", "eig_min_w"]
    )
    if len(esc):
        esc = esc.assign(
            kind=np.where(
                esc["open_h1"].notna(), "open layer pair (S = [s])", "rotation (S not a top set)"
            )
        )
        figures.escape(esc, out / "escape.png")
        over = int((esc["eig_min_w"] > esc["escape_curvature"] + esc["tol_zero"]).sum())
        sec.add(
            p(
                f"{len(esc)} theory-strict saddles with a certificate"
                + (f" ({dropped_e} without eig_min_w or certificate left out)" if dropped_e else "")
                + ". The certificate's curvature is a Rayleigh quotient of the whitened Hessian, "
                f"so eig_min_w ≤ escape_curvature: {over} points exceed it by more than tol_zero."
            ),
            figure("escape.png", "eig_min_w vs escape curvature"),
        )


def strata_section(df: pd.DataFrame, out: Path) -> Section:
    """n_neg / n_zero per (architecture, S, rank profile), non-constant strata flagged."""
    sec = Section("strata", "Stratified inertia: architecture × S × rank profile")
    sec.add(note(DESIGN_NOTE))
    inert, dropped = an.drop_null(df, ["n_neg", "n_zero"])
    if dropped:
        sec.add(p(f"{dropped} points without inertia left out."))
    st = an.strata(inert)
    shown = st.assign(
        dims=st["dims"].map(fmt_tuple),
        S=st["S"].map(lambda v: fmt_tuple(v, braces=True)),
        ranks=st["ranks"].map(fmt_tuple),
    )
    flagged = shown[~shown["constant"]]
    flagged.to_csv(out / "strata_flagged.csv", index=False)
    multi = int((st["n"] > 1).sum())
    sec.add(
        p(
            "A stratum is one architecture (d_0, …, d_H), one index set S and one rank profile "
            "(numerical ranks of all partial products W_{a:b}, in the order of the ranks "
            "column). Within a stratum n_neg, n_zero and the numeric type are expected to be "
            "constant; strata where they vary are flagged (red rows)."
        ),
        p(
            f"{len(st)} strata; {multi} hold two or more points (these alone can be checked); "
            f"{len(flagged)} are not constant (all in strata_flagged.csv)."
        ),
    )
    if len(flagged):
        sec.add(
            p("Non-constant strata:"),
            table(flagged, flag=[True] * len(flagged), max_rows=MAX_LISTED),
        )
    largest = shown.head(25)
    sec.add(p("The 25 largest strata:"), table(largest, flag=~largest["constant"].to_numpy()))
    return sec
