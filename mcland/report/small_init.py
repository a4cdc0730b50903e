"""The sections of the report of a ``small_init`` dynamics run: the plateaus' losses
against the enumerated critical values, the sequences of visited index sets S, and the
plateau durations against the initialisation scale eps."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from mcland.report import dynamics_figures
from mcland.report.html import Section, figure, p, table
from mcland.report.sections import fmt_tuple
from mcland.stats import median_interval

MAX_SEQUENCES = 20  # most frequent visited-S sequences listed in the page
MATCH = 1.0  # a plateau loss within MATCH * loss_tol of a critical value matches it


def sections(df: pd.DataFrame, out: Path) -> list[Section]:
    """The small-initialisation experiment's sections, in page order."""
    pl = plateau_table(df)
    return [values_section(pl, out), visited_section(df, out), durations_section(pl, out)]


def plateau_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per plateau of every run: its run's ``sample_id``, ``H``, ``eps``, ``eta``, its
    ``position`` in the run (1 = first), the plateau's fields (docs/dynamics.md) and
    ``duration = (t_end − t_start) / eta``."""
    rows = []
    for rec in df[["sample_id", "H", "eps", "eta", "plateaus"]].itertuples(index=False):
        for k, pl in enumerate([] if rec.plateaus is None else rec.plateaus, start=1):
            rows.append(
                {
                    "sample_id": rec.sample_id,
                    "H": rec.H,
                    "eps": rec.eps,
                    "eta": rec.eta,
                    "position": k,
                    **pl,
                }
            )
    cols = [
        "sample_id",
        "H",
        "eps",
        "eta",
        "position",
        "t_start",
        "t_end",
        "loss",
        "t_min_grad",
        "grad_min",
        "value_index",
        "value",
        "dist_tol",
        "S",
        "eig_min",
        "numeric_type",
    ]
    pl = pd.DataFrame(rows, columns=cols)
    return pl.assign(duration=(pl["t_end"] - pl["t_start"]) / pl["eta"])


def values_section(pl: pd.DataFrame, out: Path) -> Section:
    """Plateau losses against the nearest enumerated critical values."""
    sec = Section("plateau-values", "Plateau losses against critical values")
    if not len(pl):
        sec.add(p("No plateau was detected in any run."))
        return sec
    dynamics_figures.plateau_values(pl, out / "plateau_values.png")
    rows = []
    for k, g in [*pl.groupby("position", sort=True), ("all", pl)]:
        d = g["dist_tol"].to_numpy(float)
        med, lo, hi = median_interval(d)
        rows.append(
            {
                "plateau": k,
                "count": len(g),
                f"within {MATCH:g} loss_tol": int((d <= MATCH).sum()),
                "median dist_tol": med,
                "95% interval": f"[{lo:.3g}, {hi:.3g}]",
                "eig_min < 0": int((g["eig_min"] < 0).sum()),
            }
        )
    sec.add(
        p(
            "Each plateau's loss (at its point of smallest gradient) against the nearest "
            "value of the point's enumerated set, and their distance in units of loss_tol "
            "(dist_tol). A plateau is a stretch where the loss decrease per unit of log time, "
            "t ‖∇L‖², stays below plateau_threshold · λ_r (docs/dynamics.md); its loss sits "
            "near the critical value of a saddle only up to how close the flow passes to it, "
            "so dist_tol of a plateau is often far above 1 at larger eps. 'eig_min < 0': "
            "plateaus whose smallest Hessian eigenvalue there is negative (strict-saddle-like)."
        ),
        figure("plateau_values.png", "plateau losses against critical values"),
        table(pd.DataFrame(rows), scroll=False, floatfmt="{:.3g}"),
    )
    return sec


def sequence_text(visited: object) -> str:
    """``{} → {1} → {1, 2}`` from a ``visited_S`` cell."""
    seq = [] if visited is None else list(visited)
    return " → ".join(fmt_tuple(s, braces=True) for s in seq)


def in_order(visited: object) -> bool:
    """Whether the sets visited are top sets ``{1..k}`` with ``k`` strictly increasing
    (``{}`` allowed first): the staircase in order."""
    sizes = []
    for s in [] if visited is None else list(visited):
        s = sorted(int(v) for v in np.asarray(s).ravel())
        if s != list(range(1, len(s) + 1)):
            return False
        sizes.append(len(s))
    return all(a < b for a, b in itertools.pairwise(sizes))


def visited_section(df: pd.DataFrame, out: Path) -> Section:
    """The most frequent sequences of visited S, with counts (all in visited.csv)."""
    sec = Section("visited", "Sequences of visited index sets S")
    seq = df["visited_S"].map(sequence_text)
    order = df["visited_S"].map(in_order)
    tab = (
        pd.DataFrame({"visited S": seq, "in order": order, "eps": df["eps"]})
        .groupby("visited S", sort=False)
        .agg(
            runs=("eps", "size"),
            in_order=("in order", "first"),
            eps=("eps", lambda e: " ".join(f"{v:.0e}" for v in sorted(set(e), reverse=True))),
        )
        .reset_index()
        .sort_values(["runs", "visited S"], ascending=[False, True])
        .rename(columns={"in_order": "staircase in order", "eps": "at eps"})
    )
    tab["share"] = (tab["runs"] / len(df)).map(lambda x: f"{x:.1%}")
    tab.to_csv(out / "visited.csv", index=False)
    sec.add(
        f'<p class="big">{int(order.sum())} of {len(df)} runs visit top sets '
        f"{{1}}, {{1, 2}}, … in order ({order.mean():.1%}).</p>",
        p(
            "visited_S: the S read off each plateau, then the S where the run settled, "
            "consecutive repeats merged ({} is W near 0). 'Staircase in order': every set is "
            "{1, ..., k} with k increasing, the saddle-to-saddle sequence of small "
            f"initialisation. The {min(MAX_SEQUENCES, len(tab))} most frequent of "
            f"{len(tab)} sequences (all in visited.csv):"
        ),
        table(tab, max_rows=MAX_SEQUENCES),
    )
    return sec


def durations_section(pl: pd.DataFrame, out: Path) -> Section:
    """Plateau durations against eps, by position in the run."""
    sec = Section("durations", "Plateau durations against the initialisation scale")
    pl = pl[pl["duration"] > 0]
    if not len(pl):
        sec.add(p("No plateau of positive duration."))
        return sec
    dynamics_figures.plateau_durations(pl, out / "plateau_durations.png")
    rows = []
    for (H, k, eps), g in pl.groupby(["H", "position", "eps"], sort=True):
        med, lo, hi = median_interval(g["duration"].to_numpy())
        rows.append(
            {
                "H": H,
                "plateau": k,
                "eps": f"{eps:.0e}",
                "count": len(g),
                "median": med,
                "95% interval": f"[{lo:.4g}, {hi:.4g}]",
            }
        )
    sec.add(
        p(
            "Duration t_end − t_start of each plateau in units of eta (the first plateau of "
            "a run starts at 0). Expected at small eps: linear in ln(1/eps) at depth 2, "
            "like eps^−(H−2) at depth H ≥ 3 (docs/dynamics.md). Medians with "
            "distribution-free 95% intervals (the range for 5 plateaus or fewer)."
        ),
        figure("plateau_durations.png", "plateau durations against eps"),
        table(pd.DataFrame(rows), scroll=False, floatfmt="{:.4g}"),
    )
    return sec
