"""Run configuration: a validated, frozen pydantic model loaded from TOML.

Every key carries its description here (``Field(description=...)``); the reference
``docs/configuration.md`` is generated from these models by ``docs/generate.py``.  Unknown keys, wrong types and impossible values are refused with one message naming the
key (and the closest valid key for a misspelling).
"""

from __future__ import annotations

import difflib
import tomllib
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from mcland._kernels import params as p
from mcland.core.cost import SPECTRUM_MODES
from mcland.core.errors import MclandError
from mcland.core.tolerances import C_NEG, C_ZERO, GAP_RTOL, GRAD_RTOL, SXX_RCOND

# Strict types: no coercion of strings or booleans into numbers (TOML has real types);
# integers are accepted where a float is expected.  Bounds keep every draw inside float64.
PosInt = Annotated[int, Field(strict=True, ge=1, le=2**62)]
Depth = Annotated[int, Field(strict=True, ge=2, le=64)]
Width = Annotated[int, Field(strict=True, ge=1, le=4096)]
Extra = Annotated[int, Field(strict=True, ge=0, le=4096)]
Scale = Annotated[float, Field(strict=True, ge=1e-8, le=1e8)]
Weight = Annotated[float, Field(strict=True, ge=0.0, le=1e12)]
Cond = Annotated[float, Field(strict=True, ge=1.0, le=1e6)]
Prob = Annotated[float, Field(strict=True, ge=0.0, le=1.0)]
Tol = Annotated[float, Field(strict=True, gt=0.0, lt=1.0)]
Mult = Annotated[float, Field(strict=True, gt=0.0, le=1e12)]
Range = Field(strict=False)  # TOML arrays are lists; their elements stay strict
SEED_MAX = 2**63 - 1


_DEPRECATIONS_SHOWN: dict = {}  # warnings' registry: each deprecation shown once a process


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _check_range(name: str, lo: float, hi: float) -> None:
    if lo > hi:
        raise ValueError(f"{name} range is empty: [{lo}, {hi}] (need min <= max)")


class Architecture(_Section):
    """Random architectures: inclusive ``[min, max]`` ranges, each drawn uniformly (the
    hidden widths log-uniformly on request)."""

    depth: Annotated[tuple[Depth, Depth], Range] = Field(
        (2, 6), description="range of the depth `H`"
    )
    d_y: Annotated[tuple[Width, Width], Range] = Field(
        (1, 4), description="range of the output width `d_y` (gaussian data)"
    )
    d_x_extra: Annotated[tuple[Extra, Extra], Range] = Field(
        (0, 2), description="range of `extra` in `d_x = d_y + extra` (gaussian data)"
    )
    hidden: Annotated[tuple[Width, Width], Range] = Field(
        (1, 6), description="range of each hidden width `d_1 … d_{H-1}`"
    )
    hidden_log_uniform: bool = Field(
        False,
        description="draw each hidden width log-uniformly in `hidden` "
        "(`⌊exp U(log lo, log(hi + 1))⌋`: as many widths in 16…31 as in 512…1,023) instead of "
        "uniformly; width as a studied axis (runs/wide.toml)",
    )

    @model_validator(mode="after")
    def _ranges(self) -> Architecture:
        for name in ("depth", "d_y", "d_x_extra", "hidden"):
            _check_range(name, *getattr(self, name))
        return self


class Data(_Section):
    """Where the data comes from.  ``gaussian`` draws fresh data for every point."""

    source: Literal["gaussian", "npz", "parquet", "csv"] = Field(
        "gaussian",
        description="`gaussian` (fresh data for every point), `npz` (arrays `X`, `Y`), "
        "`parquet` or `csv` (one sample per row)",
    )
    m: Annotated[int, Field(strict=True, ge=1, le=10**7)] = Field(
        40, description="samples per point (gaussian)"
    )
    noise: Annotated[float, Field(strict=True, ge=0.0, le=1e6)] = Field(
        0.5, description="`Y = T X0 + noise Z` (gaussian)"
    )
    scale_x: Annotated[tuple[Scale, Scale], Range] = Field(
        (1.0, 1.0), description="log-uniform range of the data scale factor `a` of `X = a X0`"
    )
    scale_y: Annotated[tuple[Scale, Scale], Range] = Field(
        (1.0, 1.0),
        description="log-uniform range of the data scale factor `b` of `Y = b (T X0 + noise Z)`",
    )
    path: str | None = Field(
        None, description="data file, relative to the configuration file (npz, parquet, csv)"
    )
    x_columns: list[str] | None = Field(None, description="feature columns (parquet, csv)")
    y_columns: list[str] | None = Field(None, description="target columns (parquet, csv)")

    @model_validator(mode="after")
    def _consistent(self) -> Data:
        _check_range("scale_x", *self.scale_x)
        _check_range("scale_y", *self.scale_y)
        if self.source == "gaussian":
            if self.path is not None or self.x_columns or self.y_columns:
                raise ValueError(
                    "path, x_columns and y_columns are only used with source = 'npz', 'parquet' or 'csv'"
                )
        else:
            if self.path is None:
                raise ValueError(f"source = '{self.source}' needs a path")
            tabular = self.source in ("parquet", "csv")
            if tabular and not (self.x_columns and self.y_columns):
                raise ValueError(f"source = '{self.source}' needs x_columns and y_columns")
            if not tabular and (self.x_columns or self.y_columns):
                raise ValueError("x_columns / y_columns are only used with parquet or csv")
        return self


class Points(_Section):
    """How critical points are drawn (docs/theory.md §5)."""

    weight_global: Weight = Field(
        1.0, description="relative frequency of `S = [r]` (recipe `global`)"
    )
    weight_top_saddle: Weight = Field(
        1.6, description="relative frequency of `S = [s]`, `s < r` (recipe `top_saddle`)"
    )
    weight_other_saddle: Weight = Field(
        0.6, description="relative frequency of a non-top `S` (recipe `other_saddle`)"
    )
    kill_weights: list[Weight] = Field(
        default=[1.0, 1.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0],
        min_length=1,
        max_length=64,
        description="relative frequencies of 1, 2, 3, … kill layers",
    )
    split: Prob = Field(
        0.5,
        description="probability that a complement index goes to the output side of a single kill",
    )
    low_rank: Prob = Field(
        0.2, description="probability that a free complement block gets a random lower rank"
    )
    basis_cond: Cond = Field(3.0, description="condition-number bound of the hidden bases")
    signal_cond: Cond = Field(3.0, description="condition-number bound of the signal factors")

    @model_validator(mode="after")
    def _weights(self) -> Points:
        if self.weight_global + self.weight_top_saddle + self.weight_other_saddle <= 0:
            raise ValueError(
                "at least one of weight_global, weight_top_saddle, weight_other_saddle must be > 0"
            )
        if (
            sum(self.kill_weights) <= 0
            or self.kill_weights[0] + self.kill_weights[1 if len(self.kill_weights) > 1 else 0] <= 0
        ):
            raise ValueError(
                "kill_weights needs a positive weight for 1 or 2 kill layers (depth 2 uses only those)"
            )
        return self


class Classify(_Section):
    """Tolerances (see ``mcland.core.tolerances``) and the data assumption checks."""

    grad_rtol: Tol = Field(
        GRAD_RTOL, description="critical when `‖∇L‖ ≤ grad_rtol · g_scale` (docs/numerics.md)"
    )
    c_zero: Mult = Field(C_ZERO, description="an eigenvalue `≥ −c_zero · floor` counts as zero")
    c_neg: Mult = Field(
        C_NEG,
        description="an eigenvalue `< −c_neg · floor` counts as negative (`c_neg ≥ c_zero`; "
        "in between: `ambiguous`)",
    )
    gap_rtol: Tol = Field(
        GAP_RTOL,
        description="data check: smallest relative eigen-gap of `Sigma = Syx Sxx⁻¹ Sxy` must exceed it",
    )
    sxx_rcond: Tol = Field(
        SXX_RCOND, description="data check: reciprocal condition number of `Sxx` must exceed it"
    )
    spectrum_free: bool = Field(
        False,
        description="numeric type from shifted Cholesky factorisations, no eigenvalues "
        "(docs/numerics.md)",
    )
    audit_fraction: Prob = Field(
        0.01, description="spectrum-free mode: fraction of points that still get the full spectrum"
    )
    hessian: Literal[SPECTRUM_MODES] = Field(
        "auto",
        description="the Hessian's spectrum from the dense `N × N` matrix or without it "
        "(docs/structured.md); `auto`: dense up to 5,000 parameters, else the cheaper one "
        "that fits (`mcland.core.cost`); structured rows store the nonzero spectrum and "
        "`spectrum_zeros` (docs/structured.md §6)",
    )

    @model_validator(mode="after")
    def _order(self) -> Classify:
        if self.c_neg < self.c_zero:
            raise ValueError(f"c_neg = {self.c_neg} must be >= c_zero = {self.c_zero}")
        return self


class Output(_Section):
    """What is stored and how it is split into files."""

    spectrum: bool = Field(
        True,
        description="store the (whitened) spectrum as the list column `spectrum_w` (rows "
        "of the structured path: the eigenvalues of K, the exact zeros counted in "
        "`spectrum_zeros`)",
    )
    original_spectrum: bool = Field(
        False,
        description="also decompose the original-coordinate Hessian (fills `spectrum`, "
        "`eig_min`, `eig_max`, `hess_norm`; about twice the time)",
    )
    weights: bool = Field(False, description="store the weights (column `weights`)")
    shard_size: PosInt = Field(5000, description="points per Parquet file (shard)")


# Relative sizes of a perturbation or an initialisation: positive, at most 1.
RelSize = Annotated[float, Field(strict=True, gt=0.0, le=1.0)]


class Dynamics(_Section):
    """Gradient-flow experiments at each point (``mcland dynamics``; docs/dynamics.md).
    Optional: a sampling configuration without it is unchanged."""

    experiment: Literal["escape", "small_init"] = Field(
        "escape",
        description="`escape`: perturb the sampled critical point and time the escape; "
        "`small_init`: train the point's architecture on its data from `W_h(0) = eps a G_h`",
    )
    deltas: list[RelSize] = Field(
        default=[1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8],
        min_length=1,
        max_length=64,
        description="escape: perturbation sizes, relative to `‖W*‖_F` (at `W* = 0` to the "
        "norm of a balanced network with the data's gain); one row per delta",
    )
    eps: list[RelSize] = Field(
        default=[1e-2, 1e-4, 1e-6, 1e-8],
        min_length=1,
        max_length=64,
        description="small_init: initialisation scales, relative to the per-layer scale of a "
        "balanced network with the data's gain; one row per eps",
    )
    escape_fraction: Tol = Field(
        0.5,
        description="`f`: escape when `L ≤ L(W*) − f (L(W*) − c_next)`; small_init: `t_global` "
        "when `L ≤ L_min + f (c_above − L_min)`",
    )
    max_evals: Annotated[int, Field(strict=True, ge=10, le=10**9)] = Field(
        200_000, description="budget in gradient evaluations per run (one row)"
    )
    t_max_steps: Annotated[float, Field(strict=True, gt=0.0, le=1e15)] = Field(
        1e9, description="budget in flow time, in units of the time unit `eta` (docs/dynamics.md)"
    )
    n_record: Annotated[int, Field(strict=True, ge=2, le=4096)] = Field(
        64, description="`K`: the loss is stored at `K` log-spaced times (`t_curve`, `loss_curve`)"
    )
    integrator: Literal["auto", "explicit", "rosenbrock"] = Field(
        "auto",
        description="`auto`: explicit steps, linearly implicit ones where an explicit step "
        "would be held by stability (switched during the run); `explicit`: Bogacki–Shampine "
        "3(2) only; `rosenbrock`: the linearly implicit ROS34PW2 pair (order 3(2), L-stable) "
        "with the exact Hessian only (docs/dynamics.md)",
    )
    rtol: Tol = Field(1e-6, description="relative local error tolerance of the integrator")
    grad_tol: Tol = Field(
        1e-4,
        description="a run has settled when `‖∇L‖ ≤ grad_tol · w_scale / eta` (after the "
        "escape level, or the `t_global` level, was crossed)",
    )
    plateau_threshold: Tol = Field(
        0.05,
        description="small_init: on a plateau `−dL/d ln t = t ‖∇L‖² ≤ plateau_threshold · λ_r` "
        "(`λ_r` the smallest loss drop of the staircase)",
    )
    plateau_min_ratio: Annotated[float, Field(strict=True, gt=1.0, le=1e6)] = Field(
        1.1,
        description="small_init: a plateau lasts at least `t_end / t_start ≥ plateau_min_ratio`",
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_plateau_points(cls, data: Any) -> Any:
        """``plateau_points`` (up to 0.8.0; unused since the visits are read at every
        accepted step): still accepted, with a one-line deprecation warning, and dropped."""
        if isinstance(data, dict) and "plateau_points" in data:
            warnings.warn_explicit(  # one line: no source line to quote
                "[dynamics] plateau_points is deprecated and ignored (plateaus are read at "
                "every accepted step); remove it from the configuration",
                FutureWarning, "configuration", 0, registry=_DEPRECATIONS_SHOWN,
            )  # fmt: skip
            data = {k: v for k, v in data.items() if k != "plateau_points"}
        return data


class Config(_Section):
    """A complete run configuration (all sections optional, with defaults)."""

    n: PosInt = Field(10_000, description="number of points")
    seed: Annotated[int, Field(strict=True, ge=0, le=SEED_MAX)] = Field(
        0, description="run seed; a record depends only on configuration, seed and `sample_id`"
    )
    architecture: Architecture = Field(Architecture(), description="random architectures")
    data: Data = Field(Data(), description="where the data comes from")
    points: Points = Field(Points(), description="how critical points are drawn")
    classify: Classify = Field(Classify(), description="tolerances and data checks")
    output: Output = Field(Output(), description="what is stored, and shard size")
    dynamics: Dynamics = Field(
        Dynamics(),
        description="gradient-flow experiments (`mcland dynamics`); left out of the resolved "
        "configuration when not given",
    )
    _base_dir: str = PrivateAttr(".")  # directory that relative data paths refer to

    @property
    def base_dir(self) -> str:
        return self._base_dir

    @model_validator(mode="after")
    def _samples(self) -> Config:
        if self.data.source == "gaussian":
            d_x_max = self.architecture.d_y[1] + self.architecture.d_x_extra[1]
            if self.data.m < d_x_max:
                raise ValueError(
                    f"data.m = {self.data.m} < largest d_x = {d_x_max}: Sxx would be singular"
                )
        return self

    def resolved(self) -> dict[str, Any]:
        """The full configuration with every default filled in (JSON-serialisable); but
        ``classify.hessian`` at its default ``auto`` and ``architecture.hidden_log_uniform``
        at its default ``false`` are left out, so that the manifests of run directories
        written before the keys existed still match (resume)."""
        exclude: dict[str, Any] = {}
        if "dynamics" not in self.model_fields_set:
            exclude["dynamics"] = True
        if self.classify.hessian == "auto":
            exclude["classify"] = {"hessian"}
        if not self.architecture.hidden_log_uniform:  # likewise (added after 0.8.0)
            exclude["architecture"] = {"hidden_log_uniform"}
        return self.model_dump(mode="json", exclude=exclude or None)

    @property
    def has_dynamics(self) -> bool:
        """Whether the configuration has a ``[dynamics]`` section (else ``dynamics`` holds
        the defaults)."""
        return "dynamics" in self.model_fields_set

    def kernel_params(self, fixed_data: bool) -> tuple[np.ndarray, np.ndarray]:
        """The flat parameter vector of :mod:`mcland._kernels.params` and the kill weights."""
        a, d, pt, c = self.architecture, self.data, self.points, self.classify
        vals = {
            "depth_min": a.depth[0], "depth_max": a.depth[1],
            "d_y_min": a.d_y[0], "d_y_max": a.d_y[1],
            "d_x_extra_min": a.d_x_extra[0], "d_x_extra_max": a.d_x_extra[1],
            "hidden_min": a.hidden[0], "hidden_max": a.hidden[1],
            "hidden_log": float(a.hidden_log_uniform),
            "m": d.m, "noise": d.noise,
            "log_scale_x_min": np.log(d.scale_x[0]), "log_scale_x_max": np.log(d.scale_x[1]),
            "log_scale_y_min": np.log(d.scale_y[0]), "log_scale_y_max": np.log(d.scale_y[1]),
            "weight_global": pt.weight_global, "weight_top_saddle": pt.weight_top_saddle,
            "weight_other_saddle": pt.weight_other_saddle, "split": pt.split,
            "low_rank": pt.low_rank, "basis_cond": pt.basis_cond, "signal_cond": pt.signal_cond,
            "gap_rtol": c.gap_rtol, "sxx_rcond": c.sxx_rcond, "fixed_data": float(fixed_data),
            "grad_rtol": c.grad_rtol, "c_zero": c.c_zero, "c_neg": c.c_neg,
            "spectrum_free": float(c.spectrum_free), "audit_fraction": c.audit_fraction,
            "original_spectrum": float(self.output.original_spectrum),
        }  # fmt: skip
        if set(vals) != set(p.PARAM_NAMES):  # the layout's names are the one source
            raise AssertionError(f"kernel parameters out of step: {set(vals) ^ set(p.PARAM_NAMES)}")
        params = np.array([float(vals[k]) for k in p.PARAM_NAMES])
        return params, np.array(pt.kill_weights, dtype=np.float64)


def _keys(model: type[BaseModel], prefix: str = "") -> dict[str, frozenset[str]]:
    out = {prefix: frozenset(model.model_fields)}
    for name, fld in model.model_fields.items():
        ann = fld.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out |= _keys(ann, f"{prefix}.{name}" if prefix else name)
    return out


# Every configuration key, by section ("" is the top level): the one list tests and docs use.
CONFIG_KEYS: dict[str, frozenset[str]] = _keys(Config)


def _suggest(loc: tuple[Any, ...]) -> str:
    """' (did you mean ...?)' for a misspelt key at ``loc``."""
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return ""
        model = ann
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: ``source: key.path: message``."""
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = ".".join(str(x) for x in loc).encode("unicode_escape").decode("ascii")
        if err["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key '{key}'{_suggest(loc)}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{source}: {key}: {msg}" if key else f"{source}: {msg}")
    return "; ".join(lines)


def config_from_dict(raw: dict[str, Any], *, source: str = "config", base_dir: str = ".") -> Config:
    """Validate a configuration dictionary (as parsed from TOML)."""
    try:
        cfg = Config.model_validate(raw)
        cfg._base_dir = base_dir
        return cfg
    except ValidationError as exc:
        raise MclandError(format_validation_error(exc, source)) from None


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML configuration file.

    Relative data paths are resolved against the file's directory.

    Raises
    ------
    MclandError
        Missing or unreadable file, malformed TOML, unknown keys, wrong types or values.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MclandError(f"cannot read configuration {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise MclandError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MclandError(f"{path}: malformed TOML: {exc}") from None
    return config_from_dict(raw, source=str(path), base_dir=str(path.resolve().parent))


def as_config(config: Config | dict | str | Path) -> Config:
    """``config`` as a validated :class:`Config` (a dict or a TOML path is loaded)."""
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return config_from_dict(config)
    return load_config(config)
