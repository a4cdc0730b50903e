"""The optional ``[dynamics]`` section of the configuration (issue 15)."""

from __future__ import annotations

import math

import pytest
from test_config import by_patch, sample_ok, sample_refused, write_config

from mcland.core.config import Dynamics, config_from_dict
from mcland.core.errors import MclandError


def test_absent_section_leaves_the_resolved_config_unchanged():
    cfg = config_from_dict({"n": 5})
    assert not cfg.has_dynamics
    assert "dynamics" not in cfg.resolved()  # manifests of sampling runs stay as they were
    assert cfg.dynamics == Dynamics()  # the defaults, defined once
    given = config_from_dict({"n": 5, "dynamics": {"experiment": "small_init"}})
    assert given.has_dynamics
    assert given.resolved()["dynamics"] == {**Dynamics().model_dump(), "experiment": "small_init"}
    # the resolved form round-trips (as make_plan's overrides do)
    again = config_from_dict({**given.resolved(), "n": 7})
    assert again.has_dynamics and again.dynamics == given.dynamics


def test_defaults():
    d = Dynamics()
    assert d.experiment == "escape"
    assert d.deltas == [10.0**-k for k in range(1, 9)]
    assert d.escape_fraction == 0.5 and d.max_evals > 0 and d.t_max_steps > 0


@pytest.mark.parametrize(
    ("patch", "fragment"),
    by_patch(
        [
            ({"dynamics": {"deltas": []}}, "dynamics.deltas: List should have at least 1 item"),
            ({"dynamics": {"deltas": [1e-3, 0.0]}}, "dynamics.deltas.1: Input should be greater than 0"),
            ({"dynamics": {"deltas": [-1e-3]}}, "dynamics.deltas.0: Input should be greater than 0"),
            ({"dynamics": {"deltas": [2.0]}}, "dynamics.deltas.0: Input should be less than or equal to 1"),
            ({"dynamics": {"eps": []}}, "dynamics.eps: List should have at least 1 item"),
            ({"dynamics": {"eps": [0.0]}}, "dynamics.eps.0: Input should be greater than 0"),
            ({"dynamics": {"eps": [math.nan]}}, "dynamics.eps.0: Input should be a finite number"),
            ({"dynamics": {"max_evals": 0}}, "dynamics.max_evals: Input should be greater than or equal to 10"),
            ({"dynamics": {"t_max_steps": 0.0}}, "dynamics.t_max_steps: Input should be greater than 0"),
            ({"dynamics": {"t_max_steps": -1.0}}, "dynamics.t_max_steps: Input should be greater than 0"),
            ({"dynamics": {"n_record": 0}}, "dynamics.n_record: Input should be greater than or equal to 2"),
            ({"dynamics": {"escape_fraction": 1.0}}, "dynamics.escape_fraction: Input should be less than 1"),
            ({"dynamics": {"rtol": 0.0}}, "dynamics.rtol: Input should be greater than 0"),
            ({"dynamics": {"experiment": "ascent"}}, "dynamics.experiment: Input should be 'escape' or 'small_init'"),
            ({"dynamics": {"deltaz": [1e-3]}}, "unknown key 'dynamics.deltaz' (did you mean 'deltas'?)"),
            ({"dynamics": {"plateau_min_ratio": 1.0}}, "dynamics.plateau_min_ratio: Input should be greater than 1"),
        ]
    ),
)  # fmt: skip
def test_bad_dynamics_section_is_refused_in_one_line(capsys, tmp_path, patch, fragment):
    """Exit 2, one line naming the key, nothing written (as for the other sections)."""
    msg = sample_refused(capsys, tmp_path, write_config(tmp_path, patch), fragment)
    assert "\n" not in msg.strip()


def test_a_good_dynamics_section_does_not_stop_sampling(capsys, tmp_path):
    """Positive control of the refusals above: the same setup with a valid section runs."""
    sample_ok(capsys, tmp_path, write_config(tmp_path, {"dynamics": {"deltas": [1e-3]}}))


def test_nan_and_strings_are_refused():
    for bad in ({"eps": [float("nan")]}, {"deltas": ["1e-3"]}, {"max_evals": 1.5}):
        with pytest.raises(MclandError, match="dynamics"):
            config_from_dict({"dynamics": bad})


def test_plateau_points_is_deprecated_but_still_loads():
    """``plateau_points`` (unused since issue 22): an older configuration still loads, with a
    FutureWarning, and the key is not in the resolved configuration (manifests)."""
    with pytest.warns(FutureWarning, match="plateau_points is deprecated"):
        cfg = config_from_dict({"n": 5, "dynamics": {"experiment": "small_init",
                                                     "plateau_points": 12000}})  # fmt: skip
    assert "plateau_points" not in cfg.resolved()["dynamics"]
    assert cfg.dynamics == Dynamics(experiment="small_init")
