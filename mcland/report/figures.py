"""The report's figures (matplotlib, object API: no pyplot state, no display needed).

Each function draws one PNG from tidy inputs and returns nothing; none reads a run.
Histograms are drawn from counts per value (the report aggregates, never loads, a run),
scatter plots from bounded samples with the counts of all points in their legends.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from PIL import Image

from mcland.stats import TYPES

COLORS = {
    "global_minimizer": "#2ca02c",
    "strict_saddle": "#d62728",
    "non_strict_saddle": "#1f77b4",
    "not_critical": "#7f7f7f",
    "ambiguous": "#ff7f0e",
}
LABELS = {
    "global_minimizer": "global minimizer",
    "strict_saddle": "strict saddle",
    "non_strict_saddle": "non-strict saddle",
    "not_critical": "not critical",
    "ambiguous": "ambiguous",
}
LINESTYLES = {t: "--" if t == "non_strict_saddle" else "-" for t in COLORS}  # see overlaps
DPI = 110


def _save(fig: Figure, path: Path) -> None:
    """Write ``fig`` as a 256-colour PNG (a third of the size, no visible loss for plots)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    buf.seek(0)
    with Image.open(buf) as im:
        im.convert("RGB").quantize(colors=256).save(path, format="PNG", optimize=True)


def present_types(types: Sequence[str]) -> list[str]:
    """The three main types, plus ``not_critical`` / ``ambiguous`` if they occur."""
    seen = set(types)
    return [t for t in TYPES if t in seen or t in TYPES[:3]]


def fractions(tidy_h: pd.DataFrame, tidy_r: pd.DataFrame, path: Path) -> None:
    """Fraction of each numeric type vs depth H and vs bottleneck r, 95% Wilson bars.

    Parameters
    ----------
    tidy_h, tidy_r : DataFrame
        Output of :func:`mcland.stats.type_fractions` by ``H`` and by ``r``.
    path : Path
        PNG to write.
    """
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    seen = set(tidy_h.loc[tidy_h["count"] > 0, "type"])
    for ax, tidy, col, xlabel in (
        (axes[0], tidy_h, "H", "depth H (number of layers)"),
        (axes[1], tidy_r, "r", "bottleneck width r = min_h d_h"),
    ):
        for k, t in enumerate(present_types(seen)):
            g = tidy[tidy["type"] == t].sort_values(col)
            x = g[col].to_numpy(float) + (k - 1) * 0.06  # small offsets keep bars apart
            f = g["fraction"].to_numpy()
            err = np.vstack([f - g["lo"].to_numpy(), g["hi"].to_numpy() - f])
            ax.errorbar(
                x, f, yerr=err, marker="o", ms=4, capsize=3, color=COLORS[t], label=LABELS[t]
            )
        ax.set_xlabel(xlabel)
        ax.set_xticks(sorted(tidy[col].unique()))
        ax.grid(alpha=0.3)
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("fraction of points (numeric type)")
    axes[0].set_title("type fractions vs depth")
    axes[1].set_title("type fractions vs bottleneck width")
    axes[1].legend(loc="upper right", fontsize=9, title="95% Wilson intervals", title_fontsize=8)
    _save(fig, path)


def positions_heatmap(counts: pd.DataFrame, path: Path) -> None:
    """Which enumerated critical value (ascending position) the losses match, per (d_y, r).

    Parameters
    ----------
    counts : DataFrame
        Index: row labels (one per ``(d_y, r)`` group); columns: positions 0..K_max-1;
        values: fraction of the group's points at that position, NaN where the group's set
        has fewer values.
    path : Path
        PNG to write.
    """
    n_rows, n_cols = counts.shape
    width = min(13.0, max(8.0, 3.5 + 0.35 * n_cols))
    fig = Figure(figsize=(width, 2.2 + 0.4 * n_rows), layout="constrained")
    ax = fig.subplots()
    vals = counts.to_numpy(float)
    zero = np.where(vals == 0, 1.0, np.nan)  # enumerated but never reached
    masked = np.ma.masked_where(~(vals > 0), vals)
    im = ax.imshow(masked, aspect="auto", cmap="viridis", norm=LogNorm(vmin=1e-4, vmax=1))
    ax.imshow(zero, aspect="auto", cmap="Reds", vmin=0, vmax=1.2, alpha=0.9)
    ax.set_yticks(range(n_rows), counts.index)
    ax.set_xticks(range(n_cols))
    ax.set_xlabel("position of the matched value in the ascending enumerated set (0 = L*)")
    ax.set_title(
        "critical values reached, per (d_y, r)\n"
        "white: beyond the set's size; red: in the set but never reached"
    )
    cb = fig.colorbar(im, ax=ax)
    cb.set_label("fraction of the group's points")
    _save(fig, path)


def inertia(hist: dict[str, pd.DataFrame], path: Path) -> None:
    """Distributions of the index ``n_neg`` and of ``n_zero`` by numeric type.

    Parameters
    ----------
    hist : dict
        ``hist["n_neg"]`` and ``hist["n_zero"]``: DataFrames of ``numeric_type``, ``value``
        and ``n`` (the number of points of that type with that value), the histogram of
        the column by type (values without nulls).
    path : Path
        PNG to write.
    """
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    seen = hist["n_neg"].loc[hist["n_neg"]["n"] > 0, "numeric_type"].astype(str)
    types = [t for t in present_types(seen) if (seen == t).any()]
    for ax, col, xlabel in (
        (axes[0], "n_neg", "index n_neg (negative Hessian eigenvalues)"),
        (axes[1], "n_zero", "n_zero (zero Hessian eigenvalues)"),
    ):
        h = hist[col]
        hi = int(h["value"].max()) if len(h) else 0
        bins = np.arange(-0.5, hi + 1.5, max(1, (hi + 1) // 60))
        for t in types:
            g = h[h["numeric_type"] == t]
            ax.hist(
                g["value"].to_numpy(float),
                bins=bins,
                weights=g["n"].to_numpy(float),
                histtype="step",
                lw=1.6,
                ls=LINESTYLES[t],
                color=COLORS[t],
                label=f"{LABELS[t]} ({int(g['n'].sum())})",
            )
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("number of points")
        ax.grid(alpha=0.3)
    axes[0].set_title("Hessian index by type")
    axes[1].set_title("Hessian nullity by type")
    axes[0].legend(fontsize=9)
    axes[1].legend(fontsize=9)
    _save(fig, path)


def spectral_density(panels: list[tuple[str, pd.DataFrame]], path: Path) -> None:
    """Pooled eigenvalue histograms (scaled by each point's Hessian norm), by type.

    Parameters
    ----------
    panels : list of (title, DataFrame)
        One panel per architecture: ``numeric_type`` and ``scaled`` (an array per point of
        eigenvalues of the whitened Hessian divided by its Frobenius norm ``||∇²L_w||_F``).
    path : Path
        PNG to write.
    """
    lin = 1e-6
    edges = np.concatenate(
        [-np.logspace(0, -6, 25), np.linspace(-lin, lin, 5)[1:-1], np.logspace(-6, 0, 25)]
    )
    fig = Figure(figsize=(5.2 * len(panels), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True))
    for ax, (title, g) in zip(axes, panels, strict=True):
        for t in present_types(g["numeric_type"].astype(str)):
            rows = g[g["numeric_type"] == t]
            if not len(rows):
                continue
            ev = np.concatenate(rows["scaled"].to_list())
            w = np.full(ev.size, 1.0 / len(rows))  # eigenvalues per point
            ax.hist(
                np.clip(ev, -1, 1),
                bins=edges,
                weights=w,
                histtype="step",
                lw=1.6,
                color=COLORS[t],
                label=f"{LABELS[t]} ({len(rows)} pts)",
            )
        ax.set_xscale("symlog", linthresh=lin)
        ax.set_yscale("log")
        ax.set_xlim(-1, 1)
        ax.set_xticks([-1, -1e-2, -1e-4, 0, 1e-4, 1e-2, 1])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("whitened eigenvalue / ||∇²L_w||_F (symlog, linear within ±1e-6)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    axes[0].set_ylabel("eigenvalues per point, per bin")
    _save(fig, path)


def escape(
    df: pd.DataFrame,
    path: Path,
    counts: dict[str, int] | None = None,
    limits: tuple[float, float] | None = None,
) -> None:
    """``-eig_min_w`` against ``-escape_curvature`` for theory-strict saddles (log-log).

    Parameters
    ----------
    df : DataFrame
        ``eig_min_w``, ``escape_curvature`` (both negative) and ``kind`` (label of the
        certificate: open layer pair or rotation): the points drawn.
    path : Path
        PNG to write.
    counts : dict, optional
        Points of each kind in the run (default: those of ``df``), for the legend.
    limits : (lo, hi), optional
        Smallest and largest of ``-escape_curvature`` and ``-eig_min_w`` over the run
        (default: over ``df``), for the diagonal.
    """
    fig = Figure(figsize=(6, 5.2), layout="constrained")
    ax = fig.subplots()
    # rotations first, so the open-pair points (the far outliers) stay visible on top
    for kind, marker, color in (
        ("rotation (S not a top set)", "^", "#1f77b4"),
        ("open layer pair (S = [s])", "o", "#ff7f0e"),
    ):
        g = df[df["kind"] == kind]
        n = len(g) if counts is None else counts.get(kind, 0)
        shown = "" if n == len(g) else f" ({len(g):,} drawn)"
        ax.scatter(
            -g["escape_curvature"],
            -g["eig_min_w"],
            s=6,
            alpha=0.4,
            marker=marker,
            color=color,
            label=f"{kind}: {n}{shown}",
        )
    if limits is None:
        vals = -df[["escape_curvature", "eig_min_w"]].to_numpy()
        limits = (
            float(np.nanmin(vals)) if len(df) else 1e-3,
            float(np.nanmax(vals)) if len(df) else 1.0,
        )
    lo, hi = limits
    lo, hi = max(lo, 1e-300) / 2, hi * 2
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="eig_min_w = escape curvature")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("-escape_curvature (certificate, whitened Rayleigh quotient)")
    ax.set_ylabel("-eig_min_w (smallest whitened Hessian eigenvalue)")
    ax.set_title(
        "strict saddles: eig_min_w <= escape curvature < 0\n(points on or above the diagonal)"
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    _save(fig, path)
