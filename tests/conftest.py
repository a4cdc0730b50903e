"""Shared fixtures: a sampled population of exact critical points, computed once."""

from __future__ import annotations

import numpy as np
import pytest

import mcland

# Depths 2-6 (the test range), data rescaled by up to 1e2 either way so the
# scale-free tolerances are exercised, small widths so several thousand points are cheap.
POPULATION_CONFIG = {
    "n": 6000,
    "seed": 12345,
    "architecture": {"depth": [2, 6], "d_y": [1, 4], "d_x_extra": [0, 2], "hidden": [1, 6]},
    "data": {"m": 30, "scale_x": [0.01, 100.0], "scale_y": [0.01, 100.0]},
    "points": {"low_rank": 0.3},
    "output": {"original_spectrum": True},
}


@pytest.fixture(scope="session")
def population():
    """Records of 6,000 sampled points (DataFrame) and the configuration that drew them."""
    return mcland.sample(POPULATION_CONFIG), POPULATION_CONFIG


@pytest.fixture
def rng():
    return np.random.default_rng(20261127)
