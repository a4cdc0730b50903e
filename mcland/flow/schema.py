"""The record layout of the dynamics experiments (docs/dynamics.md): one row per
``(point, delta)`` (``escape``) or ``(point, eps)`` (``small_init``).

The one source of these columns: name, Arrow type, nullable and description, stored in the
field metadata (key ``description``) as in :data:`mcland.points.records.SCHEMA`.  The point's own
columns (type, S, eigenvalues, certificate, ...) are the sampler's record of the same
``sample_id``; no column here repeats them (``sample_id`` is the join key).
"""

from __future__ import annotations

import pyarrow as pa

EXPERIMENTS = ("escape", "small_init")

_F64 = pa.float64()
_LIST_F64 = pa.list_(pa.float64())
_S = pa.list_(pa.int8())

# shared by both experiments: how the run went and where it ended
_RUN: tuple[tuple[str, pa.DataType, bool, str], ...] = (
    ("eta", _F64, False, "time unit: `1 / λ_max` of the Hessian `∇²L` at `W*` (escape), or the data's unit `1 / (2 H ‖Sxx‖_2 a^{2(H−1)})` when that is zero (`W* = 0`, `H ≥ 3`) and for small_init; `a = (‖Syx‖_F / ‖Sxx‖_F)^{1/H}`"),
    ("status", pa.string(), False, "escape: `escaped`, `escaped_budget`, `relaxed`, `budget`, `failed`; small_init: `global`, `settled` (elsewhere), `budget`, `failed` (docs/dynamics.md)"),
    ("t_end", _F64, False, "flow time reached"),
    ("n_evals", pa.int64(), False, "gradient evaluations spent (the cost unit; rejected steps included); with the matrix-free implicit steps (more than 100 weights) plus two per Hessian-vector product"),
    ("n_steps", pa.int64(), False, "accepted integrator steps"),
    ("n_rejected", pa.int64(), False, "rejected integrator steps"),
    ("n_stiff_steps", pa.int64(), False, "accepted linearly implicit (Rosenbrock) steps: all of them with `integrator = \"rosenbrock\"`, none with `explicit`; with `auto` those taken where an explicit step was held by stability"),
    ("n_hessians", pa.int64(), False, "Hessian assemblies (one per accepted point of the linearly implicit steps); with the matrix-free implicit steps (more than 100 weights) builds of the Hessian-vector product factors"),
    ("n_switches", pa.int64(), False, "switches between explicit and linearly implicit steps (`auto`)"),
    ("loss_end", _F64, False, "loss at the end of the run"),
    ("grad_end", _F64, False, "`‖∇L‖_F` at the end of the run"),
    ("settled_value", _F64, False, "`tr(Syy) − Σ_{i∈S} λ_i` of the `S` read off the final weights"),
    ("settled_index", pa.int32(), False, "index of `settled_value` in the ascending list of all enumerated critical values (the record's `critical_values`)"),
    ("settled_S", _S, False, "`S` read off the final weights (1-based)"),
    ("settled_type", pa.string(), False, "numeric type of the final weights (from the loss and the Hessian)"),
    ("reached_global", pa.bool_(), False, "`settled_value` is the global minimum value (within `loss_tol`): the `S` read off the final weights is `[r]`"),
    ("t_curve", _LIST_F64, False, "`K = n_record` log-spaced times from `eta / 10` to the time budget"),
    ("loss_curve", _LIST_F64, False, "the loss at `t_curve` (dense output; NaN after the run stopped)"),
)  # fmt: skip

_ESCAPE: tuple[tuple[str, pa.DataType, bool, str], ...] = (
    ("sample_id", pa.int64(), False, "point index within the run (the sampler's record of it holds the point's own columns)"),
    ("delta", _F64, False, "relative perturbation size: `W(0) = W* + delta w_scale V`, `V` a unit random direction (one per point)"),
    ("w_scale", _F64, False, "`‖W*‖_F`, or at `W* = 0` the norm `sqrt(H) a` of a balanced network with the data's gain"),
    ("delta_abs", _F64, False, "`delta · w_scale`, the absolute perturbation size"),
    ("loss_star", _F64, False, "`L(W*)`"),
    ("c_next", _F64, True, "largest enumerated critical value more than `loss_tol` below `L(W*)` (null at a global minimizer)"),
    ("loss_escape", _F64, True, "escape level `L(W*) − f (L(W*) − c_next)` (null at a global minimizer)"),
    ("eig_min_star", _F64, False, "smallest eigenvalue of `∇²L` at `W*` (original coordinates)"),
    ("eig_max_star", _F64, False, "largest eigenvalue of `∇²L` at `W*` (original coordinates)"),
    ("t_escape", _F64, True, "first flow time with `L ≤ loss_escape` (null if never or at a minimizer)"),
    ("gd_steps", _F64, True, "`t_escape / eta`: the escape time in plain-GD steps at the stable rate"),
    ("t_linear", _F64, True, "strict saddles: the linearised prediction `ln(1/delta) / |eig_min_star|`, up to an additive constant"),
    ("relaxed_back", pa.bool_(), False, "a global minimizer's run settled back at its own value"),
)  # fmt: skip

_PLATEAU = pa.struct(
    [
        pa.field("t_start", _F64, False, metadata={"description": "first accepted-step time on the plateau criterion within the visit (0 when the run starts on it)"}),
        pa.field("t_end", _F64, False, metadata={"description": "last such time"}),
        pa.field("loss", _F64, False, metadata={"description": "loss at the plateau's point of smallest gradient (an accepted step)"}),
        pa.field("t_min_grad", _F64, False, metadata={"description": "time of that point"}),
        pa.field("grad_min", _F64, False, metadata={"description": "`‖∇L‖_F` there"}),
        pa.field("value_index", pa.int32(), False, metadata={"description": "index of the nearest enumerated critical value (ascending list)"}),
        pa.field("value", _F64, False, metadata={"description": "that critical value"}),
        pa.field("dist_tol", _F64, False, metadata={"description": "`|loss − value|` in units of `loss_tol` of that point"}),
        pa.field("S", _S, False, metadata={"description": "`S` read off that point (1-based)"}),
        pa.field("eig_min", _F64, False, metadata={"description": "smallest eigenvalue of `∇²L` there (original coordinates)"}),
        pa.field("numeric_type", pa.string(), False, metadata={"description": "numeric type there (an approximate critical point: often `not_critical`)"}),
    ]
)  # fmt: skip

_VISIT = pa.struct(
    [
        pa.field("S", _S, False, metadata={"description": "the set (1-based)"}),
        pa.field("t_enter", _F64, False, metadata={"description": "time the flow entered it (0 for the first visit)"}),
        pa.field("t_leave", _F64, False, metadata={"description": "time it left it (`t_end` for the last visit)"}),
        pa.field("rate_min", _F64, False, metadata={"description": "smallest `t ‖∇L‖² / λ_r` at the accepted steps inside (and its entry point): at most `plateau_threshold` where the flow dwelt near the set's saddle, larger on a transit (the set passed during a drop)"}),
        pa.field("plateau", pa.bool_(), False, metadata={"description": "the visit is in `plateaus` (a dwell lasting `plateau_min_ratio`, not the last visit)"}),
    ]
)  # fmt: skip

_SMALL_INIT: tuple[tuple[str, pa.DataType, bool, str], ...] = (
    ("sample_id", pa.int64(), False, "point index within the run: its architecture and data are used (the sampler's record of it holds the point's own columns)"),
    ("eps", _F64, False, "initialisation scale: `W_h(0) = eps a G_h`, `G_h` with i.i.d. `N(0, 1/d_{h−1})` entries (one `G` per point)"),
    ("init_norm", _F64, False, "`‖W(0)‖_F`"),
    ("loss_start", _F64, False, "`L(W(0))`"),
    ("t_global", _F64, True, "first flow time with `L ≤ L_min + f (c_above − L_min)`, `c_above` the smallest enumerated value above the global minimum `L_min` (null if never)"),
    ("n_plateaus", pa.int32(), False, "number of plateaus"),
    ("plateaus", pa.list_(_PLATEAU), False, "the visits (but the last) that meet the plateau criterion, in time order (docs/dynamics.md)"),
    ("visited_S", pa.list_(_S), False, "the saddles visited, in time order: the `S` of each visit where the flow dwelt (`visits.rate_min ≤ plateau_threshold`), then the final `S`, consecutive repeats merged; transits are in `visits` only"),
    ("visits", pa.list_(_VISIT), False, "the visits: each time interval on which `S(t) = {i : z_i > 1/2}` was constant, in time order, read at every accepted step and located inside the step where it changed; dwells and transits"),
    ("visits_resolved", pa.bool_(), False, "every change of `S(t)` was located and ordered: false when two indices changed within the bisection's resolution of each other (their order unknown) or the visits overflowed 64 rows; `visits` and `visited_S` are then not the whole sequence"),
)  # fmt: skip


def _schema(columns: tuple[tuple[str, pa.DataType, bool, str], ...]) -> pa.Schema:
    return pa.schema(
        [pa.field(n, t, nullable, metadata={"description": d}) for n, t, nullable, d in columns]
    )


SCHEMAS = {
    "escape": _schema(_ESCAPE + _RUN),
    "small_init": _schema(_SMALL_INIT + _RUN),
}


def record_schema(experiment: str) -> pa.Schema:
    """The Arrow schema of the rows of :func:`mcland.flow.records.point_records` for
    ``experiment`` (``"escape"`` or ``"small_init"``), a ``description`` per field."""
    try:
        return SCHEMAS[experiment]
    except KeyError:
        raise ValueError(f"experiment must be one of {EXPERIMENTS}, got {experiment!r}") from None
