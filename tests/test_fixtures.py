"""External check: points labelled by an independent implementation (tests/data/fixtures)."""

from __future__ import annotations

import naive
import pytest

from mcland.points.inspect import inspect_point

FIXTURES = naive.load_fixtures()
NAMES = naive.TYPE_NAMES


def test_fixture_counts():
    counts = [sum(p["num"] == k for p in FIXTURES) for k in range(4)]
    assert counts == [175, 100, 306, 19]


@pytest.mark.parametrize("i", range(len(FIXTURES)))
def test_fixture_point(i):
    p = FIXTURES[i]
    rep = inspect_point(p["weights"], p["X"], p["Y"])
    assert rep.is_critical == (p["num"] != 3)
    assert rep.theory_type == NAMES[p["th"]]
    assert rep.numeric_type == NAMES[p["num"]]
    assert rep.loss == pytest.approx(p["loss"], rel=1e-9)
    if p["S"] is not None:
        assert p["S"] == rep.S
        assert rep.eig_min == pytest.approx(p["eigmin"], abs=1e-6 * p["scale"])

    if rep.theory_type == "strict_saddle":  # the escape direction descends (naive check)
        q = naive.quadratic_form(p["weights"], p["X"], p["Y"], rep.escape_direction)
        assert q < 0
