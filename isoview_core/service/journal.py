"""An append-only journal of the work the service did (one JSON line per corrected stack, estimate
and fused pair), beside the fused outputs: what ran when, on which host, and proof that nothing
was processed twice."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from isoview_core.config import ProcessingConfig

JOURNAL_NAME = "journal.jsonl"


def service_dir(config: ProcessingConfig) -> Path:
    """``<fused root>/service``: the journal, problems list and lock of the service."""
    return config.resolved_fused_dir() / "service"


def record_work(config: ProcessingConfig, event: str, **fields: Any) -> None:
    """Append one line ``{"time", "event", "host", "pid", **fields}`` to the journal (one ``write``: atomic when appending)."""
    folder = service_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"time": time.time(), "event": event, "host": socket.gethostname(), "pid": os.getpid(), **fields}) + "\n"
    descriptor = os.open(folder / JOURNAL_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, line.encode())
    finally:
        os.close(descriptor)


def read_journal(config: ProcessingConfig) -> list[dict[str, Any]]:
    """Every journal entry, oldest first (a torn last line from a killed process is skipped)."""
    path = service_dir(config) / JOURNAL_NAME
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries
