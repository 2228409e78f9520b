"""glibc's mmap threshold for the service's long-running processes (the watcher, ``isoview serve``).

glibc gives a block above its mmap threshold a memory mapping of its own, returned to the system when it is
freed, but by default it raises the threshold to the largest such block freed so far (up to 32 MiB). After the
first image buffers are freed, image-sized buffers come from the heap, and the heap keeps the free space between
them: a watcher's memory then settles tens of MB higher (README, "Soak test"). A fixed threshold, set here with
``mallopt(M_MMAP_THRESHOLD, ...)`` as ``MALLOC_MMAP_THRESHOLD_`` would at start-up, keeps every image buffer in a
mapping of its own.
"""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass
from typing import Literal

from isoview_core.pipeline.heap import glibc

logger = logging.getLogger(__name__)

THRESHOLD_VARIABLE = "MALLOC_MMAP_THRESHOLD_"
"""glibc's environment variable for the threshold, read once when a process starts."""

M_MMAP_THRESHOLD = -3
"""``mallopt``'s parameter number for the mmap threshold (glibc's ``malloc.h``)."""


@dataclass(frozen=True)
class MmapThreshold:
    """The mmap threshold a process runs with, and who chose it.

    Attributes
    ----------
    bytes : int or None
        The fixed threshold; None for glibc's adaptive one (or an allocator that is not glibc's).
    source : {"config", "environment", "adaptive", "not glibc"}
        ``config``: set by :func:`apply_mmap_threshold`; ``environment``: the user's ``MALLOC_MMAP_THRESHOLD_``
        (glibc applied it at start-up); ``adaptive``: glibc's default, as configured; ``not glibc``: another C library,
        left alone.
    """

    bytes: int | None
    source: Literal["config", "environment", "adaptive", "not glibc"]

    def __str__(self) -> str:
        if self.bytes is None:
            return "adaptive (glibc's default)" if self.source == "adaptive" else "left to the C library (not glibc)"
        return f"fixed at {self.bytes} bytes ({'MALLOC_MMAP_THRESHOLD_' if self.source == 'environment' else 'execution.malloc_mmap_threshold_bytes'})"


def apply_mmap_threshold(threshold_bytes: int | None) -> MmapThreshold:
    """Fix glibc's mmap threshold of this process and of the processes it starts; logs what it runs with.

    Parameters
    ----------
    threshold_bytes : int or None
        The threshold (``execution.malloc_mmap_threshold_bytes``); None keeps glibc's adaptive default.

    Returns
    -------
    MmapThreshold
        What the process runs with. A ``MALLOC_MMAP_THRESHOLD_`` set by the user wins (glibc read it at start-up),
        and nothing is changed on another C library. Once set here, the variable is exported too, so that child
        processes (Dask workers, served flow runs) start with the same threshold.
    """
    if THRESHOLD_VARIABLE in os.environ:
        value = os.environ[THRESHOLD_VARIABLE]
        result = MmapThreshold(int(value) if value.isdigit() else None, "environment")
    elif threshold_bytes is None:
        result = MmapThreshold(None, "adaptive")
    elif (libc := glibc()) is None:
        result = MmapThreshold(None, "not glibc")
    elif libc.mallopt(M_MMAP_THRESHOLD, ctypes.c_int(threshold_bytes)) != 1:
        logger.warning("glibc refused the mmap threshold %d bytes: it stays adaptive", threshold_bytes)
        result = MmapThreshold(None, "adaptive")
    else:
        os.environ[THRESHOLD_VARIABLE] = str(threshold_bytes)
        result = MmapThreshold(threshold_bytes, "config")
    logger.info("glibc mmap threshold: %s", result)
    return result
