"""``inspect_point``: classify one given point ``(weights, X, Y)``: from its Hessian spectrum
(``dense``, ``structured``) or, without one, from proven bounds on its extreme eigenvalues
and inertia (``matrix_free``: :mod:`mcland.points.matrix_free`, shared with ``classify``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from itertools import pairwise

import numpy as np

from mcland._kernels import fields as f
from mcland._kernels.bundles import PointOutput
from mcland._kernels.classify import analyze
from mcland._kernels.structured_classify import analyze_structured
from mcland.core import linalg as la  # norms without the process's BLAS
from mcland.core.cost import MATRIX_FREE_MODE, choose_hessian
from mcland.core.errors import MclandError
from mcland.core.extremes import Extremes
from mcland.core.problem import Problem, as_matrix
from mcland.core.tolerances import Tolerances
from mcland.execution.threads import default_threads
from mcland.points.matrix_free import analyze_point_matrix_free


def rank_labels(H: int) -> list[str]:
    """Names of the partial products in the order of the ``ranks`` column / attribute.

    ``W_{1:1}, W_{2:1}, W_{2:2}, W_{3:1}, W_{3:2}, W_{3:3}, ...``: ``W_{a:b}`` is at index
    ``a(a-1)/2 + b - 1``, for 1 <= b <= a <= H.
    """
    return [f"W_{{{a}:{b}}}" for a in range(1, H + 1) for b in range(1, a + 1)]


def _rounded(x: float, digits: int, rounding: str) -> str:
    """``x`` in ``e`` notation with ``digits`` digits after the point, rounded towards
    ``rounding`` (``decimal.ROUND_FLOOR`` / ``ROUND_CEILING``), exactly from its binary value."""
    if not np.isfinite(x) or x == 0.0:
        return f"{x:.{digits}e}"
    d = Decimal(float(x))  # exact
    q = d.quantize(Decimal(1).scaleb(d.adjusted() - digits), rounding=rounding)
    return f"{float(q):.{digits}e}"  # q has digits + 1 significant digits: printed as is


def interval(lo: float, hi: float, digits: int = 6) -> str:
    """``"[lo, hi]"`` rounded outwards to ``digits`` digits after the point: the printed
    interval contains the proven one."""
    return f"[{_rounded(lo, digits, ROUND_FLOOR)}, {_rounded(hi, digits, ROUND_CEILING)}]"


# the matrix-free path's bounds (:data:`mcland.points.matrix_free.BOUND_COLUMNS`)
_BOUND_FLOATS = ("eig_min_lo", "eig_min_hi", "eig_max_lo", "eig_max_hi")
_BOUND_INTS = ("n_neg_lo", "n_neg_hi", "n_zero_lo", "n_zero_hi", "n_pos_lo", "n_pos_hi")


@dataclass(frozen=True)
class PointReport:
    """Classification of one point of the square loss ``||W_H ... W_1 X - Y||^2``.

    Types are one of ``global_minimizer``, ``strict_saddle``, ``non_strict_saddle``,
    ``not_critical`` and ``ambiguous`` (the evidence sits inside the tolerance band).

    ``spectrum_method`` says which kind of answer the second-order fields are: ``dense`` and
    ``structured`` computed every eigenvalue; ``matrix_free`` computed none and proves
    enclosures instead (``eig_min_lo`` ... ``n_pos_hi``, docs/classify.md "Matrix-free
    rows"): there the spectrum fields (``eigenvalues``, ``eig_min``, ``eig_min_w``, ...) are
    NaN or empty and the counts ``n_neg``, ``n_zero``, ``n_pos`` None (never a point
    guess), and the bound fields are NaN / None on the other paths.

    Attributes
    ----------
    dims : tuple of int
        Architecture ``(d_0, ..., d_H)``.
    is_critical : bool
        ``grad_rel <= grad_rtol``.
    grad_norm, grad_rel : float
        ``||grad L||_F`` and its ratio to the cancellation scale (see :mod:`mcland.core.tolerances`).
    S : tuple of int
        Index set read off the point, 1-based eigen-indices of ``Sigma`` sorted by decreasing
        eigenvalue (meaningful for critical points).
    s_dev : float
        ``max_i min(z_i, |1 - z_i|)`` of the S reading; tiny at critical points.
    loss, critical_value, global_min_value : float
        ``L(W)``, ``tr(Syy) - sum_{i in S} lambda_i`` and ``L* = tr(Syy) - sum_{i<=r} lambda_i``.
    theory_type : str
        From docs/theory.md §3 (S and the open-pair certificates); ``not_critical`` if not critical.
    numeric_type : str
        From the Hessian spectrum and the loss (docs/theory.md §4); on the matrix-free path
        from the proven bracket of ``lambda_min``, ``ambiguous`` where the bounds decide
        neither (:attr:`numeric_evidence` says why).
    eigenvalues : ndarray (N,)
        Hessian eigenvalues (original coordinates), ascending; empty on the matrix-free path.
    eig_min, eig_max, hess_norm : float
        Extreme eigenvalues and ``||∇²L||_F`` of the Hessian (original coordinates).
    eigenvalues_w : ndarray (N,)
        Eigenvalues of the Hessian in whitened input coordinates ``(W_1 Sxx^{1/2}, W_2,
        ...)``, ascending: congruent to the original (same inertia) and free of the data's
        scaling; the numeric type is decided from them.
    eig_min_w, eig_max_w, hess_norm_w : float
        Their extremes and the whitened Hessian's Frobenius norm.
    noise_floor, tol_zero, tol_neg : float
        Rounding-error estimate of the whitened spectrum and the two thresholds from it.
    n_neg, n_zero, n_pos : int or None
        Whitened eigenvalues below ``-tol_neg``, within ``±tol_zero``, above ``tol_zero``
        (the inertia, shared by both Hessians); None on the matrix-free path.
    open_pair : tuple of int or None
        ``(h1, h2)`` of the first open layer pair of a theory-strict saddle with ``S = [s]``.
    escape_curvature : float or None
        Curvature of the escape certificate of a theory-strict saddle (negative): a Rayleigh
        quotient of the whitened Hessian, so never below ``eig_min_w``.
    escape_direction : list of ndarray or None
        The certificate's direction ``V = [V_1, ..., V_H]`` (shapes of the weights, nonzero on
        two layers): ``V^T ∇²L V = escape_curvature * ||(V_1 Sxx^{1/2}, V_2, ..., V_H)||_F^2 < 0``,
        so ``L(W + t V) < L(W)`` for small t != 0.
    ranks : dict
        Numerical rank of each partial product, keyed ``(a, b)`` for ``W_{a:b}``.
    r, N : int
        Bottleneck width ``min_h d_h`` and number of parameters.
    min_rel_gap : float
        Smallest relative gap of the eigenvalues of ``Sigma`` (docs/theory.md §1), from the data.
    spectrum_method : str
        ``dense``, ``structured`` or ``matrix_free``: the path taken (``hessian``).
    eig_min_lo, eig_min_hi, eig_max_lo, eig_max_hi : float
        Matrix-free path: proven ``eig_min_lo <= lambda_min <= eig_min_hi`` and
        ``eig_max_lo <= lambda_max <= eig_max_hi`` of the whitened Hessian (the spectrum
        that ``eigenvalues_w`` would be); NaN on the other paths.
    n_neg_lo, n_neg_hi, n_zero_lo, n_zero_hi, n_pos_lo, n_pos_hi : int or None
        Matrix-free path: proven ``n_neg_lo <= n_neg <= n_neg_hi`` and so on (the bands of
        ``tol_zero``, ``tol_neg``); None on the other paths.
    proven_curvature : str or None
        Matrix-free path: ``negative`` (an eigenvalue below ``-tol_neg`` is proven),
        ``nonnegative`` (none below ``-tol_zero`` is possible) or ``uncertain``.
    lanczos_products, lanczos_seconds : int or None, float
        Matrix-free path: Hessian-vector products used and the bounds' wall time in
        seconds; None / NaN on the other paths.
    """

    dims: tuple[int, ...]
    is_critical: bool
    grad_norm: float
    grad_rel: float
    S: tuple[int, ...]
    s_dev: float
    loss: float
    critical_value: float
    global_min_value: float
    theory_type: str
    numeric_type: str
    eig_min: float
    eig_max: float
    hess_norm: float
    eig_min_w: float
    eig_max_w: float
    hess_norm_w: float
    noise_floor: float
    tol_zero: float
    tol_neg: float
    n_neg: int | None
    n_zero: int | None
    n_pos: int | None
    open_pair: tuple[int, int] | None
    escape_curvature: float | None
    escape_direction: list[np.ndarray] | None = field(repr=False)
    ranks: dict[tuple[int, int], int]
    r: int
    N: int
    min_rel_gap: float
    spectrum_method: str
    eig_min_lo: float
    eig_min_hi: float
    eig_max_lo: float
    eig_max_hi: float
    n_neg_lo: int | None
    n_neg_hi: int | None
    n_zero_lo: int | None
    n_zero_hi: int | None
    n_pos_lo: int | None
    n_pos_hi: int | None
    proven_curvature: str | None
    lanczos_products: int | None
    lanczos_seconds: float
    eigenvalues: np.ndarray = field(repr=False)
    eigenvalues_w: np.ndarray = field(repr=False)

    @property
    def verdict(self) -> str:
        """What mcland concludes (the ``verdict`` column of a record): the type on which
        ``theory_type`` and ``numeric_type`` agree, else ``ambiguous``."""
        return self.numeric_type if self.theory_type == self.numeric_type else "ambiguous"

    @property
    def numeric_evidence(self) -> str | None:
        """On the matrix-free path, one line saying what the bounds prove about ``lambda_min``
        and so why ``numeric_type`` is decided or ``ambiguous``; None on the other paths
        (the spectrum itself is the evidence)."""
        if self.spectrum_method != MATRIX_FREE_MODE:
            return None
        box = f"lambda_min in {interval(self.eig_min_lo, self.eig_min_hi, 3)}"
        if self.proven_curvature == "negative":
            why = f"an eigenvalue below -tol_neg = {-self.tol_neg:.3e} is proven"
        elif self.proven_curvature == "nonnegative":
            why = f"no eigenvalue below -tol_zero = {-self.tol_zero:.3e} is possible"
        else:
            why = (
                f"neither an eigenvalue below -tol_neg = {-self.tol_neg:.3e} is proven nor "
                f"one below -tol_zero = {-self.tol_zero:.3e} excluded: the bounds do not "
                "decide the numeric type"
            )
        return f"{box}: {why}"

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-serialisable dictionary (ranks keyed ``"W_{a:b}"``), with ``verdict``
        and ``numeric_evidence``."""
        d = asdict(self)
        d["verdict"] = self.verdict
        d["numeric_evidence"] = self.numeric_evidence
        for name in (*_BOUND_FLOATS, "lanczos_seconds"):  # not applicable: null, not NaN
            if np.isnan(d[name]):
                d[name] = None
        d["eigenvalues"] = self.eigenvalues.tolist()
        d["eigenvalues_w"] = self.eigenvalues_w.tolist()
        d["escape_direction"] = (
            None if self.escape_direction is None else [V.tolist() for V in self.escape_direction]
        )
        d["ranks"] = {f"W_{{{a}:{b}}}": k for (a, b), k in self.ranks.items()}
        return d


def check_weights(weights: Sequence[object], d_x: int, d_y: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(weights, np.ndarray) or len(weights) < 2:
        raise MclandError("weights must be a list [W_1, ..., W_H] of H >= 2 matrices")
    mats = [as_matrix(W, f"W_{h}") for h, W in enumerate(weights, start=1)]
    dims = [mats[0].shape[1]] + [W.shape[0] for W in mats]
    for h in range(1, len(mats)):
        if mats[h].shape[1] != mats[h - 1].shape[0]:
            raise MclandError(
                f"shapes do not chain: W_{h + 1} is {mats[h].shape} but W_{h} has "
                f"{mats[h - 1].shape[0]} rows (W_h must be (d_h, d_(h-1)))"
            )
    if dims[0] != d_x or dims[-1] != d_y:
        raise MclandError(
            f"weights map R^{dims[0]} -> R^{dims[-1]} but the data have d_x = {d_x}, d_y = {d_y}"
        )
    w = np.concatenate([W.ravel() for W in mats])
    return np.array(dims, dtype=np.int64), w


NO_MAX_K = np.int64(2**62)  # analyze_structured's cap on k: the cost was checked before


def split_layers(flat: np.ndarray, dims: np.ndarray) -> list[np.ndarray]:
    """Flat parameters (layers concatenated row-major) -> ``[V_1, ..., V_H]``, ``V_h`` a view
    of shape ``(d_h, d_{h-1})``."""
    bounds = np.cumsum(np.concatenate([[0], dims[1:] * dims[:-1]]))
    return [
        flat[a:b].reshape(int(dims[h + 1]), int(dims[h]))
        for h, (a, b) in enumerate(pairwise(bounds))
    ]


def analyze_flat(
    dims: np.ndarray,
    w: np.ndarray,
    problem: Problem,
    tol: Tolerances,
    flags: int = f.SPECTRUM | f.ORIGINAL,
    hessian: str = "dense",
    threads: int | None = None,
) -> tuple[np.ndarray, ...]:
    """Run the analysis kernel on one flat point (``flags``: bits of ``_kernels.fields``):
    ``hessian = "dense"`` :func:`mcland._kernels.classify.analyze` (the N x N Hessian),
    ``"structured"`` :func:`mcland._kernels.structured_classify.analyze_structured` (its
    spectrum without it, docs/structured.md), ``"matrix_free"``
    :func:`mcland.points.matrix_free.analyze_point_matrix_free` (no spectrum: ``flags``
    ignored, the products on ``threads`` threads).

    Returns ``(row_float, row_int, s_mask, ranks, spectrum_w, spectrum, escape, extremes)``:
    the kernel's outputs (rows named by ``FLOAT_FIELDS`` / ``INT_FIELDS``, the mask of
    ``S``, the partial products' ranks, the whitened and original spectra (empty on the
    matrix-free path), the escape direction) and the matrix-free bounds
    (:class:`mcland.core.extremes.Extremes`; None on the other paths).
    """
    H = dims.size - 1
    N = int(np.sum(dims[1:] * dims[:-1]))
    row_float = np.empty(len(f.FLOAT_FIELDS))
    row_int = np.empty(len(f.INT_FIELDS), np.int64)
    s_mask = np.zeros(problem.d_y, np.bool_)
    ranks = np.zeros(H * (H + 1) // 2, np.int64)
    n_spec = 0 if hessian == MATRIX_FREE_MODE else N  # no O(N) spectrum that is not computed
    spectrum_w = np.full(n_spec, np.nan)
    spectrum = np.full(n_spec, np.nan)
    escape = np.empty(N)
    out = PointOutput(row_float, row_int, s_mask, ranks, spectrum_w, spectrum, escape)
    extremes = None
    if hessian == MATRIX_FREE_MODE:
        extremes = analyze_point_matrix_free(dims, w, problem, tol, threads, out)
    elif hessian == "structured":
        analyze_structured(dims, w, problem.moments, tol.thresholds, flags, out, NO_MAX_K)
    else:
        analyze(dims, w, problem.moments, tol.thresholds, flags, out, np.empty(0))
    return row_float, row_int, s_mask, ranks, spectrum_w, spectrum, escape, extremes


def inspect_point(
    weights: Sequence[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
    *,
    tolerances: Tolerances | None = None,
    problem: Problem | None = None,
    hessian: str = "auto",
) -> PointReport:
    """Classify the point ``weights`` of the loss ``||W_H ... W_1 X - Y||_F^2``.

    Parameters
    ----------
    weights : sequence of ndarray
        ``[W_1, ..., W_H]``, H >= 2, ``W_h`` of shape ``(d_h, d_{h-1})``.
    X : ndarray (d_x, m)
        Inputs, samples as columns.
    Y : ndarray (d_y, m)
        Targets, samples as columns.
    tolerances : Tolerances, optional
        Classification tolerances (defaults documented in :mod:`mcland.core.tolerances`).
    problem : Problem, optional
        Precomputed ``Problem.from_data(X, Y)`` to skip its setup when inspecting many
        points of the same data (``X`` and ``Y`` are then ignored).
    hessian : {"auto", "dense", "structured", "matrix_free"}
        How the spectrum is computed: from the dense N x N Hessian, or from its compressed
        form K without it (docs/structured.md; same inertia, eigenvalues within the
        stated multiple of ``eps ||H||``), or not at all (``matrix_free``: proven
        enclosures of the extreme eigenvalues and intervals of the inertia from
        Hessian-vector products, docs/classify.md "Matrix-free rows"; the numeric type
        only where they prove it); ``auto`` (default) keeps the dense path up to
        :data:`mcland.core.cost.DENSE_AUTO_MAX_N` parameters, takes the cheaper one above,
        and ``matrix_free`` when neither spectrum fits the memory limit and flop budget
        (:func:`mcland.core.cost.choose_hessian`).

    Returns
    -------
    PointReport

    Raises
    ------
    MclandError
        Shapes that do not chain or do not match the data, NaN/inf, weights whose products
        overflow, or data violating the assumptions of docs/theory.md §1.
    TooLarge
        The chosen path's predicted memory exceeds the limit of :mod:`mcland.core.cost`
        (a MclandError, raised before anything is allocated).
    """
    tol = tolerances or Tolerances()
    prob = problem if problem is not None else Problem.from_data(X, Y)
    dims, w = check_weights(weights, prob.d_x, prob.d_y)
    check_magnitude(dims, w, prob)
    threads = default_threads()  # the matrix-free products' (the result does not depend on it)
    # analyze() holds 2 N x N arrays and then a third for the original coordinates
    path = choose_hessian(hessian, dims, "inspect", matrices=3, matrix_free=True, threads=threads)
    try:
        outputs = analyze_flat(dims, w, prob, tol, hessian=path, threads=threads)
    except np.linalg.LinAlgError:
        raise MclandError(
            "the point's Hessian is not finite in float64: rescale the weights"
        ) from None
    return point_report(dims, prob, *outputs, spectrum_method=path)


def check_magnitude(dims: np.ndarray, w: np.ndarray, problem: Problem) -> None:
    """MclandError unless the scale of the loss's terms and ``||w||^2`` are finite."""
    with np.errstate(over="ignore"):
        norms = [la.norm(W) for W in split_layers(w, dims)]
        scale = float(np.prod(norms)) ** 2 * la.norm(problem.Sxx)
        sq = la.norm(w) ** 2
    if not (np.isfinite(scale) and np.isfinite(sq)):
        raise MclandError("the weights are too large: their products overflow float64")


def point_report(
    dims: np.ndarray,
    problem: Problem,
    row_float: np.ndarray,
    row_int: np.ndarray,
    s_mask: np.ndarray,
    ranks: np.ndarray,
    spectrum_w: np.ndarray,
    spectrum: np.ndarray,
    escape: np.ndarray,
    extremes: Extremes | None = None,
    *,
    spectrum_method: str = "dense",
) -> PointReport:
    """The :class:`PointReport` of the kernel's outputs for one point (:func:`analyze_flat`;
    ``extremes``: the matrix-free bounds, None on the paths ``spectrum_method`` ``dense``
    and ``structured``, which computed the spectrum)."""
    fv = dict(zip(f.FLOAT_FIELDS, row_float.tolist(), strict=True))
    iv = dict(zip(f.INT_FIELDS, row_int.tolist(), strict=True))
    H = dims.size - 1
    N = int(np.sum(dims[1:] * dims[:-1]))
    if extremes is None:
        bounds: dict[str, object] = dict.fromkeys(_BOUND_FLOATS, np.nan)
        bounds.update(dict.fromkeys(_BOUND_INTS))
        bounds.update(
            spectrum_method=spectrum_method, proven_curvature=None, lanczos_products=None,
            lanczos_seconds=np.nan,
        )  # fmt: skip
    else:
        e = extremes.columns()
        bounds = {name: e[name] for name in _BOUND_FLOATS + _BOUND_INTS}
        bounds.update(
            spectrum_method=MATRIX_FREE_MODE,
            proven_curvature=extremes.curvature,
            lanczos_products=extremes.lanczos_products,
            lanczos_seconds=extremes.seconds,
        )
    # no spectrum, no count (the intervals hold what is proven)
    count = {k: None if extremes is not None else iv[k] for k in ("n_neg", "n_zero", "n_pos")}
    curv = fv["escape_curvature"]
    keys = [(a, b) for a in range(1, H + 1) for b in range(1, a + 1)]
    return PointReport(
        dims=tuple(int(d) for d in dims),
        is_critical=bool(iv["is_critical"]),
        grad_norm=fv["grad_norm"],
        grad_rel=fv["grad_rel"],
        S=tuple(int(i) + 1 for i in np.flatnonzero(s_mask)),
        s_dev=fv["s_dev"],
        loss=fv["loss"],
        critical_value=fv["critical_value"],
        global_min_value=fv["global_min_value"],
        theory_type=f.TYPE_NAMES[iv["theory_type"]],
        numeric_type=f.TYPE_NAMES[iv["numeric_type"]],
        eig_min=fv["eig_min"],
        eig_max=fv["eig_max"],
        hess_norm=fv["hess_norm"],
        eig_min_w=fv["eig_min_w"],
        eig_max_w=fv["eig_max_w"],
        hess_norm_w=fv["hess_norm_w"],
        noise_floor=fv["noise_floor"],
        tol_zero=fv["tol_zero"],
        tol_neg=fv["tol_neg"],
        **count,
        open_pair=(iv["open_h1"], iv["open_h2"]) if iv["open_h1"] > 0 else None,
        escape_curvature=None if np.isnan(curv) else curv,
        escape_direction=None if np.isnan(curv) else split_layers(escape, dims),
        ranks=dict(zip(keys, (int(k) for k in ranks), strict=True)),
        r=int(dims.min()),
        N=N,
        min_rel_gap=problem.min_rel_gap,
        **bounds,
        eigenvalues=spectrum,
        eigenvalues_w=spectrum_w,
    )
