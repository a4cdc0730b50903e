"""The commands that write or read run directories: ``sample``, ``dynamics``, ``classify``
and ``status``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mcland.cli.app import EXIT_NOT_VERIFIED, cli
from mcland.cli.options import config_run_options, hessian_option, run_options

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


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
    from mcland.sampling.run import run

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

    from mcland.flow.run import run
    from mcland.rundir.files import load

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
    "mcland.classification.certify.rows.DEFAULT_REL]",
)
@hessian_option
@run_options
def classify_points(
    points: Path,
    data: Path,
    out: str,
    refine: bool,
    key: str | None,
    shard_size: int | None,
    stability_rel: float | None,
    hessian: str,
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
    from mcland.classification import run as classify_run
    from mcland.core.datasource import load_npz_arrays
    from mcland.rundir.files import load

    xy = load_npz_arrays(data, ("X", "Y"))
    done = classify_run.run(
        points,
        xy["X"],
        xy["Y"],
        out,
        refine=refine,
        key=key,
        stability_rel=stability_rel,
        hessian=hessian,
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
    no checksum and are reported as unverifiable. The numerics fingerprints the shards
    were computed under are listed; --verify fails if they differ (docs/numerics.md).
    """
    from mcland.rundir.directory import scan
    from mcland.rundir.runlog import describe_last, read

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
                        *(["shards under mixed numerics"] if st.mixed_numerics else []),
                        *([f"strays {', '.join(st.strays)}"] if st.strays else []),
                    ]
                )
            )
        click.echo(text)
    if verify and not st.verified:
        sys.exit(EXIT_NOT_VERIFIED)
