"""mcland — Monte Carlo study of the loss landscape of deep linear networks.

Public API: :func:`inspect_point` / :class:`PointReport` for one point,
:func:`sample` for an in-memory run, :func:`classify` for given points in bulk
(:func:`certify_point`: the exact type of one point's floats and its stability),
:func:`dynamics` for gradient-flow experiments from drawn points (:func:`escape` /
:func:`gradient_flow` for one point), :func:`run` to write a run directory (the other kinds
of run: :func:`mcland.classification.run.run`, :func:`mcland.flow.run.run`), :func:`load`
to read one back (:func:`load_depth` for one depth with predicate pushdown;
:func:`full_spectrum` for a stored spectrum with its exact zeros),
:func:`type_fractions` / :func:`wilson_interval` for type fractions with binomial
intervals (more group-bys in :mod:`mcland.stats`), :func:`load_config` /
:class:`Config` for configurations. The HTML report is :func:`mcland.report.build_report`.
"""

from __future__ import annotations

from mcland.classification import run as _classify_run
from mcland.classification.classify import certify_point, classify
from mcland.core.config import Config, load_config
from mcland.core.errors import MclandError
from mcland.core.problem import Problem
from mcland.core.tolerances import Tolerances
from mcland.core.version import __version__
from mcland.flow import run as _dynamics_run
from mcland.flow.gradient_flow import gradient_flow
from mcland.flow.run import dynamics, escape
from mcland.points.inspect import PointReport, inspect_point, rank_labels
from mcland.points.records import full_spectrum
from mcland.rundir import kinds as _kinds
from mcland.rundir.files import load
from mcland.sampling import run as _sample_run
from mcland.sampling.run import draw_point, run, sample
from mcland.stats import load_depth, type_fractions, wilson_interval

# the one place that knows every kind of run: the run directories learn their shards here
_kinds.register(_sample_run.KIND, _classify_run.KIND, _dynamics_run.KIND)

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
    "full_spectrum",
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
