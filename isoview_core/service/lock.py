"""One watcher per acquisition: an exclusive OS lock on ``<fused root>/service/watcher.lock``.

The operating system drops the lock when its process dies (even by SIGKILL), so a crashed
watcher never blocks its restart, and a second watcher gets a clear message instead of
duplicating work. A watcher that ends removes the lock file, and the folders it created for it
if they stayed empty (a watcher that waited for an acquisition that never came leaves nothing).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import IO, Self

from isoview_core.errors import IsoviewError
from isoview_core.formats.locks import try_lock

class WatcherLock:
    """Held for the lifetime of a watcher; ``with WatcherLock(path, acquisition): ...``."""

    def __init__(self, path: Path, acquisition: Path) -> None:
        self.path = Path(path)
        self.acquisition = acquisition
        self._handle: IO[str] | None = None
        self._created: list[Path] = []

    def __enter__(self) -> Self:
        self._created = [folder for folder in [self.path.parent, *self.path.parent.parents] if not folder.exists()]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self._open_locked()
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        handle.flush()
        self._handle = handle
        return self

    def _open_locked(self) -> IO[str]:
        """The lock file, open and locked: the one at :attr:`path` now, not one a finishing holder has just removed."""
        while True:
            handle = open(self.path, "a+")
            if not try_lock(handle):
                handle.seek(0)
                holder = handle.read().strip() or "unknown process"
                handle.close()
                raise IsoviewError(f"{self.acquisition}: another watcher is already processing it ({holder}); stop that one first")
            try:
                if os.name == "nt" or os.stat(self.path).st_ino == os.fstat(handle.fileno()).st_ino:
                    return handle
            except FileNotFoundError:
                pass
            handle.close()  # the previous holder removed this file after we opened it: lock the new one

    def __exit__(self, *exc: object) -> None:
        if self._handle is None:
            return
        if os.name != "nt":  # removed while still locked, so a waiting watcher never locks a removed file
            self.path.unlink(missing_ok=True)
        self._handle.close()  # closing releases the lock
        self._handle = None
        if os.name == "nt":  # pragma: no cover - Windows cannot remove an open file; a watcher that has it open keeps it
            try:
                self.path.unlink(missing_ok=True)
            except PermissionError:
                pass
        for folder in self._created:  # deepest first; a folder that holds outputs stays
            try:
                folder.rmdir()
            except OSError:
                break
