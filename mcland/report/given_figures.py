"""Figures of the report of a ``classify`` run (matplotlib object API, as
:mod:`mcland.report.figures`): each draws one PNG from tidy inputs; none reads a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mcland.report.figures import COLORS, LABELS, _save, present_types

DISTANCE_FLOOR = 1e-6  # nearest-value distances (loss_tol units) below it drawn at it
MOVE_FLOOR = 1e-18  # refine distances (relative) below it, e.g. 0 for unmoved points, drawn at it


def distance_edges(top: float) -> np.ndarray:
    """The bin edges of :func:`nearest_distance` for a largest distance ``top`` (>= 1)."""
    return np.logspace(np.log10(DISTANCE_FLOOR), np.ceil(np.log10(top)) + 0.5, 40)


def nearest_distance(edges: np.ndarray, counts: dict[str, np.ndarray], path: Path) -> None:
    """Histogram of the distance from each loss to the nearest enumerated critical value,
    in units of ``loss_tol`` (log scale), one step curve per numeric type.

    Parameters
    ----------
    edges : ndarray
        Bin edges (:func:`distance_edges`).
    counts : dict
        Per numeric type: the points per bin of their distance, drawn at
        ``DISTANCE_FLOOR`` when smaller.
    path : Path
        PNG to write.
    """
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.subplots()
    for t in present_types(list(counts)):
        n = counts.get(t)
        if n is not None and n.sum():
            ax.hist(
                edges[:-1],
                bins=edges,
                weights=np.asarray(n, float),
                histtype="step",
                lw=1.6,
                color=COLORS[t],
                label=f"{LABELS[t]} ({int(n.sum())})",
            )
    ax.axvline(1.0, color="k", ls="--", lw=1, label="loss_tol (a match)")
    ax.set_xscale("log")
    ax.set_xlabel(
        f"|loss − nearest enumerated critical value| / loss_tol (values < {DISTANCE_FLOOR:g}, "
        "zero included, drawn at it)"
    )
    ax.set_ylabel("number of points")
    ax.set_title("distance to the nearest critical value, by numeric type")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def refine(
    df: pd.DataFrame,
    tidy: pd.DataFrame,
    path: Path,
    counts: tuple[int, int] | None = None,
) -> None:
    """Refinement: distance moved against the input's relative gradient (log-log), and
    the converged fraction per decade of that gradient.

    Parameters
    ----------
    df : DataFrame
        ``input_grad_rel``, ``refine_distance_rel``, ``refine_converged`` (no nulls): the
        points drawn.
    tidy : DataFrame
        Per decade: ``decade`` (log10 of its lower end), ``fraction``, ``lo``, ``hi``,
        ``count``, ``total`` (:func:`mcland.report.given.refine_by_decade`).
    path : Path
        PNG to write.
    counts : (converged, not converged), optional
        The points of the run (default: those of ``df``), for the legend.
    """
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    axes = fig.subplots(1, 2)
    ax = axes[0]
    conv = df["refine_converged"].to_numpy(bool)
    g = np.maximum(df["input_grad_rel"].to_numpy(float), MOVE_FLOOR)
    moved = np.maximum(df["refine_distance_rel"].to_numpy(float), MOVE_FLOOR)
    totals = (int(conv.sum()), int((~conv).sum())) if counts is None else counts
    for mask, color, marker, label, total in (
        (conv, "#2ca02c", "o", "converged", totals[0]),
        (~conv, "#d62728", "x", "not converged", totals[1]),
    ):
        shown = "" if total == int(mask.sum()) else f", {int(mask.sum()):,} drawn"
        ax.scatter(
            g[mask],
            moved[mask],
            s=14,
            color=color,
            marker=marker,
            alpha=0.7,
            label=f"{label} ({total}{shown})",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("input_grad_rel (relative gradient of the point as given)")
    ax.set_ylabel(f"‖w_refined − w‖ / ‖w‖ (< {MOVE_FLOOR:g} at it)")
    ax.set_title("distance moved by the refinement")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax = axes[1]
    f = tidy["fraction"].to_numpy(float)
    err = np.vstack([f - tidy["lo"].to_numpy(float), tidy["hi"].to_numpy(float) - f])
    x = 10.0 ** (tidy["decade"].to_numpy(float) + 0.5)
    ax.errorbar(x, f, yerr=err, marker="o", capsize=3, color="#2ca02c")
    for xi, n in zip(x, tidy["total"], strict=True):
        ax.annotate(f"n={n}", (xi, 0.02), ha="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("input_grad_rel (decades)")
    ax.set_ylabel("fraction converged (95% Wilson intervals)")
    ax.set_title("refinement converged, per decade of the input gradient")
    ax.grid(alpha=0.3)
    _save(fig, path)
