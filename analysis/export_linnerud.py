"""Export scikit-learn's Linnerud data set to ``runs/data/linnerud.csv``.

Usage: python analysis/export_linnerud.py [OUT.csv]

Needs scikit-learn (``pip install scikit-learn``; it is *not* a dependency of mcland, and
mcland itself never needs it: the exported CSV is checked in). The data ships inside
scikit-learn (``sklearn/datasets/data/linnerud_*.csv``), so nothing is downloaded.

Linnerud: 20 middle-aged men in a fitness club, three exercise variables (Chins, Situps,
Jumps: the inputs X, d_x = 3) and three physiological variables (Weight, Waist, Pulse: the
targets Y, d_y = 3). Source: M. Tenenhaus (1998), *La régression PLS: théorie et
pratique*, Editions Technic, as distributed with scikit-learn (BSD-3-Clause licence).
One row per sample; the values are written unchanged (no centring or scaling).
"""

from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "runs" / "data" / "linnerud.csv"
X_COLUMNS = ["Chins", "Situps", "Jumps"]
Y_COLUMNS = ["Weight", "Waist", "Pulse"]


def main(out: Path = DEFAULT_OUT) -> None:
    """Write the 20 x 6 table (inputs, then targets) to ``out`` as CSV."""
    try:
        from sklearn.datasets import load_linnerud
    except ImportError:
        sys.exit("export_linnerud.py needs scikit-learn: pip install scikit-learn")
    frame = load_linnerud(as_frame=True).frame
    frame = frame[X_COLUMNS + Y_COLUMNS]
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False, float_format="%.1f", lineterminator="\n")
    print(f"wrote {len(frame)} samples x {frame.shape[1]} columns to {out}")


if __name__ == "__main__":
    if len(sys.argv) > 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]) if len(sys.argv) == 2 else DEFAULT_OUT)
