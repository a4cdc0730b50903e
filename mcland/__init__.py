"""mcland — Monte Carlo study of the loss landscape of deep linear networks.

Public API: :func:`inspect_point` / :class:`PointReport` for one point,
:func:`sample` for an in-memory run, :func:`classify` for given points in bulk
(:func:`certify_point`: the exact type of one point's floats and its stability),
:func:`dynamics` for gradient-flow experiments from drawn points (:func:`escape` /
:func:`gradient_flow` for one point), :func:`run` to write a run directory (the other kinds
of run: :func:`mcland.classify_run.run`, :func:`mcland.dynamics_run.run`), :func:`load`
to read one back (:func:`load_depth` for one depth with predicate pushdown),
:func:`type_fractions` / :func:`wilson_interval` for type fractions with binomial
intervals (more group-bys in :mod:`mcland.stats`), :func:`load_config` /
:class:`Config` for configurations. The HTML report is :func:`mcland.report.build_report`.
"""

from __future__ import annotations

from mcland import _blas  # noqa: F401  first: before NumPy/SciPy load OpenBLAS
from mcland._version import __version__
from mcland.certify import certify_point
from mcland.classify import classify
from mcland.config import Config, load_config
from mcland.dynamics import escape, gradient_flow
from mcland.dynamics_run import dynamics  # the module stays mcland.dynamics in sys.modules
from mcland.errors import MclandError
from mcland.point import PointReport, inspect_point, rank_labels
from mcland.problem import Problem
from mcland.sampling import draw_point, run, sample
from mcland.stats import load_depth, type_fractions, wilson_interval
from mcland.storage import load
from mcland.tolerances import Tolerances

__all__ = [
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
