"""Waiting in tests for something to happen: poll a condition until a deadline, never sleep a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

POLL_S = 0.02


def wait_until(condition: Callable[[], T], timeout_s: float, what: str) -> T:
    """Poll `condition` every 20 ms until it returns something true, and return that.

    Parameters
    ----------
    condition : callable
        Checked first at once, then every 20 ms; an exception it raises ends the wait (a failed check).
    timeout_s : float
        Longest wait, on the monotonic clock: generous, since a loaded 2-core CI machine is slow, and only a
        failing test waits that long.
    what : str
        What is awaited, for the failure message: ``"the watcher's lock"``.

    Raises
    ------
    AssertionError
        ``never saw <what> within <timeout_s> s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"never saw {what} within {timeout_s:g} s")
        time.sleep(POLL_S)
