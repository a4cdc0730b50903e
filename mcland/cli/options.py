"""The options that several commands share: those of every command writing a run directory
(:func:`run_options`), those of the commands that draw points from a configuration
(:func:`config_run_options`), and the Hessian path of ``inspect`` and ``classify``
(:data:`hessian_option`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from mcland.core.cost import DENSE_AUTO_MAX_N, HESSIAN_MODES, MATRIX_FREE_MODE


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


hessian_option = click.option(
    "--hessian",
    type=click.Choice(HESSIAN_MODES),
    default="auto",
    show_default=True,
    metavar="MODE",
    help="dense: the spectrum from the N x N Hessian; structured: without it "
    f"(docs/structured.md); {MATRIX_FREE_MODE}: no spectrum, proven bounds "
    "on the extreme eigenvalues and the inertia from Hessian-vector products "
    f"(docs/classify.md); auto: dense up to {DENSE_AUTO_MAX_N:,} parameters, else the "
    "cheaper that fits, matrix_free when neither spectrum fits.",
)
"""``--hessian`` of ``inspect`` and ``classify`` (:data:`mcland.core.cost.HESSIAN_MODES`)."""
