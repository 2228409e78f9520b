"""Interpreter settings of an ``isoview`` process, made before numpy is imported: the garbage collector and BLAS threads.

* The cyclic garbage collector runs after every 700 allocations by default, and each full collection walks every
  object that numpy, SciPy, numba and matplotlib created when they were imported: 0.8-1.0 CPU-s of one
  ``isoview fuse`` of 4 x 64 x 2048 x 2048 (6 full and 66 middle collections), 0.24 of ``isoview correct``.
  With a first threshold of 50 000 it costs 0.17 CPU-s. Image buffers are freed by reference counting, not by the
  collector, so memory does not grow with it. At exit Python collects once more, walking them all again (0.25 CPU-s
  after the imports of ``isoview fuse``): everything alive then is frozen first (``gc.freeze``), so that the last
  collection skips it; objects still alive at exit are torn down with their modules either way.
* OpenBLAS starts a thread per core whose threads spin after every call; the stages only multiply small
  matrices (registration's 2 x 2 and 150 x N products, 4 x 4 affines), for which the spinning cost 1.6-2.2 % of a
  command's CPU. One thread, unless the user set ``OPENBLAS_NUM_THREADS``.
"""

from __future__ import annotations

import atexit
import gc
import os

GC_THRESHOLDS = (50_000, 20, 10)
"""Allocations before a young collection, and collections before an older one (Python's default: 700, 10, 10)."""


def tune_interpreter() -> None:
    """Apply :data:`GC_THRESHOLDS`, the freeze at exit and one BLAS thread (module docstring); call before numpy is imported."""
    gc.set_threshold(*GC_THRESHOLDS)
    atexit.register(gc.freeze)  # registered first, run last: after every other exit handler
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
