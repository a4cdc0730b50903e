"""The commands that do not write run directories: ``inspect`` (one point), ``groundtruth``
(a labelled export), ``bench`` and ``report``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mcland.cli.app import cli
from mcland.cli.options import hessian_option
from mcland.core.cost import DENSE_AUTO_MAX_N
from mcland.core.errors import MclandError


@cli.command()
@click.argument("weights", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@hessian_option
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help=f"For a point of more than {DENSE_AUTO_MAX_N:,} parameters, print its predicted cost "
    "and a progress bar with a running clock on stderr (only when stderr is a terminal).",
)
def inspect(weights: Path, data: Path, as_json: bool, hessian: str, progress: bool) -> None:
    """Classify the point WEIGHTS (.npz: W1..WH) for DATA (.npz: X, Y; samples as columns)."""
    from mcland.core.datasource import load_npz_arrays, load_npz_weights
    from mcland.execution.progress import cost_lines, one_point
    from mcland.points.inspect import inspect_point

    xy = load_npz_arrays(data, ("X", "Y"))
    layers = load_npz_weights(weights)
    wide = []  # bad shapes: inspect_point says what is wrong
    if progress and all(W.ndim == 2 for W in layers):
        dims = [layers[0].shape[1], *(W.shape[0] for W in layers)]
        if all(W.shape[1] == d for W, d in zip(layers, dims, strict=False)):
            wide = cost_lines([dims], hessian, "inspect", matrix_free=True)
    with one_point("inspecting", wide, progress and bool(wide)):
        report = inspect_point(layers, xy["X"], xy["Y"], hessian=hessian)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    click.echo("\n".join(report_lines(report)))


def report_lines(report) -> list[str]:
    """The human-readable lines of ``mcland inspect`` for a
    :class:`mcland.points.inspect.PointReport`: the spectrum's extremes and inertia, or on
    the matrix-free path what the bounds prove (rounded outwards), the kind of answer and
    its cost."""
    from mcland.points.inspect import interval

    S = "{" + ", ".join(map(str, report.S)) + "}"
    lines = [
        f"architecture   {report.dims}  (H = {len(report.dims) - 1}, r = {report.r}, N = {report.N})",
        f"critical       {report.is_critical}  (|grad| = {report.grad_norm:.3e}, relative {report.grad_rel:.3e})",
        f"S              {S}",
        f"loss           {report.loss:.10g}  (critical value {report.critical_value:.10g}, global min {report.global_min_value:.10g})",
        f"theory type    {report.theory_type}"
        + (f"  (open pair {report.open_pair})" if report.open_pair else ""),
        f"numeric type   {report.numeric_type}",
        f"verdict        {report.verdict}",
    ]
    if report.spectrum_method == "matrix_free":
        r = report
        lines += [
            "answer         matrix_free: proven bounds, no spectrum (whitened Hessian)",
            f"lambda_min     in {interval(r.eig_min_lo, r.eig_min_hi)}",
            f"lambda_max     in {interval(r.eig_max_lo, r.eig_max_hi)}",
            f"inertia        negative in [{r.n_neg_lo}, {r.n_neg_hi}], zero in "
            f"[{r.n_zero_lo}, {r.n_zero_hi}], positive in [{r.n_pos_lo}, {r.n_pos_hi}]",
            f"evidence       {r.numeric_evidence}",
        ]
    else:
        lines += [
            f"Hessian        eig_min {report.eig_min:.6e}, eig_max {report.eig_max:.6e}",
            f"whitened       eig_min {report.eig_min_w:.6e}; inertia {report.n_neg} negative, "
            f"{report.n_zero} zero, {report.n_pos} positive",
        ]
    lines.append(
        f"noise floor    {report.noise_floor:.3e}  (zero above -{report.tol_zero:.3e}, "
        f"negative below -{report.tol_neg:.3e})"
    )
    if report.escape_curvature is not None:
        lines.append(f"escape curv.   {report.escape_curvature:.6e}")
    if report.spectrum_method == "matrix_free":
        lines.append(
            f"cost           {report.lanczos_products} Hessian-vector products, "
            f"{report.lanczos_seconds:.2f} s"
        )
    return lines


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="New or empty directory: points.parquet, data.npz, npz/point-NNNNNN.npz.",
)
@click.option(
    "--n",
    "n",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="Extra points per depth (random S, half badly scaled), beyond one point per "
    "index set at depth 2.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=None, help="Seed (default: the config's)."
)
def groundtruth(config: Path, out: Path, n: int, seed: int | None) -> None:
    """Export labelled exact critical points with exact inertia for CONFIG (docs/groundtruth.md).

    CONFIG must use fixed autoencoder data with exact moments (Y = X integer, X X^T
    diagonal), as runs/autoencoder.toml.
    """
    from mcland.classification.groundtruth import export, summary

    df = export(config, out, n, seed)
    wrong = int((~df["cutoff_agrees"]).sum())
    click.echo(
        f"wrote {len(df)} points to {out} ({df['critical_value_index'][df['H'] == 2].nunique()} "
        f"critical values at depth 2; {wrong} points whose eigenvalue cutoff {1e-5:g} "
        "miscounts the exact inertia)"
    )
    click.echo(summary(df))


@cli.command()
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the figures to this JSON file.",
)
@click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="Threads (default: all cores)."
)
@click.option("--quick", is_flag=True, help="Tiny sizes, no child processes: a smoke test.")
def bench(json_path: Path | None, threads: int | None, quick: bool) -> None:
    """Measure throughput against the LAPACK floor and a NumPy baseline (docs/performance.md)."""
    from mcland.bench import format_report, run_benchmark

    if json_path is not None and not json_path.parent.is_dir():
        raise MclandError(f"cannot write {json_path}: no directory {json_path.parent}")
    figures = run_benchmark(quick=quick, threads=threads, log=lambda m: click.echo(m, err=True))
    click.echo(format_report(figures))
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output directory (default: RUN_DIR/report).",
)
# the report on a Dask worker (--scheduler / --workers)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    default=None,
    help="Build the report on a worker of the Dask cluster at ADDRESS, where the data is "
    "(RUN_DIR and OUT as the workers see them). Needs mcland[dask].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Build the report on a local Dask cluster of this many worker processes.",
)
def report(run_dir: Path, out: Path | None, scheduler: str | None, workers: int | None) -> None:
    """Write an HTML report of RUN_DIR (figures as PNG files beside it).

    The run is aggregated by DuckDB shard by shard, never loaded: memory stays bounded
    (MCLAND_ANALYSIS_MEMORY, default 128MB, plus the process) whatever its size.
    """
    from mcland.report import build_report

    path = build_report(run_dir, out, scheduler=scheduler, workers=workers)
    click.echo(f"wrote {path}")
