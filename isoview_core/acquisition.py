"""Discovery of raw IsoView acquisitions in either folder layout (spec §1.1).

Nested layout (MATLAB "inputType 2")::

    <root>/SPM00/Background_<c>.tif
    <root>/SPM00/TM00000/ch0.xml                (or ch00_spec00.xml)
    <root>/SPM00/TM00000/ANG000/SPC00_TM00000_ANG000_CM0_CHN00_PH0.stack

Flat layout (MATLAB "inputType 3")::

    <root>/Background_<c>.tif
    <root>/ch00_spec00.xml                      (or ch0.xml), shared by every timepoint
    <root>/SPC00_TM00000_ANG000_CM0_CHN00_PH0.stack

Anything else in the tree is ignored.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, PrivateAttr

from isoview_core.errors import LayoutError, MetadataError
from isoview_core.metadata import CameraDimensions, ChannelMetadata, read_channel_xml
from isoview_core.naming import (
    ANGLE_DIR_PATTERN,
    BACKGROUND_PATTERN,
    CHANNEL_XML_PATTERN,
    SPECIMEN_DIR_PATTERN,
    TIMEPOINT_DIR_PATTERN,
    RawStackName,
    angle_dir_name,
    parse_raw_stack_name,
    raw_stack_name,
    specimen_dir_name,
)

logger = logging.getLogger(__name__)

Layout = Literal["nested", "flat"]

_XmlCandidates = dict[int, dict[int | None, Path]]
"""Channel XMLs of a folder: channel → specimen of ``ch<NN>_spec<SS>.xml`` (``None`` for ``ch<N>.xml``) → path."""

_NO_ACQUISITION = "no IsoView acquisition found (expected SPM##/TM#####/ANG###/*.stack or SPC##_TM#####_*.stack)"


class CameraStack(BaseModel):
    """One raw ``.stack`` file with the channel metadata that describes it."""

    model_config = ConfigDict(frozen=True)

    path: Path
    specimen: int
    timepoint: int
    angle: int
    camera: int
    channel: int
    metadata: ChannelMetadata
    dimensions: CameraDimensions
    """``W x H x D`` the channel XML declares for this camera (spec §1.4 selection rule)."""

    @property
    def expected_bytes(self) -> int:
        """File size the XML dimensions imply: ``2 * W * H * D`` (uint16)."""
        return 2 * self.dimensions.width * self.dimensions.height * self.dimensions.depth

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        """Array shape ``(D, H, W)`` the XML declares."""
        return self.dimensions.shape_zyx

    @property
    def xml_name(self) -> str:
        """File name of the channel XML, for messages."""
        return self.metadata.path.name


class UnreadableChannel(BaseModel):
    """A channel of a timepoint whose stacks cannot be processed: its XML is missing or cannot be read."""

    model_config = ConfigDict(frozen=True)

    channel: int
    xml: Path
    """The channel XML that is unreadable, or the one expected when none is on disk."""
    xml_found: bool
    """Whether the XML is on disk (then it is malformed or invalid); else the microscope may still write it."""
    stacks: list[Path]
    """This channel's stacks on disk, left out of :attr:`TimepointFiles.stacks`."""
    cameras: list[int]
    """Cameras of those stacks, sorted."""
    message: str
    """One line naming the XML and the problem, e.g. ``.../TM00001/ch0.xml: malformed XML (...)``."""


class TimepointFiles(BaseModel):
    """The raw files of one timepoint of one specimen."""

    model_config = ConfigDict(frozen=True)

    specimen: int
    timepoint: int
    folder: Path
    """Nested layout: the ``TM#####`` folder; flat layout: the acquisition root."""
    stacks: list[CameraStack]
    """Stacks on disk of the channels whose XML could be read, sorted by (camera, channel, angle)."""
    channel_xmls: dict[int, Path]
    """Channel number → the XML read for it."""
    missing: list[str]
    """Stacks some channel XML declares (through its cameras) that are not on disk."""
    unreadable: list[UnreadableChannel] = []
    """Channels whose XML is missing or cannot be read, by channel: only their own stacks are left out."""


class _StackEntry(NamedTuple):
    """A raw stack found by a listing: its path and the tokens of its name."""

    path: Path
    tokens: RawStackName


class Acquisition(BaseModel):
    """A raw acquisition on disk, discovered by :func:`discover_acquisition`.

    Specimen and timepoint listings are a snapshot taken at discovery; call :meth:`refresh`
    to see what the microscope has written since. In the nested layout :meth:`timepoint`
    always reads its timepoint folder afresh. Parsed channel XMLs are cached per path
    until the next :meth:`refresh`.
    """

    root: Path
    layout: Layout

    _timepoint_folders: dict[int, dict[int, str]] = PrivateAttr(default_factory=dict)
    _flat_stacks: dict[int, dict[int, list[_StackEntry]]] = PrivateAttr(default_factory=dict)
    _flat_xmls: _XmlCandidates = PrivateAttr(default_factory=dict)
    _xml_cache: dict[Path, ChannelMetadata] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: object, /) -> None:
        """Take the first snapshot of the folder."""
        self.refresh()

    def refresh(self) -> None:
        """Re-list the acquisition folder and forget cached channel XMLs.

        Raises
        ------
        LayoutError
            If the root folder no longer exists.
        """
        _require_directory(self.root)
        self._xml_cache.clear()
        if self.layout == "nested":
            self._timepoint_folders = {
                specimen: _timepoint_dirs(self.root / name) for specimen, name in _specimen_dirs(self.root).items()
            }
        else:
            self._flat_stacks, self._flat_xmls = _list_flat(self.root)

    def specimens(self) -> list[int]:
        """Specimen indices, sorted."""
        source = self._timepoint_folders if self.layout == "nested" else self._flat_stacks
        return sorted(source)

    def timepoints(self, specimen: int) -> list[int]:
        """Timepoints of one specimen, sorted.

        Raises
        ------
        LayoutError
            If the specimen is unknown.
        """
        source = self._timepoint_folders if self.layout == "nested" else self._flat_stacks
        if specimen not in source:
            raise LayoutError(f"{self.root}: no specimen {specimen} (specimens: {self.specimens()})")
        return sorted(source[specimen])

    def timepoint_folder(self, specimen: int, timepoint: int) -> Path:
        """Folder of one timepoint's files: the ``TM#####`` folder (nested) or the root (flat).

        Raises
        ------
        LayoutError
            If the specimen or timepoint is unknown.
        """
        if timepoint not in self.timepoints(specimen):
            raise LayoutError(f"{self.root}: specimen {specimen} has no timepoint {timepoint}")
        if self.layout == "flat":
            return self.root
        return self.root / specimen_dir_name(specimen) / self._timepoint_folders[specimen][timepoint]

    def background_path(self, specimen: int, camera: int) -> Path | None:
        """Dark frame ``Background_<camera>.tif`` of one camera, or ``None`` when absent.

        Nested layout: in the ``SPM##`` folder; flat layout: in the root.
        """
        folder = self.root / specimen_dir_name(specimen) if self.layout == "nested" else self.root
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:
            return None
        for entry in entries:
            match = BACKGROUND_PATTERN.match(entry.name)
            if match is not None and int(match["camera"]) == camera:
                return Path(entry.path)
        return None

    def timepoint(self, specimen: int, timepoint: int) -> TimepointFiles:
        """Raw stacks and channel XMLs of one timepoint, with the stacks still missing.

        A channel whose XML is missing (while it has stacks) or cannot be read does not stop the
        others: it is listed in :attr:`TimepointFiles.unreadable` with its stacks.

        Raises
        ------
        LayoutError
            If the specimen or timepoint is unknown.
        """
        folder = self.timepoint_folder(specimen, timepoint)
        entries, channel_xmls, angles = self._list_timepoint(folder, specimen, timepoint)
        by_channel: dict[int, list[_StackEntry]] = {}
        for entry in entries:
            by_channel.setdefault(entry.tokens.channel, []).append(entry)

        metadata: dict[int, ChannelMetadata] = {}
        stacks: list[CameraStack] = []
        unreadable: list[UnreadableChannel] = []
        for channel in sorted(by_channel.keys() | channel_xmls.keys()):
            channel_entries = by_channel.get(channel, [])
            if channel not in channel_xmls:
                unreadable.append(self._missing_xml(folder, specimen, timepoint, channel, channel_entries))
                continue
            xml = channel_xmls[channel]
            try:
                channel_metadata = self._metadata(xml, {entry.tokens.camera for entry in channel_entries})
                stacks += _channel_stacks(channel_metadata, channel_entries, specimen, timepoint)
            except MetadataError as error:
                del channel_xmls[channel]  # not read: not the XML used for the channel
                unreadable.append(_unreadable_channel(channel, xml, channel_entries, str(error), found=True))
                continue
            metadata[channel] = channel_metadata
        stacks.sort(key=lambda stack: (stack.camera, stack.channel, stack.angle))
        present = {(stack.angle, stack.camera, stack.channel) for stack in stacks}
        missing = [
            self._missing_message(folder, specimen, timepoint, angle, camera, channel_metadata)
            for channel, channel_metadata in metadata.items()
            for angle in sorted(angles | {entry.tokens.angle for entry in entries} or {0})
            for camera in channel_metadata.cameras
            if (angle, camera, channel) not in present
        ]
        return TimepointFiles(
            specimen=specimen,
            timepoint=timepoint,
            folder=folder,
            stacks=stacks,
            channel_xmls=channel_xmls,
            missing=missing,
            unreadable=unreadable,
        )

    def _list_timepoint(
        self, folder: Path, specimen: int, timepoint: int
    ) -> tuple[list[_StackEntry], dict[int, Path], set[int]]:
        """Stacks of one timepoint, the XML chosen for each channel, and its ``ANG###`` folders' angles."""
        if self.layout == "nested":
            entries, xml_candidates, angles = _list_nested_timepoint(folder)
            entries = [entry for entry in entries if _belongs(entry, (specimen, timepoint))]
        else:
            entries, xml_candidates, angles = self._flat_stacks[specimen][timepoint], self._flat_xmls, set()
        channel_xmls: dict[int, Path] = {}
        for channel, candidates in sorted(xml_candidates.items()):
            path = _choose_xml(candidates, specimen, any_specimen=self.layout == "nested")
            if path is not None:
                channel_xmls[channel] = path
        return entries, channel_xmls, angles

    def _metadata(self, path: Path, disk_cameras: set[int]) -> ChannelMetadata:
        """Cached channel XML; cameras come from the stacks on disk when the XML names none."""
        if path not in self._xml_cache:
            self._xml_cache[path] = read_channel_xml(path)
        metadata = self._xml_cache[path]
        if not metadata.cameras and disk_cameras:
            return metadata.model_copy(update={"cameras": sorted(disk_cameras)})
        return metadata

    def _missing_xml(
        self, folder: Path, specimen: int, timepoint: int, channel: int, entries: list[_StackEntry]
    ) -> UnreadableChannel:
        """A channel with stacks but no XML, naming the XML it needs, e.g. ``.../TM00003/ch1.xml: channel XML not found``."""
        plain = f"ch{channel}.xml"
        numbered = f"ch{channel:02d}_spec{specimen:02d}.xml"
        expected, alternative = (folder / plain, numbered) if self.layout == "nested" else (folder / numbered, plain)
        message = (
            f"{expected}: channel XML not found (nor {alternative}), "
            f"needed for the CHN{channel:02d} stacks of specimen {specimen} timepoint {timepoint}"
        )
        return _unreadable_channel(channel, expected, entries, message, found=False)

    def _missing_message(
        self, folder: Path, specimen: int, timepoint: int, angle: int, camera: int, metadata: ChannelMetadata
    ) -> str:
        """Describe a stack the XML declares but the disk lacks, relative to the root."""
        name = raw_stack_name(specimen, timepoint, camera, metadata.channel, angle=angle)
        path = folder / angle_dir_name(angle) / name if self.layout == "nested" else folder / name
        return f"{path.relative_to(self.root)}: camera {camera} of {metadata.path.name} not on disk"


def discover_acquisition(root: Path, layout: Literal["auto", "nested", "flat"] = "auto") -> Acquisition:
    """Find the specimens and timepoints of a raw IsoView acquisition.

    Parameters
    ----------
    root : Path
        Acquisition folder, as the microscope writes it.
    layout : {"auto", "nested", "flat"}
        Folder layout; ``"auto"`` picks nested when a ``SPM##/TM#####/ANG###/*.stack`` exists,
        else flat when a ``SPC##_TM#####_*.stack`` sits in the root. A named layout is
        trusted, so an acquisition that has not written a stack yet is accepted.

    Returns
    -------
    Acquisition
        Snapshot of the acquisition; :meth:`Acquisition.refresh` updates it.

    Raises
    ------
    LayoutError
        If the root does not exist, or ``"auto"`` finds neither layout.
    """
    root = Path(root)
    _require_directory(root)
    if layout == "auto":
        if _has_nested_stack(root):
            layout = "nested"
        elif _has_flat_stack(root):
            layout = "flat"
        else:
            raise LayoutError(f"{root}: {_NO_ACQUISITION}")
    logger.debug("%s: %s layout", root, layout)
    return Acquisition(root=root, layout=layout)


def _require_directory(root: Path) -> None:
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


def _specimen_dirs(root: Path) -> dict[int, str]:
    """``SPM##`` folders of a nested acquisition."""
    return _subdirs(root, SPECIMEN_DIR_PATTERN)


def _timepoint_dirs(specimen_folder: Path) -> dict[int, str]:
    """``TM#####`` folders of one specimen."""
    return _subdirs(specimen_folder, TIMEPOINT_DIR_PATTERN)


def _stacks_in(folder: Path) -> list[_StackEntry]:
    """Raw stacks directly in a folder, by name only (no stat)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    found = []
    for entry in entries:
        tokens = parse_raw_stack_name(entry.name)
        if tokens is not None:
            found.append(_StackEntry(Path(entry.path), tokens))
    return found


def _has_nested_stack(root: Path) -> bool:
    """Whether any ``SPM##/TM#####/ANG###/`` folder holds a raw stack (stops at the first)."""
    for specimen_name in _specimen_dirs(root).values():
        for timepoint_name in _timepoint_dirs(root / specimen_name).values():
            timepoint_folder = root / specimen_name / timepoint_name
            for angle_name in _subdirs(timepoint_folder, ANGLE_DIR_PATTERN).values():
                if _stacks_in(timepoint_folder / angle_name):
                    return True
    return False


def _has_flat_stack(root: Path) -> bool:
    """Whether the root holds a raw stack (stops at the first)."""
    with os.scandir(root) as entries:
        return any(parse_raw_stack_name(entry.name) is not None for entry in entries)


def _add_xml(candidates: _XmlCandidates, path: Path) -> None:
    """File a ``ch<N>.xml`` / ``ch<NN>_spec<SS>.xml`` under its channel and specimen (``None``: no specimen)."""
    match = CHANNEL_XML_PATTERN.match(path.name)
    if match is None:
        return
    specimen = None if match["specimen"] is None else int(match["specimen"])
    candidates.setdefault(int(match["channel"]), {}).setdefault(specimen, path)


def _list_flat(root: Path) -> tuple[dict[int, dict[int, list[_StackEntry]]], _XmlCandidates]:
    """One pass over a flat root: stacks by specimen and timepoint, XMLs by channel and specimen."""
    stacks: dict[int, dict[int, list[_StackEntry]]] = {}
    xmls: _XmlCandidates = {}
    with os.scandir(root) as entries:
        names = sorted((entry.name, entry.path) for entry in entries)
    for name, path in names:
        tokens = parse_raw_stack_name(name)
        if tokens is not None:
            stacks.setdefault(tokens.specimen, {}).setdefault(tokens.timepoint, []).append(
                _StackEntry(Path(path), tokens)
            )
        else:
            _add_xml(xmls, Path(path))
    return stacks, xmls


def _list_nested_timepoint(folder: Path) -> tuple[list[_StackEntry], _XmlCandidates, set[int]]:
    """Stacks of every ``ANG###`` folder, channel XMLs, and angle numbers of one ``TM#####`` folder."""
    xmls: _XmlCandidates = {}
    angle_dirs: dict[int, str] = {}
    with os.scandir(folder) as entries:
        listing = sorted((entry.name, entry.is_dir()) for entry in entries)
    for name, is_dir in listing:
        angle_match = ANGLE_DIR_PATTERN.match(name) if is_dir else None
        if angle_match is not None:
            angle_dirs.setdefault(int(angle_match["angle"]), name)
        elif not is_dir:
            _add_xml(xmls, folder / name)
    stacks = [entry for name in angle_dirs.values() for entry in _stacks_in(folder / name)]
    return stacks, xmls, set(angle_dirs)


def _choose_xml(candidates: dict[int | None, Path], specimen: int, *, any_specimen: bool) -> Path | None:
    """XML of a channel for one specimen: ``_spec<SS>`` match, else ``ch<N>.xml``, else (nested) any."""
    if specimen in candidates:
        return candidates[specimen]
    if None in candidates:
        return candidates[None]
    if any_specimen and candidates:
        return candidates[min(key for key in candidates if key is not None)]
    return None


def _belongs(entry: _StackEntry, expected: tuple[int, int]) -> bool:
    """Whether a stack's SPC and TM tokens match its timepoint; strays are skipped with a warning."""
    if (entry.tokens.specimen, entry.tokens.timepoint) == expected:
        return True
    logger.warning("%s: name does not match specimen %d timepoint %d of its folder, skipped", entry.path, *expected)
    return False


def _channel_stacks(
    metadata: ChannelMetadata, entries: list[_StackEntry], specimen: int, timepoint: int
) -> list[CameraStack]:
    """The stacks of one channel with the dimensions its XML declares for each camera.

    Raises
    ------
    MetadataError
        If the XML's ``dimensions`` cannot be matched to a camera.
    """
    processed = _processed_cameras(metadata, {entry.tokens.camera for entry in entries})
    return [
        CameraStack(
            path=entry.path,
            specimen=specimen,
            timepoint=timepoint,
            angle=entry.tokens.angle,
            camera=entry.tokens.camera,
            channel=entry.tokens.channel,
            metadata=metadata,
            dimensions=metadata.dimensions_for_camera(entry.tokens.camera, processed),
        )
        for entry in entries
    ]


def _unreadable_channel(
    channel: int, xml: Path, entries: list[_StackEntry], message: str, *, found: bool
) -> UnreadableChannel:
    """Describe a channel whose XML is missing (``found=False``) or cannot be read, with its stacks on disk."""
    return UnreadableChannel(
        channel=channel,
        xml=xml,
        xml_found=found,
        stacks=sorted(entry.path for entry in entries),
        cameras=sorted({entry.tokens.camera for entry in entries}),
        message=message,
    )


def _processed_cameras(metadata: ChannelMetadata, disk_cameras: set[int]) -> list[int]:
    """Cameras of a channel for the dimensions rule: the XML's, unless the stacks on disk disagree.

    File names outrank the XML (spec §1.4), but a camera missing on disk must not shift the
    others' positions, so the XML list is kept while the disk cameras are a subset of it.
    """
    if disk_cameras <= set(metadata.cameras):
        return list(metadata.cameras)
    return sorted(disk_cameras)
