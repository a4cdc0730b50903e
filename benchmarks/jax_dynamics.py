"""Plain gradient descent on deep linear networks: mcland's kernel against JAX on one core
(the bar of issue 15's dynamics workload).  JAX is an optional extra, not a dependency:
``pip install -e '.[jax]'``.

Task: the benchmark's (:mod:`mcland.bench.dynamics`): Gaussian data as in
``runs/quick.toml`` (m = 40), T trajectories of fixed-step GD from ``W_h = G_h /
sqrt(d_{h-1})``, the loss and its gradient from the moments ``Sxx``, ``Syx``,
``tr(Syy)``, float64.  JAX runs ``jax.jit(jax.vmap(traj))`` with ``traj`` a ``lax.scan``
of ``jax.value_and_grad`` steps (the losses of every step kept, as mcland keeps them);
mcland runs :func:`mcland.bench.dynamics.descend` with one thread.

1. **Fixed architecture** (3, 4, 4, 4, 2), 64 trajectories: JAX's compile time
   (``lower().compile()``) and both steady-state rates (gradient evaluations per second,
   fastest of ``--rounds``, the two timed alternately), and how far the results differ.
2. **Many architectures**: those of the first ``--points`` points of ``--config`` (default
   ``runs/dynamics_quick.toml``, the issue's choice: depth 2-4, widths 1-4;
   ``runs/quick.toml``: depth 2-6, widths 1-6; each distinct one costs JAX a compile,
   repeated ones hit its cache), T trajectories of ``--steps`` steps each; end-to-end wall time of JAX (compile
   and run) against mcland with a warm cache (its kernel takes the dimensions at run
   time: nothing to compile per architecture), and mcland's one-off cold compile time
   (child process, empty cache) for reference.

One core: run it under ``taskset -c 0``; the script also sets
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1`` before
importing JAX and records the CPU affinity it ran with.

    taskset -c 0 python benchmarks/jax_dynamics.py --out benchmarks/results/dynamics-0.7.0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)

import numpy as np

from mcland.bench import dynamics
from mcland.core.version import __version__
from mcland.sampling.run import draw_point

ROOT = Path(__file__).resolve().parents[1]
DYNAMICS_QUICK = ROOT / "runs" / "dynamics_quick.toml"


def jax_runner(dims: tuple[int, ...], n_steps: int):
    """``jax.jit(jax.vmap(traj))``: ``traj(ws, Sxx, Syx, tr_syy, eta)`` runs ``n_steps``
    GD steps from the layers ``ws`` and returns the final layers and the losses."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    def loss(ws, Sxx, Syx, tr_syy):
        P = ws[0]
        for W in ws[1:]:
            P = W @ P
        return tr_syy - 2.0 * jnp.sum(P * Syx) + jnp.sum((P @ Sxx) * P)

    value_and_grad = jax.value_and_grad(loss)

    def traj(ws, Sxx, Syx, tr_syy, eta):
        def step(ws, _):
            L, g = value_and_grad(ws, Sxx, Syx, tr_syy)
            return [W - eta * G for W, G in zip(ws, g, strict=True)], L

        return lax.scan(step, ws, None, length=n_steps)

    return jax.jit(jax.vmap(traj, in_axes=(0, None, None, None, None)))


def jax_args(t: dynamics.Task) -> tuple:
    import jax.numpy as jnp

    dims = [int(d) for d in t.problem.dims]
    T = t.w0.shape[0]
    ws, pos = [], 0
    for h in range(1, len(dims)):
        n = dims[h] * dims[h - 1]
        ws.append(jnp.asarray(t.w0[:, pos : pos + n].reshape(T, dims[h], dims[h - 1])))
        pos += n
    p = t.problem
    return ws, jnp.asarray(p.Sxx), jnp.asarray(p.Syx), jnp.float64(p.tr_syy), jnp.float64(t.eta)


def flat_final(ws) -> np.ndarray:
    return np.concatenate([np.asarray(W).reshape(W.shape[0], -1) for W in ws], axis=1)


def fixed(steps: int, rounds: int) -> dict:
    import jax

    t = dynamics.task()
    T = t.w0.shape[0]
    args = jax_args(t)
    t0 = time.perf_counter()
    compiled = jax_runner(dynamics.ARCHITECTURE, steps).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    dynamics.descend(t, 2, 1)  # mcland: load the compiled kernel
    jt, mt = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        jt.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        w_m, loss_m = dynamics.descend(t, steps, 1)
        mt.append(time.perf_counter() - t0)
    w_j = flat_final(out[0])
    evals = T * steps
    return {
        "architecture": list(dynamics.ARCHITECTURE),
        "trajectories": T,
        "steps": steps,
        "rounds": rounds,
        "jax_compile_s": compile_s,
        "jax_evals_per_s": evals / min(jt),
        "mcland_evals_per_s": evals / min(mt),
        "mcland_over_jax": min(jt) / min(mt),
        "ratio_per_round": [j / m for j, m in zip(jt, mt, strict=True)],
        "max_rel_diff_final_weights": float(np.abs(w_j - w_m).max() / np.abs(w_m).max()),
        "max_rel_diff_losses": float(np.abs(np.asarray(out[1]) - loss_m).max() / loss_m.max()),
    }


def many(
    points: int,
    trajectories: int,
    steps: int,
    cold: bool = True,
    config: str | Path = DYNAMICS_QUICK,
) -> dict:
    import jax

    archs = []
    for i in range(points):
        W = draw_point(config, i)[0]
        archs.append((W[0].shape[1], *(w.shape[0] for w in W)))
    tasks = [dynamics.task(a, trajectories=trajectories) for a in archs]
    dynamics.descend(tasks[0], 2, 1)  # mcland's cache warm: load the compiled kernel
    t0 = time.perf_counter()
    for t in tasks:
        dynamics.descend(t, steps, 1)
    mcland_s = time.perf_counter() - t0
    runners: dict[tuple[int, ...], object] = {}
    compile_s = 0.0
    t0 = time.perf_counter()
    for a, t in zip(archs, tasks, strict=True):
        args = jax_args(t)
        if a not in runners:
            c0 = time.perf_counter()
            runners[a] = jax_runner(a, steps).lower(*args).compile()
            compile_s += time.perf_counter() - c0
        jax.block_until_ready(runners[a](*args))
    jax_s = time.perf_counter() - t0
    cold = dynamics.compile_seconds() if cold else float("nan")
    return {
        "config": str(Path(config).relative_to(ROOT))
        if Path(config).is_relative_to(ROOT)
        else str(config),
        "points": points,
        "distinct_architectures": len(runners),
        "architectures": [list(a) for a in archs],
        "trajectories": trajectories,
        "steps": steps,
        "gradient_evals": points * trajectories * steps,
        "jax_end_to_end_s": jax_s,
        "jax_compile_s": compile_s,
        "mcland_warm_s": mcland_s,
        "mcland_cold_compile_s": cold,
        "end_to_end_speedup_warm": jax_s / mcland_s,
        "end_to_end_speedup_incl_mcland_compile": jax_s / (mcland_s + cold),
    }


def report(fig: dict) -> str:
    f, m = fig["fixed"], fig["many"]
    lines = [
        f"mcland {fig['meta']['mcland_version']}, jax {fig['meta']['jax_version']}, "
        f"float64, CPUs {fig['meta']['affinity']}, XLA_FLAGS={fig['meta']['xla_flags']!r}",
        f"command: {fig['meta']['command']}",
        "",
        f"fixed architecture {tuple(f['architecture'])}, {f['trajectories']} trajectories x "
        f"{f['steps']} steps, fastest of {f['rounds']}:",
        f"  JAX compile               {f['jax_compile_s']:10.2f} s",
        f"  JAX steady state          {f['jax_evals_per_s']:10.4g} gradient evals/s",
        f"  mcland kernel, 1 thread   {f['mcland_evals_per_s']:10.4g} gradient evals/s",
        f"  mcland / JAX              {f['mcland_over_jax']:10.3g}  (per round: "
        + ", ".join(f"{r:.3g}" for r in f["ratio_per_round"])
        + ")",
        f"  max rel. difference: final weights {f['max_rel_diff_final_weights']:.2g}, "
        f"losses {f['max_rel_diff_losses']:.2g}",
        "",
        f"architectures of the first {m['points']} points of {m['config']} "
        f"({m['distinct_architectures']} distinct), {m['trajectories']} trajectories x "
        f"{m['steps']} steps each ({m['gradient_evals']} gradient evals):",
        f"  JAX end to end            {m['jax_end_to_end_s']:10.2f} s "
        f"(of which compile {m['jax_compile_s']:.2f} s)",
        f"  mcland, warm cache        {m['mcland_warm_s']:10.3f} s",
        f"  mcland cold compile       {m['mcland_cold_compile_s']:10.2f} s (once per install)",
        f"  end-to-end speed-up       {m['end_to_end_speedup_warm']:10.3g}x warm, "
        f"{m['end_to_end_speedup_incl_mcland_compile']:.3g}x counting mcland's cold compile",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5000, help="steps, fixed architecture")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--points", type=int, default=20, help="points of --config")
    ap.add_argument(
        "--config", default=str(DYNAMICS_QUICK), help="architectures of its first points"
    )
    ap.add_argument("--trajectories", type=int, default=64, help="per architecture")
    ap.add_argument("--many-steps", type=int, default=1000, help="steps per architecture")
    ap.add_argument("--out", default=None, help="write OUT.txt and OUT.json")
    ap.add_argument("--no-cold", action="store_true", help="skip mcland's cold compile (tests)")
    a = ap.parse_args()
    import jax

    jax.config.update("jax_enable_x64", True)
    fig = {
        "meta": {
            "mcland_version": __version__,
            "jax_version": jax.__version__,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "affinity": sorted(os.sched_getaffinity(0)),
            "xla_flags": os.environ.get("XLA_FLAGS"),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "command": "taskset -c 0 python benchmarks/jax_dynamics.py "
            + " ".join(
                f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}")
                for k, v in vars(a).items()
                if v
            ),
        },
        "fixed": fixed(a.steps, a.rounds),
        "many": many(a.points, a.trajectories, a.many_steps, cold=not a.no_cold, config=a.config),
    }
    text = report(fig)
    print(text)
    if a.out:
        with open(a.out + ".json", "w", encoding="utf-8") as f:
            json.dump(fig, f, indent=2)
            f.write("\n")
        with open(a.out + ".txt", "w", encoding="utf-8") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
