"""The ``mcland`` command line: ``sample``, ``dynamics``, ``status``, ``inspect``, ``classify``,
``groundtruth``, ``bench`` and ``report``
(every command of :data:`cli`; ``tests/test_docs.py`` keeps this list complete).

Bad input of any kind ends with one line ``mcland: error: ...`` on stderr and exit status 2
(:data:`EXIT_BAD_INPUT`; also a run directory locked by another writer).  Other statuses:
3 a full disk or quota (:data:`EXIT_STORAGE_FULL`), 1 ``status --verify`` of a run that is
not complete or does not verify (:data:`EXIT_NOT_VERIFIED`), 143 / 130 a run stopped by
SIGTERM / SIGINT (128 + the signal's number, as shells report it).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np

from mcland.errors import Interrupted, MclandError, StorageFull

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

EXIT_BAD_INPUT = 2
EXIT_STORAGE_FULL = 3
EXIT_NOT_VERIFIED = 1


def run_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every command writing a run directory shares (``sample``, ``classify``,
    ``dynamics``): threads, progress, Dask, the grace period and the lock override."""
    for option in reversed(_RUN_OPTIONS):
        command = option(command)
    return command


def config_run_options(command: Callable[..., None]) -> Callable[..., None]:
    """CONFIG, ``--out``, ``--n``, ``--seed`` and :func:`run_options`: the commands that
    draw points from a configuration (``sample``, ``dynamics``)."""
    command = run_options(command)
    for option in reversed(_CONFIG_OPTIONS):
        command = option(command)
    return command


_CONFIG_OPTIONS = [
    click.argument("config", type=click.Path(dir_okay=False, path_type=Path)),
    click.option(
        "--out",
        "out",
        required=True,
        type=click.Path(file_okay=False),  # a str: pathlib would turn s3://b into s3:/b
        help="Run directory to write (or resume).",
    ),
    click.option(
        "--n",
        "n",
        type=click.IntRange(min=1),
        default=None,
        help="Number of points (overrides the config).",
    ),
    click.option(
        "--seed", type=click.IntRange(min=0), default=None, help="Seed (overrides the config)."
    ),
]

_RUN_OPTIONS = [
    click.option(
        "--threads",
        type=click.IntRange(min=1),
        default=None,
        help="Worker threads (default: all cores).",
    ),
    click.option(
        "--progress/--no-progress",
        default=True,
        show_default=True,
        help="Show a progress bar on stderr.",
    ),
    click.option(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Run the shards on the Dask cluster at ADDRESS (tcp://host:8786); OUT must be "
        "shared with its workers. Needs mcland[dask].",
    ),
    click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=None,
        help="Run the shards on a local Dask cluster of this many worker processes.",
    ),
    click.option(
        "--grace",
        type=click.FloatRange(min=0),
        default=30.0,
        show_default=True,
        metavar="SECONDS",
        help="On SIGTERM/SIGINT, finish the shard in progress if that takes at most this long, "
        "else abandon it; then exit 143/130. Not part of the run.",
    ),
    click.option(
        "--force-unlock",
        is_flag=True,
        help="Remove OUT's lock left by a process on another host that is known to be gone "
        "(locks of dead processes on this host are recovered anyway).",
    ),
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mcland")
def cli() -> None:
    """Monte Carlo study of critical points of deep linear networks."""


@cli.command()
@config_run_options
def sample(
    config: Path,
    out: str,
    n: int | None,
    seed: int | None,
    threads: int | None,
    progress: bool,
    scheduler: str | None,
    workers: int | None,
    grace: float,
    force_unlock: bool,
) -> None:
    """Draw and classify critical points as configured in CONFIG (TOML) into OUT.

    OUT is created, or resumed when it holds the same run (bad or corrupt shards are
    recomputed). One process writes OUT at a time (lock file OUT/.lock). Exit status:
    0 done, 2 bad input or OUT locked by another writer, 3 disk or quota full, 143/130
    stopped by SIGTERM/SIGINT (rerun to resume).
    """
    from mcland.sampling import run

    summary = run(
        config,
        out,
        n=n,
        seed=seed,
        threads=threads,
        progress=progress,
        scheduler=scheduler,
        workers=workers,
        force_unlock=force_unlock,
        grace=grace,
    )
    counts = summary.counts
    rate = f", {summary.computed / summary.seconds:,.0f} points/s" if summary.computed else ""
    once = (
        f"; {summary.kernel_seconds:.0f} s compiling the kernels, once per installation"
        if summary.kernel_seconds > 10
        else ""
    )
    click.echo(
        f"wrote {summary.n} points to {summary.run_dir} "
        f"({summary.computed} computed in {summary.seconds:.1f} s{rate}{once})"
    )
    click.echo("\ncounts (rows: numeric type from the whitened Hessian, columns: theory type)")
    click.echo(counts.to_string())
    click.echo(f"\nagreement theory/numeric: {summary.agreement:.4%} of {summary.n} points")
    if summary.audited:
        odd = summary.audit_disagreements
        click.echo(
            f"spectrum-free audit: {summary.audited} points also decomposed, "
            f"{len(odd)} with another spectral type"
        )
        if len(odd):
            click.echo(odd.to_string(index=False))


@cli.command()
@config_run_options
def dynamics(
    config: Path,
    out: str,
    n: int | None,
    seed: int | None,
    threads: int | None,
    progress: bool,
    scheduler: str | None,
    workers: int | None,
    grace: float,
    force_unlock: bool,
) -> None:
    """Follow gradient flow from the critical points drawn as configured in CONFIG (TOML,
    with a [dynamics] section) into the run directory OUT (docs/dynamics.md).

    One record per (point, delta) or (point, eps). OUT is created or resumed as for
    sample; exit statuses as for sample.
    """
    import pandas as pd

    from mcland.dynamics_run import run
    from mcland.storage import load

    done = run(
        config,
        out,
        n=n,
        seed=seed,
        threads=threads,
        progress=progress,
        scheduler=scheduler,
        workers=workers,
        force_unlock=force_unlock,
        grace=grace,
    )
    df = load(done.run_dir, columns=["sample_id", "theory_type", "status"])
    click.echo(
        f"wrote {df.sample_id.nunique()} points ({len(df)} records) to {done.run_dir} "
        f"({done.computed} points computed in {done.seconds:.1f} s)"
    )
    click.echo("\nrecords by status (rows) and the point's theory type (columns)")
    click.echo(
        pd.crosstab(df.status.astype(str), df.theory_type.astype(str), margins=True,
                    margins_name="total").to_string()
    )  # fmt: skip


@cli.command()
@click.argument("run_dir", metavar="DIR", type=click.Path(path_type=Path))
@click.option(
    "--verify",
    is_flag=True,
    help="Exit 0 only if the run is complete and every shard matches its checksum, else 1.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the facts as JSON (keys: docs/cli.md).",
)
def status(run_dir: Path, verify: bool, as_json: bool) -> None:
    """Progress of the run directory DIR: shards done, bad or missing; rows; complete.

    Read-only. Every shard is read and checked against its SHA-256 checksum
    (checksums/NAME.sha256); failing shards are named. Shards written before 0.6.0 have
    no checksum and are reported as unverifiable.
    """
    from mcland.rundir import scan
    from mcland.runlog import describe_last, read

    st = scan(run_dir)
    if as_json:
        facts = st.to_dict()
        entries = read(run_dir)
        facts["last_session"] = entries[-1] if entries else None
        click.echo(json.dumps(facts, indent=2))
    else:
        text = st.describe()
        if (last := describe_last(run_dir)) is not None:  # the run log's last session
            head, _, verdict = text.rpartition("\n")  # "complete ..." stays the last line
            text = f"{head}\n{last}\n{verdict}"
        if verify:
            text += "\nverified   " + (
                "yes"
                if st.verified
                else "no: "
                + "; ".join(
                    [
                        *(f"{name} {why}" for name, why in st.to_dict()["bad"].items()),
                        *([f"{len(st.missing)} shard(s) missing"] if st.missing else []),
                        *([f"{len(st.unverifiable)} unverifiable"] if st.unverifiable else []),
                        *([f"strays {', '.join(st.strays)}"] if st.strays else []),
                    ]
                )
            )
        click.echo(text)
    if verify and not st.verified:
        sys.exit(EXIT_NOT_VERIFIED)


def _read_weights(path: Path) -> list[np.ndarray]:
    from mcland.datasource import load_npz_arrays, open_npz

    try:
        with open_npz(path) as z:
            names = z.files
    except FileNotFoundError:
        raise MclandError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise MclandError(f"{path}: not a readable .npz file ({exc})") from None
    idx = sorted(int(m.group(1)) for k in names if (m := re.fullmatch(r"W(\d+)", k)))
    if not idx:
        raise MclandError(
            f"{path}: no arrays named W1, W2, ... (has: {', '.join(names) or 'none'})"
        )
    if idx != list(range(1, len(idx) + 1)):
        raise MclandError(
            f"{path}: layers must be W1..WH without gaps, found {', '.join(f'W{i}' for i in idx)}"
        )
    arrays = load_npz_arrays(path, tuple(f"W{i}" for i in idx))
    return [arrays[f"W{i}"] for i in idx]


@cli.command()
@click.argument("weights", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def inspect(weights: Path, data: Path, as_json: bool) -> None:
    """Classify the point WEIGHTS (.npz: W1..WH) for DATA (.npz: X, Y; samples as columns)."""
    from mcland.datasource import load_npz_arrays
    from mcland.point import inspect_point

    xy = load_npz_arrays(data, ("X", "Y"))
    report = inspect_point(_read_weights(weights), xy["X"], xy["Y"])
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    S = "{" + ", ".join(map(str, report.S)) + "}"
    lines = [
        f"architecture   {report.dims}  (H = {len(report.dims) - 1}, r = {report.r}, N = {report.N})",
        f"critical       {report.is_critical}  (|grad| = {report.grad_norm:.3e}, relative {report.grad_rel:.3e})",
        f"S              {S}",
        f"loss           {report.loss:.10g}  (critical value {report.critical_value:.10g}, global min {report.global_min_value:.10g})",
        f"theory type    {report.theory_type}"
        + (f"  (open pair {report.open_pair})" if report.open_pair else ""),
        f"numeric type   {report.numeric_type}",
        f"Hessian        eig_min {report.eig_min:.6e}, eig_max {report.eig_max:.6e}",
        f"whitened       eig_min {report.eig_min_w:.6e}; inertia {report.n_neg} negative, "
        f"{report.n_zero} zero, {report.n_pos} positive",
        f"noise floor    {report.noise_floor:.3e}  (zero above -{report.tol_zero:.3e}, "
        f"negative below -{report.tol_neg:.3e})",
    ]
    if report.escape_curvature is not None:
        lines.append(f"escape curv.   {report.escape_curvature:.6e}")
    click.echo("\n".join(lines))


@cli.command(name="classify")
@click.argument("points", type=click.Path(path_type=Path))
@click.option(
    "--data",
    "data",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The data: .npz with X (d_x, m) and Y (d_y, m), samples as columns.",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False),
    help="Run directory to write (or resume).",
)
@click.option(
    "--refine",
    is_flag=True,
    help="Move each point with grad_rel > 1e-12 to a critical point nearby "
    "(Gauss-Newton and Levenberg-Marquardt on the gradient) and classify that one.",
)
@click.option(
    "--key",
    default=None,
    metavar="COL",
    help="Column of POINTS whose values become the row key (default: the row index; "
    "'file' for a folder of .npz files).",
)
@click.option(
    "--shard-size",
    type=click.IntRange(min=1),
    default=None,
    help="Points per shard (default: as for sample runs).",
)
@click.option(
    "--stability-rel",
    "stability_rel",
    type=click.FloatRange(min=0.0, max=1.0, max_open=True),
    default=None,
    help="Relative perturbation of weights and data for the stability columns "
    "(docs/certify.md); e.g. 1e-8 for training endpoints.  [default: 4 * 2**-52, "
    "mcland.certify.DEFAULT_REL]",
)
@run_options
def classify_points(
    points: Path,
    data: Path,
    out: str,
    refine: bool,
    key: str | None,
    shard_size: int | None,
    stability_rel: float | None,
    threads: int | None,
    progress: bool,
    scheduler: str | None,
    workers: int | None,
    grace: float,
    force_unlock: bool,
) -> None:
    """Classify the given points POINTS for DATA into the run directory OUT
    (docs/classify.md).

    POINTS is a Parquet file or dataset with one point per row (dims plus W1..WH or a flat
    w), or a folder of .npz files holding W1..WH. OUT is created, or resumed when it holds
    the same run (same points, data and options); read it with mcland.load(OUT). Exit
    statuses as for sample.
    """
    from mcland import classify_run
    from mcland.datasource import load_npz_arrays
    from mcland.storage import load

    xy = load_npz_arrays(data, ("X", "Y"))
    done = classify_run.run(
        points,
        xy["X"],
        xy["Y"],
        out,
        refine=refine,
        key=key,
        stability_rel=stability_rel,
        shard_size=classify_run.DEFAULT_SHARD_SIZE if shard_size is None else shard_size,
        threads=threads,
        progress=progress,
        scheduler=scheduler,
        workers=workers,
        force_unlock=force_unlock,
        grace=grace,
    )
    cols = ["is_critical", "theory_type", "numeric_type"]
    df = load(done.run_dir, columns=cols + (["refine_converged"] if refine else []))
    n = len(df)
    click.echo(
        f"wrote {n} records to {done.run_dir} ({done.computed} computed in "
        f"{done.seconds:.1f} s; {int(df.is_critical.sum())} critical)"
    )
    if refine:
        click.echo(f"refined: {int(df.refine_converged.sum())} of {n} at a critical point")
    _echo_counts(df)


def _echo_counts(df: pd.DataFrame) -> None:
    """The numeric x theory type counts of the records ``df``."""
    import pandas as pd

    click.echo("\ncounts (rows: numeric type from the whitened Hessian, columns: theory type)")
    counts = pd.crosstab(
        df.numeric_type.astype(str), df.theory_type.astype(str), margins=True, margins_name="total"
    )
    click.echo(counts.to_string())


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
    from mcland.groundtruth import export, summary

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
def report(run_dir: Path, out: Path | None) -> None:
    """Write an HTML report of RUN_DIR (figures as PNG files beside it)."""
    from mcland.report import build_report

    path = build_report(run_dir, out)
    click.echo(f"wrote {path}")


def _one_line(msg: str) -> str:
    return " ".join(msg.split("\n")).strip()


def _resume_command(args: list[str]) -> str:
    return shlex.join(["mcland", *(a for a in args if a != "--force-unlock")])


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning every input error into one line and exit status 2
    (a full disk: 3; SIGTERM/SIGINT: 128 + signal)."""
    args = sys.argv[1:] if argv is None else argv
    if not args:  # bare `mcland`: the help, not an error
        click.echo(cli.get_help(click.Context(cli, info_name="mcland")))
        return
    try:
        cli.main(args=args, prog_name="mcland", standalone_mode=False)
    except StorageFull as exc:
        click.echo(f"mcland: error: {_one_line(str(exc))}: {_resume_command(args)}", err=True)
        sys.exit(EXIT_STORAGE_FULL)
    except Interrupted as exc:
        click.echo(f"mcland: {_one_line(str(exc))}; resume with: {_resume_command(args)}", err=True)
        sys.exit(128 + exc.signum)
    except MclandError as exc:
        click.echo(f"mcland: error: {_one_line(str(exc))}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except click.exceptions.Abort:
        click.echo("mcland: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"mcland: error: {_one_line(exc.format_message())}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        click.echo(
            "mcland: interrupted; finished shards are kept, rerun the same command to resume",
            err=True,
        )
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
