"""The sections of the report of a ``small_init`` dynamics run: the plateaus' losses
against the enumerated critical values, the sequences of visited index sets S, and the
plateau durations against the initialisation scale eps.

The plateaus are the view ``plateaus_v`` of the run (one row per plateau, ``unnest`` of
the ``plateaus`` column in DuckDB): counts and exact medians are computed there, the
histogram is binned batch by batch and the scatter plots draw the first
:data:`~mcland.report.landscape.MAX_SCATTER` plateaus."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from mcland.report import dynamics_figures
from mcland.report.html import Section, figure, p, table
from mcland.report.landscape import MAX_SCATTER
from mcland.report.sections import fmt_tuple
from mcland.rundir.scan import Scan
from mcland.stats import median_intervals

MAX_SEQUENCES = 20  # most frequent visited-S sequences listed in the page
MATCH = 1.0  # a plateau loss within MATCH * loss_tol of a critical value matches it
PLATEAUS = "plateaus_v"


def sections(scan: Scan, out: Path) -> list[Section]:
    """The small-initialisation experiment's sections, in page order."""
    plateau_view(scan)
    return [values_section(scan, out), visited_section(scan, out), durations_section(scan, out)]


def plateau_view(scan: Scan) -> None:
    """Create the view :data:`PLATEAUS`: one row per plateau of every run, with its run's
    ``sample_id``, ``H``, ``eps``, ``eta``, ``_order``, its ``position`` in the run (1 =
    first), the plateau's fields (docs/dynamics.md) and ``duration = (t_end − t_start) /
    eta``."""
    fields = ["t_start", "t_end", "loss", "t_min_grad", "grad_min", "value_index", "value",
              "dist_tol", "eig_min"]  # fmt: skip
    cols = ", ".join(f"p.{f} AS {f}" for f in fields)
    scan.con.execute(
        f"""CREATE OR REPLACE TEMP VIEW {PLATEAUS} AS
        SELECT sample_id, H, eps, eta, _order, position, {cols},
               (p.t_end - p.t_start) / eta AS duration
        FROM (SELECT sample_id, H, eps, eta, _order, unnest(plateaus) AS p,
                     generate_subscripts(plateaus, 1) AS position
              FROM records WHERE plateaus IS NOT NULL)"""
    )


def _dist_histogram(scan: Scan) -> tuple[np.ndarray, np.ndarray]:
    """The bin edges and counts of the histogram of ``max(dist_tol, 1e-3)`` over all
    plateaus (:func:`~mcland.report.dynamics_figures.plateau_values`), batch by batch."""
    top = scan.scalar(f"SELECT max(greatest(dist_tol, 1e-3)) FROM {PLATEAUS}")
    edges = dynamics_figures.dist_edges(float(top))
    counts = np.zeros(edges.size - 1, np.int64)
    for batch in scan.batches(f"SELECT dist_tol FROM {PLATEAUS}"):
        d = np.maximum(batch.column(0).to_numpy().astype(float), 1e-3)
        counts += np.histogram(d, bins=edges)[0]
    return edges, counts


def values_section(scan: Scan, out: Path) -> Section:
    """Plateau losses against the nearest enumerated critical values."""
    sec = Section("plateau-values", "Plateau losses against critical values")
    n = int(scan.scalar(f"SELECT count(*) FROM {PLATEAUS}"))
    if not n:
        sec.add(p("No plateau was detected in any run."))
        return sec
    drawn = scan.df(
        f"SELECT position, value, loss FROM {PLATEAUS} ORDER BY _order, position "
        f"LIMIT {MAX_SCATTER}"
    )
    lo, hi = scan.one(
        "SELECT least(min(value) FILTER (NOT isnan(value)), min(loss) FILTER (NOT isnan(loss))), "
        "greatest(max(value) FILTER (NOT isnan(value)), max(loss) FILTER (NOT isnan(loss))) "
        f"FROM {PLATEAUS}"
    )
    dynamics_figures.plateau_values(
        drawn, out / "plateau_values.png", limits=(lo, hi), hist=_dist_histogram(scan)
    )
    stats = scan.df(
        f"SELECT position, count(*) AS n, count(*) FILTER (dist_tol <= {MATCH!r}) AS within, "
        f"count(*) FILTER (eig_min < 0) AS neg FROM {PLATEAUS} GROUP BY ALL ORDER BY ALL"
    )
    every = scan.df(
        f"SELECT count(*) AS n, count(*) FILTER (dist_tol <= {MATCH!r}) AS within, "
        f"count(*) FILTER (eig_min < 0) AS neg FROM {PLATEAUS}"
    )
    med = median_intervals(scan, "dist_tol", "TRUE", ["position"], PLATEAUS)
    med_all = median_intervals(scan, "dist_tol", "TRUE", [], PLATEAUS)
    rows = []
    groups = [(int(r.position), r) for r in stats.itertuples(index=False)]
    for k, r in [*groups, ("all", next(every.itertuples(index=False)))]:
        m = med_all if k == "all" else med[med["g0"] == k]
        if len(m):
            a, b, c = (float(m[x].iloc[0]) for x in ("median", "lo", "hi"))
        else:
            a = b = c = np.nan
        rows.append(
            {
                "plateau": k,
                "count": int(r.n),
                f"within {MATCH:g} loss_tol": int(r.within),
                "median dist_tol": a,
                "95% interval": f"[{b:.3g}, {c:.3g}]",
                "eig_min < 0": int(r.neg),
            }
        )
    sampled = (
        f" The scatter draws the first {MAX_SCATTER:,} of {n:,} plateaus; the histogram counts all."
        if n > MAX_SCATTER
        else ""
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
            + sampled
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


def visited_section(scan: Scan, out: Path) -> Section:
    """The most frequent sequences of visited S, with counts (all in visited.csv)."""
    sec = Section("visited", "Sequences of visited index sets S")
    n = scan.count()
    got = scan.df(
        "SELECT visited_S AS v, count(*) AS runs, min(_order) AS first, "
        "list(DISTINCT eps) AS eps FROM records GROUP BY visited_S ORDER BY first"
    )
    seqs: dict[str, list] = {}  # text -> [runs, in order, eps]; None and [] read alike
    for v, runs, eps in zip(got["v"], got["runs"], got["eps"], strict=True):
        text = sequence_text(v)
        entry = seqs.setdefault(text, [0, in_order(v), set()])
        entry[0] += int(runs)
        entry[2] |= {float(e) for e in eps}
    tab = pd.DataFrame(
        {
            "visited S": list(seqs),
            "runs": [e[0] for e in seqs.values()],
            "staircase in order": [e[1] for e in seqs.values()],
            "at eps": [
                " ".join(f"{v:.0e}" for v in sorted(e[2], reverse=True)) for e in seqs.values()
            ],
        }
    ).sort_values(["runs", "visited S"], ascending=[False, True])
    tab["share"] = (tab["runs"] / n).map(lambda x: f"{x:.1%}")
    tab.to_csv(out / "visited.csv", index=False)
    n_order = int(tab.loc[tab["staircase in order"], "runs"].sum())
    read = "the S read off each plateau"  # runs up to 0.7 (no ``visits``)
    if int(scan.df("SELECT count(visits) AS c FROM records")["c"].iloc[0]) > 0:
        read = (
            "the S of each visit where the flow dwelt (docs/dynamics.md, 'Dwells and "
            "transits'; in runs of 0.8.0, every visit)"
        )
    sec.add(
        f'<p class="big">{n_order} of {n} runs visit top sets '
        f"{{1}}, {{1, 2}}, … in order ({n_order / n:.1%}).</p>",
        p(
            f"visited_S: {read}, then the S where the run settled, "
            "consecutive repeats merged ({} is W near 0). 'Staircase in order': every set is "
            "{1, ..., k} with k increasing, the saddle-to-saddle sequence of small "
            f"initialisation. The {min(MAX_SEQUENCES, len(tab))} most frequent of "
            f"{len(tab)} sequences (all in visited.csv):"
        ),
        table(tab, max_rows=MAX_SEQUENCES),
    )
    return sec


def durations_section(scan: Scan, out: Path) -> Section:
    """Plateau durations against eps, by position in the run."""
    sec = Section("durations", "Plateau durations against the initialisation scale")
    positive = "duration > 0"
    n = int(scan.scalar(f"SELECT count(*) FROM {PLATEAUS} WHERE {positive}"))
    if not n:
        sec.add(p("No plateau of positive duration."))
        return sec
    med = median_intervals(scan, "duration", positive, ["H", "position", "eps"], PLATEAUS)
    med.columns = ["H", "position", "eps", *med.columns[3:]]
    drawn = scan.df(
        f"SELECT H, position, eps, duration FROM {PLATEAUS} WHERE {positive} "
        f"ORDER BY _order, position LIMIT {MAX_SCATTER}"
    )
    dynamics_figures.plateau_durations(drawn, out / "plateau_durations.png", medians=med)
    rows = [
        {
            "H": r.H,
            "plateau": r.position,
            "eps": f"{r.eps:.0e}",
            "count": int(r.n),
            "median": float(r.median),
            "95% interval": f"[{r.lo:.4g}, {r.hi:.4g}]",
        }
        for r in med.itertuples(index=False)
    ]
    sampled = (
        f" The dots are the first {MAX_SCATTER:,} of {n:,} plateaus; the medians are of all."
        if n > MAX_SCATTER
        else ""
    )
    sec.add(
        p(
            "Duration t_end − t_start of each plateau in units of eta (the first plateau of "
            "a run starts at 0). Expected at small eps: linear in ln(1/eps) at depth 2, "
            "like eps^−(H−2) at depth H ≥ 3 (docs/dynamics.md). Medians with "
            "distribution-free 95% intervals (the range for 5 plateaus or fewer)." + sampled
        ),
        figure("plateau_durations.png", "plateau durations against eps"),
        table(pd.DataFrame(rows), scroll=False, floatfmt="{:.4g}"),
    )
    return sec
