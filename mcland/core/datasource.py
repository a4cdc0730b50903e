"""User data for a run: ``.npz`` (arrays ``X``, ``Y``) or a table (Parquet/CSV columns).

Arrays in ``.npz`` follow the paper's orientation, samples as columns: ``X`` (d_x, m) and
``Y`` (d_y, m).  In a table each **row** is a sample and the configured columns give the
features, so ``X = table[x_columns].T``.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from mcland.core.errors import MclandError


def open_npz(path: Path) -> np.lib.npyio.NpzFile:
    """Open an ``.npz`` archive, refusing plain ``.npy`` arrays and pickles."""
    z = np.load(path, allow_pickle=False)
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise MclandError(f"{path}: a single .npy array, expected an .npz archive of named arrays")
    return z


def load_npz_arrays(path: str | Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Named arrays from an ``.npz`` file, or MclandError (missing file or array)."""
    path = Path(path)
    try:
        with open_npz(path) as z:
            missing = [k for k in names if k not in z.files]
            if missing:
                raise MclandError(
                    f"{path}: missing array(s) {', '.join(missing)} (has: {', '.join(z.files) or 'none'})"
                )
            return {k: z[k] for k in names}
    except FileNotFoundError:
        raise MclandError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise MclandError(f"{path}: not a readable .npz file ({exc})") from None


def load_table_arrays(
    path: str | Path, fmt: str, x_cols: list[str], y_cols: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (d_x, m) and ``Y`` (d_y, m) from the named columns of a Parquet or CSV table."""
    import pandas as pd
    import pyarrow as pa

    path = Path(path)
    if not path.exists():
        raise MclandError(f"{path}: no such file")
    try:
        frame = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
    except (OSError, ValueError, pa.ArrowException, pd.errors.ParserError) as exc:
        raise MclandError(f"{path}: cannot read as {fmt} ({exc})") from None
    missing = [c for c in [*x_cols, *y_cols] if c not in frame.columns]
    if missing:
        raise MclandError(f"{path}: missing column(s) {', '.join(missing)}")
    try:
        X = frame[x_cols].to_numpy(dtype=np.float64).T
        Y = frame[y_cols].to_numpy(dtype=np.float64).T
    except (TypeError, ValueError) as exc:
        raise MclandError(f"{path}: non-numeric data in the selected columns ({exc})") from None
    return X, Y


def load_data(
    source: str, path: str | Path, x_cols: list[str] | None, y_cols: list[str] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Dispatch on ``source`` (``npz``, ``parquet`` or ``csv``)."""
    if source == "npz":
        arrays = load_npz_arrays(path, ("X", "Y"))
        return arrays["X"], arrays["Y"]
    return load_table_arrays(path, source, x_cols or [], y_cols or [])


def load_npz_weights(path: str | Path) -> list[np.ndarray]:
    """The layers ``[W_1, ..., W_H]`` of an ``.npz`` file holding arrays ``W1 .. WH`` (no
    gaps), or MclandError naming what is wrong."""
    path = Path(path)
    try:
        with open_npz(path) as z:
            names = z.files
    except FileNotFoundError:
        raise MclandError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise MclandError(f"{path}: not a readable .npz file ({exc})") from None
    idx = sorted(int(m.group(1)) for k in names if (m := re.fullmatch(r"W(\d+)", k)))
    if not idx:
        raise MclandError(
            f"{path}: no arrays named W1, W2, ... (has: {', '.join(names) or 'none'})"
        )
    if idx != list(range(1, len(idx) + 1)):
        raise MclandError(
            f"{path}: layers must be W1..WH without gaps, found {', '.join(f'W{i}' for i in idx)}"
        )
    arrays = load_npz_arrays(path, tuple(f"W{i}" for i in idx))
    return [arrays[f"W{i}"] for i in idx]
