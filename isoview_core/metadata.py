"""Per-channel acquisition metadata: the ``push_config`` XML the microscope writes (spec §1.4).

One XML per acquisition channel (``ch<N>.xml`` or ``ch<NN>_spec<SS>.xml``): a flat list of
``<info NAME="VALUE"/>`` elements; comma-separated values carry one entry per camera.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, PositiveInt

from isoview_core.errors import MetadataError
from isoview_core.naming import CHANNEL_XML_PATTERN

logger = logging.getLogger(__name__)

DEFAULT_MAGNIFICATION = 16.0
"""Detection magnification assumed when the XML gives none (IsoView: 16x, spec §1.4)."""

DEFAULT_PIXEL_PITCH_UM = 6.5
"""Camera sensor pixel pitch in µm when ``camera_pixel_pitch_um`` is absent (Hamamatsu Orca Flash 4)."""

_XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'
_ATTRIBUTE_ENTITIES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
_OBJECTIVE_MAGNIFICATION = re.compile(r"(\d+(?:\.\d+)?)\s*x", re.IGNORECASE)


class CameraDimensions(BaseModel):
    """Size of one camera's raw stack as the XML declares it (``W x H x D``)."""

    model_config = ConfigDict(frozen=True)

    width: PositiveInt
    height: PositiveInt
    depth: PositiveInt

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        """Array shape ``(depth, height, width)`` of the stack in memory."""
        return (self.depth, self.height, self.width)


class ChannelMetadata(BaseModel):
    """Everything the pipeline uses from one channel XML, plus all its attributes verbatim.

    Per-camera attributes (comma-separated) are reduced to their first entry, except
    ``dimensions``, which keeps one :class:`CameraDimensions` per listed camera.
    """

    model_config = ConfigDict(frozen=True)

    path: Path
    channel: int
    dimensions: list[CameraDimensions]
    cameras: list[int]
    z_step_um: float | None = None
    y_step_um: float | None = None
    stack_direction: str | None = None
    magnification: float = DEFAULT_MAGNIFICATION
    pixel_pitch_um: float = DEFAULT_PIXEL_PITCH_UM
    wavelength_nm: float | None = None
    exposure_ms: float | None = None
    camera_orientation: str | None = None
    timestamp: str | None = None
    time_point: int | None = None
    specimen_name: str | None = None
    stage_position_um: dict[str, float] | None = None
    attributes: dict[str, str]

    @property
    def lateral_pixel_um(self) -> float:
        """Pixel size in the image plane: pitch / magnification (6.5 / 16 = 0.40625 µm)."""
        return self.pixel_pitch_um / self.magnification

    @property
    def axial_step_um(self) -> float:
        """Plane spacing in µm: ``z_step``, else ``y_step``.

        Raises
        ------
        MetadataError
            If the XML has neither.
        """
        step = self.z_step_um if self.z_step_um is not None else self.y_step_um
        if step is None:
            raise MetadataError(f"{self.path}: no z_step or y_step attribute, axial step unknown")
        return step

    @property
    def voxel_size_um(self) -> tuple[float, float, float]:
        """Voxel size ``(z, y, x)`` in µm."""
        lateral = self.lateral_pixel_um
        return (self.axial_step_um, lateral, lateral)

    @property
    def scaling(self) -> float:
        """Axial step over lateral pixel size (2.0 / 0.40625 = 4.923 for the spec example)."""
        return self.axial_step_um / self.lateral_pixel_um

    @property
    def view(self) -> int | None:
        """View angle from ``stack_direction``: 0 for a Z scan, 90 for a Y scan, else ``None``."""
        direction = (self.stack_direction or "").upper()
        if "Z" in direction:
            return 0
        if "Y" in direction:
            return 90
        return None

    def dimensions_for_camera(self, camera: int, processed_cameras: Sequence[int] | None = None) -> CameraDimensions:
        """Select the ``dimensions`` row of one camera with the original pipeline's rule.

        Parameters
        ----------
        camera : int
            Camera id (0-3).
        processed_cameras : Sequence[int], optional
            Cameras being processed for this channel; defaults to :attr:`cameras`.

        Returns
        -------
        CameraDimensions
            ``W x H x D`` of that camera's stack.

        Raises
        ------
        MetadataError
            If the rows match the processed cameras one to one but ``camera`` is not among them.

        Notes
        -----
        Spec §1.4: (1) a single row serves every camera; (2) when the number of rows differs
        from the number of processed cameras, row ``camera`` if it exists (the XML lists all
        cameras), else row 0; (3) when they are equal, the row at the camera's position in
        the processed camera list.
        """
        rows = self.dimensions
        processed = list(self.cameras if processed_cameras is None else processed_cameras)
        if len(rows) == 1:
            return rows[0]
        if len(rows) != len(processed):
            return rows[camera] if camera < len(rows) else rows[0]
        if camera not in processed:
            raise MetadataError(
                f"{self.path}: camera {camera} is not among the processed cameras {processed}, "
                f"cannot choose among its {len(rows)} dimensions entries"
            )
        return rows[processed.index(camera)]


def write_channel_xml(path: Path, attributes: Mapping[str, str]) -> None:
    """Write a per-channel ``push_config`` XML, one ``<info>`` element per attribute.

    Parameters
    ----------
    path : Path
        File to write (``ch0.xml`` or ``ch00_spec00.xml``); its folder must exist.
    attributes : Mapping[str, str]
        Attribute names and values, written in the given order.

    Notes
    -----
    Each attribute gets its own ``<info NAME="VALUE"/>`` element, so ``dimensions`` is the
    first attribute of its element, as the MATLAB reader's line regex requires.
    """
    lines = [_XML_DECLARATION, '<push_config version="1.0">']
    lines += [f'  <info {name}="{_escape_attribute(value)}"/>' for name, value in attributes.items()]
    lines.append("</push_config>")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_channel_xml(path: Path) -> ChannelMetadata:
    """Read a per-channel ``push_config`` XML.

    Parameters
    ----------
    path : Path
        ``ch<N>.xml`` or ``ch<NN>_spec<SS>.xml``; the channel number comes from the name.

    Returns
    -------
    ChannelMetadata
        Parsed metadata; every attribute is also kept verbatim in ``attributes``.

    Raises
    ------
    MetadataError
        If the file is missing or unreadable, its name is not a channel XML name, the XML is
        malformed, ``dimensions`` is missing, or a numeric attribute cannot be parsed.

    Notes
    -----
    Reading is lenient: attributes may come in any order, several per element; when an
    attribute repeats, its first occurrence wins. Empty values count as absent.
    """
    path = Path(path)
    name_match = CHANNEL_XML_PATTERN.match(path.name)
    if name_match is None:
        raise MetadataError(f"{path}: not a channel XML name (expected ch<N>.xml or ch<NN>_spec<SS>.xml)")
    try:
        root = ElementTree.parse(path).getroot()
    except FileNotFoundError:
        raise MetadataError(f"{path}: channel XML not found") from None
    except ElementTree.ParseError as error:
        raise MetadataError(f"{path}: malformed XML ({error})") from None
    except OSError as error:
        raise MetadataError(f"{path}: cannot read ({error.strerror or error})") from None

    attributes: dict[str, str] = {}
    for element in root.iterfind(".//*"):
        for key, value in element.attrib.items():
            attributes.setdefault(key, value)
    present = {key: value.strip() for key, value in attributes.items() if value.strip()}

    if "dimensions" not in present:
        raise MetadataError(f"{path}: no 'dimensions' attribute (expected e.g. dimensions=\"2048x2048x543\")")
    magnification = _magnification(path, present)
    pixel_pitch_um = _first_float(path, present, "camera_pixel_pitch_um")
    if pixel_pitch_um is None:
        pixel_pitch_um = DEFAULT_PIXEL_PITCH_UM
    if magnification <= 0 or pixel_pitch_um <= 0:
        raise MetadataError(
            f"{path}: magnification {magnification:g} and pixel pitch {pixel_pitch_um:g} µm must both be > 0"
        )
    stack_direction = present.get("stack_direction")
    return ChannelMetadata(
        path=path,
        channel=int(name_match["channel"]),
        dimensions=_parse_dimensions(path, present["dimensions"]),
        cameras=_cameras(present.get("camera"), stack_direction),
        z_step_um=_first_float(path, present, "z_step"),
        y_step_um=_first_float(path, present, "y_step"),
        stack_direction=stack_direction,
        magnification=magnification,
        pixel_pitch_um=pixel_pitch_um,
        wavelength_nm=_first_float(path, present, "wavelength"),
        exposure_ms=_first_float(path, present, "exposure_time"),
        camera_orientation=_first_entry(present.get("camera_orientation")),
        timestamp=present.get("timestamp"),
        time_point=_time_point(path, present.get("time_point")),
        specimen_name=present.get("specimen_name"),
        stage_position_um=_stage_position(path, present.get("specimen_XYZT")),
        attributes=attributes,
    )


def _escape_attribute(value: str) -> str:
    """Escape a value for a double-quoted XML attribute, keeping whitespace characters intact."""
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for character, entity in _ATTRIBUTE_ENTITIES.items():
        text = text.replace(character, entity)
    return text


def _first_entry(value: str | None) -> str | None:
    """First comma-separated entry of a per-camera attribute, stripped; ``None`` when empty."""
    if value is None:
        return None
    return value.split(",")[0].strip() or None


def _first_float(path: Path, attributes: Mapping[str, str], key: str) -> float | None:
    """First entry of a numeric attribute as a float; ``None`` when absent."""
    entry = _first_entry(attributes.get(key))
    if entry is None:
        return None
    try:
        return float(entry)
    except ValueError:
        raise MetadataError(f"{path}: {key}={attributes[key]!r} is not a number") from None


def _parse_dimensions(path: Path, text: str) -> list[CameraDimensions]:
    """``"2048x752x79,2048x752x79"`` → one :class:`CameraDimensions` per camera (spec §1.4)."""
    numbers = [int(token) for token in re.findall(r"\d+", text)]
    if not numbers or len(numbers) % 3 or 0 in numbers:
        raise MetadataError(f"{path}: dimensions={text!r} is not a list of positive WxHxD entries")
    rows = (numbers[start : start + 3] for start in range(0, len(numbers), 3))
    return [CameraDimensions(width=width, height=height, depth=depth) for width, height, depth in rows]


def _cameras(camera: str | None, stack_direction: str | None) -> list[int]:
    """Cameras of the channel: digits of ``camera``, else implied by ``stack_direction``."""
    if camera is not None and re.search(r"\d", camera):
        return [int(digit) for digit in re.findall(r"\d", camera)]
    direction = (stack_direction or "").upper()
    if "Z" in direction:
        return [0, 1]
    if "Y" in direction:
        return [2, 3]
    return []


def _magnification(path: Path, attributes: Mapping[str, str]) -> float:
    """``magnification`` first entry, else the first ``<number>x`` of the objective's first entry."""
    value = _first_float(path, attributes, "magnification")
    if value is not None:
        return value
    objective = _first_entry(attributes.get("detection_objective"))
    match = _OBJECTIVE_MAGNIFICATION.search(objective or "")
    if match is not None:
        return float(match[1])
    logger.warning("%s: no magnification in the XML, assuming %gx", path, DEFAULT_MAGNIFICATION)
    return DEFAULT_MAGNIFICATION


def _time_point(path: Path, value: str | None) -> int | None:
    """``time_point`` attribute as an integer."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise MetadataError(f"{path}: time_point={value!r} is not an integer") from None


def _stage_position(path: Path, value: str | None) -> dict[str, float] | None:
    """``"X=1130.000_Y=1045.000_Z=-205.000_T=-1.0"`` → ``{"X": 1130.0, ...}`` (µm)."""
    if value is None:
        return None
    position: dict[str, float] = {}
    for item in value.split("_"):
        axis, _, number = (part.strip() for part in item.partition("="))
        try:
            position[axis] = float(number)
        except ValueError:
            axis = ""
        if not axis:
            raise MetadataError(f"{path}: specimen_XYZT={value!r} is not of the form X=<µm>_Y=<µm>_Z=<µm>_T=<s>")
    return position
