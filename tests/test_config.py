"""Configuration and data validation, through ``mcland sample`` and ``load_config``.

The contract (docs/cli.md, "Bad input"): every kind of bad input ends with ONE line
``mcland: error: ...`` on stderr, exit status 2, no traceback, and nothing written (the
output directory is not created).  Every refusal test also checks the message names the
problem, and every data test has a positive control (the same setup with good data runs).

The CLI is called in-process through :func:`mcland.cli.main`; the refusals happen before
any point is computed, so these tests are fast.
"""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cli_helpers import assert_bad_input, cli, tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcland.core.config import CONFIG_KEYS, Config, load_config
from mcland.core.errors import MclandError

# ---------------------------------------------------------------------- helpers

TINY: dict[str, Any] = {
    "n": 20,
    "seed": 1,
    "architecture": {"depth": [2, 3], "d_y": [1, 2], "d_x_extra": [0, 1], "hidden": [1, 3]},
    "data": {"m": 10},
    "output": {"shard_size": 10},
}

NPZ = {"data": {"source": "npz", "path": "data.npz"}}
CSV = {
    "data": {
        "source": "csv",
        "path": "data.csv",
        "x_columns": ["x1", "x2", "x3"],
        "y_columns": ["y1", "y2"],
    }
}
PARQUET = {"data": {**CSV["data"], "source": "parquet", "path": "data.parquet"}}


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)  # float repr (also inf / nan) is valid TOML
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def to_toml(cfg: dict[str, Any]) -> str:
    """TOML text of a configuration dict (top-level scalars, then one table per section)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in cfg.items() if not isinstance(v, dict)]
    for k, v in cfg.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``patch`` merged in, section by section."""
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def patch_id(patch: dict[str, Any]) -> str:
    """Test id of a configuration patch: ``section.key=value`` pairs."""
    flat = [
        (f"{k}.{kk}", vv) if isinstance(v, dict) else (k, v)
        for k, v in patch.items()
        for kk, vv in (v.items() if isinstance(v, dict) else [(None, None)])
    ]
    return ",".join(f"{k}={_toml_value(v)}" for k, v in flat)


def by_patch(cases: list[tuple[Any, ...]]) -> list[Any]:
    """``pytest.param`` of each case, with the patch (first item) as its id."""
    return [pytest.param(*case, id=patch_id(case[0])) for case in cases]


def write_config(directory: Path, patch: dict[str, Any] | None = None) -> Path:
    path = directory / "config.toml"
    path.write_text(to_toml(merged(TINY, patch or {})), encoding="utf-8")
    return path


def sample_refused(capsys, tmp_path: Path, config: Path, *fragments: str) -> str:
    """``mcland sample CONFIG --out tmp_path/out`` is refused and writes nothing."""
    before = tree(tmp_path)
    code, out, err = cli(
        capsys, "sample", config, "--out", tmp_path / "out", "--no-progress", "--threads", "1"
    )
    msg = assert_bad_input(code, out, err, *fragments)
    assert tree(tmp_path) == before
    assert not (tmp_path / "out").exists()
    return msg


def sample_ok(capsys, tmp_path: Path, config: Path, n: int = 5) -> None:
    """Positive control: the same setup runs."""
    out_dir = tmp_path / "ok"
    code, out, err = cli(
        capsys, "sample", config, "--out", out_dir, "--n", n, "--no-progress", "--threads", "1"
    )
    assert code == 0, err
    assert "agreement" in out
    assert (out_dir / "run.json").is_file()


# ---------------------------------------------------------------------- the configuration


def test_tiny_config_is_accepted(capsys, tmp_path):
    """Positive control for the configuration refusals below."""
    sample_ok(capsys, tmp_path, write_config(tmp_path))


def test_malformed_toml(capsys, tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text("n = 20\n[architecture\ndepth = [2, 3]\n", encoding="utf-8")
    sample_refused(capsys, tmp_path, cfg, "config.toml", "malformed TOML")


@pytest.mark.parametrize(
    ("patch", "key", "suggestion"),
    [
        ({"seeed": 3}, "seeed", "seed"),
        ({"architecture": {"depht": [2, 3]}}, "architecture.depht", "depth"),
        ({"data": {"noize": 0.1}}, "data.noize", "noise"),
        ({"classify": {"c_zer": 0.5}}, "classify.c_zer", "c_zero"),
        ({"archtecture": {"depth": [2, 3]}}, "archtecture", "architecture"),
    ],
    ids=["top-level", "architecture", "data", "classify", "section"],
)
def test_unknown_key_suggests_the_right_one(capsys, tmp_path, patch, key, suggestion):
    msg = sample_refused(capsys, tmp_path, write_config(tmp_path, patch))
    assert f"unknown key '{key}'" in msg
    assert f"(did you mean '{suggestion}'?)" in msg


def test_unknown_key_without_close_match_has_no_suggestion(capsys, tmp_path):
    msg = sample_refused(capsys, tmp_path, write_config(tmp_path, {"zzzzzz": 1}))
    assert "unknown key 'zzzzzz'" in msg
    assert "did you mean" not in msg


@pytest.mark.parametrize(
    ("patch", "key"),
    by_patch(
        [
            ({"n": "10"}, "n"),
            ({"n": 1.5}, "n"),
            ({"n": True}, "n"),
            ({"seed": 1.0}, "seed"),
            ({"architecture": {"depth": "2"}}, "architecture.depth"),
            ({"architecture": {"depth": 2}}, "architecture.depth"),
            ({"architecture": {"depth": [2, 3, 4]}}, "architecture.depth"),
            ({"architecture": {"hidden": ["1", 3]}}, "architecture.hidden.0"),
            ({"data": {"m": 10.0}}, "data.m"),
            ({"data": {"source": "hdf5"}}, "data.source"),
            ({"points": {"kill_weights": 1.0}}, "points.kill_weights"),
            ({"output": {"spectrum": [True]}}, "output.spectrum"),
        ]
    ),
)
def test_wrong_type(capsys, tmp_path, patch, key):
    sample_refused(capsys, tmp_path, write_config(tmp_path, patch), f"{key}: ")


@pytest.mark.parametrize(
    ("patch", "fragments"),
    by_patch(
        [
            (
                {"architecture": {"depth": [1, 3]}},
                ["architecture.depth.0", "greater than or equal to 2"],
            ),
            (
                {"architecture": {"depth": [2, 1]}},
                ["architecture.depth.1", "greater than or equal to 2"],
            ),
            (
                {"architecture": {"hidden": [0, 3]}},
                ["architecture.hidden.0", "greater than or equal to 1"],
            ),
            ({"architecture": {"hidden": [-2, 3]}}, ["architecture.hidden.0"]),
            ({"architecture": {"hidden": [1, 2.5]}}, ["architecture.hidden.1", "valid integer"]),
            ({"architecture": {"d_y": [0, 2]}}, ["architecture.d_y.0"]),
            ({"architecture": {"hidden": [4, 3]}}, ["hidden range is empty", "[4, 3]"]),
            ({"architecture": {"depth": [5, 2]}}, ["depth range is empty"]),
            ({"data": {"scale_x": [2.0, 1.0]}}, ["scale_x range is empty"]),
            ({"n": 0}, ["n: ", "greater than or equal to 1"]),
            ({"n": -5}, ["n: ", "greater than or equal to 1"]),
            ({"seed": -1}, ["seed: ", "greater than or equal to 0"]),
            ({"data": {"m": 2}}, ["data.m = 2 < largest d_x = 3"]),
            ({"classify": {"c_zero": 2.0, "c_neg": 1.0}}, ["c_neg = 1.0 must be >= c_zero = 2.0"]),
            ({"classify": {"c_zero": math.nan}}, ["classify.c_zero"]),
            ({"points": {"split": 1.5}}, ["points.split"]),
            ({"points": {"kill_weights": [0.0, 0.0, 1.0]}}, ["kill_weights"]),
            ({"data": {"source": "npz"}}, ["source = 'npz' needs a path"]),
            ({"data": {"source": "csv", "path": "d.csv"}}, ["needs x_columns and y_columns"]),
            ({"data": {"path": "d.npz"}}, ["only used with source"]),
        ]
    ),
)
def test_impossible_value(capsys, tmp_path, patch, fragments):
    sample_refused(capsys, tmp_path, write_config(tmp_path, patch), *fragments)


def test_several_problems_still_one_line(capsys, tmp_path):
    patch = {"n": 0, "architecture": {"depht": [2, 3]}, "output": {"shard_size": -1}}
    sample_refused(
        capsys,
        tmp_path,
        write_config(tmp_path, patch),
        "n: ",
        "architecture.depht",
        "output.shard_size",
    )


def test_missing_config_file(capsys, tmp_path):
    sample_refused(capsys, tmp_path, tmp_path / "nope.toml", "nope.toml")


def test_config_is_a_directory(capsys, tmp_path):
    (tmp_path / "conf.d").mkdir()
    sample_refused(capsys, tmp_path, tmp_path / "conf.d", "conf.d")


# ---------------------------------------------------------------------- user data

RNG_SEED = 1234


def good_xy(d_x: int = 3, d_y: int = 2, m: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Data satisfying docs/theory.md §1 (distinct eigenvalues with probability one)."""
    rng = np.random.default_rng(RNG_SEED)
    X = rng.standard_normal((d_x, m))
    Y = rng.standard_normal((d_y, d_x)) @ X + 0.5 * rng.standard_normal((d_y, m))
    return X, Y


def write_table(path: Path, X: np.ndarray, Y: np.ndarray) -> None:
    frame = pd.DataFrame(
        {
            **{f"x{i + 1}": X[i] for i in range(X.shape[0])},
            **{f"y{i + 1}": Y[i] for i in range(Y.shape[0])},
        }
    )
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


@pytest.mark.parametrize(
    ("patch", "name"),
    [(NPZ, "data.npz"), (CSV, "data.csv"), (PARQUET, "data.parquet")],
    ids=["npz", "csv", "parquet"],
)
def test_good_user_data_runs(capsys, tmp_path, patch, name):
    """Positive control for the data refusals below (relative path, resolved next to the config)."""
    X, Y = good_xy()
    if name.endswith(".npz"):
        np.savez(tmp_path / name, X=X, Y=Y)
    else:
        write_table(tmp_path / name, X, Y)
    sample_ok(capsys, tmp_path, write_config(tmp_path, patch))


@pytest.mark.parametrize("patch", [NPZ, CSV, PARQUET], ids=["npz", "csv", "parquet"])
def test_data_path_does_not_exist(capsys, tmp_path, patch):
    sample_refused(capsys, tmp_path, write_config(tmp_path, patch), "no such file")


def _npz_case(**arrays: np.ndarray):
    def write(path: Path) -> None:
        np.savez(path / "data.npz", **arrays)

    return write


def _collinear() -> tuple[np.ndarray, np.ndarray]:
    X, Y = good_xy()
    X[2] = 2.0 * X[0] - X[1]  # m = 12 >= d_x = 3, but rank(X) = 2
    return X, Y


def _sigma_multiple_of_identity() -> tuple[np.ndarray, np.ndarray]:
    # orthogonal rows of equal norm: Sxx = 2 I; with Y = X, Sigma = Syx Sxx^-1 Sxy = 2 I
    X = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    return X, X.copy()


def _with_nan() -> tuple[np.ndarray, np.ndarray]:
    X, Y = good_xy()
    X[1, 4] = np.nan
    return X, Y


X0, Y0 = good_xy()
X_COL, Y_COL = _collinear()
X_ID, Y_ID = _sigma_multiple_of_identity()
X_NAN, Y_NAN = _with_nan()

DATA_CASES = [
    ("missing-Y", _npz_case(X=X0), ["data.npz", "missing array(s) Y", "has: X"]),
    ("missing-X", _npz_case(Y=Y0), ["missing array(s) X"]),
    ("nan", _npz_case(X=X_NAN, Y=Y_NAN), ["X has 1 NaN or infinite entries"]),
    ("inf", _npz_case(X=X0, Y=np.where(Y0 > 1.0, np.inf, Y0)), ["Y has", "infinite"]),
    ("different-m", _npz_case(X=X0, Y=Y0[:, :-1]), ["X has 12 samples", "Y has 11"]),
    ("m<d_x", _npz_case(X=X0[:, :2], Y=Y0[:, :2]), ["singular", "m = 2 samples < d_x = 3"]),
    ("collinear", _npz_case(X=X_COL, Y=Y_COL), ["singular or too ill-conditioned"]),
    ("sigma=cI", _npz_case(X=X_ID, Y=Y_ID), ["distinct positive eigenvalues"]),
    ("sigma-zero", _npz_case(X=X0, Y=np.zeros_like(Y0)), ["distinct positive eigenvalues"]),
    ("d_y>d_x", _npz_case(X=X0[:1], Y=Y0), ["d_y = 2 > d_x = 1"]),
    ("1-D", _npz_case(X=X0[0], Y=Y0), ["X must be 2-D"]),
    ("strings", _npz_case(X=np.full((3, 12), "a"), Y=Y0), ["X must hold real numbers"]),
]


@pytest.mark.parametrize(
    ("writer", "fragments"), [c[1:] for c in DATA_CASES], ids=[c[0] for c in DATA_CASES]
)
def test_bad_npz_data(capsys, tmp_path, writer, fragments):
    writer(tmp_path)
    sample_refused(capsys, tmp_path, write_config(tmp_path, NPZ), *fragments)


def test_npz_data_file_is_not_npz(capsys, tmp_path):
    (tmp_path / "data.npz").write_text("X,Y\n1,2\n", encoding="utf-8")
    sample_refused(capsys, tmp_path, write_config(tmp_path, NPZ), "not a readable .npz file")


@pytest.mark.parametrize("patch", [CSV, PARQUET], ids=["csv", "parquet"])
def test_table_missing_column(capsys, tmp_path, patch):
    X, Y = good_xy(d_y=1)  # the table has y1 only; the config asks for y1, y2
    write_table(tmp_path / patch["data"]["path"], X, Y)
    sample_refused(capsys, tmp_path, write_config(tmp_path, patch), "missing column(s) y2")


def test_csv_with_empty_cell(capsys, tmp_path):
    X, Y = good_xy()
    write_table(tmp_path / "data.csv", X, Y)
    lines = (tmp_path / "data.csv").read_text().splitlines()
    cells = lines[3].split(",")
    cells[1] = ""
    lines[3] = ",".join(cells)
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    sample_refused(capsys, tmp_path, write_config(tmp_path, CSV), "X has 1 NaN")


def test_csv_non_numeric(capsys, tmp_path):
    X, Y = good_xy()
    write_table(tmp_path / "data.csv", X, Y)
    text = (tmp_path / "data.csv").read_text().splitlines()
    text[2] = "abc" + text[2][text[2].index(",") :]
    (tmp_path / "data.csv").write_text("\n".join(text) + "\n")
    sample_refused(capsys, tmp_path, write_config(tmp_path, CSV), "non-numeric")


def test_parquet_file_is_garbage(capsys, tmp_path):
    (tmp_path / "data.parquet").write_bytes(b"PAR1 not really")
    sample_refused(capsys, tmp_path, write_config(tmp_path, PARQUET), "cannot read as parquet")


# ---------------------------------------------------------------------- load_config property

# Every key, by section, as the model defines it (docs/configuration.md is generated from
# the same models, and tests/test_docs.py checks that every key is documented there).
KEYS = CONFIG_KEYS

floats = st.floats  # short alias


def _range(lo_min: int, lo_max: int, width: int) -> st.SearchStrategy[list[int]]:
    return (
        st.integers(lo_min, lo_max)
        .flatmap(lambda lo: st.tuples(st.just(lo), st.integers(lo, lo + width)))
        .map(list)
    )


def _pos_range() -> st.SearchStrategy[list[float]]:
    return st.tuples(floats(0.01, 100.0), floats(1.0, 10.0)).map(lambda t: [t[0], t[0] * t[1]])


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Random valid configurations: each key present or not, every present value valid."""
    arch = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "depth": _range(2, 8, 4),
                "d_y": _range(1, 4, 3),
                "d_x_extra": _range(0, 3, 3),
                "hidden": _range(1, 6, 4),
            },
        )
    )
    default = Config()  # keys left out take their defaults, which must fit with the rest
    d_y_max = arch.get("d_y", default.architecture.d_y)[1]
    d_x_max = d_y_max + arch.get("d_x_extra", default.architecture.d_x_extra)[1]
    data = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "source": st.just("gaussian"),
                "m": st.integers(d_x_max, 500),
                "noise": floats(0.0, 10.0),
                "scale_x": _pos_range(),
                "scale_y": _pos_range(),
            },
        )
    )
    if "m" not in data and default.data.m < d_x_max:
        data["m"] = d_x_max
    weight = floats(0.0, 10.0)
    points = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "weight_global": floats(0.1, 10.0),
                "weight_top_saddle": weight,
                "weight_other_saddle": weight,
                "kill_weights": st.lists(weight, min_size=0, max_size=7).map(lambda w: [1.0, *w]),
                "split": floats(0.0, 1.0),
                "low_rank": floats(0.0, 1.0),
                "basis_cond": floats(1.0, 1e3),
                "signal_cond": floats(1.0, 1e3),
            },
        )
    )
    classify = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "grad_rtol": floats(1e-15, 0.5),
                "gap_rtol": floats(1e-15, 0.5),
                "sxx_rcond": floats(1e-15, 0.5),
                "spectrum_free": st.booleans(),
                "audit_fraction": floats(0.0, 1.0),
            },
        )
    )
    if draw(st.booleans()):  # c_zero <= c_neg, given together so no default is assumed
        c_zero = draw(floats(0.01, 50.0))
        classify |= {"c_zero": c_zero, "c_neg": c_zero * draw(floats(1.0, 100.0))}
    output = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "spectrum": st.booleans(),
                "original_spectrum": st.booleans(),
                "weights": st.booleans(),
                "shard_size": st.integers(1, 10**6),
            },
        )
    )
    cfg = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "n": st.integers(1, 10**9),
                "seed": st.integers(0, 2**62),
            },
        )
    )
    for name, section in [
        ("architecture", arch),
        ("data", data),
        ("points", points),
        ("classify", classify),
        ("output", output),
    ]:
        if section or draw(st.booleans()):
            cfg[name] = section
    return cfg


# derandomize: the same 50 examples on every run, so CI cannot turn red by chance
SETTINGS = settings(
    max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(cfg=valid_configs())
def test_valid_configs_load(tmp_path_factory, cfg):
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_text(to_toml(cfg), encoding="utf-8")
    loaded = load_config(path).resolved()
    for key, value in cfg.items():  # every given value is kept as given
        if isinstance(value, dict):
            for k, v in value.items():
                assert loaded[key][k] == v, (key, k)
        else:
            assert loaded[key] == value, key


unknown_names = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)


@SETTINGS
@given(
    cfg=valid_configs(),
    where=st.sampled_from(sorted(KEYS)),
    name=unknown_names,
    value=st.one_of(st.integers(0, 9), st.booleans(), st.just("x"), st.just([1, 2])),
)
def test_unknown_key_is_always_refused(tmp_path_factory, cfg, where, name, value):
    if name in KEYS[where]:
        name += "_x"
    if where:
        cfg.setdefault(where, {})[name] = value
    else:
        cfg[name] = value
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_text(to_toml(cfg), encoding="utf-8")
    full = f"{where}.{name}" if where else name
    with pytest.raises(MclandError, match=re.escape(f"unknown key '{full}'")):
        load_config(path)


# ------------------------------------------------------------ regression tests
# Inputs that once crashed with a traceback, were coerced, or were silently ignored.


def test_refuses_config_not_utf8(capsys, tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_bytes(b"n = 20\n# caf\xe9\n")
    sample_refused(capsys, tmp_path, cfg, "config.toml")


def test_refuses_unknown_key_with_newline(capsys, tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('"a\\nb" = 1\n', encoding="utf-8")
    sample_refused(capsys, tmp_path, cfg, "unknown key")


def test_refuses_base_dir_key(capsys, tmp_path):
    sample_refused(
        capsys,
        tmp_path,
        write_config(tmp_path, {"base_dir": "/elsewhere"}),
        "unknown key 'base_dir'",
    )


@pytest.mark.parametrize(
    "patch",
    [{"data": {"noise": True}}, {"output": {"spectrum": "yes"}}, {"output": {"weights": 1}}],
    ids=["noise=true", "spectrum='yes'", "weights=1"],
)
def test_refuses_lax_types(capsys, tmp_path, patch):
    sample_refused(capsys, tmp_path, write_config(tmp_path, patch))


def test_refuses_columns_with_gaussian(capsys, tmp_path):
    patch = {"data": {"x_columns": ["a"], "y_columns": ["b"]}}
    sample_refused(capsys, tmp_path, write_config(tmp_path, patch), "x_columns")


@pytest.mark.parametrize(
    "patch",
    [
        {"data": {"noise": math.inf}},
        {"data": {"noise": 1e308}},
        {"data": {"scale_x": [1.0, math.inf]}},
        {"points": {"basis_cond": math.inf}},
    ],
    ids=["noise=inf", "noise=1e308", "scale_x=inf", "basis_cond=inf"],
)
def test_refuses_infinite_parameters(capsys, tmp_path, patch):
    sample_refused(capsys, tmp_path, write_config(tmp_path, patch))


@pytest.mark.parametrize("seed", [2**64])
def test_refuses_seed_too_large(capsys, tmp_path, seed):
    sample_refused(capsys, tmp_path, write_config(tmp_path, {"seed": seed}), "seed")


@pytest.mark.parametrize("factor", [1e200, 1e-200])
def test_refuses_data_out_of_range(capsys, tmp_path, factor):
    X, Y = good_xy()
    np.savez(tmp_path / "data.npz", X=X * factor, Y=Y * factor)
    sample_refused(capsys, tmp_path, write_config(tmp_path, NPZ))


def test_refuses_complex_data(capsys, tmp_path):
    X, Y = good_xy()
    np.savez(tmp_path / "data.npz", X=X + 1j, Y=Y)
    sample_refused(capsys, tmp_path, write_config(tmp_path, NPZ), "X")
