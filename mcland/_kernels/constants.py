"""Constants compiled into the kernels, in one place (:mod:`mcland.core.tolerances` takes
them from here)."""

from __future__ import annotations

import numpy as np

EPS = float(np.finfo(np.float64).eps)  # unit roundoff of float64 (2**-52), in every floor
