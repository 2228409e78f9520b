"""numpy's advice for transparent huge pages, off while a fusion run estimates and fuses its pairs.

On Linux numpy asks the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)``) on every array of 4 MiB or
more, unless ``NUMPY_MADVISE_HUGEPAGE=0``. A fusion run's jobs allocate many such arrays for a short time (the
estimation's slabs and their float32 planes, then the fusion's slab buffers): a default ``isoview fuse`` of two
64 x 2048 x 2048 pairs zeroed ~2 GB of huge pages (~1000 faults) for a peak of 1.4 GB. On the development VM, whose
freed memory goes back to its host, those huge pages came cold: 2.3-2.8 s of system time, against 1.5-1.6 s with
the pages faulted in one by one, user time within 0.2 s (five alternating pairs of runs, ad hoc). With the worker
threads on the main heap (:func:`~isoview_core.pipeline.heap.share_main_heap`) it was 1.7-2.5 s against 0.85-0.93
(four pairs). The correction keeps numpy's default: its stack buffers are filled once, whole, and there the advice
saved ~1 CPU-s of ~7. How the runs were measured: ``docs/performance.md``.

A user's ``NUMPY_MADVISE_HUGEPAGE`` wins: with it set, runs change nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from isoview_core.pipeline.run_scope import RunScopedSetting

__all__ = ["USER_SETTING", "huge_page_advice", "huge_page_advice_off_for_run"]

USER_SETTING = "NUMPY_MADVISE_HUGEPAGE"
"""numpy's environment variable for the advice, read when numpy is imported."""


def _advice_setter() -> Callable[[bool], bool] | None:
    """numpy's switch of the advice (returns the previous setting), or None when this numpy has none."""
    try:
        from numpy._core.multiarray import _set_madvise_hugepage  # numpy >= 2
    except ImportError:
        try:
            from numpy.core.multiarray import _set_madvise_hugepage  # numpy 1.x
        except ImportError:
            return None
    return _set_madvise_hugepage


def huge_page_advice() -> bool | None:
    """Whether numpy now advises huge pages for its large arrays (None when this numpy cannot tell)."""
    setter = _advice_setter()
    if setter is None:
        return None
    current = setter(True)
    setter(current)
    return bool(current)


def _turn_advice_off() -> bool:
    """numpy's advice off; returns its setting before."""
    return bool(_advice_setter()(False))


def _restore_advice(before: bool) -> None:
    _advice_setter()(before)


_advice_off = RunScopedSetting(_turn_advice_off, _restore_advice)


@contextmanager
def huge_page_advice_off_for_run() -> Iterator[None]:
    """Within the block numpy gives no huge-page advice; when the last such block ends, its setting is restored.

    Runs may overlap (nested or in threads): the advice stays off while any is active. Nothing changes when the
    environment sets ``NUMPY_MADVISE_HUGEPAGE`` or when numpy has no switch for it.
    """
    if _advice_setter() is None or USER_SETTING in os.environ:
        yield
        return
    with _advice_off.held():
        yield
