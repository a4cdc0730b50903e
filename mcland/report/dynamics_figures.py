"""Figures of the report of a ``dynamics`` run (matplotlib object API, as
:mod:`mcland.report.figures`): each draws one PNG from tidy inputs; none reads a run.

Times are in units of each run's ``eta`` (docs/dynamics.md): plain-GD steps at the
stable rate, comparable across points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from mcland.report.figures import COLORS, LABELS, _save

MAX_VALUE_LINES = 24  # critical values drawn per loss-curve panel (those in its range)


@dataclass
class CurvePanel:
    """One panel of :func:`loss_curves`: the runs of one point.

    Attributes
    ----------
    title : str
    curves : list of (label, t, loss)
        ``t`` (K,) in units of eta, ``loss`` (K,) (NaN after the run stopped).
    values : ndarray (n_values,)
        The point's enumerated critical values (horizontal lines).
    marks : dict of str to float
        Other levels drawn dashed (e.g. ``L(W*)``, the escape level).
    """

    title: str
    curves: list[tuple[str, np.ndarray, np.ndarray]]
    values: np.ndarray
    marks: dict[str, float] = field(default_factory=dict)


def loss_curves(panels: list[CurvePanel], path: Path) -> None:
    """Loss against time (log) for a few points, enumerated critical values as horizontal
    lines (the staircase); one panel per point, one curve per delta or eps."""
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(5.0 * cols, 3.9 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        cmap = colormaps["viridis"]
        finite = np.concatenate([c[2][np.isfinite(c[2])] for c in panel.curves] + [[]])
        if not finite.size:  # no recorded loss (a run that failed at once)
            finite = np.asarray(panel.values, float)[:1] if len(panel.values) else np.zeros(1)
        lo, hi = float(finite.min()), float(finite.max())
        pad = 0.06 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
        lo, hi = lo - pad, hi + pad
        shown = [v for v in np.asarray(panel.values, float) if lo <= v <= hi]
        for v in shown[:MAX_VALUE_LINES]:
            ax.axhline(v, color="0.55", lw=0.8, zorder=0)
        for name, level in panel.marks.items():
            if np.isfinite(level):
                ax.axhline(level, color="k", ls=":", lw=1, label=name)
        for k, (label, t, loss) in enumerate(panel.curves):
            color = cmap(k / max(len(panel.curves) - 1, 1))
            ax.plot(t, loss, color=color, lw=1.6, label=label)
        ax.set_xscale("log")
        ax.set_ylim(lo, hi)
        ax.set_title(panel.title, fontsize=9)
        ax.set_xlabel("flow time / eta (plain-GD steps)")
        ax.set_ylabel("loss L(W(t))")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle("loss curves; grey lines: the point's enumerated critical values in range")
    _save(fig, path)


def escape_times(runs: pd.DataFrame, tidy: pd.DataFrame, path: Path) -> None:
    """Escape time (plain-GD steps) against delta, log-log, by the point's theory type:
    each run faint, medians with their 95% intervals bold.

    Parameters
    ----------
    runs : DataFrame
        ``delta``, ``gd_steps`` (finite), ``theory_type``.
    tidy : DataFrame
        ``theory_type``, ``delta``, ``median``, ``lo``, ``hi`` (:func:`mcland.report.escape.medians`).
    path : Path
        PNG to write.
    """
    fig = Figure(figsize=(7.2, 5.0), layout="constrained")
    ax = fig.subplots()
    for t, g in runs.groupby(runs["theory_type"].astype(str), sort=True):
        color = COLORS.get(t, "k")
        ax.scatter(g["delta"], g["gd_steps"], s=8, alpha=0.25, color=color)
        m = tidy[tidy["theory_type"] == t].sort_values("delta")
        err = np.vstack([m["median"] - m["lo"], m["hi"] - m["median"]])
        ax.errorbar(
            m["delta"],
            m["median"],
            yerr=err,
            marker="o",
            capsize=3,
            lw=1.8,
            color=color,
            label=f"{LABELS.get(t, t)}: median, 95% interval",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("delta (perturbation relative to ‖W*‖_F)")
    ax.set_ylabel("t_escape / eta (plain-GD steps)")
    ax.set_title("escape time against the perturbation size, by theory type of W*")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    _save(fig, path)


def escape_rates(
    strict: pd.DataFrame,
    path: Path,
    deltas: tuple[float, float] | None = None,
    times: tuple[float, float] | None = None,
) -> None:
    """Strict saddles: escape rate ``1/t_escape`` against ``|eig_min_star|``, and
    ``t_escape`` against the linearised ``t_linear = ln(1/delta)/|eig_min_star|``.

    Parameters
    ----------
    strict : DataFrame
        ``delta``, ``t_escape``, ``t_linear``, ``eig_min_star`` (all finite): the runs drawn.
    path : Path
        PNG to write.
    deltas, times : (lo, hi), optional
        The range of ``delta`` and of the positive times of all runs (default: of those
        drawn), for the colour scale and the diagonal.
    """
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    d_lo, d_hi = (strict["delta"].min(), strict["delta"].max()) if deltas is None else deltas
    norm = LogNorm(vmin=d_lo, vmax=max(d_hi, d_lo * 10))
    x = -strict["eig_min_star"].to_numpy(float)
    rate = 1.0 / strict["t_escape"].to_numpy(float)
    sc = axes[0].scatter(x, rate, c=strict["delta"], norm=norm, cmap="viridis", s=14)
    axes[0].set_xlabel("|eig_min_star| (smallest Hessian eigenvalue at W*, original coordinates)")
    axes[0].set_ylabel("escape rate 1 / t_escape")
    axes[0].set_title("strict saddles: escape rate against curvature")
    tl = strict["t_linear"].to_numpy(float)
    te = strict["t_escape"].to_numpy(float)
    axes[1].scatter(tl, te, c=strict["delta"], norm=norm, cmap="viridis", s=14)
    if times is None:
        both = np.concatenate([tl, te])
        both = both[both > 0]
        times = (both.min(), both.max()) if both.size else (None, None)
    if times[0] is not None:
        a, b = times[0] / 2, times[1] * 2
        axes[1].plot([a, b], [a, b], "k--", lw=1, label="t_escape = t_linear")
        axes[1].legend(fontsize=8, loc="upper left")
    axes[1].set_xlabel("t_linear = ln(1/delta) / |eig_min_star|")
    axes[1].set_ylabel("t_escape (flow time)")
    axes[1].set_title("escape time against the linearised prediction")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(alpha=0.3, which="both")
    fig.colorbar(sc, ax=axes, label="delta")
    _save(fig, path)


def dist_edges(top: float) -> np.ndarray:
    """Bin edges of the ``dist_tol`` histogram of :func:`plateau_values` for a largest
    (floored) distance ``top``."""
    return np.logspace(-3, max(1.0, np.ceil(np.log10(top))) + 0.5, 40)


def plateau_values(
    pl: pd.DataFrame,
    path: Path,
    limits: tuple[float, float],
    hist: tuple[np.ndarray, np.ndarray],
) -> None:
    """Plateau losses against their nearest enumerated critical values, and the distance
    in units of ``loss_tol`` (histogram, log).

    Parameters
    ----------
    pl : DataFrame
        The plateaus drawn: ``loss``, ``value``, ``position`` (1 = first).
    path : Path
        PNG to write.
    limits : (lo, hi)
        Smallest and largest of the values and losses of all plateaus (the diagonal).
    hist : (edges, counts)
        The histogram of ``max(dist_tol, 1e-3)`` over all plateaus (:func:`dist_edges`).
    """
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    cmap = colormaps["tab10"]
    for k, g in pl.groupby("position", sort=True):
        axes[0].scatter(
            g["value"], g["loss"], s=14, alpha=0.7, color=cmap((k - 1) % 10), label=f"plateau {k}"
        )
    a, b = float(limits[0]), float(limits[1])
    axes[0].plot([a, b], [a, b], "k--", lw=1, label="loss = value")
    axes[0].set_xlabel("nearest enumerated critical value")
    axes[0].set_ylabel("plateau loss (at its smallest gradient)")
    axes[0].set_title("plateau losses against critical values")
    axes[0].legend(fontsize=8)
    edges, counts = hist
    axes[1].hist(
        edges[:-1], bins=edges, weights=np.asarray(counts, float), histtype="stepfilled",
        alpha=0.6, color="#1f77b4",
    )  # fmt: skip
    axes[1].axvline(1.0, color="k", ls="--", lw=1, label="loss_tol")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("|plateau loss − value| / loss_tol (values < 1e-3 drawn at it)")
    axes[1].set_ylabel("plateaus")
    axes[1].set_title("distance to the nearest critical value")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    _save(fig, path)


def plateau_durations(pl: pd.DataFrame, path: Path, medians: pd.DataFrame) -> None:
    """Plateau durations (plain-GD steps) against eps, log-log, by position in the run;
    one panel per depth H (the expected laws differ: ``ln(1/eps)`` at H = 2,
    ``eps^-(H-2)`` at H >= 3).

    Parameters
    ----------
    pl : DataFrame
        The plateaus drawn: ``H``, ``eps``, ``duration`` (in units of eta, positive),
        ``position`` (1 = first).
    path : Path
        PNG to write.
    medians : DataFrame
        Per ``H``, ``position``, ``eps``: ``n`` plateaus and their ``median`` duration,
        over all plateaus of positive duration.
    """
    depths = sorted(medians["H"].unique())
    fig = Figure(figsize=(5.0 * len(depths) + 1.0, 4.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(depths), sharey=True))
    cmap = colormaps["tab10"]
    eps_max, eps_min = medians["eps"].max(), medians["eps"].min()
    for ax, H in zip(axes, depths, strict=True):
        for k, m in medians[medians["H"] == H].groupby("position", sort=True):
            color = cmap((k - 1) % 10)
            g = pl[(pl["H"] == H) & (pl["position"] == k)]
            ax.scatter(g["eps"], g["duration"], s=10, alpha=0.35, color=color)
            m = m.sort_values("eps")
            ax.plot(m["eps"].to_numpy(), m["median"].to_numpy(), marker="o", color=color, lw=1.6,
                    label=f"plateau {k}: median ({int(m['n'].sum())})")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(eps_max * 3, eps_min / 3)  # decreasing eps to the right
        ax.set_xlabel("eps (initialisation scale)")
        ax.set_title(f"depth H = {H}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("plateau duration (t_end − t_start) / eta")
    fig.suptitle("plateau durations against the initialisation scale")
    _save(fig, path)
