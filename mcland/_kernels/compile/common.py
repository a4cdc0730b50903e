"""What compiling kernels beside this process needs: child processes, ready stamps.

Numba compiles a kernel on its first call and caches the machine code
(:mod:`mcland._kernels.jit`), so only the first run of an installation pays for it.  A
first run compiles independent kernels in child processes (:mod:`.child`) beside this one
(:mod:`.sampler`, :mod:`.flow`); whatever goes wrong in a child only costs time, since this
process then compiles what is missing itself.  A stamp file beside the cache, holding the
sources' fingerprint, tells later processes that a set of kernels is compiled, so they skip
all this and load lazily; the stamps are removed with the cache when the sources change
(:func:`mcland._kernels.jit.purge_stale_cache`).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

from mcland._kernels import jit

READY = "mcland-ready-sampler"  # the stamp of the sampler's kernels (process_range)
CHILD_TIMEOUT_S = 900.0  # a child compiling longer than this is stopped, not waited for


JOBS_ENV = "MCLAND_COMPILE_JOBS"  # "1": compile in this process only


def parallel() -> bool:
    """Whether a child process may compile beside this one: more than one core and not
    switched off by ``MCLAND_COMPILE_JOBS=1``."""
    if os.environ.get(JOBS_ENV, "").strip() == "1":
        return False
    try:
        return len(os.sched_getaffinity(0)) > 1
    except AttributeError:  # pragma: no cover - not on Linux
        return (os.cpu_count() or 1) > 1


def _ready_stamp(name: str) -> Path | None:
    return None if jit.CACHE_DIR is None else jit.CACHE_DIR / name


def is_ready(name: str = READY) -> bool:
    """Whether an earlier process compiled and cached the kernels of the stamp ``name``
    (default: ``process_range``) for these sources."""
    stamp = _ready_stamp(name)
    try:
        return stamp is not None and stamp.read_text() == jit.FINGERPRINT
    except OSError:
        return False


def mark_ready(name: str = READY) -> None:
    """Write the stamp ``name`` (if the cache is writable and it is not there yet)."""
    stamp = _ready_stamp(name)
    if stamp is not None and not is_ready(name):
        with contextlib.suppress(OSError):
            stamp.write_text(jit.FINGERPRINT)


def spawn(argv: list[str]) -> subprocess.Popen | None:
    """Start a child Python running :func:`mcland._kernels.compile.child.main` on ``argv``
    with this process's environment and import path; ``None`` when it cannot start."""
    root = str(Path(__file__).resolve().parents[3])  # the folder that holds mcland/
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": root if not path else root + os.pathsep + path}
    # os._exit: skip the interpreter's teardown (freeing everything the compiler built takes
    # 1-2 s after a big compile, and the parent waits for this process to end); the cache
    # files are written and closed when each kernel is compiled, and stdout is /dev/null
    code = f"import os, mcland._kernels.compile.child as c; os._exit(c.main({argv!r}))"
    try:
        return subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None


def wait(child: subprocess.Popen | None, timeout: float = CHILD_TIMEOUT_S) -> None:
    """Wait at most ``timeout`` seconds for ``child`` (if any) to end, then :func:`stop` it."""
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=timeout)
        stop(child)


def stop(child: subprocess.Popen | None) -> None:
    """Kill ``child`` if it is still running (what it compiled so far is only lost time)."""
    if child is not None and child.poll() is None:
        child.kill()
        child.wait()
