"""Bad input not covered by ``test_config.py`` / ``test_cli.py``, and property tests.

Together with those two files there is a test for every row of the README's bad-input
table: one line ``mcland: error: …`` on stderr, exit status 2, nothing written.  The
property tests throw random shapes at :func:`mcland.inspect_point` and random wrong values
and random text at the configuration loader: the answer is a result or a
:class:`~mcland.MclandError`, never another exception.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import refused
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mcland
from mcland.core.config import config_from_dict, load_config
from mcland.core.errors import MclandError

TINY = "n = 10\n[architecture]\ndepth = [2, 3]\nd_y = [1, 2]\nhidden = [1, 3]\n[output]\nshard_size = 5\n"

# derandomized: the same examples on every run, so CI cannot turn red by chance
SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY, encoding="utf-8")
    return path


# ---------------------------------------------------------------------- output directory


def _unwritable(tmp_path: Path, kind: str) -> Path:
    """An output directory the process may not write (root writes anywhere but sysfs)."""
    if os.geteuid() == 0:
        if kind == "existing":
            pytest.skip("root can write into any existing directory of a normal filesystem")
        if not Path("/sys/kernel").is_dir():
            pytest.skip("no sysfs to refuse root's mkdir")
        return Path("/sys/mcland-test-unwritable") / "run"
    ro = tmp_path / "ro"
    ro.mkdir()
    if kind == "existing":
        (ro / "run").mkdir()
    ro.chmod(0o500) if kind == "new" else (ro / "run").chmod(0o500)
    return ro / "run"


@pytest.mark.parametrize("kind", ["new", "existing"])
def test_unwritable_output_directory(capsys, tmp_path, tiny, kind):
    out = _unwritable(tmp_path, kind)
    existed = out.exists()
    try:
        refused(
            capsys,
            tmp_path,
            "sample",
            tiny,
            "--out",
            out,
            "--no-progress",
            fragments=("cannot write to", str(out)),
        )
        assert out.exists() is existed
        assert not existed or not any(out.iterdir())
    finally:
        for p in (out, out.parent):
            if p.is_relative_to(tmp_path) and p.exists():
                p.chmod(0o700)


def test_url_output_is_refused(capsys, tmp_path, tiny, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(
        capsys,
        tmp_path,
        "sample",
        tiny,
        "--out",
        "s3://bucket/run",
        "--no-progress",
        fragments=("s3://bucket/run", "URLs are not supported"),
    )
    assert not (tmp_path / "s3:").exists()


# ---------------------------------------------------------------------- inspect: data


def _data(tmp_path: Path, X: np.ndarray, Y: np.ndarray) -> Path:
    path = tmp_path / "data.npz"
    np.savez(path, X=X, Y=Y)
    return path


def _good(d_x: int = 3, d_y: int = 2, m: int = 10, seed: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((d_x, m))
    return X, rng.standard_normal((d_y, d_x)) @ X + 0.5 * rng.standard_normal((d_y, m))


def _bad_data(case: str) -> tuple[np.ndarray, np.ndarray]:
    X, Y = _good()
    if case == "m<d_x":
        return X[:, :2], Y[:, :2]
    if case == "collinear":
        X[2] = X[0] + X[1]
        return X, Y
    if case == "repeated-eigenvalues":
        X = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
        return X, X.copy()  # Sigma = 2 I
    if case == "zero-eigenvalue":
        return X, np.vstack([Y[:1], 0.0 * Y[:1]])
    if case == "inf":
        Y[1, 3] = np.inf
        return X, Y
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("m<d_x", ("singular", "m = 2 samples < d_x = 3")),
        ("collinear", ("Sxx = X X^T is singular",)),
        ("repeated-eigenvalues", ("distinct positive eigenvalues",)),
        ("zero-eigenvalue", ("distinct positive eigenvalues",)),
        ("inf", ("Y has 1 NaN or infinite entries",)),
    ],
)
def test_inspect_refuses_data_violating_the_assumptions(capsys, tmp_path, case, fragments):
    X, Y = _bad_data(case)
    data = _data(tmp_path, X, Y)
    W1 = np.ones((2, X.shape[0]))
    np.savez(tmp_path / "w.npz", W1=W1, W2=np.eye(Y.shape[0], 2))
    refused(capsys, tmp_path, "inspect", tmp_path / "w.npz", data, fragments=fragments)


# ---------------------------------------------------------------------- inspect_point property


@st.composite
def points(draw: st.DrawFn) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, bool]:
    """Random layer shapes for random good data; with probability 1/2 one dimension is off."""
    H = draw(st.integers(2, 4))
    d_x = draw(st.integers(1, 4))
    d_y = draw(st.integers(1, d_x))
    dims = [d_x, *(draw(st.integers(1, 4)) for _ in range(H - 1)), d_y]
    shapes = [[dims[h + 1], dims[h]] for h in range(H)]
    broken = draw(st.booleans())
    if broken:  # changing one side of one layer always breaks the chain or the data match
        h, side = draw(st.integers(0, H - 1)), draw(st.integers(0, 1))
        shapes[h][side] = max(0, shapes[h][side] + draw(st.sampled_from([-1, 1, 2])))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X, Y = _good(d_x, d_y, m=d_x + draw(st.integers(2, 6)), seed=int(rng.integers(2**31)))
    weights = [rng.standard_normal(s) for s in shapes]
    return weights, X, Y, not broken


@SETTINGS
@given(point=points())
def test_inspect_point_on_random_shapes(point):
    weights, X, Y, valid = point
    if not valid:
        with pytest.raises(MclandError, match=r"shapes do not chain|weights map R\^|empty"):
            mcland.inspect_point(weights, X, Y)
        return
    rep = mcland.inspect_point(weights, X, Y)
    assert isinstance(rep, mcland.PointReport)
    assert rep.dims == (X.shape[0], *(W.shape[0] for W in weights))
    assert rep.N == sum(W.size for W in weights) == len(rep.eigenvalues)
    assert rep.theory_type in ("global_minimizer", "strict_saddle", "non_strict_saddle",
                               "not_critical", "ambiguous")  # fmt: skip


# ---------------------------------------------------------------------- config property

# Keys and values of the wrong type or out of range; each must be refused naming the key.
_not_int = st.one_of(
    st.text(max_size=4),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: x != int(x)),
    st.lists(st.text(max_size=2), min_size=1, max_size=2),
)
WRONG = {
    ("n",): st.one_of(_not_int, st.integers(-(2**40), 0)),
    ("seed",): st.one_of(_not_int, st.integers(-(2**40), -1), st.integers(2**63, 2**70)),
    ("architecture", "depth"): st.one_of(
        _not_int,
        st.lists(st.integers(2, 9), min_size=3, max_size=4),
        st.tuples(st.integers(-5, 1), st.integers(2, 9)).map(list),
        st.tuples(st.integers(3, 9), st.integers(2, 9)).filter(lambda t: t[0] > t[1]).map(list),
    ),
    ("architecture", "hidden"): st.tuples(st.integers(-5, 0), st.integers(1, 5)).map(list),
    ("data", "m"): st.one_of(_not_int, st.integers(-5, 0)),
    ("data", "source"): st.text(max_size=8).filter(
        lambda s: s not in ("gaussian", "npz", "parquet", "csv")
    ),
    ("points", "split"): st.one_of(
        st.floats(1.0001, 1e9), st.floats(-1e9, -0.0001), st.text(max_size=3)
    ),
    ("output", "shard_size"): st.one_of(_not_int, st.integers(-(2**40), 0)),
    ("output", "weights"): st.one_of(st.integers(), st.text(max_size=3)),
}


@st.composite
def wrong_configs(draw: st.DrawFn) -> tuple[dict, str]:
    key = draw(st.sampled_from(sorted(WRONG)))
    value = draw(WRONG[key])
    raw: dict = {"n": 10, "data": {"m": 10}}
    if len(key) == 1:
        raw[key[0]] = value
    else:
        raw.setdefault(key[0], {})[key[1]] = value
    return raw, ".".join(key)


@SETTINGS
@given(case=wrong_configs())
def test_wrong_values_are_refused_naming_the_key(case):
    raw, key = case
    with pytest.raises(MclandError) as exc:
        config_from_dict(raw, source="c.toml")
    msg = str(exc.value)
    assert msg.startswith("c.toml: ")
    assert re.search(rf"(^|[ .]){re.escape(key)}(\.\d)?: |{re.escape(key.split('.')[-1])} ", msg), (
        msg
    )


@SETTINGS
@given(
    text=st.text(
        alphabet=st.sampled_from(list("nseddpthm_=[]{}.,'\"0123456789 \n\t#-+eE")), max_size=60
    )
)
def test_any_text_gives_a_config_or_one_clear_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_text(text, encoding="utf-8")
    try:
        cfg = load_config(path)
    except MclandError as exc:
        msg = str(exc)
    else:
        assert cfg.n >= 1
        return
    assert msg.startswith(str(path)) and "\n" not in msg.strip()
