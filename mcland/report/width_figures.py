"""The width section's figure (matplotlib, object API): type fractions and the Hessian
index against the largest hidden width.  Draws from tidy per-band inputs; reads no run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mcland.report.figures import COLORS, LABELS, _save, present_types


def width_axis(
    theory: pd.DataFrame, numeric: pd.DataFrame, bands: pd.DataFrame, path: Path
) -> None:
    """Type fractions (theory dashed, spectrum solid) and the index vs width band.

    Parameters
    ----------
    theory, numeric : DataFrame
        :func:`mcland.stats.type_fractions` per ``band`` (octave ``k``: widths ``2^k`` to
        ``2^(k+1) − 1``) of ``theory_type`` and of ``numeric_type``.
    bands : DataFrame
        :func:`mcland.report.width.band_table`: ``band``, ``N_median``, ``n_neg_median``,
        ``n_neg_max``, ``index_fraction_median``, ``index_per_width_median``.
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
    x = 2.0 ** (bands["band"].to_numpy(float) + 0.5)
    bx.plot(x, bands["n_neg_median"], "o-", color=COLORS["strict_saddle"],
            label="n_neg, strict saddles (median)")  # fmt: skip
    bx.plot(x, bands["n_neg_max"], "^:", color=COLORS["strict_saddle"],
            label="n_neg, strict saddles (largest)")  # fmt: skip
    bx.plot(x, bands["N_median"], "s--", color="#444444", label="N (median)")
    bx.set_xscale("log", base=2)
    bx.set_yscale("log")
    bx.set_xlabel("largest hidden width w (octave bands, log scale)")
    bx.set_ylabel("count")
    bx.grid(alpha=0.3)
    cx = bx.twinx()
    cx.plot(x, bands["index_fraction_median"], "d-.", color="#9467bd",
            label="n_neg / N, strict saddles (median, right)")  # fmt: skip
    cx.plot(x, bands["index_per_width_median"], "v-.", color="#8c564b",
            label="n_neg / w, strict saddles (median, right)")  # fmt: skip
    cx.set_yscale("log")
    cx.set_ylabel("n_neg / N and n_neg / w")
    bx.set_title("Hessian index vs width")
    h1, l1 = bx.get_legend_handles_labels()
    h2, l2 = cx.get_legend_handles_labels()
    bx.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left")
    _save(fig, path)
