"""The worker threads of a run (:class:`ThreadPool`): the kernels release the GIL, so the
batches of a job run concurrently in Python threads."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mcland.core.errors import MclandError

# tasks per thread and batch, each taking every k-th point; results do not depend on it
TASKS_PER_THREAD = 2


@dataclass(frozen=True)
class ThreadPool:
    """The worker threads of a run: a running executor and its number of threads.

    The count is kept beside the executor because the batches are dealt out by it
    (:attr:`tasks`) and executors do not expose it.
    """

    executor: Executor
    threads: int

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        """``executor.submit(fn, *args)``."""
        return self.executor.submit(fn, *args)

    @property
    def tasks(self) -> int:
        """Tasks per batch (see :func:`_start`)."""
        return TASKS_PER_THREAD * self.threads


def default_threads() -> int:
    """Number of CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


@contextmanager
def thread_pool(threads: int | None) -> Iterator[ThreadPool | None]:
    """``threads`` worker threads (default: :func:`default_threads`) for the functions
    below, shut down on exit; None for one thread (the batches then run in the caller's).

    Raises
    ------
    MclandError
        ``threads < 1``.
    """
    threads = default_threads() if threads is None else threads
    if threads < 1:
        raise MclandError(f"threads must be >= 1, got {threads}")
    if threads == 1:
        yield None
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mcland") as executor:
        yield ThreadPool(executor, threads)
