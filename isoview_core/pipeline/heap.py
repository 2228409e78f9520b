"""The C heap's free memory handed back to the system at the end of each job (glibc's ``malloc_trim``).

glibc keeps memory that was freed inside its heaps (blocks below its mmap threshold, which it raises to the
largest block freed so far, up to 32 MiB) for later allocations, and a worker thread's heaps are its own. So a
fusion worker could still hold its estimation's freed temporaries while its fusion allocated new ones: one default
``isoview fuse`` of 4 x 64 x 2048 x 2048 peaked at 4.13 stacks for two workers, over their budget of 4, where the
others peaked at 3.1 (``benchmarks/results/end_to_end_at_56f604f_earlier.json``). Trimming when a job ends makes each job
start from what is in use; it costs the page faults of the memory reused later, and nothing when nothing was kept.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from typing import Any, Callable, TypeVar

__all__ = ["glibc", "release_free_memory", "releases_free_memory"]

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


def release_free_memory() -> None:
    """Hand the free memory of every glibc heap of this process back to the system (no-op on other C libraries)."""
    libc = glibc()
    if libc is not None:
        libc.malloc_trim(0)


def releases_free_memory(function: Function) -> Function:
    """`function`, followed by :func:`release_free_memory` however it ends: for the jobs a worker runs one after another.

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
            release_free_memory()

    return job  # type: ignore[return-value]
