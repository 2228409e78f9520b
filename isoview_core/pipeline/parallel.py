"""Parallel workers for the batch drivers: how many the machine affords, and a pool that runs jobs in them.

The count is bounded by the cores and by memory: a worker needs a known multiple of one camera
stack (:data:`CORRECTION_STACKS_PER_WORKER`, :data:`FUSION_STACKS_PER_WORKER`, the budgets that
``benchmarks/bench_end_to_end.py`` checks), and all workers together may use at most
``memory_fraction`` of the memory available when the run starts. One worker runs the jobs in this
process. More run them in threads of this process when their heavy loops release the GIL (the
correction and the fusion: compiled kernels, numpy, blosc), else in processes started from a clean
fork server (the caller may hold threads, e.g. a progress bar's). Threads save each worker process
its start-up and its own copy of the libraries: ``isoview correct --workers 2`` on one timepoint of
4 x 64 x 2048 x 2048 took 10.4-10.7 CPU-s and 0.96 GiB in threads against 12.4-13.1 CPU-s and
1.41-1.45 GiB in processes (``isoview fuse``: 1.6 against 2.0-2.1 GiB, the same CPU within noise).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

CORRECTION_STACKS_PER_WORKER = 1.5
"""Peak memory of one correction worker, in camera stacks (issue 14's bound)."""
FUSION_STACKS_PER_WORKER = 2.0
"""Peak memory of one fusion worker, in camera stacks of the pair (issue 14's bound)."""
MEMORY_FRACTION = 0.8
"""Share of the available memory the workers of a run may use together."""


def available_memory_bytes() -> int:
    """Memory the kernel says can be allocated without swapping (``MemAvailable``), else the free pages."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def worker_count(
    requested: int | None,
    *,
    stack_bytes: int,
    stacks_per_worker: float,
    memory_fraction: float = MEMORY_FRACTION,
    available_bytes: int | None = None,
    cores: int | None = None,
) -> int:
    """How many workers to run: `requested`, or as many as the cores and the memory budget allow.

    Parameters
    ----------
    requested : int or None
        A count the user asked for (used as given, at least 1); None for automatic.
    stack_bytes : int
        Bytes of the largest camera stack of the run.
    stacks_per_worker : float
        Peak memory of one worker in stacks (:data:`CORRECTION_STACKS_PER_WORKER`...).
    memory_fraction : float
        Share of the available memory all workers may use.
    available_bytes, cores : int, optional
        The machine's available memory and cores (default: measured now).

    Returns
    -------
    int
        ``min(cores, memory_fraction * available / (stacks_per_worker * stack_bytes))``, at least 1.
    """
    if requested is not None:
        return max(1, requested)
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    available = available_memory_bytes() if available_bytes is None else available_bytes
    affordable = int(memory_fraction * available // max(1.0, stacks_per_worker * stack_bytes))
    return max(1, min(cores, affordable))


class InlineExecutor(Executor):
    """Runs each job at submission, in this process: the pool of a single worker."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - handed to the caller through the future, as a pool does
            future.set_exception(error)
        return future


WorkerKind = Literal["threads", "processes"]


@contextmanager
def worker_pool(workers: int, kind: WorkerKind = "threads", preload: Sequence[str] = ()) -> Iterator[Executor]:
    """An executor of `workers` threads or processes (this process itself for one).

    Parameters
    ----------
    workers : int
        Jobs run at once.
    kind : {"threads", "processes"}
        Threads for jobs whose heavy loops release the GIL; processes otherwise.
    preload : sequence of str
        Modules the processes' fork server imports once, before it forks the workers: each worker
        would otherwise spend ~1.2 CPU-seconds importing numpy, SciPy, zarr and the stages again (taken
        into account only when this process starts its first fork server).

    Returns
    -------
    Executor
        A context-managed pool; it waits for its jobs when the ``with`` block ends.
    """
    if workers <= 1:
        yield InlineExecutor()
        return
    if kind == "threads":
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="isoview-worker") as threads:
            yield threads
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", *preload])
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield pool


def submit_each(pool: Executor, function: Callable[..., Any], items: list[Any], *leading: Any, **keywords: Any) -> list[tuple[Any, Future]]:
    """``function(*leading, item, **keywords)`` submitted for every item: (item, future) pairs in the items' order."""
    return [(item, pool.submit(function, *leading, item, **keywords)) for item in items]
