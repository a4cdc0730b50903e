"""Check a configuration's user data against the assumptions of docs/theory.md §1.

Usage: python analysis/check_assumptions.py CONFIG.toml

Loads the data file named by ``[data]`` (npz, csv or parquet) and prints the sample and
feature counts, the conditioning of ``Sxx = X Xᵀ``, the eigenvalues of
``Sigma = Syx Sxx⁻¹ Sxy`` and their smallest relative gap, with the tolerances the
configuration applies. Exits with status 1 if an assumption fails (the reason is printed)
and 2 for a configuration without user data.
"""

from __future__ import annotations

import sys
from math import comb
from pathlib import Path

import numpy as np

from mcland import MclandError, Problem, load_config
from mcland.core.datasource import load_data


def main(config_path: str) -> int:
    """Print the check for ``config_path``; return the exit status."""
    cfg = load_config(config_path)
    d = cfg.data
    if d.source == "gaussian":
        print(f"{config_path}: source = 'gaussian' draws fresh data per point; nothing to check")
        return 2
    path = Path(cfg.base_dir) / str(d.path)
    X, Y = load_data(d.source, path, d.x_columns, d.y_columns)
    (d_x, m), d_y = X.shape, Y.shape[0]
    print(f"data          {path.name} ({d.source}): m = {m} samples, d_x = {d_x}, d_y = {d_y}")
    print(f"inputs        {', '.join(d.x_columns or ['X'])}")
    print(f"targets       {', '.join(d.y_columns or ['Y'])}")
    print(f"m >= d_x      {m >= d_x}  ({m} >= {d_x})")
    print(f"d_y <= d_x    {d_y <= d_x}  ({d_y} <= {d_x})")
    tol = cfg.classify
    try:
        prob = Problem.from_data(X, Y, gap_rtol=tol.gap_rtol, sxx_rcond=tol.sxx_rcond)
    except MclandError as exc:
        print(f"verdict       FAIL: {exc}")
        return 1
    lam = prob.lam
    print(
        f"Sxx           reciprocal condition number {prob.sxx_rcond:.3e} "
        f"(required > {tol.sxx_rcond:g}): invertible"
    )
    print(f"Sigma eigen.  {np.array2string(lam, precision=6, separator=', ')}")
    print(
        f"smallest gap  {prob.min_rel_gap:.3e} relative to lambda_1 "
        f"(required > {tol.gap_rtol:g}): distinct and positive"
    )
    print(f"tr(Syy)       {prob.tr_syy:.6e}")
    for r in range(1, d_y + 1):
        cv = prob.critical_values(r)
        expected = sum(comb(d_y, k) for k in range(r + 1))
        print(
            f"r = {r}         {cv.size} critical values (sum_k<=r C({d_y}, k) = {expected}), "
            f"global minimum {cv[0]:.6e}"
        )
    print("verdict       PASS: the data meet docs/theory.md §1")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        sys.exit(main(sys.argv[1]))
    except MclandError as exc:
        sys.exit(f"check_assumptions: error: {exc}")
