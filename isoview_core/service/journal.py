"""Append-only logs beside the fused outputs: the journal of the work the service did (one JSON
line per corrected stack, estimate, fused pair, registration and isotropic volume: what ran when, on which host, and proof that
nothing was processed twice) and the problems it met (one line each, naming file and problem)."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from isoview_core.config import ProcessingConfig
from isoview_core.formats.atomic import append_text
from isoview_core.fusion.records import load_estimate, load_fusion_record
from isoview_core.isotropic.records import IsotropicRecord, load_isotropic_record, load_registration
from isoview_core.layout import (
    ESTIMATE_SUFFIX,
    FUSION_RECORD_SUFFIX,
    ISOTROPIC_RECORD_SUFFIX,
    REGISTRATION_SUFFIX,
    journal_path,
    output_files,
    problems_path,
)
from isoview_core.naming import SPECIMEN_DIR_PATTERN
from isoview_core.records import load_record


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


def _work_key(entry: dict[str, Any]) -> tuple:
    """What a journal entry is about (a stack corrected, a pair estimated, a pair fused with a window), without when."""
    cameras, channels = tuple(entry.get("cameras", ())), tuple(entry.get("channels", ()))
    window = tuple(entry.get("window", ())) if entry.get("event") in ("fused", "isotropic") else ()
    return (entry.get("event"), entry.get("specimen"), entry.get("timepoint"), entry.get("camera"), entry.get("channel"), cameras, channels, window)


def _finished_outputs(config: ProcessingConfig) -> Iterator[tuple[str, Path]]:
    """The records of finished outputs (written last): corrected stacks, estimates, fused pairs, registrations and
    isotropic volumes, with their event."""
    for path in output_files(config.resolved_corrected_dir(), ".json"):
        yield "corrected", path
    for event, suffix in (("estimated", ESTIMATE_SUFFIX), ("fused", FUSION_RECORD_SUFFIX)):
        for path in output_files(config.resolved_fused_dir(), suffix):
            yield event, path
    for event, suffix in (("registered", REGISTRATION_SUFFIX), ("isotropic", ISOTROPIC_RECORD_SUFFIX)):
        for path in output_files(config.resolved_isotropic_dir(), suffix):
            yield event, path


def _journal_fields(event: str, path: Path) -> dict[str, Any]:
    """The journal entry's fields of one finished output, read from its record."""
    if event == "corrected":
        record = load_record(path)
        return {"specimen": record.specimen, "timepoint": record.timepoint, "camera": record.camera, "channel": record.channel}
    if event in ("registered", "isotropic"):
        volume = load_registration(path) if event == "registered" else load_isotropic_record(path)
        fields = {"specimen": volume.specimen, "timepoint": volume.timepoint, "channels": list(volume.channels)}
        return fields | ({"window": list(volume.window)} if isinstance(volume, IsotropicRecord) else {})
    pair = load_estimate(path) if event == "estimated" else load_fusion_record(path)
    specimen = int(SPECIMEN_DIR_PATTERN.match(path.parent.parent.name)["specimen"])
    fields = {"specimen": specimen, "timepoint": pair.timepoint, "cameras": list(pair.cameras)}
    return fields | ({"window": list(pair.window)} if event == "fused" else {})


def reconcile_journal(config: ProcessingConfig) -> int:
    """Journal the finished outputs the journal lacks: a process killed between publishing an output and journaling it.

    Run by the service before it resumes work, so that the journal lists every piece of work exactly once; the
    entries it adds say ``"recovered": true``. An unreadable record is skipped: the work that redoes its output
    journals it.

    Parameters
    ----------
    config : ProcessingConfig
        Where the outputs and the journal are.

    Returns
    -------
    int
        The number of entries added.
    """
    journaled = {_work_key(entry) for entry in read_journal(config)}
    added = 0
    for event, path in _finished_outputs(config):
        try:
            fields = _journal_fields(event, path)
        except (OSError, ValueError):  # pydantic's ValidationError and json's JSONDecodeError are ValueErrors
            continue
        if _work_key({"event": event, **fields}) not in journaled:
            record_work(config, event, **fields, recovered=True)
            added += 1
    return added


def record_problem(config: ProcessingConfig, specimen: int, timepoints: list[int], message: str) -> None:
    """Log a problem the service met: the timepoints it concerns and the one-line message."""
    _append(problems_path(config.resolved_fused_dir()), {"specimen": specimen, "timepoints": timepoints, "message": message})


def read_problems(config: ProcessingConfig) -> list[dict[str, Any]]:
    """Every problem logged, oldest first."""
    return _read(problems_path(config.resolved_fused_dir()))
