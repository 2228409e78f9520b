"""A process-wide setting held while runs are active: made when the first run starts, undone when the last one ends.

Runs may overlap (nested, or in threads of one process, as the CLI's and a notebook's runs can), and the settings
they hold (glibc's heap, numpy's huge-page advice) belong to the whole process: each is made once and undone once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["RunScopedSetting"]


class RunScopedSetting:
    """Calls ``make`` when the first of any overlapping runs starts and ``undo`` when the last of them ends.

    Parameters
    ----------
    make : callable
        Changes the process's setting; returns what ``undo`` needs (e.g. the setting before), or None.
    undo : callable
        Changes it back, given what ``make`` returned.
    """

    def __init__(self, make: Callable[[], Any], undo: Callable[[Any], None]) -> None:
        self._make, self._undo = make, undo
        self._lock = threading.Lock()
        self._runs = 0
        self._before: Any = None

    @property
    def active(self) -> bool:
        """True while a run holds the setting."""
        return self._runs > 0

    @contextmanager
    def held(self) -> Iterator[None]:
        """The setting is made within the block (by this run or an overlapping one) and undone after the last run."""
        with self._lock:
            if self._runs == 0:
                self._before = self._make()
            self._runs += 1
        try:
            yield
        finally:
            with self._lock:
                self._runs -= 1
                if self._runs == 0:
                    self._undo(self._before)
