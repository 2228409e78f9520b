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

JOURNAL_NAME = "journal.jsonl"
PROBLEMS_NAME = "problems.jsonl"


def service_dir(config: ProcessingConfig) -> Path:
    """``<fused root>/service``: the journal, problems list and lock of the service."""
    return config.resolved_fused_dir() / "service"


def _append(config: ProcessingConfig, name: str, entry: dict[str, Any]) -> None:
    """Append one JSON line with time, host and pid (one ``write``: atomic when appending; fsync'ed unless turned off)."""
    folder = service_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"time": time.time(), "host": socket.gethostname(), "pid": os.getpid(), **entry}) + "\n"
    append_text(folder / name, line)


def _read(config: ProcessingConfig, name: str) -> list[dict[str, Any]]:
    """Every entry of a log, oldest first (a torn last line from a killed process is skipped)."""
    path = service_dir(config) / name
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
    _append(config, JOURNAL_NAME, {"event": event, **fields})


def read_journal(config: ProcessingConfig) -> list[dict[str, Any]]:
    """Every journal entry, oldest first."""
    return _read(config, JOURNAL_NAME)


def record_problem(config: ProcessingConfig, specimen: int, timepoints: list[int], message: str) -> None:
    """Log a problem the service met: the timepoints it concerns and the one-line message."""
    _append(config, PROBLEMS_NAME, {"specimen": specimen, "timepoints": timepoints, "message": message})


def read_problems(config: ProcessingConfig) -> list[dict[str, Any]]:
    """Every problem logged, oldest first."""
    return _read(config, PROBLEMS_NAME)
