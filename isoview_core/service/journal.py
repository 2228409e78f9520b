"""Append-only logs beside the fused outputs: the journal of the work the service did (one JSON
line per corrected stack, estimate and fused pair: what ran when, on which host, and proof that
nothing was processed twice) and the problems it met (one line each, naming file and problem)."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from isoview_core.config import ProcessingConfig
from isoview_core.formats.atomic import append_text
from isoview_core.layout import journal_path, problems_path


def _append(path: Path, entry: dict[str, Any]) -> None:
    """Append one JSON line with time, host and pid (one ``write``: atomic when appending; fsync'ed unless turned off)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"time": time.time(), "host": socket.gethostname(), "pid": os.getpid(), **entry}) + "\n"
    append_text(path, line)


def _read(path: Path) -> list[dict[str, Any]]:
    """Every entry of a log, oldest first (a torn last line from a killed process is skipped)."""
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


def record_work(config: ProcessingConfig, event: str, **fields: Any) -> None:
    """Journal one piece of work done: ``event`` (corrected, estimated, fused, archived) and what it was about."""
    _append(journal_path(config.resolved_fused_dir()), {"event": event, **fields})


def read_journal(config: ProcessingConfig) -> list[dict[str, Any]]:
    """Every journal entry, oldest first."""
    return _read(journal_path(config.resolved_fused_dir()))


def record_problem(config: ProcessingConfig, specimen: int, timepoints: list[int], message: str) -> None:
    """Log a problem the service met: the timepoints it concerns and the one-line message."""
    _append(problems_path(config.resolved_fused_dir()), {"specimen": specimen, "timepoints": timepoints, "message": message})


def read_problems(config: ProcessingConfig) -> list[dict[str, Any]]:
    """Every problem logged, oldest first."""
    return _read(problems_path(config.resolved_fused_dir()))
