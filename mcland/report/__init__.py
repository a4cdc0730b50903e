"""``mcland report``: a self-contained HTML report of a run directory, PNG figures beside it.

:func:`build_report` is the entry point.  It reads the manifest's kind
(:func:`mcland.rundir.kinds.kind_of`) and hands the run, opened for bounded-memory queries
(:class:`mcland.rundir.scan.Scan`: DuckDB over the shards, never loaded whole), to the sections
of that kind:
:mod:`~mcland.report.sections`, :mod:`~mcland.report.landscape` and (runs whose widths
span enough) :mod:`~mcland.report.width` for ``sample`` runs,
:mod:`~mcland.report.given` for ``classify`` runs, :mod:`~mcland.report.dynamics` for
``dynamics`` runs.  :mod:`~mcland.report.figures` (and the kinds' figure modules) draw the
figures and :mod:`~mcland.report.html` assembles the page.  The page leads with the
results (counts, agreement, figures); the run's metadata, run log and configuration
come last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
from mcland.report.width import width_section
from mcland.rundir.scan import Scan

REPORT_FILE = "report.html"
WHAT = {  # the intro's description of the records, per kind
    "sample": "{n:,} points of deep linear networks drawn and classified",
    "classify": "{n:,} given points of deep linear networks classified",
    "dynamics": "gradient-flow experiment '{experiment}': {n:,} runs from {points:,} drawn points",
}


def _sample_sections(scan: Scan, manifest: dict[str, Any], out: Path) -> list[html.Section]:
    """The sections of a ``sample`` run (results first, metadata last)."""
    fixed = manifest.get("config", {}).get("data", {}).get("source", "gaussian") != "gaussian"
    width = width_section(scan, out)  # None: the run's widths do not span enough
    return [
        results_section(scan, manifest),
        fractions_section(scan, out),
        *([width] if width is not None else []),
        confusion_section(scan, out),
        critical_values_section(scan, out, fixed),
        spectra_section(scan, out, scan.has("spectrum_w")),
        strata_section(scan, out),
        metadata_section(scan.run_dir, manifest, scan.count()),
    ]


def build_report(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    memory_limit: str | None = None,
) -> Path:
    """Write the HTML report of ``run_dir`` and its figures; return the HTML's path.

    The run is never loaded: every section asks DuckDB for aggregates over the shards
    (:class:`mcland.rundir.scan.Scan`), so memory stays within ``memory_limit`` (plus the
    process's own footprint) whatever the number of records.

    Parameters
    ----------
    run_dir : path
        A run directory of any kind: ``mcland sample`` / :func:`mcland.run`,
        ``mcland classify``, ``mcland dynamics`` (the manifest's ``kind`` chooses the
        sections).
    out : path, optional
        Output directory (created), default ``RUN_DIR/report``. Holds ``report.html``,
        the PNG figures and CSV lists (disagreements, flagged strata, visited sequences).
    scheduler, workers : optional
        Build the report on a Dask worker, where the data is: the cluster at the address
        ``scheduler``, or a local cluster of ``workers`` processes
        (:func:`mcland.execution.cluster.on_cluster`); ``run_dir`` and ``out`` are paths as the
        workers see them.  The output is the same as in process.
    memory_limit : str, optional
        DuckDB's memory limit (default :data:`mcland.rundir.scan.MEMORY_LIMIT`).

    Raises
    ------
    MclandError
        Not a run directory, a run without records, or an unwritable output directory.
    """
    if scheduler is not None or workers is not None:
        from mcland.execution.cluster import on_cluster

        return on_cluster(
            build_report, run_dir, out, scheduler=scheduler, workers=workers,
            memory_limit=memory_limit,
        )  # fmt: skip
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise MclandError(f"{run_dir} is not a directory (expected an mcland run directory)")
    with Scan(run_dir, memory_limit=memory_limit) as scan:
        manifest = scan.manifest
        kind = scan.kind
        n = scan.count()
        if not n:
            raise MclandError(f"{run_dir} holds no records yet (no finished shard)")
        out = run_dir / "report" if out is None else Path(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MclandError(f"cannot create {out}: {exc.strerror or exc}") from None
        if kind == "classify":
            sections = given.sections(scan, out)
        elif kind == "dynamics":
            sections = dynamics.sections(scan, out)
        else:
            sections = _sample_sections(scan, manifest, out)
        path = out / REPORT_FILE
        intro = _intro(scan, n)
    path.write_text(html.page(f"mcland report: {run_dir.name}", intro, sections), encoding="utf-8")
    return path


def _intro(scan: Scan, n: int) -> str:
    """The page's lead paragraph: what the records are, version, seed, wall time."""
    manifest, kind = scan.manifest, scan.kind
    wall, hosts = wall_time(scan.run_dir)
    when = (
        "wall time not recorded: run written before run logs"
        if wall == NOT_RECORDED
        else f"wall time {wall} on {hosts}"
    )
    points = (
        int(scan.scalar("SELECT count(DISTINCT sample_id) FROM records"))
        if kind == "dynamics"
        else n
    )
    what = WHAT.get(kind, WHAT["sample"]).format(
        n=n,
        points=points,
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
