"""One drawn point's dynamics records (:func:`point_records`): the point drawn as the
sampler draws it, its experiment run, one row per delta or eps in the layout of
:func:`mcland.flow.schema.record_schema`."""

from __future__ import annotations

import numpy as np

from mcland._kernels.batch import draw_point
from mcland._kernels.whiten import smallest_relative_gap
from mcland.core.config import Dynamics
from mcland.core.problem import Problem
from mcland.core.tolerances import Tolerances
from mcland.flow.escape import escape_rows
from mcland.flow.experiment import make_point
from mcland.flow.schema import record_schema
from mcland.flow.small_init import small_init_rows
from mcland.points.plan import Plan


def _records(
    dims: np.ndarray, w_star: np.ndarray, X: np.ndarray, Y: np.ndarray, settings: Dynamics,
    *, seed: int, sample_id: int, problem: Problem | None = None,
    tolerances: Tolerances | None = None, hessian: str = "dense",
) -> list[dict]:  # fmt: skip
    """The rows of :func:`point_records` for a given point (tests call it on chosen points),
    its analyses on the path ``hessian`` (:func:`mcland.flow.experiment.analyze`)."""
    problem = problem if problem is not None else Problem.from_data(X, Y)
    w_star = np.ascontiguousarray(w_star, np.float64)
    pt = make_point(dims, w_star, problem, tolerances or Tolerances(), hessian)
    if settings.experiment == "escape":
        rows = escape_rows(pt, settings, seed, sample_id)
    else:
        rows = small_init_rows(pt, settings, seed, sample_id)
    names = record_schema(settings.experiment).names
    return [{k: row[k] for k in names} for row in rows]


def point_records(plan: Plan, settings: Dynamics, sample_id: int) -> list[dict]:
    """The dynamics rows of point ``sample_id`` of the run ``plan``.

    The point is drawn as the sampler draws it (:func:`mcland._kernels.batch.draw_point`,
    from ``plan.sampler``) and classified with ``plan.config.classify``'s tolerances; random
    directions come from ``numpy.random.SeedSequence([plan.seed, sample_id, tag])`` (tag 15:
    the escape direction ``V``; 16: the initial ``G``).  Its analyses (``W*``, the ends of
    the flows, the plateaus) take the path of the point's record (:meth:`Plan.hessian`:
    the dense Hessian up to the plan's dense limit, the structured spectrum above it).
    Safe to call concurrently from threads (the kernels release the GIL); the same
    arguments give the same rows bit for bit.

    Parameters
    ----------
    plan : mcland.points.plan.Plan
        The run.
    settings : mcland.core.config.Dynamics
        The ``[dynamics]`` section (``settings.experiment`` selects the experiment).
    sample_id : int
        The point.

    Returns
    -------
    list of dict
        One dict per ``delta`` (escape) or ``eps`` (small_init), in the order of
        ``settings``, keyed exactly by ``record_schema(settings.experiment).names``
        (lists for the list columns, ``None`` for nulls).
    """
    point = draw_point(plan.sampler, int(sample_id))
    c = plan.config.classify
    tol = Tolerances(grad_rtol=c.grad_rtol, c_zero=c.c_zero, c_neg=c.c_neg)
    m = point.moments
    problem = Problem(
        m.Sxx, m.Syx, float(m.tr_syy), m.mu, m.K, m.K_inv, m.lam, m.U, m.Vt,
        float(smallest_relative_gap(m.lam)), float(m.mu[0] / m.mu[-1]),
    )  # fmt: skip
    return _records(
        np.array(point.dims), np.array(point.w), np.array(point.X), np.array(point.Y),
        settings, seed=plan.seed, sample_id=int(sample_id), problem=problem, tolerances=tol,
        hessian=plan.hessian(point.w.size),  # the flat weights: N parameters
    )  # fmt: skip
