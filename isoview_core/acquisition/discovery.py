"""Discovery of a raw acquisition: its specimens, timepoints, stacks and channel XMLs, in either layout (spec §1.1)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, PrivateAttr

from isoview_core.acquisition.listing import (
    StackEntry,
    UnexpectedEntry,
    XmlCandidates,
    has_flat_stack,
    has_nested_stack,
    list_flat,
    list_nested,
    list_nested_timepoint,
    require_directory,
)
from isoview_core.errors import LayoutError, MetadataError
from isoview_core.metadata import CameraDimensions, ChannelMetadata, read_channel_xml
from isoview_core.naming import (
    BACKGROUND_PATTERN,
    angle_dir_name,
    raw_stack_name,
    specimen_dir_name,
)

__all__ = ["Acquisition", "CameraStack", "Layout", "TimepointFiles", "UnreadableChannel", "discover_acquisition"]

logger = logging.getLogger(__name__)

Layout = Literal["nested", "flat"]

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
    unexpected: list[UnexpectedEntry] = []
    """Nested layout: what the ``TM#####`` folder and then each ``ANG###`` folder hold besides the
    layout's files, in name order (flat layout: none; :meth:`Acquisition.unexpected` lists the root)."""


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
    _unexpected: dict[int | None, list[UnexpectedEntry]] = PrivateAttr(default_factory=dict)
    _flat_stacks: dict[int, dict[int, list[StackEntry]]] = PrivateAttr(default_factory=dict)
    _flat_xmls: XmlCandidates = PrivateAttr(default_factory=dict)
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
        require_directory(self.root)
        self._xml_cache.clear()
        if self.layout == "nested":
            self._timepoint_folders, self._unexpected = list_nested(self.root)
        else:
            self._flat_stacks, self._flat_xmls, root_entries = list_flat(self.root)
            self._unexpected = {None: root_entries}

    def specimens(self) -> list[int]:
        """Specimen indices, sorted."""
        source = self._timepoint_folders if self.layout == "nested" else self._flat_stacks
        return sorted(source)

    def unexpected(self, specimen: int | None = None) -> list[UnexpectedEntry]:
        """What the root (``specimen=None``) or a ``SPM##`` folder holds besides the layout, in name order.

        Root: folders other than ``SPM##`` (nested) or any folder (flat); files are not listed.
        ``SPM##`` folder: folders other than the ``TM#####`` ones used (a second folder with the
        same number is a ``duplicate``) and files other than ``Background_<k>.tif``. A snapshot of
        :meth:`refresh`; a timepoint's folders are in :attr:`TimepointFiles.unexpected`.
        """
        return list(self._unexpected.get(specimen, []))

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
        entries, channel_xmls, angles, unexpected = self._list_timepoint(folder, specimen, timepoint)
        by_channel: dict[int, list[StackEntry]] = {}
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
            unexpected=unexpected,
        )

    def _list_timepoint(
        self, folder: Path, specimen: int, timepoint: int
    ) -> tuple[list[StackEntry], dict[int, Path], set[int], list[UnexpectedEntry]]:
        """Stacks of one timepoint, the XML chosen for each channel, its ``ANG###`` folders' angles, and strays."""
        if self.layout == "nested":
            entries, xml_candidates, angles, unexpected = list_nested_timepoint(folder, (specimen, timepoint))
            entries = [entry for entry in entries if _belongs(entry, (specimen, timepoint))]
        else:
            entries, xml_candidates, angles, unexpected = self._flat_stacks[specimen][timepoint], self._flat_xmls, set(), []
        channel_xmls: dict[int, Path] = {}
        for channel, candidates in sorted(xml_candidates.items()):
            path = _choose_xml(candidates, specimen, any_specimen=self.layout == "nested")
            if path is not None:
                channel_xmls[channel] = path
        return entries, channel_xmls, angles, unexpected

    def _metadata(self, path: Path, disk_cameras: set[int]) -> ChannelMetadata:
        """Cached channel XML; cameras come from the stacks on disk when the XML names none."""
        if path not in self._xml_cache:
            self._xml_cache[path] = read_channel_xml(path)
        metadata = self._xml_cache[path]
        if not metadata.cameras and disk_cameras:
            return metadata.model_copy(update={"cameras": sorted(disk_cameras)})
        return metadata

    def _missing_xml(
        self, folder: Path, specimen: int, timepoint: int, channel: int, entries: list[StackEntry]
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
    require_directory(root)
    if layout == "auto":
        if has_nested_stack(root):
            layout = "nested"
        elif has_flat_stack(root):
            layout = "flat"
        else:
            raise LayoutError(f"{root}: {_NO_ACQUISITION}")
    logger.debug("%s: %s layout", root, layout)
    return Acquisition(root=root, layout=layout)


def _choose_xml(candidates: dict[int | None, Path], specimen: int, *, any_specimen: bool) -> Path | None:
    """XML of a channel for one specimen: ``_spec<SS>`` match, else ``ch<N>.xml``, else (nested) any."""
    if specimen in candidates:
        return candidates[specimen]
    if None in candidates:
        return candidates[None]
    if any_specimen and candidates:
        return candidates[min(key for key in candidates if key is not None)]
    return None


def _belongs(entry: StackEntry, expected: tuple[int, int]) -> bool:
    """Whether a stack's SPC and TM tokens match its timepoint; strays are skipped with a warning."""
    if (entry.tokens.specimen, entry.tokens.timepoint) == expected:
        return True
    logger.warning("%s: name does not match specimen %d timepoint %d of its folder, skipped", entry.path, *expected)
    return False


def _channel_stacks(
    metadata: ChannelMetadata, entries: list[StackEntry], specimen: int, timepoint: int
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
    channel: int, xml: Path, entries: list[StackEntry], message: str, *, found: bool
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
