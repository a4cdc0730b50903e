"""The batch loop: draw and analyse many points, each from its own random stream.

Point ``t`` seeds its own stream from ``(seed, ids[t])``, so the content of a row does
not depend on the thread that computed it, on the batch size or on its neighbours.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
from numba import types

from mcland._kernels import fields as f
from mcland._kernels import params as p
from mcland._kernels import rng
from mcland._kernels.bundles import DrawnPoint, PointOutput, Thresholds
from mcland._kernels.classify import analyze
from mcland._kernels.dense import bottleneck, copy_into, frob, layer, layer_offsets, matmul
from mcland._kernels.draw import construct, draw_data, draw_dims
from mcland._kernels.jit import JIT_OPTIONS, jit, jit_inline
from mcland._kernels.structured_classify import analyze_structured_into
from mcland._kernels.whiten import (
    critical_values_into,
    n_critical_values,
    problem,
    smallest_relative_gap,
)


@jit
def _product_error(w, dims, s_in, U, Syx, Kinv):
    """``||W_{H:1} - U_S U_S^T Syx Sxx^{-1}||_F / ||Syx Sxx^{-1}||_F``."""
    H = dims.size - 1
    off = layer_offsets(dims)
    P = layer(w, dims, off, 1).copy()
    for h in range(2, H + 1):  # W_{H:1} in the order of product_table: the same bits
        P = matmul(layer(w, dims, off, h), P)
    B = matmul(matmul(Syx, Kinv), Kinv)
    Us = U.copy()
    for i in range(s_in.size):
        if not s_in[i]:
            Us[:, i] = 0.0
    T = matmul(Us, matmul(U.T.copy(), B))
    return frob(P - T) / frob(B)


@jit
def draw_point(sampler, sample_id):
    """Draw point ``sample_id`` of the run described by ``sampler`` (:class:`.bundles.Sampler`):
    a :class:`.bundles.DrawnPoint`.  The user data of ``sampler`` are used when
    ``params[P_FIXED_DATA] > 0`` (then the scale factors are 1)."""
    params = sampler.params
    state = rng.stream(sampler.seed, sample_id)
    dims = draw_dims(state, params, sampler.fixed_x.shape[0], sampler.fixed_y.shape[0])
    H = dims.size - 1
    if params[p.P_FIXED_DATA] > 0.0:
        X = sampler.fixed_x
        Y = sampler.fixed_y
        scale_x = 1.0
        scale_y = 1.0
        data_ok = True
        moments = problem(X, Y)
    else:
        X, Y, scale_x, scale_y, data_ok, moments = draw_data(state, params, dims[0], dims[H])
    w, s_drawn, recipe, kill_mask = construct(state, params, sampler.kill_weights, dims, moments)
    return DrawnPoint(dims, w, X, Y, s_drawn, recipe, kill_mask, scale_x, scale_y, data_ok, moments)


@jit_inline
def _store_draw(point, out, t):
    """Row ``t`` of the draw facts of ``out`` (:class:`.bundles.RangeOutput`) for ``point``;
    returns the point's number of parameters N."""
    dims = point.dims
    H = dims.size - 1
    moments = point.moments
    N = layer_offsets(dims)[H]
    r = bottleneck(dims)
    out.dims[t] = 0
    copy_into(dims, out.dims[t], 0)
    s = 0
    for i in range(point.s_drawn.size):
        out.s_drawn[t, i] = point.s_drawn[i]
        if point.s_drawn[i]:
            s += 1
    draw_int = out.draw_int[t]
    draw_int[p.D_H] = H
    draw_int[p.D_DX] = dims[0]
    draw_int[p.D_DY] = dims[H]
    draw_int[p.D_R] = r
    draw_int[p.D_N] = N
    draw_int[p.D_RECIPE] = point.recipe
    draw_int[p.D_S_DRAWN] = s
    draw_int[p.D_KILL_MASK] = point.kill_mask
    draw_int[p.D_STATUS] = p.STATUS_OK if point.data_ok else p.STATUS_DATA_REJECTED
    draw_float = out.draw_float[t]
    draw_float[p.D_SCALE_X] = point.scale_x
    draw_float[p.D_SCALE_Y] = point.scale_y
    draw_float[p.D_MIN_REL_GAP] = smallest_relative_gap(moments.lam)
    mu = moments.mu
    draw_float[p.D_SXX_RCOND] = mu[0] / mu[mu.size - 1]
    draw_float[p.D_PRODUCT_ERR] = _product_error(
        point.w, dims, point.s_drawn, moments.U, moments.Syx, moments.K_inv
    )
    if out.weights.shape[1] > 0:
        copy_into(point.w, out.weights[t], 0)
    out.critical_values[t] = np.nan
    if out.critical_values.shape[1] >= n_critical_values(dims[H], r):
        critical_values_into(moments.lam, moments.tr_syy, r, out.critical_values[t])
    return N


@jit_inline
def _run_settings(params):
    """The analysis flags (:mod:`.fields`) and :class:`.bundles.Thresholds` of a run, from
    its kernel parameters ``params`` (:mod:`.params`)."""
    flags = f.SPECTRUM
    if params[p.P_SPECTRUM_FREE] > 0.0:
        flags = f.CHOLESKY
    if params[p.P_ORIGINAL_SPECTRUM] > 0.0:
        flags |= f.ORIGINAL
    return flags, Thresholds(params[p.P_GRAD_RTOL], params[p.P_C_ZERO], params[p.P_C_NEG])


def _process_range(sampler, ids, out, start, stop, step, draw, analyse):
    """Draw and analyse the points ``ids[start:stop:step]`` of the run ``sampler``
    (:class:`.bundles.Sampler`; ``ids`` (n,) int64) into the rows of ``out``
    (:class:`.bundles.RangeOutput`): row t of every output is point ids[t].

    ``draw`` is :func:`draw_point` and ``analyse`` :func:`.classify.analyze`, passed as
    first-class functions (:func:`process_range` compiles this for them): the compiled
    loop calls their own compiled code instead of linking a copy of it in.
    """
    params = sampler.params
    no_direction = np.zeros(0)  # escape directions are not stored
    work = np.empty(0)  # the Hessian's scratch, grown to the largest point of the range
    flags, thresholds = _run_settings(params)
    for t in range(start, stop, step):
        point = draw(sampler, ids[t])
        N = _store_draw(point, out, t)
        if work.size < 2 * N * N:
            work = np.empty(2 * N * N)
        point_flags = flags
        if (
            flags & f.CHOLESKY
            and rng.audit_uniform(sampler.seed, ids[t]) < params[p.P_AUDIT_FRACTION]
        ):
            point_flags |= f.SPECTRUM
        result = PointOutput(
            out.row_float[t], out.row_int[t], out.s_mask[t], out.ranks[t],
            out.spectrum_w[t], out.spectrum[t], no_direction,
        )  # fmt: skip
        analyse(point.dims, point.w, point.moments, thresholds, point_flags, result, work)


def _process_range_wide(
    sampler, ids, out, paths, start, stop, step, draw, analyse, analyse_structured
):
    """:func:`_process_range` with the structured spectrum for the points ``paths`` sends
    there (:func:`process_range_wide`); ``analyse_structured`` is
    :func:`.structured_classify.analyze_structured_into`, first-class as the others."""
    params = sampler.params
    no_direction = np.zeros(0)
    work = np.empty(0)
    flags, thresholds = _run_settings(params)
    for t in range(start, stop, step):
        point = draw(sampler, ids[t])
        N = _store_draw(point, out, t)
        out.spectrum_zeros[t, 0] = 0
        result = PointOutput(
            out.row_float[t], out.row_int[t], out.s_mask[t], out.ranks[t],
            out.spectrum_w[t], out.spectrum[t], no_direction,
        )  # fmt: skip
        if paths.structured_all or paths.dense_max_n < N:
            _, m = analyse_structured(
                point.dims,
                point.w,
                point.moments,
                thresholds,
                flags,
                result,
                paths.max_k,
                np.bool_(True),
            )
            if m >= 0:
                out.spectrum_zeros[t, 0] = N - m
            continue
        if work.size < 2 * N * N:
            work = np.empty(2 * N * N)
        point_flags = flags
        if (
            flags & f.CHOLESKY
            and rng.audit_uniform(sampler.seed, ids[t]) < params[p.P_AUDIT_FRACTION]
        ):
            point_flags |= f.SPECTRUM
        analyse(point.dims, point.w, point.moments, thresholds, point_flags, result, work)


# --- the compiled loops, one per argument types, calling the big kernels first-class -------
#
# Numba compiles a call of one @jit kernel from another by linking the callee's whole
# LLVM module (with everything it calls) into the caller's and optimising all of it again:
# for the loops above that re-did ``draw_point`` and ``analyze`` (about 8 s of CPU on a
# first run, after both were compiled; docs/performance.md "First run").  A kernel passed
# as an argument of Numba's first-class function type (``numba.types.FunctionType``,
# "Functions" in Numba's reference manual, "Types and signatures") is called through
# its address instead: Numba looks the callee's compiled specialisation up (compiling or
# loading it from the cache) when the loop is called from Python, and calls it with its
# own calling convention, so exceptions propagate as from any call.  Only a dispatcher
# compiled for an explicit signature converts a kernel argument to that type (a lazy one
# compiles a new specialisation that links the kernel in), hence ``numba.njit(signature)``
# here, once per argument types, with the options of :mod:`.jit` (cached as every kernel:
# the cached loop holds no address).

_LOOPS: dict[tuple, object] = {}  # (kind, argument types) -> the dispatcher compiled for them
_CHECKED: set[tuple] = set()  # keys whose analyze was found to return nothing
_LOCK = threading.Lock()


def _first_class(kernel, args: tuple) -> types.FunctionType:
    """The first-class function type of ``kernel`` for the argument types ``args``: compiles
    (or loads) the kernel for them to learn its return type, which Numba does not check
    when it converts the kernel to this type."""
    kernel.compile(args)
    for sig in kernel.nopython_signatures:
        if tuple(sig.args) == tuple(args):
            return types.FunctionType(sig)
    raise RuntimeError(f"{kernel.__name__}{args}: no compiled specialisation")


def analyze_args(drawn: types.Type) -> tuple:
    """Numba argument types of :func:`.classify.analyze` as the loops call it, for a drawn
    point of type ``drawn`` (the return type of :func:`draw_point`): ``dims``, ``w`` and
    ``moments`` the drawn point's, the :class:`.bundles.Thresholds`, flags int64, a
    :class:`.bundles.PointOutput` of C-contiguous rows and the float64 scratch ``work``."""
    fields = dict(zip(DrawnPoint._fields, drawn.types, strict=True))
    thresholds = numba.typeof(Thresholds(0.0, 0.0, 0.0))
    f8, i8, b1 = np.zeros(1), np.zeros(1, np.int64), np.zeros(1, np.bool_)
    out = numba.typeof(PointOutput(f8, i8, b1, i8, f8, f8, f8))
    work = types.float64[::1]
    return (fields["dims"], fields["w"], fields["moments"], thresholds, types.int64, out, work)


def _analyze_type(drawn: types.Type) -> types.FunctionType:
    """:func:`.classify.analyze`'s first-class type, declared (it returns nothing) so that
    the loop compiles without waiting for ``analyze`` (on a first run a child process
    compiles it); :func:`_check_analyze` verifies the declaration before the first call."""
    return types.FunctionType(types.none(*analyze_args(drawn)))


def _check_analyze(key: tuple, analyse: types.FunctionType) -> None:
    if key in _CHECKED:
        return
    found = _first_class(analyze, analyse.signature.args)
    if found.signature.return_type != types.none:
        raise RuntimeError(f"analyze returns {found.signature.return_type}, not nothing")
    _CHECKED.add(key)


def _loop(kind: str, args: tuple):
    """The loop ``kind`` (``"dense"``: :func:`_process_range`, ``"wide"``:
    :func:`_process_range_wide`) compiled (or loaded) for the argument types ``args`` of
    its Python caller, and the first-class types of its kernels."""
    key = (kind, args)
    with _LOCK:
        loop = _LOOPS.get(key)
        if loop is None:
            draw = _first_class(draw_point, (args[0], types.int64))
            drawn = draw.signature.return_type
            kernels = (draw, _analyze_type(drawn))
            if kind == "wide":
                # as analyze's but max_k int64 and a bool (compressed) instead of work
                wide_args = (*analyze_args(drawn)[:6], types.int64, types.boolean)
                kernels += (_first_class(analyze_structured_into, wide_args),)
            i8 = types.int64
            signature = (*args, i8, i8, i8, *kernels)
            py_func = _process_range if kind == "dense" else _process_range_wide
            loop = (numba.njit([signature], **JIT_OPTIONS)(py_func), kernels)
            _LOOPS[key] = loop
    return loop


_LAST: dict[str, object] = {}  # kind -> the loop of the last call


def _run(kind: str, args: tuple, bounds: tuple, kernels: tuple) -> None:
    """Call the loop ``kind`` on ``(*args, *bounds, *kernels)``: the last one used if it
    was compiled for these types (its dispatcher checks them, compiled for one signature
    it compiles no other), else the one of :func:`_loop` (typing the arguments and looking
    the loop up took 1.5 of the 2.4 ms per call at load 5)."""
    loop = _LAST.get(kind)
    if loop is not None:
        try:
            return loop(*args, *bounds, *kernels)
        except TypeError as e:  # other argument types (raised before anything ran)
            if not str(e).startswith(_NO_MATCH):
                raise
    key = (kind, tuple(numba.typeof(a) for a in args))
    loop, first_class = _loop(*key)
    _check_analyze(key, first_class[1])
    _LAST[kind] = loop
    loop(*args, *bounds, *kernels)


_NO_MATCH = "No matching definition for argument type(s)"  # Numba's TypeError


def range_loop(kind: str, *args):
    """The compiled loop for ``process_range(*args)`` (``kind`` ``"dense"``) or
    ``process_range_wide(*args)`` (``"wide"``), without the range bounds: compiled (or
    loaded from the cache) for the arguments' types, with :func:`draw_point` (and for
    ``"wide"`` the structured analysis) but not ``analyze`` compiled or loaded: on a first
    run :mod:`mcland._kernels.compile` compiles this while a child compiles ``analyze``."""
    return _loop(kind, tuple(numba.typeof(a) for a in args))[0]


def process_range(sampler, ids, out, start, stop, step):
    """Draw and analyse the points ``ids[start:stop:step]`` of the run ``sampler``
    (:class:`.bundles.Sampler`; ``ids`` (n,) int64) into the rows of ``out``
    (:class:`.bundles.RangeOutput`): row t of every output is point ids[t].

    Runs the compiled loop :func:`_process_range` for these argument types
    (:func:`range_loop`), without the GIL: disjoint ranges run concurrently in threads
    (see :func:`mcland.execution.compute.compute`).  Drawing and analysing a point are two
    kernels of their own (:func:`draw_point`, :func:`.classify.analyze`), which
    :mod:`mcland._kernels.compile` compiles side by side in two processes on a first run,
    and which the loop calls without linking their code in.
    """
    _run("dense", (sampler, ids, out), (start, stop, step), (draw_point, analyze))


def process_range_wide(sampler, ids, out, paths, start, stop, step):
    """:func:`process_range` with the structured spectrum (docs/structured.md) for the
    points ``paths`` (:class:`.bundles.HessianPaths`) sends there: every point when
    ``paths.structured_all``, else those of more than ``paths.dense_max_n`` parameters; the
    others exactly as :func:`process_range` (the same :func:`.classify.analyze` call, the
    same bits).

    A structured row's spectra hold the ``m`` eigenvalues of the compressed Hessian K (the
    larger of the whitened and original K's orders; the shorter list padded with exact
    zeros) and ``out.spectrum_zeros[t, 0] = N - m`` (:func:`analyze_structured_into`); when
    ``m`` exceeds the buffers' width (never for a plan's points, whose ``k_bound`` sized
    them) the spectra stay NaN (null).  A dense row: the full spectra, 0 zeros left out.
    Kept apart from :func:`process_range` so that a run whose points are all below the
    dense limit never compiles the structured kernels (docs/performance.md "First run").
    """
    kernels = (draw_point, analyze, analyze_structured_into)
    _run("wide", (sampler, ids, out, paths), (start, stop, step), kernels)
