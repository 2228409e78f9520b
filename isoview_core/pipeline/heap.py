"""The C heap (glibc's) between the jobs of a run: freed memory handed back after each job, or kept for the next one.

A job hands the free memory of every heap back when it ends (``malloc_trim``, :func:`releases_free_memory`):
glibc keeps memory freed inside its heaps (blocks below its mmap threshold, which it raises to the largest block
freed so far, up to 32 MiB), and a worker thread's heaps are its own, so a fusion worker could still hold its
estimation's freed temporaries while its fusion allocated new ones (one default ``isoview fuse`` peaked at 4.13
stacks for two workers, over their budget of 4: ``benchmarks/results/end_to_end_at_56f604f_earlier.json``).

A fusion run keeps it instead (:func:`heap_kept_for_run`): every block comes from glibc's heaps (no mapping of its
own) and nothing is trimmed until the run ends, so the slabs a pair's estimation frees (two of 176 MB for
64 x 2048 x 2048 cameras, and 32 MB temporaries) hold the next job's slabs instead of being unmapped and faulted in
again. That holds for the jobs run in the main thread (one worker), and for worker threads that share the main heap
(:func:`share_main_heap`, which ``isoview fuse`` calls before it starts any thread): a thread with heaps of its own
gets at most 64 MB per heap, so glibc maps each slab on its own whatever ``M_MMAP_MAX`` says and unmaps it when
freed, and the next job faults it in again. With numpy's huge-page advice off (:mod:`isoview_core.pipeline.huge_pages`)
the shared heap took a default ``isoview fuse`` from 1.4-1.5 to 0.9-1.0 s of system time (ad hoc, four alternating
pairs of runs; with the advice on it had cost more: ``docs/performance.md``, which also gives the kept heap's effect on
``isoview fuse``). Fresh
pages cost their zeroing, and on a virtual machine that reports free pages to its host (virtio-balloon, the
development VM) also the host's fault when touched again (``benchmarks/bench_first_touch.py``: 0.05-1.47 s of system
time for the first 512 MiB a process fills there). A correction run keeps the heap too, the kept memory shared by its
workers (``isoview correct`` shares the main heap): with two workers a third of the huge pages zeroed (~350 instead
of ~1040 per run of 4 x 64 x 2048 x 2048, 42964e4); with one, since its jobs stream the planes they correct, ~120
instead of ~590 at 1.17-1.19 stacks (kept at d303a59, its peak had been 1.55 stacks, over the budget of 1.5:
``docs/performance.md``). Ending a run restores glibc's defaults for these two settings (an mmap threshold set by
``flows.memory`` stays), with its adaptive thresholds off from then on.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable, TypeVar

from isoview_core.pipeline.run_scope import RunScopedSetting

__all__ = ["glibc", "heap_kept_for_run", "release_free_memory", "releases_free_memory", "share_main_heap"]

M_TRIM_THRESHOLD = -1
"""``mallopt``'s parameter numbers (glibc's ``malloc.h``): free memory at the top of the heap above which glibc trims it,"""
M_MMAP_MAX = -4
"""and the most blocks glibc maps on their own (0: every block comes from a heap),"""
M_ARENA_MAX = -8
"""and the most heaps (arenas) glibc makes for the threads of a process (1: the main heap only)."""
GLIBC_DEFAULTS = {M_TRIM_THRESHOLD: 128 * 1024, M_MMAP_MAX: 65536}
"""What a run restores when it ends (glibc's documented defaults)."""
KEPT_DURING_RUN = {M_TRIM_THRESHOLD: 2**31 - 1, M_MMAP_MAX: 0}
USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_MAX_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")
"""Environment variables that tune glibc's heap: when one is set, the user's settings stand and runs change nothing."""

Function = TypeVar("Function", bound=Callable[..., Any])


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """This process's C library when it is glibc, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
    except (ValueError, OSError):  # the name is glibc's: unknown to other C libraries
        return None
    return ctypes.CDLL(None)


def _keep_heap() -> None:
    """Every block from a heap, nothing trimmed (:data:`KEPT_DURING_RUN`)."""
    for parameter, value in KEPT_DURING_RUN.items():
        glibc().mallopt(parameter, ctypes.c_int(value))


def _hand_heap_back(_: None) -> None:
    """glibc's defaults again, and the free memory of every heap back to the system."""
    for parameter, value in GLIBC_DEFAULTS.items():
        glibc().mallopt(parameter, ctypes.c_int(value))
    glibc().malloc_trim(0)


_kept_heap = RunScopedSetting(_keep_heap, _hand_heap_back)


@contextmanager
def heap_kept_for_run() -> Iterator[None]:
    """Within the block, jobs reuse the memory earlier jobs freed; when the last such block ends, it is handed back.

    Sets glibc's ``M_MMAP_MAX`` to 0 and its trim threshold to 2 GiB, and makes :func:`releases_free_memory`'s
    per-job trim wait for the end of the run (module docstring). Runs may overlap (nested or in threads): the
    heap is kept while any is active. Nothing changes on another C library, or when the environment tunes glibc's heap.
    """
    if glibc() is None or any(name in os.environ for name in USER_SETTINGS):
        yield
        return
    with _kept_heap.held():
        yield


def share_main_heap() -> bool:
    """Make every thread this process starts from now on allocate from glibc's main heap, not from heaps of its own.

    Then a fusion run's worker threads reuse the memory its earlier jobs freed, as its main thread does (module
    docstring). Call it before the process starts any other thread: a thread that has a heap keeps it, and once a
    second thread has asked for a heap glibc keeps the limit for the rest of the process (``M_ARENA_MAX``).

    Returns
    -------
    bool
        True when set; False on another C library, or when the environment tunes glibc's heap
        (``MALLOC_ARENA_MAX`` or the settings :func:`heap_kept_for_run` leaves alone), which then stands.
    """
    libc = glibc()
    if libc is None or any(name in os.environ for name in ("MALLOC_ARENA_MAX", *USER_SETTINGS)):
        return False
    return libc.mallopt(M_ARENA_MAX, ctypes.c_int(1)) == 1


def release_free_memory() -> None:
    """Hand the free memory of every glibc heap of this process back to the system (no-op on other C libraries)."""
    libc = glibc()
    if libc is not None:
        libc.malloc_trim(0)


def releases_free_memory(function: Function) -> Function:
    """`function`, followed by :func:`release_free_memory` however it ends: for the jobs a worker runs one after another.

    Inside :func:`heap_kept_for_run` the memory stays for the run's next job instead.

    Parameters
    ----------
    function : callable
        A job (a stack's correction, a pair's estimation or fusion).

    Returns
    -------
    callable
        The same call, with the heap trimmed when it returns or raises.
    """

    @functools.wraps(function)
    def job(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            if not _kept_heap.active:
                release_free_memory()

    return job  # type: ignore[return-value]
