"""``classify``: classify many given points (trained networks, a finder's output) of one data set.

The points are analysed by the sampler's own kernel (:func:`mcland._kernels.classify.analyze`,
driven by the nogil batch loop :func:`mcland._kernels.given.classify_range` in worker
threads), so a given point gets exactly the record a drawn point would, in the columns of
:data:`mcland.points.records.SCHEMA` that apply to it (the drawn-only ones are null), plus:

* ``row``: the input's index, or the values of a key column the user names;
* ``nearest_critical_value``, ``nearest_critical_index``, ``nearest_critical_distance``:
  the enumerated critical value closest to the loss, its index in the ascending list
  ``critical_values`` and the distance in units of ``loss_tol`` (for every point, critical
  or not: a non-critical point learns what it is near, and a large distance says it is near
  none);
* ``spectrum_method`` (``dense``, ``structured``, ``matrix_free``) and, on matrix-free rows
  (:mod:`.matrix_free`: no spectrum), the proven enclosures ``eig_min_lo`` ...
  ``eig_max_hi`` and inertia intervals ``n_neg_lo`` ... ``n_pos_hi``;
* with ``refine=True`` (every point with ``grad_rel`` above :data:`REFINE_ABOVE` is moved,
  including points critical within ``grad_rtol`` whose Hessian still carries the
  perturbation): ``input_loss``, ``input_grad_rel`` of the point as given,
  ``refine_distance`` (``||w_refined - w||``), ``refine_distance_rel`` (over ``||w||``),
  ``refine_converged``; the record columns then describe the refined point.

The steps: :mod:`.inputs` reads and checks the points, :mod:`.analysis` analyses them
(rebalanced where that helps, :mod:`.rebalance`), :mod:`.refine` moves non-critical ones,
:mod:`.certify` adds the certificate and stability columns; the columns are
:func:`.schema.record_schema`'s.  :func:`certify_point` answers the certificate's two
questions for one point.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from mcland._kernels import fields as f
from mcland.classification.analysis import analyze_given, check_points, nearest
from mcland.classification.certify.rows import DEFAULT_REL, certify_rows
from mcland.classification.inputs import Points, read_points
from mcland.classification.matrix_free import BOUND_COLUMNS, certify_eig_min
from mcland.classification.refine import REFINE_ABOVE, refine_point
from mcland.classification.schema import DRAWN_ONLY, EXTRA_COLUMNS, record_schema
from mcland.core import linalg as la  # recorded distances without the process's BLAS
from mcland.core.cost import MATRIX_FREE_MODE
from mcland.core.errors import MclandError
from mcland.core.problem import Problem
from mcland.core.ragged import Ragged
from mcland.core.tolerances import Tolerances
from mcland.points.records import TYPE_DICT, to_table

_EXTRA_TYPES = {name: typ for name, typ, _ in EXTRA_COLUMNS}


def check_stability_rel(value: float | None) -> float:
    """``value`` as the perturbation size of the stability columns (None: the default,
    :data:`mcland.classification.certify.rows.DEFAULT_REL`), or MclandError unless it is in [0, 1)."""
    rel = DEFAULT_REL if value is None else float(value)
    if not (np.isfinite(rel) and 0.0 <= rel < 1.0):
        raise MclandError(f"stability_rel must be in [0, 1), got {value}")
    return rel


def certified_verdicts(exact_type: list[str | None], numeric: np.ndarray) -> pa.DictionaryArray:
    """The ``verdict`` of classify records: the certified type of the stored floats
    (``exact_type``, which at ``decided_by = "float64"`` is the agreeing float64 type) where
    it is decided, ``not_critical`` for a point the float64 gradient test finds non-critical,
    else ``ambiguous``.  ``numeric`` holds the numeric type codes (n,)."""
    code = {name: k for k, name in enumerate(f.TYPE_NAMES)}
    verdict = np.where(numeric == f.NOT_CRITICAL, f.NOT_CRITICAL, f.AMBIGUOUS).astype(np.int8)
    for t, name in enumerate(exact_type):
        if name is not None:
            verdict[t] = code[name]
    return pa.DictionaryArray.from_arrays(pa.array(verdict, pa.int8()), TYPE_DICT)


def classify_table(
    points: Sequence[Sequence[np.ndarray]] | str | Path,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    refine: bool = False,
    key: str | None = None,
    tolerances: Tolerances | None = None,
    threads: int | None = None,
    stability_rel: float = DEFAULT_REL,
    hessian: str = "auto",
) -> pa.Table:
    """:func:`classify` as an Arrow table in :func:`record_schema`."""
    stability_rel = check_stability_rel(stability_rel)
    problem = Problem.from_data(X, Y)
    given = read_points(points, problem, key)
    check_points(given.dims, hessian, refine, threads)
    return classify_given(
        given, X, Y, problem, refine=refine, tolerances=tolerances, threads=threads,
        stability_rel=stability_rel, hessian=hessian,
    )  # fmt: skip


def classify_given(
    given: Points,
    X: np.ndarray,
    Y: np.ndarray,
    problem: Problem,
    *,
    refine: bool = False,
    tolerances: Tolerances | None = None,
    threads: int | None = None,
    stability_rel: float = DEFAULT_REL,
    hessian: str = "auto",
) -> pa.Table:
    """:func:`classify_table` for points already read and checked against ``problem``
    (:func:`read_points`, ``problem = Problem.from_data(X, Y)``), e.g. a run directory's
    batch (:class:`mcland.classification.run.ClassifyJob`)."""
    tol = tolerances or Tolerances()
    out, moved_layers, analysed = analyze_given(given.dims, given.w, problem, tol, threads, hessian)
    extra: dict[str, pa.Array] = {}
    n = len(given.w)
    moved = None
    if refine:
        input_loss = out.row_float[:, f.F_LOSS].copy()
        input_grad = out.row_float[:, f.F_GRAD_REL].copy()
        exact = input_grad <= REFINE_ABOVE
        refined = Ragged.from_arrays(
            [
                w if exact[t] else refine_point(given.dims[t], w, problem)
                for t, w in enumerate(given.w)
            ]
        )
        moved = np.array([la.norm(a - b) for a, b in zip(refined, given.w, strict=True)])
        scale = np.array([la.norm(w) for w in given.w])
        if not exact.all():
            out, moved_layers, analysed = analyze_given(
                given.dims, refined, problem, tol, threads, hessian
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(scale > 0, moved / scale, np.where(moved > 0, np.inf, 0.0))
        extra = {
            "input_loss": pa.array(input_loss, pa.float64()),
            "input_grad_rel": pa.array(input_grad, pa.float64()),
            "refine_distance": pa.array(moved, pa.float64()),
            "refine_distance_rel": pa.array(rel, pa.float64()),
            "refine_converged": pa.array(out.row_int[:, f.I_IS_CRITICAL] == 1, pa.bool_()),
        }
    # a rebalanced row's figures are the rescaled point's: certify that point (the same type;
    # componentwise relative perturbations commute with the rescaling)
    cert = certify_rows(
        given.dims, analysed, np.asarray(X, np.float64), np.asarray(Y, np.float64), problem,
        certify_eig_min(out.row_float, out.bounds), out.row_int,
        out.spectrum_w if out.spectrum_w.shape[1] else None, stability_rel, moved, tol.grad_rtol,
    )  # fmt: skip
    free = out.bounds["spectrum_method"] == MATRIX_FREE_MODE
    for t in np.flatnonzero(free):  # float64 agreement, here of the proven numeric type
        if cert["decided_by"][t] == "float64":
            cert["decided_by"][t] = MATRIX_FREE_MODE
    for name, typ, _ in EXTRA_COLUMNS:
        if name in cert:
            extra[name] = pa.array(cert[name], typ)
    extra["spectrum_method"] = pa.array(out.bounds["spectrum_method"], pa.string())
    for name in BOUND_COLUMNS:
        col = out.bounds[name]
        null = np.isnan(col) if col.dtype.kind == "f" else col < 0
        extra[name] = pa.array(col, _EXTRA_TYPES[name], mask=null)
    extra["rebalanced"] = pa.array(moved_layers, pa.bool_())
    extra["verdict"] = certified_verdicts(cert["exact_type"], out.row_int[:, f.I_NUMERIC_TYPE])
    records = to_table(out, np.arange(n, dtype=np.int64), 0)
    extra.update(nearest(out, given.dims, problem))
    schema = record_schema(given.keys.type)
    cols = []
    for fl in schema:
        if fl.name == "row":
            cols.append(given.keys)
        elif fl.name in DRAWN_ONLY:
            cols.append(pa.nulls(n, fl.type))
        elif fl.name in extra:
            cols.append(extra[fl.name])
        elif fl.name in records.column_names:
            cols.append(records.column(fl.name))
        else:
            cols.append(pa.nulls(n, fl.type))
    meta = {"refine": refine, "n": n, "stability_rel": stability_rel}
    if given.source_sha256 is not None:
        meta["points_sha256"] = given.source_sha256
    table = pa.Table.from_arrays(cols, schema=schema)
    return table.replace_schema_metadata({"mcland_classify": repr(meta)})


def classify(
    points: Sequence[Sequence[np.ndarray]] | str | Path,
    X: np.ndarray,
    Y: np.ndarray,
    refine: bool = False,
    key: str | None = None,
    *,
    tolerances: Tolerances | None = None,
    threads: int | None = None,
    stability_rel: float = DEFAULT_REL,
    hessian: str = "auto",
) -> pd.DataFrame:
    """Classify given points of the loss ``||W_H ... W_1 X - Y||_F^2``, in bulk.

    Parameters
    ----------
    points : sequence of weight lists, or path
        ``[[W_1, ..., W_H], ...]`` with ``W_h`` of shape ``(d_h, d_{h-1})`` (PyTorch's
        ``nn.Linear(d_{h-1}, d_h, bias=False).weight`` orientation); architectures may
        differ between points.  Or the path of a Parquet file or dataset with one point per
        row, or of a folder of ``.npz`` files holding ``W1 ... WH`` (docs/classify.md).
    X : ndarray (d_x, m)
        Inputs, samples as columns (``inputs.T`` for PyTorch's samples-as-rows batches).
    Y : ndarray (d_y, m)
        Targets, samples as columns.
    refine : bool
        Move each point with ``grad_rel > 1e-12`` to a critical point nearby first
        (Gauss-Newton and Levenberg-Marquardt on the gradient, see :func:`refine_point`)
        and classify that one; the point as given is described by ``input_loss``,
        ``input_grad_rel``, ``refine_distance``.
    key : str, optional
        Column of a POINTS Parquet file whose values go to ``row`` (``"file"`` for a folder
        of ``.npz`` files: the file names); default: the point's index in the input.
    tolerances : Tolerances, optional
        Classification tolerances (:class:`mcland.Tolerances`).
    threads : int, optional
        Worker threads (default: all cores this process may use); results do not depend on it.
    stability_rel : float
        Componentwise relative perturbation of weights and data for the ``stability``
        columns (default ``4 * 2**-52``, the rounding of the stored floats; e.g. ``1e-8``
        for training endpoints), see docs/certify.md.
    hessian : {"auto", "dense", "structured", "matrix_free"}
        The spectrum from the dense N x N Hessian or without it (docs/structured.md), or
        no spectrum (``matrix_free``): proven enclosures of the extreme eigenvalues and
        intervals of the inertia from Hessian-vector products, the numeric type only where
        they prove it (columns ``eig_min_lo`` ... ``n_pos_hi``, docs/classify.md);
        ``auto`` keeps the dense path up to :data:`mcland.core.cost.DENSE_AUTO_MAX_N`
        parameters (the records of today's sizes are unchanged), takes the cheaper
        spectrum that fits above, and the matrix-free bounds when neither fits the memory
        limit and flop budget of :mod:`mcland.core.cost`.  The structured path's
        ``noise_floor`` is its own (docs/structured.md §5).  ``spectrum_method`` says
        which path each row took.

    Returns
    -------
    pandas.DataFrame
        One row per point, in input order: ``row``, the record columns of ``sample`` that
        apply (docs/output-schema.md; ``recipe``, ``s_drawn``, ``kill_mask`` ... null), the
        nearest enumerated critical value (``nearest_critical_value``, ``_index``,
        ``_distance``, in ``loss_tol`` units), with ``refine`` the input's figures, and
        the two answers of docs/certify.md for critical points: the certified type of the
        floats as given (``exact_type``, ``decided_by``; the exact evaluation runs only on
        rows float64 leaves undecided or whose strict verdict the bound cannot prove
        stable) and its stability (``stability``, ``possible_types``, ``stability_scale``,
        ``stability_bound``, ``stability_method``).

    Raises
    ------
    MclandError
        Bad data (as :meth:`mcland.Problem.from_data`), an unreadable POINTS file, a
        missing column, biases, shapes that do not chain or do not match the data, NaN;
        :class:`mcland.core.errors.TooLarge` for points whose analysis cannot fit in
        memory (:mod:`mcland.core.cost`), before any work.

    Examples
    --------
    >>> W, X, Y = mcland.draw_point("runs/quick.toml", 17)  # doctest: +SKIP
    >>> mcland.classify([W], X, Y)[["theory_type", "n_neg"]]  # doctest: +SKIP
    """
    return classify_table(
        points, X, Y, refine=refine, key=key, tolerances=tolerances, threads=threads,
        stability_rel=stability_rel, hessian=hessian,
    ).to_pandas()  # fmt: skip


def certify_point(
    weights: list[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    rel: float = DEFAULT_REL,
    tolerances: object | None = None,
) -> dict[str, object]:
    """Both answers for one point, the exact evaluation always run (docs/certify.md).

    Parameters
    ----------
    weights : sequence of ndarray
        ``[W_1, ..., W_H]``, ``W_h`` of shape ``(d_h, d_{h-1})``.
    X : ndarray (d_x, m)
    Y : ndarray (d_y, m)
    rel : float
        Componentwise relative perturbation for the stability answer.
    tolerances : Tolerances, optional

    Returns
    -------
    dict
        The float64 ``numeric_type`` and ``theory_type``, then :data:`COLUMNS`.
    """
    from mcland.classification.analysis import analyze_points
    from mcland.classification.inputs import read_points
    from mcland.core.tolerances import Tolerances

    tol = tolerances or Tolerances()
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    problem = Problem.from_data(X, Y)
    given = read_points([list(weights)], problem)
    out = analyze_points(given.dims, given.w, problem, tol, 1)
    cols = certify_rows(
        given.dims, given.w, X, Y, problem, out.row_float, out.row_int, out.spectrum_w,
        rel, None, tol.grad_rtol, everything=True,
    )  # fmt: skip
    ri = out.row_int[0]
    res: dict[str, object] = {
        "numeric_type": f.TYPE_NAMES[ri[f.I_NUMERIC_TYPE]],
        "theory_type": f.TYPE_NAMES[ri[f.I_THEORY_TYPE]],
        "eig_min_w": float(out.row_float[0, f.F_EIG_MIN_W]),
        "noise_floor": float(out.row_float[0, f.F_NOISE_FLOOR]),
    }
    res.update({c: list(v[0]) if isinstance(v[0], list) else v[0] for c, v in cols.items()})
    return res
