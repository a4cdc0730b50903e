"""The width section's figure (matplotlib, object API): type fractions and the Hessian
index against the largest hidden width.  Draws from tidy per-band inputs; reads no run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from mcland.report.figures import COLORS, LABELS, _save, present_types


def width_axis(
    theory: pd.DataFrame,
    numeric: pd.DataFrame,
    bands: pd.DataFrame,
    by_depth: pd.DataFrame,
    path: Path,
) -> None:
    """Type fractions (theory dashed, spectrum solid) and the index per depth vs width band.

    Parameters
    ----------
    theory, numeric : DataFrame
        :func:`mcland.stats.type_fractions` per ``band`` (octave ``k``: widths ``2^k`` to
        ``2^(k+1) − 1``) of ``theory_type`` and of ``numeric_type``.
    bands : DataFrame
        :func:`mcland.report.width.band_table` (its ``band`` column sets the axis range).
    by_depth : DataFrame
        :func:`mcland.report.width.index_by_depth`: ``H``, ``band``, ``strict``,
        ``n_neg_median``.
    path : Path
        PNG to write.
    """
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    seen = set(numeric.loc[numeric["count"] > 0, "type"]) | set(
        theory.loc[theory["count"] > 0, "type"]
    )
    types = present_types(seen)
    for k, t in enumerate(types):
        for tidy, style, fill in ((numeric, "-", "full"), (theory, "--", "none")):
            g = tidy[tidy["type"] == t].sort_values("band")
            x = 2.0 ** (g["band"].to_numpy(float) + 0.5) * 2.0 ** ((k - 1) * 0.04)
            f = g["fraction"].to_numpy()
            err = np.vstack([f - g["lo"].to_numpy(), g["hi"].to_numpy() - f])
            ax.errorbar(
                x, f, yerr=err, marker="o", ms=4, capsize=3, color=COLORS[t], ls=style,
                fillstyle=fill, label=LABELS[t] + (" (spectrum)" if style == "-" else " (theory)"),
            )  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xlabel("largest hidden width w (octave bands, log scale)")
    ax.set_ylabel("fraction of points")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title("type fractions vs width (95% Wilson intervals)")
    ax.legend(fontsize=7, ncol=2)
    depths = sorted(by_depth["H"].unique())
    cmap = colormaps["viridis"]
    for i, H in enumerate(depths):
        g = by_depth[by_depth["H"] == H].sort_values("band")
        bx.plot(
            2.0 ** (g["band"].to_numpy(float) + 0.5),
            g["n_neg_median"],
            "o-",
            color=cmap(i / max(len(depths) - 1, 1)),
            label=f"H = {H} ({int(g['strict'].sum())} strict saddles)",
        )
    lo, hi = 2.0 ** float(bands["band"].min()), 2.0 ** float(bands["band"].max() + 1)
    bx.plot([lo, hi], [lo, hi], ":", color="#777777", label="n_neg = w")
    bx.set_xscale("log", base=2)
    bx.set_yscale("log")
    bx.set_xlabel("largest hidden width w (octave bands, log scale)")
    bx.set_ylabel("index n_neg of the strict saddles (median)")
    bx.grid(alpha=0.3)
    bx.set_title("Hessian index vs width, per depth")
    bx.legend(fontsize=7, loc="upper left")
    _save(fig, path)
