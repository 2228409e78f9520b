"""Folder listings of a raw acquisition, by name only (no stat): numbered folders, stacks, channel XMLs, strays.

Discovery (:mod:`.discovery`) builds on these listings; what they find outside the layout
(:class:`UnexpectedEntry`) is what ``isoview doctor`` reports, so the tree is listed once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from isoview_core.errors import LayoutError
from isoview_core.naming import (
    ANGLE_DIR_PATTERN,
    BACKGROUND_PATTERN,
    CHANNEL_XML_PATTERN,
    SPECIMEN_DIR_PATTERN,
    TIMEPOINT_DIR_PATTERN,
    RawStackName,
    parse_raw_stack_name,
)

__all__ = [
    "StackEntry",
    "UnexpectedEntry",
    "XmlCandidates",
    "has_flat_stack",
    "has_nested_stack",
    "list_flat",
    "list_nested",
    "list_nested_timepoint",
    "require_directory",
]

XmlCandidates = dict[int, dict[int | None, Path]]
"""Channel XMLs of a folder: channel → specimen of ``ch<NN>_spec<SS>.xml`` (``None`` for ``ch<N>.xml``) → path."""

_IGNORED_NAMES = frozenset({"Thumbs.db", "desktop.ini"})
"""Files operating systems leave in folders; hidden names (``.DS_Store``...) are ignored too."""

_EXPECTED_IN_ROOT = {"nested": "SPM## specimen folders", "flat": "raw stacks, channel XMLs and Background_<k>.tif"}
_EXPECTED_IN_SPECIMEN = "TM##### timepoint folders and Background_<k>.tif"
_EXPECTED_IN_TIMEPOINT = "channel XMLs and ANG### folders"
_EXPECTED_IN_ANGLE = "SPC##_TM#####_ANG###_CM#_CHN##_PH#.stack"


class UnexpectedEntry(BaseModel):
    """A folder or file of the acquisition tree that the layout does not account for (the run ignores it)."""

    model_config = ConfigDict(frozen=True)

    path: Path
    problem: Literal["unexpected", "duplicate", "misnamed", "unlistable"]
    """``unexpected``: not part of the layout; ``duplicate``: a second ``TM#####`` folder with the
    number of the one used; ``misnamed``: a raw stack named for another specimen or timepoint than
    its folder's; ``unlistable``: a folder that cannot be listed (its contents are not seen)."""
    message: str
    """One line naming the path and the problem, e.g. ``.../TM00001/notes.txt: unexpected file (...)``."""


class StackEntry(NamedTuple):
    """A raw stack found by a listing: its path and the tokens of its name."""

    path: Path
    tokens: RawStackName


def list_nested(root: Path) -> tuple[dict[int, dict[int, str]], dict[int | None, list[UnexpectedEntry]]]:
    """``TM#####`` folder names of every ``SPM##`` folder, and the strays of the root and of each ``SPM##`` folder.

    Returns
    -------
    timepoint_folders : dict
        specimen → timepoint → folder name (the first name in sorted order for each number).
    unexpected : dict
        ``None`` (the root: folders other than ``SPM##``) or a specimen (folders other than the
        ``TM#####`` ones used, files other than ``Background_<k>.tif``) → entries in name order.
    """
    specimens, root_entries = _list_folder(root, SPECIMEN_DIR_PATTERN, None, _EXPECTED_IN_ROOT["nested"])
    unexpected: dict[int | None, list[UnexpectedEntry]] = {None: root_entries}
    timepoint_folders: dict[int, dict[int, str]] = {}
    for specimen, name in specimens.items():
        timepoint_folders[specimen], unexpected[specimen] = _list_folder(
            root / name, TIMEPOINT_DIR_PATTERN, BACKGROUND_PATTERN, _EXPECTED_IN_SPECIMEN
        )
    return timepoint_folders, unexpected


def require_directory(root: Path) -> None:
    """Raise :class:`LayoutError` unless ``root`` is an existing folder."""
    if not root.is_dir():
        problem = "not a folder" if root.exists() else "acquisition folder does not exist"
        raise LayoutError(f"{root}: {problem}")


def _subdirs(folder: Path, pattern: re.Pattern[str]) -> dict[int, str]:
    """Sub-folder names matching a naming pattern, keyed by their number (first name wins)."""
    found: dict[int, str] = {}
    try:
        names = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
    except OSError:
        return found
    for name in names:
        match = pattern.match(name)
        if match is not None:
            found.setdefault(int(match[1]), name)
    return found


def _ignored(name: str) -> bool:
    """Hidden files and the operating systems' folder clutter (neither used nor listed as unexpected)."""
    return name.startswith(".") or name in _IGNORED_NAMES


def _unexpected_folder(path: Path, expected: str) -> UnexpectedEntry:
    message = f"{path}: folder is not part of the IsoView layout (expected {expected}); it is ignored"
    return UnexpectedEntry(path=path, problem="unexpected", message=message)


def _unexpected_file(path: Path, expected: str) -> UnexpectedEntry:
    return UnexpectedEntry(path=path, problem="unexpected", message=f"{path}: unexpected file (expected {expected}); it is ignored")


def _unlistable(folder: Path, error: OSError) -> UnexpectedEntry:
    message = f"{folder}: cannot list the folder ({error.strerror or error})"
    return UnexpectedEntry(path=folder, problem="unlistable", message=message)


def _list_folder(
    folder: Path, dir_pattern: re.Pattern[str], file_pattern: re.Pattern[str] | None, expected: str
) -> tuple[dict[int, str], list[UnexpectedEntry]]:
    """Numbered sub-folders (first name wins) and the other entries, in name order.

    Files are listed unless they match ``file_pattern`` (``None``: no file is listed).
    """
    found: dict[int, str] = {}
    unexpected: list[UnexpectedEntry] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as error:
        return found, [_unlistable(folder, error)]
    for entry in entries:
        if _ignored(entry.name):
            continue
        path = Path(entry.path)
        if entry.is_dir():
            match = dir_pattern.match(entry.name)
            if match is None:
                unexpected.append(_unexpected_folder(path, expected))
            elif int(match[1]) in found:
                message = f"{path}: another folder with the same number is used; this one is ignored"
                unexpected.append(UnexpectedEntry(path=path, problem="duplicate", message=message))
            else:
                found[int(match[1])] = entry.name
        elif file_pattern is not None and file_pattern.match(entry.name) is None:
            unexpected.append(_unexpected_file(path, expected))
    return found, unexpected


def _specimen_dirs(root: Path) -> dict[int, str]:
    """``SPM##`` folders of a nested acquisition."""
    return _subdirs(root, SPECIMEN_DIR_PATTERN)


def _timepoint_dirs(specimen_folder: Path) -> dict[int, str]:
    """``TM#####`` folders of one specimen."""
    return _subdirs(specimen_folder, TIMEPOINT_DIR_PATTERN)


def _stacks_in(folder: Path) -> list[StackEntry]:
    """Raw stacks directly in a folder, by name only (no stat)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    return _stack_entries(entries)


def _stack_entries(entries: Iterable[os.DirEntry[str]]) -> list[StackEntry]:
    """The entries named like raw stacks, in the listing's order."""
    found = []
    for entry in entries:
        tokens = parse_raw_stack_name(entry.name)
        if tokens is not None:
            found.append(StackEntry(Path(entry.path), tokens))
    return found


def _list_angle(folder: Path, owner: tuple[int, int]) -> tuple[list[StackEntry], list[UnexpectedEntry]]:
    """Raw stacks of an ``ANG###`` folder (by name, no stat) and, in name order, what else it holds.

    A stack named for another (specimen, timepoint) than ``owner`` is listed as ``misnamed`` (the
    caller drops it from the stacks).
    """
    try:
        entries = list(os.scandir(folder))
    except OSError as error:
        return [], [_unlistable(folder, error)]
    unexpected = []
    for entry in sorted(entries, key=lambda entry: entry.name):
        if _ignored(entry.name):
            continue
        path = Path(entry.path)
        tokens = None if entry.is_dir() else parse_raw_stack_name(entry.name)
        if tokens is None:
            kind = "folder" if entry.is_dir() else "file"
            message = f"{path}: unexpected {kind} (expected {_EXPECTED_IN_ANGLE}); it is ignored"
            unexpected.append(UnexpectedEntry(path=path, problem="unexpected", message=message))
        elif (tokens.specimen, tokens.timepoint) != owner:
            message = f"{path}: name does not match specimen {owner[0]} timepoint {owner[1]} of its folder; it is ignored"
            unexpected.append(UnexpectedEntry(path=path, problem="misnamed", message=message))
    return _stack_entries(entries), unexpected


def has_nested_stack(root: Path) -> bool:
    """Whether any ``SPM##/TM#####/ANG###/`` folder holds a raw stack (stops at the first)."""
    for specimen_name in _specimen_dirs(root).values():
        for timepoint_name in _timepoint_dirs(root / specimen_name).values():
            timepoint_folder = root / specimen_name / timepoint_name
            for angle_name in _subdirs(timepoint_folder, ANGLE_DIR_PATTERN).values():
                if _stacks_in(timepoint_folder / angle_name):
                    return True
    return False


def has_flat_stack(root: Path) -> bool:
    """Whether the root holds a raw stack (stops at the first)."""
    with os.scandir(root) as entries:
        return any(parse_raw_stack_name(entry.name) is not None for entry in entries)


def _add_xml(candidates: XmlCandidates, path: Path) -> None:
    """File a ``ch<N>.xml`` / ``ch<NN>_spec<SS>.xml`` under its channel and specimen (``None``: no specimen)."""
    match = CHANNEL_XML_PATTERN.match(path.name)
    if match is None:
        return
    specimen = None if match["specimen"] is None else int(match["specimen"])
    candidates.setdefault(int(match["channel"]), {}).setdefault(specimen, path)


def list_flat(root: Path) -> tuple[dict[int, dict[int, list[StackEntry]]], XmlCandidates, list[UnexpectedEntry]]:
    """One pass over a flat root: stacks by specimen and timepoint, XMLs by channel and specimen, and folders."""
    stacks: dict[int, dict[int, list[StackEntry]]] = {}
    xmls: XmlCandidates = {}
    with os.scandir(root) as entries:
        names = sorted((entry.name, entry.path, entry.is_dir()) for entry in entries)
    unexpected = [
        _unexpected_folder(Path(path), _EXPECTED_IN_ROOT["flat"]) for name, path, is_dir in names if is_dir and not _ignored(name)
    ]
    for name, path, _ in names:
        tokens = parse_raw_stack_name(name)
        if tokens is not None:
            stacks.setdefault(tokens.specimen, {}).setdefault(tokens.timepoint, []).append(
                StackEntry(Path(path), tokens)
            )
        else:
            _add_xml(xmls, Path(path))
    return stacks, xmls, unexpected


def list_nested_timepoint(
    folder: Path, owner: tuple[int, int]
) -> tuple[list[StackEntry], XmlCandidates, set[int], list[UnexpectedEntry]]:
    """Stacks of every ``ANG###`` folder, channel XMLs, angle numbers and strays of one ``TM#####`` folder."""
    xmls: XmlCandidates = {}
    angle_dirs: dict[int, str] = {}
    unexpected: list[UnexpectedEntry] = []
    with os.scandir(folder) as entries:
        listing = sorted((entry.name, entry.is_dir()) for entry in entries)
    for name, is_dir in listing:
        angle_match = ANGLE_DIR_PATTERN.match(name) if is_dir else None
        if angle_match is not None:
            angle_dirs.setdefault(int(angle_match["angle"]), name)
        elif not is_dir:
            _add_xml(xmls, folder / name)
        if angle_match is None and not _ignored(name):
            if is_dir:
                unexpected.append(_unexpected_folder(folder / name, _EXPECTED_IN_TIMEPOINT))
            elif CHANNEL_XML_PATTERN.match(name) is None:
                unexpected.append(_unexpected_file(folder / name, _EXPECTED_IN_TIMEPOINT))
    stacks: list[StackEntry] = []
    for name in angle_dirs.values():
        angle_stacks, angle_unexpected = _list_angle(folder / name, owner)
        stacks += angle_stacks
        unexpected += angle_unexpected
    return stacks, xmls, set(angle_dirs), unexpected
