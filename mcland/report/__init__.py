"""``mcland report``: a self-contained HTML report of a run directory, PNG figures beside it.

:func:`build_report` is the entry point.  It reads the manifest's kind
(:func:`mcland.rundir.kinds.kind_of`) and hands the records to the sections of that kind:
:mod:`~mcland.report.sections` and :mod:`~mcland.report.landscape` for ``sample`` runs,
:mod:`~mcland.report.given` for ``classify`` runs, :mod:`~mcland.report.dynamics` for
``dynamics`` runs.  :mod:`~mcland.report.figures` (and the kinds' figure modules) draw the
figures and :mod:`~mcland.report.html` assembles the page.  The page leads with the
results (counts, agreement, figures); the run's metadata, run log and configuration
come last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from mcland.core.errors import MclandError
from mcland.report import dynamics, given, html
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
from mcland.rundir.files import load, read_manifest
from mcland.rundir.kinds import kind_of
from mcland.stats import run_columns

REPORT_FILE = "report.html"
COLUMNS = [
    "sample_id", "H", "dims", "d_x", "d_y", "r", "N", "recipe", "is_critical", "s", "S",
    "loss", "loss_tol", "critical_value", "global_min_value", "critical_values",
    "theory_type", "numeric_type", "open_h1", "escape_curvature", "eig_min_w",
    "noise_floor", "tol_zero", "tol_neg", "n_neg", "n_zero", "n_pos", "audit_type", "ranks",
    "scale_x", "scale_y",
]  # fmt: skip
WHAT = {  # the intro's description of the records, per kind
    "sample": "{n:,} points of deep linear networks drawn and classified",
    "classify": "{n:,} given points of deep linear networks classified",
    "dynamics": "gradient-flow experiment '{experiment}': {n:,} runs from {points:,} drawn points",
}


def _sample_sections(
    run_dir: Path, df: pd.DataFrame, manifest: dict[str, Any], out: Path, available: list[str]
) -> list[html.Section]:
    """The sections of a ``sample`` run (results first, metadata last)."""
    fixed = manifest.get("config", {}).get("data", {}).get("source", "gaussian") != "gaussian"
    return [
        results_section(df, manifest),
        fractions_section(df, out),
        confusion_section(df, out),
        critical_values_section(df, out, fixed),
        spectra_section(run_dir, df, out, "spectrum_w" in available),
        strata_section(df, out),
        metadata_section(run_dir, manifest, len(df)),
    ]


def _columns(kind: str, manifest: dict[str, Any], available: list[str]) -> list[str]:
    """The columns the report of ``kind`` reads (those of the run that it uses)."""
    if kind == "classify":
        wanted = ["row", *COLUMNS, *given.COLUMNS]
    elif kind == "dynamics":
        wanted = [*COLUMNS, *dynamics.columns(manifest)]
    else:
        wanted = COLUMNS
    return [c for c in dict.fromkeys(wanted) if c in available]


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of ``run_dir`` and its figures; return the HTML's path.

    Parameters
    ----------
    run_dir : path
        A run directory of any kind: ``mcland sample`` / :func:`mcland.run`,
        ``mcland classify``, ``mcland dynamics`` (the manifest's ``kind`` chooses the
        sections).
    out : path, optional
        Output directory (created), default ``RUN_DIR/report``. Holds ``report.html``,
        the PNG figures and CSV lists (disagreements, flagged strata, visited sequences).

    Raises
    ------
    MclandError
        Not a run directory, a run without records, or an unwritable output directory.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MclandError(f"{run_dir} is not a directory (expected an mcland run directory)")
    manifest = read_manifest(run_dir)
    kind = kind_of(manifest)
    available = run_columns(run_dir)
    df = load(run_dir, columns=_columns(kind, manifest, available))
    if not len(df):
        raise MclandError(f"{run_dir} holds no records yet (no finished shard)")
    out = run_dir / "report" if out is None else Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MclandError(f"cannot create {out}: {exc.strerror or exc}") from None
    if kind == "classify":
        sections = given.sections(run_dir, df, manifest, out)
    elif kind == "dynamics":
        sections = dynamics.sections(run_dir, df, manifest, out)
    else:
        sections = _sample_sections(run_dir, df, manifest, out, available)
    path = out / REPORT_FILE
    intro = _intro(run_dir, df, manifest, kind)
    path.write_text(html.page(f"mcland report: {run_dir.name}", intro, sections), encoding="utf-8")
    return path


def _intro(run_dir: Path, df: pd.DataFrame, manifest: dict[str, Any], kind: str) -> str:
    """The page's lead paragraph: what the records are, version, seed, wall time."""
    wall, hosts = wall_time(run_dir)
    when = (
        "wall time not recorded: run written before run logs"
        if wall == NOT_RECORDED
        else f"wall time {wall} on {hosts}"
    )
    what = WHAT.get(kind, WHAT["sample"]).format(
        n=len(df),
        points=df["sample_id"].nunique() if "sample_id" in df else len(df),
        experiment=manifest.get("config", {}).get("dynamics", {}).get("experiment"),
    )
    seed = "" if manifest.get("seed") is None else f"seed {manifest.get('seed')}; "
    return (
        '<p class="lead">'
        + html.esc(
            f"{what} by mcland {manifest.get('mcland_version')} ({seed}{when}). Notation as in "
        )
        + f"<i>{html.esc(THEORY_DOC)}</i>"
        + html.esc(
            ", which also holds the mathematics: depth H, widths d_h, bottleneck r, index set S. "
            "Run details and the configuration are under "
        )
        + html.link("metadata", "Run metadata")
        + ".</p>"
    )


__all__ = ["REPORT_FILE", "build_report"]
