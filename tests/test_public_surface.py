"""The public surface, listed: every name of ``mcland.__all__`` and every command of the
command line with its arguments and options.  The lists are those of mcland 0.7.1, written
out here by hand: a change to the surface must change this file on purpose."""

from __future__ import annotations

import click

import mcland
from mcland.cli import cli

PUBLIC_NAMES = [
    "Config",
    "MclandError",
    "PointReport",
    "Problem",
    "Tolerances",
    "__version__",
    "certify_point",
    "classify",
    "draw_point",
    "dynamics",
    "escape",
    "full_spectrum",  # 0.9: a stored spectrum with its exact zeros (issue 21)
    "gradient_flow",
    "inspect_point",
    "load",
    "load_config",
    "load_depth",
    "rank_labels",
    "run",
    "sample",
    "type_fractions",
    "wilson_interval",
]

_RUN = [
    "--threads",
    "--progress --no-progress",
    "--scheduler",
    "--workers",
    "--grace",
    "--force-unlock",
]
COMMANDS = {
    "bench": ["--json", "--threads", "--quick"],
    "classify": [
        "POINTS",
        "--data",
        "--out",
        "--refine",
        "--key",
        "--shard-size",
        "--stability-rel",
        "--hessian",
        *_RUN,
    ],
    "dynamics": ["CONFIG", "--out", "--n", "--seed", *_RUN],
    "groundtruth": ["CONFIG", "--out", "--n", "--seed"],
    "inspect": ["WEIGHTS", "DATA", "--json", "--hessian", "--progress --no-progress"],
    "report": ["RUN_DIR", "--out", "--scheduler", "--workers"],
    "sample": ["CONFIG", "--out", "--n", "--seed", *_RUN],
    "status": ["RUN_DIR", "--verify", "--json"],
}


def test_every_public_name_is_there_and_no_other():
    assert sorted(mcland.__all__) == PUBLIC_NAMES
    missing = [name for name in PUBLIC_NAMES if not hasattr(mcland, name)]
    assert not missing


def test_public_functions_are_the_functions_not_modules():
    """``mcland.classify``, ``mcland.dynamics``, ``mcland.run``, … are the functions (no
    module of the package shadows them)."""
    for name in PUBLIC_NAMES:
        if name != "__version__":
            assert callable(getattr(mcland, name)), name


def test_every_command_with_its_arguments_and_options():
    got = {}
    for name, cmd in cli.commands.items():
        got[name] = [
            p.name.upper() if isinstance(p, click.Argument) else " ".join(p.opts + p.secondary_opts)
            for p in cmd.params
        ]
    assert got == COMMANDS
