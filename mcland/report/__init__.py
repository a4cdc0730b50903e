"""``mcland report``: a self-contained HTML report of a run directory, PNG figures beside it.

:func:`build_report` is the entry point; :mod:`~mcland.report.sections` and
:mod:`~mcland.report.landscape` compute the sections, :mod:`~mcland.report.figures` draws
the figures and :mod:`~mcland.report.html` assembles the page.  The page leads with the
results (counts, agreement, figures); the run's metadata, run log and configuration
come last.
"""

from __future__ import annotations

from pathlib import Path

from mcland.errors import MclandError
from mcland.report import html
from mcland.report.landscape import spectra_section, strata_section
from mcland.report.sections import (
    NOT_RECORDED,
    THEORY_DOC,
    confusion_section,
    critical_values_section,
    fractions_section,
    metadata_section,
    results_section,
    wall_time,
)
from mcland.stats import run_columns
from mcland.storage import load, read_manifest

REPORT_FILE = "report.html"
COLUMNS = [
    "sample_id", "H", "dims", "d_x", "d_y", "r", "N", "recipe", "is_critical", "s", "S",
    "loss", "loss_tol", "critical_value", "global_min_value", "critical_values",
    "theory_type", "numeric_type", "open_h1", "escape_curvature", "eig_min_w",
    "noise_floor", "tol_zero", "tol_neg", "n_neg", "n_zero", "n_pos", "audit_type", "ranks",
    "scale_x", "scale_y",
]  # fmt: skip


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of ``run_dir`` and its figures; return the HTML's path.

    Parameters
    ----------
    run_dir : path
        A run directory (``mcland sample`` / :func:`mcland.run`).
    out : path, optional
        Output directory (created), default ``RUN_DIR/report``. Holds ``report.html``,
        the PNG figures and CSV lists (disagreements, flagged strata).

    Raises
    ------
    MclandError
        Not a run directory, a run without records, or an unwritable output directory.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MclandError(f"{run_dir} is not a directory (expected an mcland run directory)")
    manifest = read_manifest(run_dir)
    available = run_columns(run_dir)
    df = load(run_dir, columns=[c for c in COLUMNS if c in available])
    if not len(df):
        raise MclandError(f"{run_dir} holds no records yet (no finished shard)")
    out = run_dir / "report" if out is None else Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MclandError(f"cannot create {out}: {exc.strerror or exc}") from None
    fixed = manifest.get("config", {}).get("data", {}).get("source", "gaussian") != "gaussian"
    sections = [  # results first, metadata and configuration last
        results_section(df, manifest),
        fractions_section(df, out),
        confusion_section(df, out),
        critical_values_section(df, out, fixed),
        spectra_section(run_dir, df, out, "spectrum_w" in available),
        strata_section(df, out),
        metadata_section(run_dir, manifest, len(df)),
    ]
    wall, hosts = wall_time(run_dir)
    when = (
        "wall time not recorded: run written before run logs"
        if wall == NOT_RECORDED
        else f"wall time {wall} on {hosts}"
    )
    intro = (
        '<p class="lead">'
        + html.esc(
            f"{len(df):,} points of deep linear networks drawn and classified by mcland "
            f"{manifest.get('mcland_version')} (seed {manifest.get('seed')}; {when}). "
            "Notation as in "
        )
        + f"<i>{html.esc(THEORY_DOC)}</i>"
        + html.esc(
            ", which also holds the mathematics: depth H, widths d_h, bottleneck r, index set S. "
            "Run details and the configuration are under "
        )
        + html.link("metadata", "Run metadata")
        + ".</p>"
    )
    path = out / REPORT_FILE
    path.write_text(html.page(f"mcland report: {run_dir.name}", intro, sections), encoding="utf-8")
    return path


__all__ = ["REPORT_FILE", "build_report"]
