"""When is a timepoint completely written? Every stack the XML declares exists at its exact expected
byte size and has not changed for a while, or the microscope has moved on to the next timepoint.

File-system events are only hints (Windows drops them, there is no close-write event, polling
observers die on network shares), so this is decided from ``stat`` alone, every time.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict

from isoview_core.acquisition import Acquisition
from isoview_core.errors import IsoviewError


class Readiness(BaseModel):
    """Whether a timepoint can be processed now; ``reason`` says what it waits for (or why it is given up)."""

    model_config = ConfigDict(frozen=True)

    complete: bool
    reason: str = ""
    last_write: float = 0.0


def timepoint_readiness(
    acquisition: Acquisition,
    specimen: int,
    timepoint: int,
    *,
    now: float,
    settle_s: float,
    next_timepoint_started: bool,
) -> Readiness:
    """Decide from the files on disk whether one timepoint is completely written.

    Parameters
    ----------
    acquisition : Acquisition
        The acquisition, refreshed recently enough to list the timepoint.
    specimen, timepoint : int
        Which timepoint.
    now : float
        Current time (``time.time()``), compared with the stacks' modification times.
    settle_s : float
        How long full-size stacks must stay unchanged to count as closed.
    next_timepoint_started : bool
        A later timepoint has files: the microscope has finished this one, no need to wait.

    Returns
    -------
    Readiness
        Complete when every declared stack is on disk at its full size and settled. A stack larger
        than expected also counts as complete: nothing more will be appended, and the correction
        reports the size mismatch as the timepoint's error. A channel XML that is on disk but
        cannot be read (malformed, no ``dimensions``...) counts as written once it and its
        channel's stacks have settled: a microscope that is still writing it gets the time, and
        then the timepoint is complete, its other channels are corrected and the correction
        reports the XML as that channel's one error. Stacks without any XML are waited for.
    """
    try:
        files = acquisition.timepoint(specimen, timepoint)
    except IsoviewError as error:
        return Readiness(complete=False, reason=str(error))
    if files.missing:
        return Readiness(complete=False, reason=files.missing[0])
    without_xml = [channel for channel in files.unreadable if not channel.xml_found]
    if without_xml:  # e.g. stacks written before their XML
        return Readiness(complete=False, reason=without_xml[0].message)
    if not files.stacks and not files.unreadable:
        return Readiness(complete=False, reason=f"{files.folder}: no stacks yet")
    last_write = 0.0
    for stack in files.stacks:
        try:
            status = os.stat(stack.path)
        except OSError as error:
            return Readiness(complete=False, reason=f"{stack.path}: {error.strerror}")
        if status.st_size < stack.expected_bytes:
            return Readiness(
                complete=False,
                reason=f"{stack.path.name}: {status.st_size} of {stack.expected_bytes} bytes written",
                last_write=status.st_mtime,
            )
        last_write = max(last_write, status.st_mtime)
    for channel in files.unreadable:  # sizes unknown without the XML: only how recently they changed
        for path in [channel.xml, *channel.stacks]:
            try:
                last_write = max(last_write, os.stat(path).st_mtime)
            except OSError as error:
                return Readiness(complete=False, reason=f"{path}: {error.strerror}")
    settled_in = last_write + settle_s - now
    if settled_in > 0 and not next_timepoint_started:
        written = files.unreadable[0].message if files.unreadable else "full size"
        return Readiness(complete=False, reason=f"{written}, settling for {settled_in:.1f} s more", last_write=last_write)
    return Readiness(complete=True, last_write=last_write)
