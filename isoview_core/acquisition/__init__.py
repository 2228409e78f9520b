"""Discovery of raw IsoView acquisitions in either folder layout (spec §1.1).

Nested layout (MATLAB "inputType 2")::

    <root>/SPM00/Background_<c>.tif
    <root>/SPM00/TM00000/ch0.xml                (or ch00_spec00.xml)
    <root>/SPM00/TM00000/ANG000/SPC00_TM00000_ANG000_CM0_CHN00_PH0.stack

Flat layout (MATLAB "inputType 3")::

    <root>/Background_<c>.tif
    <root>/ch00_spec00.xml                      (or ch0.xml), shared by every timepoint
    <root>/SPC00_TM00000_ANG000_CM0_CHN00_PH0.stack

Anything else in the tree is ignored by the run, and listed (:class:`UnexpectedEntry`) for the
checks of ``isoview doctor``, from the same listings.

Modules: :mod:`.discovery` (:func:`discover_acquisition`, the :class:`Acquisition` snapshot and
the files of a timepoint), :mod:`.listing` (the folder listings it builds on).
"""

from isoview_core.acquisition.discovery import (
    Acquisition,
    CameraStack,
    Layout,
    TimepointFiles,
    UnreadableChannel,
    discover_acquisition,
)
from isoview_core.acquisition.listing import UnexpectedEntry

__all__ = [
    "Acquisition",
    "CameraStack",
    "Layout",
    "TimepointFiles",
    "UnexpectedEntry",
    "UnreadableChannel",
    "discover_acquisition",
]
