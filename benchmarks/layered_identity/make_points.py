"""POINTS and DATA for the reference classify run: 3,000 points of runs/linnerud.toml
(fixed data) with their weights, a few perturbed so refinement has work."""

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import mcland

out = Path(sys.argv[1])
cfg = mcland.load_config("runs/linnerud.toml")
cfg = cfg.model_copy(update={"output": cfg.output.model_copy(update={"weights": True})})
df = mcland.sample(cfg, n=3000, seed=7, threads=2)
rng = np.random.default_rng(0)
ws = []
for i, w in enumerate(df.weights):
    w = np.asarray(w, float)
    if i % 10 == 0:
        w = w * (1 + 1e-7 * rng.standard_normal(w.size))
    ws.append(w.tolist())
pq.write_table(
    pa.table(
        {
            "dims": pa.array([list(map(int, d)) for d in df.dims], pa.list_(pa.int64())),
            "w": pa.array(ws, pa.list_(pa.float64())),
        }
    ),
    out / "points.parquet",
)
X, Y = mcland.draw_point(cfg, 0)[1:]
np.savez(out / "data.npz", X=X, Y=Y)
print("points", len(ws))
