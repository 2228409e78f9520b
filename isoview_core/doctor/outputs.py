"""The doctor's checks of the output locations: outside the raw data, folders where they exist, enough free space."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from isoview_core.doctor.report import (
    TYPICAL_COMPRESSION_RATIO,
    Findings,
    OutputSpace,
    size_text,
)

__all__ = ["FREE_SPACE_MARGIN", "check_output_locations", "check_space", "resolved_path"]

FREE_SPACE_MARGIN = 2.0
"""Free space below this multiple of the expected outputs is a warning (below 1x, an error)."""


def resolved_path(path: Path) -> Path:
    """Absolute path with symlinks and ``..`` resolved, as far as it exists."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError, ValueError):
        return Path(os.path.abspath(path))


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest existing parent folder."""
    current = path
    while not current.exists() and current.parent != current:
        current = current.parent
    return current


def check_output_locations(findings: Findings, acquisition: Path, outputs: dict[str, Path]) -> set[Path]:
    """Output roots inside the raw acquisition (errors), or existing as files (errors).

    Parameters
    ----------
    findings : Findings
        Where the findings go.
    acquisition : Path
        The raw acquisition folder.
    outputs : dict of str to Path
        Output roots by what they hold (``"corrected"``, ``"fused"``).

    Returns
    -------
    set of Path
        The resolved output roots that lie inside the acquisition (the raw checks do not report
        them again as folders outside the layout).
    """
    root = resolved_path(acquisition)
    inside: set[Path] = set()
    for what, folder in outputs.items():
        resolved = resolved_path(folder)
        if resolved.is_relative_to(root):
            inside.add(resolved)
            findings.add(
                "error",
                folder,
                f"{folder}: the {what} output folder lies inside the raw acquisition {acquisition}; "
                "write the outputs outside the raw data",
            )
        elif folder.exists() and not folder.is_dir():
            findings.add("error", folder, f"{folder}: the {what} output root exists but is not a folder")
    return inside


def check_space(findings: Findings, outputs: dict[str, Path], expected: dict[str, int]) -> list[OutputSpace]:
    """Free space on each output filesystem against the outputs written there.

    Parameters
    ----------
    findings : Findings
        Where the findings go: below the estimate an error, below :data:`FREE_SPACE_MARGIN` times
        it a warning, else ``ok``; a filesystem that is not writable is an error.
    outputs : dict of str to Path
        Output roots by what they hold (``"corrected"``, ``"fused"``); roots on one filesystem
        (the nearest existing folder's device) are summed.
    expected : dict of str to int
        Estimated bytes written under each output root.

    Returns
    -------
    list of OutputSpace
        One entry per filesystem whose free space could be measured.
    """
    groups: dict[object, tuple[Path, list[Path], int]] = {}
    for what, folder in outputs.items():
        existing = _nearest_existing(resolved_path(folder))
        try:
            device: object = os.stat(existing).st_dev
        except OSError:
            device = existing
        path, roots, needed = groups.get(device, (existing, [], 0))
        groups[device] = (path, [*roots, folder], needed + expected[what])
    spaces = []
    for path, roots, needed in groups.values():
        names = " and ".join(str(root) for root in roots)
        try:
            free = int(shutil.disk_usage(path).free)
        except OSError as error:
            findings.add("warning", path, f"{path}: cannot measure the free space for {names} ({error.strerror or error})")
            continue
        spaces.append(OutputSpace(path=path, outputs=roots, free_bytes=free, expected_bytes=needed))
        if not os.access(path, os.W_OK):
            findings.add("error", path, f"{path}: not writable, so {names} cannot be created there")
        estimate = f"{size_text(free)} free, the outputs ({names}) need about {size_text(needed)} (estimated at {TYPICAL_COMPRESSION_RATIO:g}x compression)"
        if free < needed:
            findings.add("error", path, f"{path}: not enough disk space: {estimate}")
        elif free < FREE_SPACE_MARGIN * needed:
            findings.add("warning", path, f"{path}: little disk space: {estimate}, less than {FREE_SPACE_MARGIN:g}x")
        else:
            findings.add("ok", path, f"{path}: {estimate}")
    return spaces
