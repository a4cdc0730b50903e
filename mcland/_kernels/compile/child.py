"""The entry point of the child processes that compile kernels beside a first run
(:func:`mcland._kernels.compile.common.spawn`)."""

from __future__ import annotations

import sys

from mcland._kernels.classify import analyze
from mcland._kernels.compile.flow import INTEGRATORS, compile_flow
from mcland._kernels.compile.sampler import analyze_signature


def main(argv: list[str]) -> int:
    """The children's entry point: ``["analyze"]`` compiles and caches ``analyze`` (with
    the types of :func:`~mcland._kernels.compile.sampler.analyze_signature`),
    ``["flow", integrator]`` the integrator of :func:`mcland._kernels.compile.flow.compile_flow`."""
    if argv == ["analyze"]:
        analyze.compile(analyze_signature())
        return 0
    if len(argv) == 2 and argv[0] == "flow" and argv[1] in INTEGRATORS:
        compile_flow(argv[1])
        return 0
    print("usage: main(['analyze']) or main(['flow', 'auto' | 'explicit' | 'rosenbrock'])",
          file=sys.stderr)  # fmt: skip
    return 2
