"""What both experiments need about one point ``W*`` and its data (:class:`ExperimentPoint`),
the classification of a point along the way (:func:`analyze`), the random streams of an
experiment (:func:`seed_stream`) and the columns both write at the end of a flow
(:func:`end_columns`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcland._kernels import fields
from mcland._kernels.bundles import FlowProblem
from mcland.core import linalg as la  # norms without the process's BLAS
from mcland.core.problem import Problem
from mcland.core.tolerances import Tolerances
from mcland.flow.gradient_flow import FlowResult, integrate
from mcland.points.inspect import PointReport, analyze_flat, point_report


@dataclass(frozen=True)
class ExperimentPoint:
    """What both experiments need about one point ``W*`` and its data.

    ``values`` are the enumerated critical values (ascending, ``|S| <= r``); ``a`` the
    per-layer scale ``(||Syx||_F / ||Sxx||_F)^(1/H)`` of a balanced network with the data's
    gain; ``eta_data = 1 / (2 H ||Sxx||_2 a^(2(H-1)))`` the data's time unit; ``hessian``
    the analysis path of the architecture's points, ``W*``, the ends of the flows and the
    plateaus alike (:func:`analyze`).
    """

    dims: np.ndarray
    w_star: np.ndarray
    problem: Problem
    flow: FlowProblem
    tol: Tolerances
    report: PointReport
    loss_tol: float
    values: np.ndarray
    a: float
    eta_data: float
    hessian: str = "dense"


def analyze(
    dims: np.ndarray, w: np.ndarray, problem: Problem, tol: Tolerances, hessian: str = "dense"
):
    """``(PointReport, loss_tol)`` of the flat point ``w`` (spectra in both coordinates,
    ``eig_min``, ``eig_max`` in the original ones): ``hessian = "dense"`` from the N x N
    Hessian, ``"structured"`` from the compressed Hessian K of each coordinates
    (docs/structured.md: no N x N array, the eigenvalues within a multiple of
    ``eps ||H||`` of the dense ones; ``(4/3) k^3`` flops per K, seconds at width 256 and
    minutes at 1,024, docs/dynamics.md "Width")."""
    outputs = analyze_flat(dims, w, problem, tol, hessian=hessian)
    report = point_report(dims, problem, *outputs, spectrum_method=hessian)
    return report, float(outputs[0][fields.F_LOSS_TOL])


def make_point(
    dims: np.ndarray, w_star: np.ndarray, problem: Problem, tol: Tolerances,
    hessian: str = "dense",
) -> ExperimentPoint:  # fmt: skip
    """The :class:`ExperimentPoint` of ``W* = w_star`` (flat), analysed on the path
    ``hessian`` (:func:`analyze`)."""
    H = dims.size - 1
    report, loss_tol = analyze(dims, w_star, problem, tol, hessian)
    a = float((la.norm(problem.Syx) / la.norm(problem.Sxx)) ** (1.0 / H))
    eta_data = 1.0 / (2.0 * H * float(problem.mu[-1]) * a ** (2 * (H - 1)))
    # the loss followed is that of the problem's moments (the sampler's own for a drawn point)
    flow = FlowProblem(
        np.ascontiguousarray(dims, np.int64), np.ascontiguousarray(problem.Sxx, np.float64),
        np.ascontiguousarray(problem.Syx, np.float64), float(problem.tr_syy),
    )  # fmt: skip
    return ExperimentPoint(
        dims, w_star, problem, flow, tol, report, loss_tol,
        problem.critical_values(report.r), a, eta_data, hessian,
    )  # fmt: skip


def seed_stream(seed: int, sample_id: int, tag: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(sample_id), tag]))


def end_columns(pt: ExperimentPoint, res: FlowResult, eta: float, t_curve: np.ndarray) -> dict:
    """The columns shared by both experiments (``_RUN`` of :mod:`mcland.flow.schema`)."""
    w_end = np.concatenate([W.ravel() for W in res.weights])
    end, _ = analyze(pt.dims, w_end, pt.problem, pt.tol, pt.hessian)
    same = max(pt.loss_tol, 1e-12 * abs(end.global_min_value))
    return {
        "eta": eta,
        "t_end": res.t_end,
        "n_evals": res.n_evals,
        "n_steps": res.n_steps,
        "n_rejected": res.n_rejected,
        "n_stiff_steps": res.n_stiff_steps,
        "n_hessians": res.n_hessians,
        "n_switches": res.n_switches,
        "loss_end": res.loss_end,
        "grad_end": res.grad_end,
        "settled_value": end.critical_value,
        "settled_index": int(np.argmin(np.abs(pt.values - end.critical_value))),
        "settled_S": list(end.S),
        "settled_type": end.numeric_type,
        "reached_global": bool(abs(end.critical_value - end.global_min_value) <= same),
        "t_curve": t_curve.tolist(),
        "loss_curve": res.loss_record.tolist(),
    }


def flow(pt: ExperimentPoint, w0: np.ndarray, **kwargs) -> FlowResult:
    return integrate(pt.dims, w0, pt.flow, **kwargs)
