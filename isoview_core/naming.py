"""File and folder names of raw IsoView acquisitions, for discovery (the outputs' names are in ``layout.py``).

Raw stacks: ``SPC<ss>_TM<ttttt>_ANG<aaa>_CM<c>_CHN<hh>_PH<p>.stack`` (5-digit TM, 1-digit CM).
"""

from __future__ import annotations

import re
from typing import NamedTuple

RAW_STACK_PATTERN = re.compile(
    r"^SPC(?P<specimen>\d{2})_TM(?P<timepoint>\d+)_ANG(?P<angle>\d{3})"
    r"_CM(?P<camera>\d)_CHN(?P<channel>\d{2})_PH(?P<phase>\d)\.stack$"
)
SPECIMEN_DIR_PATTERN = re.compile(r"^SPM(?P<specimen>\d{2})$")
TIMEPOINT_DIR_PATTERN = re.compile(r"^TM(?P<timepoint>\d+)$")
ANGLE_DIR_PATTERN = re.compile(r"^ANG(?P<angle>\d{3})$")
CHANNEL_XML_PATTERN = re.compile(r"^ch(?P<channel>\d+)(?:_spec(?P<specimen>\d+))?\.xml$")
BACKGROUND_PATTERN = re.compile(r"^Background_(?P<camera>\d+)\.tif{1,2}$")


class RawStackName(NamedTuple):
    """The tokens of a raw stack file name."""

    specimen: int
    timepoint: int
    angle: int
    camera: int
    channel: int
    phase: int


def parse_raw_stack_name(name: str) -> RawStackName | None:
    """Parse a raw ``.stack`` file name; ``None`` when it is not one."""
    match = RAW_STACK_PATTERN.match(name)
    if match is None:
        return None
    return RawStackName(**{key: int(value) for key, value in match.groupdict().items()})


def raw_stack_name(specimen: int, timepoint: int, camera: int, channel: int, angle: int = 0, phase: int = 0) -> str:
    """Name the microscope gives a raw stack, e.g. ``SPC00_TM00012_ANG000_CM1_CHN00_PH0.stack``."""
    return f"SPC{specimen:02d}_TM{timepoint:05d}_ANG{angle:03d}_CM{camera}_CHN{channel:02d}_PH{phase}.stack"


def specimen_dir_name(specimen: int) -> str:
    """``SPM00``: specimen folder, raw and output."""
    return f"SPM{specimen:02d}"


def raw_timepoint_dir_name(timepoint: int) -> str:
    """``TM00012``: timepoint folder of the nested raw layout (5 digits)."""
    return f"TM{timepoint:05d}"


def angle_dir_name(angle: int) -> str:
    """``ANG000``: angle folder of the nested raw layout."""
    return f"ANG{angle:03d}"


def channel_xml_name(channel: int) -> str:
    """``ch0.xml``: per-channel XML inside a nested-layout timepoint folder."""
    return f"ch{channel}.xml"


def background_name(camera: int) -> str:
    """``Background_2.tif``: dark frame of one camera."""
    return f"Background_{camera}.tif"
