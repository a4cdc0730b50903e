"""Time and memory per point of the structured Hessian spectrum against the dense path, as
the hidden width grows (issue 21): depth 3, d_x = 6, d_y = 4, both hidden widths w.

Usage::

    python benchmarks/width_sweep.py                     # widths 16 ... 1024, 2 threads
    python benchmarks/width_sweep.py --widths 16 64 --points 5
    python benchmarks/width_sweep.py --compile           # first-run compile time only
    python benchmarks/width_sweep.py --draw --widths 64 256 1024 --points 3 \
        --baseline-python ../main/.venv/bin/python      # the draw alone, against a baseline

Every (width, method) runs in a child process of its own, so that its peak resident
memory (``ru_maxrss`` of the child) is the method's alone; the points are those of
``benchmarks/width_sweep.toml`` (sample ids 0, 1, ..., mixed recipes and types), drawn
in the child (draw time reported apart).  Methods: ``structured`` (the kernel
:func:`mcland._kernels.structured.structured_spectrum`, whitened), ``dense-spectrum`` (the
dense Hessian and its eigenvalues: ``hessian_into`` + ``dsyevd``), ``dense-analyze`` (the
sampler's whole per-point analysis, :func:`mcland._kernels.classify.analyze`), ``draw``
(:func:`mcland._kernels.batch.draw_point` alone, with a hash of the drawn weights: with
``--baseline-python`` the same points are also drawn by another installation's
interpreter, e.g. the main branch's venv, and the hashes must agree).  Dense runs
only where its ``16 N^2`` bytes fit (width <= 64 by default).  Timings on a shared machine
are indicative; ratios taken in the same run are what to compare; the column ``load`` is
the 1-minute load average before and after each (width, method) (2 cores: a load above 2
means the points shared the cores with other work).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "width_sweep.toml"
WIDTHS = [16, 32, 64, 128, 256, 512, 1024]
ONE_BLAS_ENV = "WIDTH_SWEEP_ONE_BLAS"


def _config(width):
    import tomllib

    cfg = tomllib.loads(CONFIG.read_text())
    cfg["architecture"]["hidden"] = [width, width]
    return cfg


def _child(width, method, points, first):
    """Run ``method`` on ``points`` points of width ``width`` (ids first, first+1, ...);
    print one JSON line per point."""
    import numpy as np

    from mcland._kernels import fields as f
    from mcland._kernels.batch import draw_point
    from mcland._kernels.bundles import PointOutput, StructuredControl
    from mcland._kernels.classify import analyze, whitened_problem
    from mcland._kernels.hessian import assemble_hessian
    from mcland._kernels.lapack import eigvalsh_destroy
    from mcland._kernels.structured import structured_spectrum
    from mcland.core.tolerances import Tolerances
    from mcland.points.plan import make_plan

    tol = Tolerances()
    plan = make_plan(_config(width), None, None, analyse=False)
    control = StructuredControl(True, 10**9)
    if os.environ.get(ONE_BLAS_ENV) == "1":
        from mcland.core.blas import one_blas_thread

        one_blas_thread().__enter__()  # as sample and classify analyse each point
    if method == "draw":
        draw_point(plan.sampler, first + points)  # compiled (or loaded) before the clock
    for sid in range(first, first + points):
        c0 = time.process_time()
        t0 = time.perf_counter()
        p = draw_point(plan.sampler, sid)
        t_draw = time.perf_counter() - t0
        N = int(np.sum(p.dims[1:] * p.dims[:-1]))
        row = {"width": width, "method": method, "sid": sid, "N": N, "draw_s": t_draw}
        if method == "draw":
            row.update(seconds=t_draw, cpu_s=time.process_time() - c0)
            row["w_sha256"] = hashlib.sha256(p.w.tobytes()).hexdigest()
            row["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(json.dumps(row), flush=True)
            continue
        t0 = time.perf_counter()
        c0 = time.process_time()
        if method == "structured":
            out = structured_spectrum(p.dims, p.w, p.moments, control)
            row["seconds"] = time.perf_counter() - t0
            row["cpu_s"] = time.process_time() - c0
            ev, fl = out.ev, out.floor
            row.update(
                k=int(out.k),
                n_neg=int(np.sum(ev < -tol.c_neg * fl)),
                n_zero=int(np.sum(np.abs(ev) <= tol.c_zero * fl) + N - out.k),
                n_pos=int(np.sum(ev > tol.c_zero * fl)),
                eig_min=float(ev[0]) if ev.size else 0.0,
                floor=float(fl),
            )
        elif method == "structured-profile":
            # where the time goes: everything up to the ranks and bases (max_k = 0 stops
            # there), the whole path, and the eigensolver alone on a random symmetric
            # matrix of the same order k (its cost hardly depends on the entries)
            from mcland._kernels.band import eigvalsh_large_destroy

            out = structured_spectrum(p.dims, p.w, p.moments, control)
            row["seconds"] = time.perf_counter() - t0
            row["cpu_s"] = time.process_time() - c0
            t1 = time.perf_counter()
            structured_spectrum(p.dims, p.w, p.moments, StructuredControl(True, 0))
            row["bases_s"] = time.perf_counter() - t1
            k = int(out.k)
            A = np.random.default_rng(0).standard_normal((k, k))
            A = A + A.T
            ev = np.empty(k)
            t1 = time.perf_counter()
            eigvalsh_large_destroy(A, ev)
            row["eig_s"] = time.perf_counter() - t1
            row["k"] = k
            row["assemble_s"] = row["seconds"] - row["bases_s"] - row["eig_s"]
        elif method == "dense-spectrum":
            ww, Syx_w = whitened_problem(p.dims, p.w, p.moments.Syx, p.moments.K, p.moments.K_inv)
            hess = assemble_hessian(p.dims, ww, np.eye(p.dims[0]), Syx_w)
            ev = np.empty(N)
            eigvalsh_destroy(hess, ev)
            row["seconds"] = time.perf_counter() - t0
            row["cpu_s"] = time.process_time() - c0
            row["eig_min"] = float(ev[0])
        else:
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
            analyze(p.dims, p.w, p.moments, tol.thresholds, f.SPECTRUM, out, np.empty(0))
            row["seconds"] = time.perf_counter() - t0
            row["cpu_s"] = time.process_time() - c0
            row.update(
                n_neg=int(out.row_int[f.I_N_NEG]),
                n_zero=int(out.row_int[f.I_N_ZERO]),
                n_pos=int(out.row_int[f.I_N_POS]),
                type=f.TYPE_NAMES[out.row_int[f.I_NUMERIC_TYPE]],
                floor=float(out.row_float[f.F_NOISE_FLOOR]),
            )
        row["recipe"] = int(p.recipe)
        row["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(row), flush=True)


def _compile_child():
    """First-run compile time of the structured kernel: a fresh process whose Numba
    cache holds everything but the kernels of ``structured.py`` and ``band.py`` (the
    caller deletes their entries)."""
    import numpy as np

    from mcland._kernels.batch import draw_point
    from mcland._kernels.bundles import StructuredControl
    from mcland._kernels.structured import structured_spectrum
    from mcland.points.plan import make_plan

    plan = make_plan(_config(16), None, None, analyse=False)
    p = draw_point(plan.sampler, 0)  # compiled (or loaded) before the clock starts
    control = StructuredControl(True, 10**9)
    t0 = time.perf_counter()
    structured_spectrum(p.dims, p.w, p.moments, control)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    structured_spectrum(p.dims, p.w, p.moments, control)
    second = time.perf_counter() - t0
    print(json.dumps({"first_call_s": first, "second_call_s": second}), flush=True)
    del np


def _structured_cache_files():
    from mcland._kernels.jit import CACHE_DIR

    if not CACHE_DIR:
        return []
    return sorted([*CACHE_DIR.glob("structured.*"), *CACHE_DIR.glob("band.*")])


def _run(args, threads, one_blas=False, python=None):
    env = dict(os.environ)
    env[ONE_BLAS_ENV] = "1" if one_blas else "0"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    proc = subprocess.run(
        [python or sys.executable, __file__, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        return []
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _draw_table(args):
    """``--draw``: per width, the median draw time (wall and CPU) and memory peak of this
    installation and of the baseline's, their ratio, and whether the weights agree."""
    import numpy as np

    pythons = [("this", None)]
    if args.baseline_python:
        pythons.insert(0, ("baseline", args.baseline_python))
    for _, py in pythons:  # compile (or load) the draw once per installation
        _run(["--child", "16", "draw", "1", "0"], args.threads, python=py)
    print(
        f"{'width':>6} {'N':>9} {'code':>9} {'draw s med':>11} {'max':>8} {'cpu s med':>10} "
        f"{'peak MB':>8} {'load':>11} {'ratio':>6} {'same w':>7}"
    )
    rows = []
    for width in args.widths:
        got = {}
        for name, py in pythons:
            load0 = os.getloadavg()[0]
            r = _run(
                ["--child", str(width), "draw", str(args.points), "0"], args.threads, python=py
            )
            rows += [{**x, "code": name} for x in r]
            if not r:
                print(f"{width:>6} {'':>9} {name:>9} failed", flush=True)
                continue
            got[name] = r
            secs = np.array([x["seconds"] for x in r])
            ratio = same = ""
            if name == "this" and "baseline" in got:
                base = np.median([x["seconds"] for x in got["baseline"]])
                ratio = f"{base / np.median(secs):.1f}"
                same = str([x["w_sha256"] for x in got["baseline"]] == [x["w_sha256"] for x in r])
            print(
                f"{width:>6} {r[0]['N']:>9} {name:>9} {np.median(secs):>11.4f} "
                f"{secs.max():>8.4f} {np.median([x['cpu_s'] for x in r]):>10.4f} "
                f"{max(x['maxrss_mb'] for x in r):>8.0f} "
                f"{load0:>5.1f}-{os.getloadavg()[0]:<5.1f} {ratio:>6} {same:>7}",
                flush=True,
            )
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--widths", type=int, nargs="+", default=WIDTHS)
    ap.add_argument("--points", type=int, default=6, help="points per width")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dense-max", type=int, default=64, help="largest width run dense")
    ap.add_argument(
        "--one-blas",
        action="store_true",
        help="analyse each point with one BLAS thread, as sample and classify do (their "
        "threads work on different points); default: --threads BLAS threads inside a point",
    )
    ap.add_argument("--compile", action="store_true", help="measure the first-run compile time")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="structured only, split into bases (products, SVDs, ranks), assembly of K "
        "(transformed factors, M^, assemble_k) and the eigensolver",
    )
    ap.add_argument(
        "--draw",
        action="store_true",
        help="time the draw alone (draw_point), per width; with --baseline-python also "
        "with that interpreter's mcland, same points, weights compared by hash",
    )
    ap.add_argument("--baseline-python", default=None, help="interpreter of the baseline")
    ap.add_argument("--out", type=Path, default=None, help="write all rows as JSON lines")
    ap.add_argument("--child", nargs=4, metavar=("WIDTH", "METHOD", "POINTS", "FIRST"))
    ap.add_argument("--compile-child", action="store_true")
    args = ap.parse_args()
    if args.child:
        w, method, n, first = args.child
        _child(int(w), method, int(n), int(first))
        return
    if args.compile_child:
        _compile_child()
        return
    if args.compile:
        _run(["--child", "16", "structured", "1", "0"], args.threads)  # everything cached
        for path in _structured_cache_files():
            path.unlink()
        print(_run(["--compile-child"], args.threads))
        return
    if args.draw:
        _draw_table(args)
        return
    _run(["--child", "16", "dense-analyze", "1", "0"], args.threads)  # warm the caches
    _run(["--child", "16", "structured", "1", "0"], args.threads)
    rows = []
    print(
        f"{'width':>6} {'N':>9} {'method':>15} {'k med':>6} {'s/point med':>12} "
        f"{'s/point max':>12} {'cpu s med':>10} {'peak MB':>8} {'draw s':>7} {'load':>11}"
    )
    for width in args.widths:
        methods = ["structured-profile" if args.profile else "structured"]
        if width <= args.dense_max and not args.profile:
            methods = ["dense-analyze", "dense-spectrum", "structured"]
        for method in methods:
            load0 = os.getloadavg()[0]
            got = _run(
                ["--child", str(width), method, str(args.points), "0"], args.threads, args.one_blas
            )
            rows += got
            if not got:
                print(f"{width:>6} {'':>9} {method:>15} failed")
                continue
            import numpy as np

            secs = np.array([r["seconds"] for r in got])
            ks = [r["k"] for r in got if "k" in r]
            print(
                f"{width:>6} {got[0]['N']:>9} {method:>15} "
                f"{int(np.median(ks)) if ks else '':>6} {np.median(secs):>12.4f} "
                f"{secs.max():>12.4f} {np.median([r['cpu_s'] for r in got]):>10.4f} "
                f"{max(r['maxrss_mb'] for r in got):>8.0f} "
                f"{np.median([r['draw_s'] for r in got]):>7.2f} "
                f"{load0:>5.1f}-{os.getloadavg()[0]:<5.1f}",
                flush=True,
            )
            if method == "structured-profile":
                parts = ("bases_s", "assemble_s", "eig_s")
                med = {q: float(np.median([r[q] for r in got])) for q in parts}
                print(
                    f"{'':>6} {'':>9} {'':>15} median s: bases {med['bases_s']:.4f}, "
                    f"assembly {med['assemble_s']:.4f}, eigensolver {med['eig_s']:.4f} "
                    f"(k median {int(np.median(ks))})",
                    flush=True,
                )
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
