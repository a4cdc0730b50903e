"""The structured spectrum against the dense path on sampled points (issue 21, "agreement
with the dense path"): for every point, the dense analysis (:func:`.classify.analyze`,
whitened spectrum, its floor and counts) and the structured kernel
(:func:`.structured.structured_spectrum`); reports disagreements of ``n_neg / n_zero /
n_pos`` (with the dense tolerances and with the structured floor), the largest eigenvalue
gap in units of ``eps ||H||_F`` and of ``floor_d + floor_s``, and the floor ratio; and
the whole record of the integrated structured path (:func:`.structured_classify.analyze_structured`,
what ``inspect`` / ``classify --hessian structured`` run): ``n_neg / n_zero / n_pos``,
numeric and theory type against the dense record.  Output of the committed run:
``benchmarks/results/structured-vs-dense.txt``.

Usage::

    python benchmarks/structured_vs_dense.py quick:2000 paper:2000 wide16:300 wide64:20

``name:n`` takes the first ``n`` sample ids of ``runs/<name>.toml``, or of
``benchmarks/width_sweep.toml`` at hidden width ``w`` for ``wide<w>``.
"""

from __future__ import annotations

import sys
import time
import tomllib
from pathlib import Path

import numpy as np

from mcland._kernels import fields as f
from mcland._kernels.batch import draw_point
from mcland._kernels.bundles import PointOutput, StructuredControl
from mcland._kernels.classify import analyze
from mcland._kernels.structured import structured_spectrum
from mcland._kernels.structured_classify import analyze_structured
from mcland.core.tolerances import EPS, Tolerances
from mcland.points.plan import make_plan

ROOT = Path(__file__).resolve().parents[1]
TOL = Tolerances()


def _config(name):
    if name.startswith("wide"):
        cfg = tomllib.loads((ROOT / "benchmarks" / "width_sweep.toml").read_text())
        w = int(name[4:])
        cfg["architecture"]["hidden"] = [w, w]
        return cfg
    return str(ROOT / "runs" / f"{name}.toml")


def _counts(ev, N, floor):
    return (
        int(np.sum(ev < -TOL.c_neg * floor)),
        int(np.sum(np.abs(ev) <= TOL.c_zero * floor)) + N - ev.size,
        int(np.sum(ev > TOL.c_zero * floor)),
    )


def compare(name, n):
    plan = make_plan(_config(name), None, None)
    stats = {
        "points": 0,
        "mismatch_dense_tol": 0,
        "mismatch_own_floor": 0,
        "mismatch_record": 0,
        "types": {},
        "recipes": {},
    }
    gaps_eps, gaps_floor, ratios, ks, Ns = [], [], [], [], []
    t_dense = t_struct = 0.0
    for sid in range(n):
        p = draw_point(plan.sampler, sid)
        N = int(np.sum(p.dims[1:] * p.dims[:-1]))
        H = p.dims.size - 1
        out = PointOutput(
            np.empty(len(f.FLOAT_FIELDS)),
            np.empty(len(f.INT_FIELDS), np.int64),
            np.zeros(p.dims[H], np.bool_),
            np.zeros(H * (H + 1) // 2, np.int64),
            np.full(N, np.nan),
            np.empty(0),
            np.empty(0),
        )
        t0 = time.perf_counter()
        analyze(p.dims, p.w, p.moments, TOL.thresholds, f.SPECTRUM, out, np.empty(0))
        t_dense += time.perf_counter() - t0
        t0 = time.perf_counter()
        s = structured_spectrum(p.dims, p.w, p.moments, StructuredControl(True, 10**9))
        t_struct += time.perf_counter() - t0
        # the integrated path (inspect / classify --hessian structured): its whole record
        rec = PointOutput(
            np.empty(len(f.FLOAT_FIELDS)),
            np.empty(len(f.INT_FIELDS), np.int64),
            np.zeros(p.dims[H], np.bool_),
            np.zeros(H * (H + 1) // 2, np.int64),
            np.full(N, np.nan),
            np.empty(0),
            np.empty(0),
        )
        analyze_structured(p.dims, p.w, p.moments, TOL.thresholds, f.SPECTRUM, rec, 2**62)
        ri, rf = out.row_int, out.row_float
        same = [f.I_N_NEG, f.I_N_ZERO, f.I_N_POS, f.I_NUMERIC_TYPE, f.I_THEORY_TYPE]
        if not np.array_equal(rec.row_int[same], ri[same]):
            stats["mismatch_record"] += 1
            print(f"  {name} {sid}: dense record {ri[same]} structured record {rec.row_int[same]}")
        if not np.array_equal(rec.spectrum_w, np.sort(rec.spectrum_w)):
            stats["mismatch_record"] += 1
            print(f"  {name} {sid}: structured record's spectrum not ascending")
        dense = (int(ri[f.I_N_NEG]), int(ri[f.I_N_ZERO]), int(ri[f.I_N_POS]))
        floor_d = rf[f.F_NOISE_FLOOR]
        typ = f.TYPE_NAMES[ri[f.I_NUMERIC_TYPE]]
        stats["types"][typ] = stats["types"].get(typ, 0) + 1
        rec = int(p.recipe)
        stats["recipes"][rec] = stats["recipes"].get(rec, 0) + 1
        stats["points"] += 1
        if _counts(s.ev, N, floor_d) != dense:
            stats["mismatch_dense_tol"] += 1
            print(f"  {name} {sid}: dense {dense} structured {_counts(s.ev, N, floor_d)}")
        if _counts(s.ev, N, s.floor) != dense:
            stats["mismatch_own_floor"] += 1
            print(f"  {name} {sid}: dense {dense} structured/own {_counts(s.ev, N, s.floor)}")
        full = np.sort(np.concatenate([s.ev, np.zeros(N - s.k)]))
        gap = float(np.abs(full - out.spectrum_w).max())
        h = rf[f.F_HESS_NORM_W]
        if h > 0:
            gaps_eps.append(gap / (EPS * h))
        if floor_d + s.floor > 0:
            gaps_floor.append(gap / (floor_d + s.floor))
        if floor_d > 0:
            ratios.append(s.floor / floor_d)
        ks.append(s.k)
        Ns.append(N)
    r = np.array(ratios) if ratios else np.array([np.nan])
    print(
        f"{name:>8} points {stats['points']:>5}  types {stats['types']}  recipes "
        f"{dict(sorted(stats['recipes'].items()))}  N max {max(Ns)}\n"
        f"{'':>8} mismatches: dense tolerances {stats['mismatch_dense_tol']}, own floor "
        f"{stats['mismatch_own_floor']}, records (counts, types) {stats['mismatch_record']}\n"
        f"{'':>8} max gap {max(gaps_eps, default=0):.2f} eps||H||_F, "
        f"{max(gaps_floor, default=0):.3f} (floor_d + floor_s); floor_s/floor_d "
        f"min {r.min():.2f} median {np.median(r):.2f} max {r.max():.2f}; "
        f"k/N median {np.median(np.array(ks) / np.array(Ns)):.3f}; "
        f"time dense {t_dense:.1f} s, structured {t_struct:.1f} s",
        flush=True,
    )
    return stats


def main(argv):
    total = points = 0
    for spec in argv or ["quick:500", "paper:500", "wide16:100"]:
        name, n = spec.split(":")
        st = compare(name, int(n))
        total += st["mismatch_dense_tol"] + st["mismatch_own_floor"] + st["mismatch_record"]
        points += st["points"]
    print(f"total points {points}, mismatches {total}")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
