"""The ``mcland`` command group, its exit statuses and the entry point :func:`main`, which
turns every input error into one line and exit status 2."""

from __future__ import annotations

import shlex
import sys

import click

from mcland.core.errors import Interrupted, MclandError, StorageFull

EXIT_BAD_INPUT = 2
EXIT_STORAGE_FULL = 3
EXIT_NOT_VERIFIED = 1


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mcland")
def cli() -> None:
    """Monte Carlo study of critical points of deep linear networks."""


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
