"""A labelled ground-truth set of exact critical points with exact inertia (docs/groundtruth.md).

The setting of Frye, Wadia, DeWeese & Bouchard (2019): the linear autoencoder
``d - w - d`` (``Y = X``) and its deeper variants ``d - w - ... - w - d``, on data whose
moments are exact integers: ``X = diag(a) Had`` (a Sylvester-Hadamard matrix, samples are
columns), so ``Sxx = Syx = m diag(a^2)`` and ``Sigma = Sxx``; its eigenvectors are the
coordinate axes.  For every index set ``S`` (``|S| <= r``) a point is built from integer
matrices ``A_h`` (a coordinate frame of ``S`` mixed by unimodular integer matrices ``G_h``)
with ``A_H ... A_1 = U_S U_S^T``, then rescaled: ``W_h = 2^{e_h} A_h`` with
``sum_h e_h = 0`` (exact in float64).

Labels, and why they are exact:

* loss and gradient are evaluated in Python integers at ``A`` (:mod:`mcland.classification.exact`); the
  gradient is checked to be exactly zero, the loss to equal ``tr(Syy) - sum_{i in S} lam_i``;
* ``L(D w) = L(w)`` for the rescaling ``D`` (the product is unchanged), so
  ``D^T Hess(D A) D = Hess(A)``: the Hessian at ``W = D A`` is congruent to the integer
  matrix ``Hess(A)``, and by Sylvester's law of inertia has its inertia, which
  :func:`mcland.classification.exact.inertia` computes by exact symmetric elimination;
* type: ``n_neg > 0`` strict saddle; otherwise a global minimizer if the loss is the global
  value (every local minimum of a deep linear network is global), else a non-strict saddle.

The float64 figures (smallest eigenvalues, counts at an eigenvalue cutoff) are of the
exported point ``W`` itself, for comparison.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mcland._kernels.hessian import assemble_hessian
from mcland.classification import exact
from mcland.core import linalg as la  # float figures without the process's BLAS/LAPACK
from mcland.core import numerics
from mcland.core.blas import one_blas_thread
from mcland.core.errors import MclandError

# X = diag(a) Had_16: the squares a_i^2 have pairwise distinct sums over the subsets of at
# most 4 elements (greedy from 4, see analysis/make_autoencoder_data.py), so the 2517
# critical values of the 16-4-16 autoencoder are distinct integers, at least m = 16 apart.
AMPLITUDES = (178, 130, 108, 87, 63, 46, 34, 24, 18, 12, 9, 8, 7, 6, 5, 4)
CUTOFF = 1e-5  # the usual eigenvalue cutoff the labels are compared with: |lambda| <= CUTOFF is 0
N_SMALLEST = 8  # float64 eigenvalues stored per point
MAX_EXPONENT = 24  # badly scaled points: e_h in [-MAX_EXPONENT, MAX_EXPONENT]
TYPES = ("global_minimizer", "strict_saddle", "non_strict_saddle")


def hadamard(n: int) -> np.ndarray:
    """Sylvester's Hadamard matrix (n, n) of ``+-1``, ``n`` a power of 2: ``Had Had^T = n I``."""
    if n < 1 or n & (n - 1):
        raise MclandError(f"hadamard: n = {n} is not a power of 2")
    M = np.ones((1, 1), np.int64)
    while M.shape[0] < n:
        M = np.block([[M, M], [M, -M]])
    return M


def autoencoder_data(amplitudes: tuple[int, ...] = AMPLITUDES) -> np.ndarray:
    """``X = diag(a) Had`` (d, m = d) integer, samples are columns; ``X X^T = m diag(a^2)``."""
    a = np.asarray(amplitudes, np.int64)
    return a[:, None] * hadamard(a.size)


def index_sets(d_y: int, r: int) -> list[tuple[int, ...]]:
    """The index sets ``S`` (0-based, increasing), ``|S| <= r``, in the order the kernel
    :func:`mcland._kernels.whiten.critical_values_into` visits them: by size, then
    lexicographically."""
    return [S for k in range(min(r, d_y) + 1) for S in combinations(range(d_y), k)]


@dataclass(frozen=True)
class Setting:
    """Exact data of an orthogonal-design autoencoder problem.

    Attributes
    ----------
    X : ndarray (d, m) int64
        The data, ``Y = X``.
    sxx : ndarray (d, d) object
        ``X X^T`` in Python integers (diagonal).
    lam : tuple of int
        Eigenvalues of ``Sigma`` in decreasing order (``lam_i``, paper index ``i = 1..d``).
    axis : tuple of int
        ``axis[i-1]``: the coordinate whose eigenvalue is ``lam_i``.
    depths : tuple of int
        The depths ``H`` of the set.
    width : int
        Hidden width ``w``; ``r = min(w, d)``.
    hessian : str
        The float figures' path (``[classify] hessian``: ``auto``, ``dense``,
        ``structured``; :func:`generate`).
    """

    X: np.ndarray
    sxx: np.ndarray
    lam: tuple[int, ...]
    axis: tuple[int, ...]
    depths: tuple[int, ...]
    width: int
    hessian: str = "auto"

    @property
    def d(self) -> int:
        return self.X.shape[0]

    @property
    def r(self) -> int:
        return min(self.width, self.d)

    @property
    def tr_syy(self) -> int:
        return int(sum(self.lam))

    def value(self, S: tuple[int, ...]) -> int:
        """Critical value ``tr(Syy) - sum_{i in S} lam_i`` (``S`` 0-based paper indices)."""
        return self.tr_syy - sum(self.lam[i] for i in S)

    def sorted_values(self) -> tuple[np.ndarray, list[tuple[int, ...]]]:
        """The critical values ascending (as the record column ``critical_values``) and the
        index set of each (``S`` of entry ``j``), ties kept in enumeration order."""
        sets = index_sets(self.d, self.r)
        vals = np.array([self.value(S) for S in sets], dtype=object)
        order = sorted(range(len(sets)), key=lambda j: vals[j])  # stable
        return np.array([vals[j] for j in order], dtype=object), [sets[j] for j in order]


def setting(X: np.ndarray, Y: np.ndarray, depths: tuple[int, ...], width: int) -> Setting:
    """Check that ``(X, Y)`` is an exact orthogonal-design autoencoder problem.

    Raises
    ------
    MclandError
        If ``Y != X``, an entry of ``X`` is not an integer, ``X X^T`` is not diagonal or its
        diagonal entries are not distinct and positive.
    """
    if X.shape != Y.shape or not np.array_equal(X, Y):
        raise MclandError("groundtruth needs an autoencoder: Y must equal X")
    try:
        Xe = exact.as_exact(X)
    except ValueError:
        raise MclandError("groundtruth needs integer data X (exact moments)") from None
    sxx = Xe @ Xe.T
    diag = [int(sxx[i, i]) for i in range(sxx.shape[0])]
    off = sxx - np.diag(np.array(diag, dtype=object))
    if any(v != 0 for v in off.ravel()):
        raise MclandError("groundtruth needs an orthogonal design: X X^T must be diagonal")
    if min(diag) <= 0 or len(set(diag)) != len(diag):
        raise MclandError("groundtruth needs distinct positive diagonal entries of X X^T")
    axis = tuple(sorted(range(len(diag)), key=lambda i: -diag[i]))
    lam = tuple(diag[i] for i in axis)
    return Setting(np.asarray(X, np.int64), sxx, lam, axis, tuple(depths), int(width))


def _unimodular(rng: np.random.Generator, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A random integer ``G = P diag(+-1) (I + N)`` (``N`` strictly upper triangular in
    {-1, 0, 1}) and its integer inverse."""
    N = np.triu(rng.integers(-1, 2, (w, w)), 1)
    T = np.eye(w, dtype=np.int64) + N
    T_inv = np.eye(w, dtype=np.int64)
    term = np.eye(w, dtype=np.int64)
    for _ in range(w - 1):  # (I + N)^{-1} = sum_k (-N)^k, N nilpotent
        term = -term @ N
        T_inv = T_inv + term
    perm = rng.permutation(w)
    signs = rng.choice(np.array([-1, 1]), w)
    P = np.eye(w, dtype=np.int64)[perm] * signs[:, None]  # P^{-1} = P^T
    return P @ T, T_inv @ P.T


def construct(
    st: Setting, H: int, S: tuple[int, ...], variant: str, rng: np.random.Generator
) -> list[np.ndarray]:
    """Integer layers ``A_1 .. A_H`` (int64) with ``A_H ... A_1 = U_S U_S^T``.

    ``variant`` ``"frame"``: ``A_1 = G_1 E^T``, ``A_h = G_h G_{h-1}^{-1}``,
    ``A_H = E G_{H-1}^{-1}``, ``E = [e_{axis(S)}, 0]`` (d, w); ``"dead"`` (``H >= 3``):
    the middle layers ``G_h D G_{h-1}^{-1}`` with ``D`` keeping the first ``|S|`` hidden
    units only (all other hidden units dead in every layer).
    """
    d, w = st.d, st.width
    E = np.zeros((d, w), np.int64)
    for j, i in enumerate(S):
        E[st.axis[i], j] = 1
    G = [_unimodular(rng, w) for _ in range(H - 1)]
    D = np.diag((np.arange(w) < len(S)).astype(np.int64))
    layers = [G[0][0] @ E.T]
    for h in range(1, H - 1):
        mid = D if variant == "dead" else np.eye(w, dtype=np.int64)
        layers.append(G[h][0] @ mid @ G[h - 1][1])
    layers.append(E @ G[H - 2][1])
    return layers


def scale_exponents(rng: np.random.Generator, H: int, bad: bool) -> np.ndarray:
    """``e_h`` with ``sum_h e_h = 0``: zeros, or (``bad``) spread over ``+-MAX_EXPONENT``."""
    if not bad:
        return np.zeros(H, np.int64)
    e = rng.integers(-MAX_EXPONENT, MAX_EXPONENT + 1, H)
    e[-1] = 0
    e[-1] = -int(e.sum())
    while abs(e[-1]) > MAX_EXPONENT:  # keep every layer within range, sum still zero
        k = int(rng.integers(0, H - 1))
        e[k] -= np.sign(e[k]) if e[k] else 0
        e[-1] = -int(e[:-1].sum())
    return e


def label(st: Setting, A: list[np.ndarray], S: tuple[int, ...]) -> dict[str, object]:
    """Exact labels of the point with integer layers ``A``: loss (checked to be the
    critical value of ``S``), zero gradient (checked), inertia and type."""
    Ae = [exact.as_exact(a) for a in A]
    sxx = st.sxx
    if any(np.any(g != 0) for g in exact.gradient(Ae, sxx, sxx)):
        raise AssertionError(f"S = {S}: the constructed point is not exactly critical")
    value = exact.loss(Ae, sxx, sxx, st.tr_syy)
    if value != st.value(S):
        raise AssertionError(f"S = {S}: loss {value} != critical value {st.value(S)}")
    n_neg, n_zero, n_pos = exact.inertia(exact.hessian(Ae, sxx, sxx))
    if n_neg:
        kind = "strict_saddle"
    elif value == st.value(tuple(range(st.r))):
        kind = "global_minimizer"
    else:
        kind = "non_strict_saddle"
    return {
        "loss_exact": int(value),
        "n_neg": n_neg,
        "n_zero": n_zero,
        "n_pos": n_pos,
        "type": kind,
    }


def float_figures(W: list[np.ndarray], X: np.ndarray, path: str = "dense") -> dict[str, object]:
    """The float64 spectrum of the Hessian at ``W`` of the autoencoder loss (``Y = X``):
    the :data:`N_SMALLEST` smallest eigenvalues, the largest magnitude and the counts at
    the cutoff :data:`CUTOFF`, in the original coordinates.

    ``path`` ``"dense"``: the Hessian assembled by mcland's compiled kernel
    (:func:`mcland._kernels.hessian.assemble_hessian`, the sampler's own) and its
    eigenvalues taken by ``dsyevd`` of mcland's LAPACK instance
    (:func:`mcland.core.linalg.eigvalsh`): the same bits in every process (up to 0.7:
    ``numpy.linalg.eigvalsh`` of :func:`mcland.core.naive.hessian`, whose bits depended on
    the BLAS kernel NumPy loaded).  ``"structured"``: without the N x N matrix, the
    eigenvalues of K and ``N - k`` exact zeros (:func:`structured_eigenvalues`)."""
    dims = np.array([W[0].shape[1], *(x.shape[0] for x in W)], np.int64)
    w = np.concatenate([np.asarray(x, np.float64).ravel() for x in W])
    if path == "structured":
        ev = structured_eigenvalues(dims, w, X)
    else:
        sxx = la.matmul(X, X.T)  # exact: X has small integer entries
        ev = la.eigvalsh(assemble_hessian(dims, w, sxx, sxx))
    return {
        "eig_smallest": ev[:N_SMALLEST].tolist(),
        "eig_max_abs": float(np.abs(ev).max()),
        "cutoff_n_neg": int(np.sum(ev < -CUTOFF)),
        "cutoff_n_zero": int(np.sum(np.abs(ev) <= CUTOFF)),
        "cutoff_n_pos": int(np.sum(ev > CUTOFF)),
    }


def structured_eigenvalues(dims: np.ndarray, w: np.ndarray, X: np.ndarray) -> np.ndarray:
    """All ``N`` eigenvalues, ascending, of the autoencoder Hessian at ``w`` (original
    coordinates) by the structured path (:func:`mcland._kernels.structured.structured_spectrum`):
    ``eig(K)`` and ``N - k`` exact zeros."""
    from mcland._kernels.bundles import StructuredControl
    from mcland._kernels.structured import structured_spectrum
    from mcland.core.problem import Problem

    moments = Problem.from_data(X, X).moments
    out = structured_spectrum(dims, w, moments, StructuredControl(False, 2**62))
    if out.info != 0:
        raise MclandError(f"groundtruth: the structured spectrum failed (info {out.info})")
    N = int(np.sum(dims[1:] * dims[:-1]))
    return np.sort(np.concatenate([out.ev, np.zeros(N - int(out.k))]))


def plan(st: Setting, n: int, seed: int) -> list[tuple[int, tuple[int, ...], str, bool]]:
    """The points of the set: ``(H, S, variant, badly_scaled)``.

    Every index set at depth 2 (``sum_{k<=r} C(d, k)`` points, balanced: every critical
    value of the ``d - w - d`` autoencoder once); then ``n`` more per depth in the
    configuration: ``S`` is the top set ``{1..r}`` (a global minimizer) for a quarter of
    them, a top set ``{1..s}``, ``s < r``, for another quarter, otherwise uniform over all
    index sets; every second point of each kind is badly scaled; at ``H >= 3`` the ``dead`` variant for
    half of the points with ``|S| < w``.
    """
    rng = np.random.default_rng([seed, 0])
    sets = index_sets(st.d, st.r)
    out: list[tuple[int, tuple[int, ...], str, bool]] = []
    if 2 in st.depths:
        out += [(2, S, "frame", False) for S in sets]
    for H in st.depths:
        for t in range(n):
            if t % 4 == 0:
                S = tuple(range(st.r))
            elif t % 4 == 1:
                S = tuple(range(int(rng.integers(st.r))))
            else:
                S = sets[int(rng.integers(len(sets)))]
            dead = H >= 3 and len(S) < st.width and bool(rng.integers(2))
            bad = (t + t // 4) % 2 == 1  # every second point, each kind of S alike
            out.append((H, S, "dead" if dead else "frame", bad))
    return out


def generate(st: Setting, n: int, seed: int, hessian: str | None = None) -> pd.DataFrame:
    """The labelled points of :func:`plan` as a DataFrame (one row per point; columns in
    docs/groundtruth.md).  Point ``k`` depends only on ``(seed, k)``.  The float figures of
    each depth come from the path :func:`mcland.core.cost.choose_hessian` picks under
    ``hessian`` (default ``st.hessian``; ``auto``: dense up to 5,000 parameters, so the
    sets of today are unchanged)."""
    with one_blas_thread():  # small eigvalsh calls: BLAS threads only contend
        return _generate(st, n, seed, st.hessian if hessian is None else hessian)


def _paths(st: Setting, hessian: str) -> dict[int, str]:
    """The float path of each depth of ``st`` (refusing what cannot fit)."""
    from mcland.core.cost import choose_hessian

    out = {}
    for H in st.depths:
        dims = [st.d] + [st.width] * (H - 1) + [st.d]
        out[H] = choose_hessian(hessian, dims, f"groundtruth (depth {H}, width {st.width})")
    return out


def _generate(st: Setting, n: int, seed: int, hessian: str = "auto") -> pd.DataFrame:
    paths = _paths(st, hessian)
    values, sets_sorted = st.sorted_values()
    index_of = {S: j for j, S in enumerate(sets_sorted)}
    rows = []
    for k, (H, S, variant, bad) in enumerate(plan(st, n, seed)):
        rng = np.random.default_rng([seed, 1, k])
        A = construct(st, H, S, variant, rng)
        e = scale_exponents(rng, H, bad)
        W = [a.astype(np.float64) * 2.0 ** int(x) for a, x in zip(A, e, strict=True)]
        dims = [st.d] + [st.width] * (H - 1) + [st.d]
        row = {
            "point_id": k,
            "H": H,
            "dims": dims,
            "w": np.concatenate([x.ravel() for x in W]),
            "S": [i + 1 for i in S],
            "s": len(S),
            "variant": variant,
            "scale_exponents": e.tolist(),
            "critical_value": float(st.value(S)),
            "critical_value_index": index_of[S],
        }
        row.update(label(st, A, S))
        row.update(float_figures(W, st.X.astype(np.float64), paths[H]))
        row["cutoff_agrees"] = (row["cutoff_n_neg"], row["cutoff_n_zero"]) == (
            row["n_neg"],
            row["n_zero"],
        )
        rows.append(row)
    return pd.DataFrame(rows)


def write(df: pd.DataFrame, st: Setting, out: Path, meta: dict[str, object]) -> None:
    """``out/points.parquet`` (one row per point; the layout ``mcland classify`` reads:
    ``dims`` and the flat row-major weights ``w``), ``out/data.npz`` (``X``, ``Y``) and
    ``out/npz/point-NNNNNN.npz`` (``W1 .. WH`` and every label)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "npz").mkdir(exist_ok=True)
    X = st.X.astype(np.float64)
    np.savez(out / "data.npz", X=X, Y=X)
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(
        {
            "mcland.groundtruth": json.dumps(meta),
            numerics.META_KEY: json.dumps(numerics.fingerprint(), sort_keys=True),  # issue 23
        }
    )
    pq.write_table(table, out / "points.parquet")
    for row in df.itertuples(index=False):
        flat = np.asarray(row.w)
        layers, pos = {}, 0
        for h in range(1, row.H + 1):
            size = row.dims[h] * row.dims[h - 1]
            layers[f"W{h}"] = flat[pos : pos + size].reshape(row.dims[h], row.dims[h - 1])
            pos += size
        labels = {c: np.asarray(getattr(row, c)) for c in df.columns if c not in ("w", "dims")}
        np.savez(
            out / "npz" / f"point-{row.point_id:06d}.npz",
            **layers,
            dims=np.asarray(row.dims),
            **labels,
        )


def from_config(path: str | Path) -> tuple[Setting, int]:
    """The :class:`Setting` of a configuration (its fixed data, ``architecture.depth`` and a
    fixed hidden width ``architecture.hidden = [w, w]``) and its seed.

    Raises
    ------
    MclandError
        Bad configuration, gaussian data, a hidden-width range, or data that are not an
        exact orthogonal-design autoencoder problem (:func:`setting`).
    """
    from mcland.core.config import load_config
    from mcland.core.cost import check_dense, dense_cost
    from mcland.core.datasource import load_data

    cfg = load_config(path)
    if cfg.data.source == "gaussian":
        raise MclandError(f"{path}: groundtruth needs fixed data (data.source npz, parquet or csv)")
    lo, hi = cfg.architecture.hidden
    if lo != hi:
        raise MclandError(
            f"{path}: groundtruth needs one hidden width: architecture.hidden = [{lo}, {lo}]"
        )
    data_path = Path(cfg.base_dir) / str(cfg.data.path)
    X, Y = load_data(cfg.data.source, data_path, cfg.data.x_columns, cfg.data.y_columns)
    d0, d1 = cfg.architecture.depth
    st = replace(setting(X, Y, tuple(range(d0, d1 + 1)), lo), hessian=cfg.classify.hessian)
    # the exact labels: the exact Hessian's object pointers and the elimination's copy, two
    # N x N arrays of 8-byte entries (a lower bound: the integers themselves come on top)
    n_max = 2 * st.d * lo + (d1 - 2) * lo * lo
    check_dense(
        dense_cost(n_max, matrices=2, decompositions=0),
        f"groundtruth (depth {d1}, width {lo}): the exact inertia labels",
        "lower architecture.hidden or depth (exact inertia needs the N x N exact matrix)",
    )
    _paths(st, st.hessian)  # the float figures: dense or structured, refused if neither fits
    return st, cfg.seed


def export(config: str | Path, out: str | Path, n: int, seed: int | None) -> pd.DataFrame:
    """``mcland groundtruth``: generate the set of ``config`` (seed: the configuration's
    unless given) and write it into ``out`` (:func:`write`); an ``out`` that exists and is
    not an empty directory is refused before any work."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MclandError(f"{out} exists and is not an empty directory")
    st, cfg_seed = from_config(config)
    seed = cfg_seed if seed is None else seed
    df = generate(st, n, seed)
    meta = {"config": str(config), "n": n, "seed": seed, "lam": list(st.lam), "cutoff": CUTOFF}
    write(df, st, out, meta)
    return df


def summary(df: pd.DataFrame) -> str:
    """Counts by depth and type, with the points whose cutoff counts disagree."""
    g = df.groupby(["H", "type"]).agg(
        points=("point_id", "size"),
        cutoff_wrong=("cutoff_agrees", lambda s: int((~s).sum())),
    )
    return g.to_string()
