"""Exclusive OS file locks, released by the operating system when their process dies (even by SIGKILL).

``fcntl.flock`` on POSIX, ``msvcrt.locking`` of the first byte on Windows. The watcher's lock
tries once and reports the holder; writers that update a shared file (the live time series) wait.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

if os.name == "nt":  # pragma: no cover - exercised on the Windows microscope PCs
    import msvcrt

    def try_lock(handle: IO[str]) -> bool:
        """Lock `handle`'s file exclusively if no other process holds it; True when locked."""
        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
else:
    import fcntl

    def try_lock(handle: IO[str]) -> bool:
        """Lock `handle`'s file exclusively if no other process holds it; True when locked."""
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


@contextmanager
def exclusive_lock(path: Path, poll_s: float = 0.05) -> Iterator[None]:
    """Hold an exclusive lock on the file `path` (created if missing) for the ``with`` block, waiting for it.

    The file stays in place afterwards (removing it would let a waiting process lock a file no
    longer at `path`); closing it releases the lock.
    """
    with open(path, "a+") as handle:
        while not try_lock(handle):
            time.sleep(poll_s)
        yield
