"""Make the reference data of tests/test_analysis_same.py: small run directories of every
kind and what mcland 0.7.1 (commit 8317bb0, the in-memory analysis) printed and wrote for
them: the report (HTML and CSV lists, not the PNGs), the claims' output and tables.

Run with the 0.7.1 code, from the root of a checkout of commit 8317bb0:

    python tests/data/analysis071/make.py OUT_DIR

then copy OUT_DIR's contents here.  The run directories are stored, not recomputed by the
test, so the comparison reads the very records 0.7.1 read (floating-point results of a
fresh run could differ across machines).  Paths and timings are replaced by placeholders
(:func:`normalise`), the only parts of the output that depend on where and when it ran.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path.cwd()
sys.path.insert(0, str(ROOT / "tests"))

from mcland.point import split_layers  # noqa: E402
from sampled_run import tampered_copy  # noqa: E402

import mcland  # noqa: E402
from mcland import classify_run, dynamics_run  # noqa: E402
from mcland.report import build_report  # noqa: E402

SAMPLE = {  # tests/sampled_run.py's SMALL_RUN_CONFIG
    "n": 300,
    "seed": 515,
    "architecture": {"depth": [2, 4], "d_y": [1, 3], "d_x_extra": [0, 2], "hidden": [1, 4]},
    "data": {"m": 30, "scale_x": [0.1, 10.0], "scale_y": [0.1, 10.0]},
    "output": {"spectrum": True, "shard_size": 100},
}
FREE = {**SAMPLE, "n": 200, "classify": {"spectrum_free": True, "audit_fraction": 0.2}}
LINNERUD = {
    "n": 400,
    "seed": 11,
    "architecture": {"depth": [2, 4], "hidden": [1, 4]},
    "data": {
        "source": "csv",
        "path": str(ROOT / "runs" / "data" / "linnerud.csv"),
        "x_columns": ["Chins", "Situps", "Jumps"],
        "y_columns": ["Weight", "Waist", "Pulse"],
    },
    "output": {"shard_size": 150},
}
GIVEN = {**LINNERUD, "n": 16, "seed": 7, "architecture": {"depth": [2, 3], "hidden": [1, 3]},
         "output": {"weights": True}}  # fmt: skip
SIZES = [0, 0, 0, 0, 1e-8, 1e-6, 1e-4, 1e-3, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 0.3, 1.0]
DYN = {"n": 4, "architecture": {"depth": [2, 3], "d_y": [2, 3], "hidden": [1, 3]},
       "points": {"weight_global": 0.2}, "data": {"source": "gaussian", "m": 20}}  # fmt: skip
ESCAPE = {**DYN, "seed": 5, "output": {"shard_size": 2},
          "dynamics": {"experiment": "escape", "deltas": [1e-2, 1e-4], "max_evals": 5000,
                       "n_record": 32}}  # fmt: skip
SMALL_INIT = {**DYN, "seed": 4, "output": {"shard_size": 2},
              "dynamics": {"experiment": "small_init", "eps": [1e-2, 1e-4], "max_evals": 5000,
                           "n_record": 32}}  # fmt: skip
TINY = {"n": 6, "seed": 41, "data": {"m": 20}, "output": {"shard_size": 3},
        "architecture": {"depth": [2, 3], "d_y": [2, 2], "d_x_extra": [0, 1], "hidden": [2, 3]}}  # fmt: skip
ESCAPE_CLAIM = {**TINY,
    "architecture": {"depth": [2, 3], "d_y": [1, 2], "d_x_extra": [0, 1], "hidden": [2, 3]},
    "points": {"weight_global": 0.0, "kill_weights": [0, 1, 4]},
    "dynamics": {"experiment": "escape", "deltas": [1e-2, 1e-3, 1e-4], "max_evals": 5000}}  # fmt: skip
SMALL_INIT_CLAIM = {**TINY, "dynamics": {"experiment": "small_init", "eps": [1e-2, 1e-3, 1e-4],
    "max_evals": 20000, "t_max_steps": 1e7, "plateau_points": 2000}}  # fmt: skip


def script(name: str):
    spec = importlib.util.spec_from_file_location(f"a_{name}", ROOT / "analysis" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def normalise(text: str, run_dir: Path) -> str:
    """``text`` with the run directory's path and the claims' timings as placeholders."""
    text = text.replace(str(run_dir), "{RUN_DIR}")
    text = re.sub(r"  \(\d+\.\d s\)\n", "  (TIME)\n", text)
    return re.sub(r"checked with mcland \S+", "checked with mcland VERSION", text)


def tamper(df) -> None:
    """In place: three strict saddles called ambiguous, one a non-strict saddle, two points
    sharing a stratum with different inertia, one loss off its critical value."""
    idx = df.index[df["numeric_type"] == "strict_saddle"][:4]
    df.loc[idx[:3], "numeric_type"] = "ambiguous"
    df.loc[idx[3], "numeric_type"] = "non_strict_saddle"
    a = df.index[0]
    b = df.index[(df["H"] == df.at[a, "H"]) & (df.index != a)][0]
    for col in ("dims", "S", "ranks"):
        df[col] = [df.at[a, col] if i == b else v for i, v in zip(df.index, df[col], strict=True)]
    df.loc[b, "n_neg"] = df.loc[a, "n_neg"] + 1
    crit = df.index[df["is_critical"]][5]
    df.loc[crit, "loss"] = df.loc[crit, "critical_value"] + 10 * df.loc[crit, "loss_tol"]


def given_points():
    df = mcland.sample(GIVEN, threads=1)
    rng = np.random.default_rng(1)
    pts = [
        [W + s * np.linalg.norm(W) * rng.standard_normal(W.shape) / np.sqrt(W.size)
         for W in split_layers(np.asarray(w), np.asarray(d, np.int64))]
        for w, d, s in zip(df.weights, df.dims, SIZES, strict=True)
    ]  # fmt: skip
    _, X, Y = mcland.draw_point(GIVEN, 0)
    return pts, X, Y


def main(out: Path) -> None:
    out.mkdir(parents=True)
    runs = {}
    for name, cfg in (("sample", SAMPLE), ("free", FREE), ("linnerud", LINNERUD)):
        runs[name] = out / name / "run"
        mcland.run(cfg, runs[name], progress=False, threads=1)
    runs["tampered"] = tampered_copy(runs["sample"], out / "tampered" / "run", tamper)
    pts, X, Y = given_points()
    for name, refine in (("classify", False), ("refine", True)):
        runs[name] = out / name / "run"
        classify_run.run(pts, X, Y, runs[name], refine=refine, shard_size=6, progress=False)
    for name, cfg in (("escape", ESCAPE), ("small_init", SMALL_INIT),
                      ("escape_claim", ESCAPE_CLAIM), ("small_init_claim", SMALL_INIT_CLAIM)):  # fmt: skip
        runs[name] = out / name / "run"
        dynamics_run.run(cfg, runs[name], progress=False)
    for name, run in runs.items():
        exp = out / name / "expected"
        rep = build_report(run, exp / "report")
        for f in rep.parent.glob("*.png"):
            f.unlink()
        rep.write_text(normalise(rep.read_text(encoding="utf-8"), run), encoding="utf-8")
        if name not in ("classify", "refine"):  # 0.7.1's run_claims needs a seed: KeyError
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                code = script("run_claims").main([str(run)])
            (exp / "claims.txt").write_text(normalise(buf.getvalue(), run) + f"exit {code}\n")
        if name.startswith(("escape", "small_init")):
            mods = [m for m in ("claim_escape_linear", "claim_escape_nonstrict", "claim_small_init")
                    if not script(m).not_applicable(str(run))]  # fmt: skip
            for m in mods:
                buf = io.StringIO()
                with contextlib.redirect_stdout(buf):
                    script(m).main([str(run), "--tables", str(exp / "tables")])
        shutil.rmtree(run / "report", ignore_errors=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
