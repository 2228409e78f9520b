"""The order in which a test's code fsyncs and renames files, to check durable publication.

:meth:`DurabilityLog.install` wraps ``os.fsync``, ``os.rename`` and ``os.replace`` for one test. An fsync is logged by the (device, inode) of its descriptor, which a rename keeps:
after an output is published, the inodes of its final path are those its temporary path had
when they were fsync'ed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def _identity(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


@dataclass
class DurabilityLog:
    """Events in order: ``("fsync", (dev, ino))`` and ``("rename", source, target)``."""

    events: list[tuple] = field(default_factory=list)

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch) -> DurabilityLog:
        """Start logging (until the test ends)."""
        log = cls()
        fsync, rename, replace = os.fsync, os.rename, os.replace

        def logged_fsync(descriptor: int) -> None:
            stat = os.fstat(descriptor)
            fsync(descriptor)
            log.events.append(("fsync", (stat.st_dev, stat.st_ino)))

        def logged(operation):
            def move(source, target, *args, **kwargs):
                operation(source, target, *args, **kwargs)
                log.events.append(("rename", Path(source), Path(target)))

            return move

        monkeypatch.setattr(os, "fsync", logged_fsync)
        monkeypatch.setattr(os, "rename", logged(rename))
        monkeypatch.setattr(os, "replace", logged(replace))
        return log

    def fsyncs(self) -> int:
        """Number of fsyncs logged."""
        return sum(event[0] == "fsync" for event in self.events)

    def fsynced_at(self, path: Path) -> list[int]:
        """Positions of the fsyncs of `path` (an existing file or folder) in :attr:`events`."""
        identity = _identity(path)
        return [i for i, event in enumerate(self.events) if event == ("fsync", identity)]

    def published_at(self, final: Path) -> int:
        """Position of the last rename to `final`."""
        matches = [i for i, event in enumerate(self.events) if event[0] == "rename" and event[2] == Path(final)]
        assert matches, f"{final} never renamed into place"
        return matches[-1]

    def assert_durably_published(self, final: Path) -> tuple[int, int]:
        """Assert that every file and folder of `final` was fsync'ed before the rename that published it,
        and its parent folder after; return the positions of that rename and of that fsync of the parent."""
        published = self.published_at(final)
        entries = [final, *final.rglob("*")] if final.is_dir() else [final]
        for entry in entries:
            assert any(i < published for i in self.fsynced_at(entry)), f"{entry} not fsync'ed before {final} was published"
        after = [i for i in self.fsynced_at(final.parent) if i > published]
        assert after, f"{final.parent} not fsync'ed after {final} was published"
        return published, after[0]
