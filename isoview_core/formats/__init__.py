"""Volume file formats: raw ``.stack`` input, KLB, OME-TIFF and OME-Zarr, behind one dispatch pair (:mod:`.volumes`).

:func:`read_volume` and :func:`write_volume` choose the format from the file name. Every writer publishes
its output atomically and durably (:mod:`.atomic`). Importing this package registers the lossless JPEG-LS
zarr codec (:mod:`.jpegls`, through :mod:`.codecs`).
"""

from __future__ import annotations

from isoview_core.formats.atomic import is_complete, remove_stale_partials
from isoview_core.formats.codecs import CodecConfig
from isoview_core.formats.omezarr import OmeZarrWriter
from isoview_core.formats.stack import StackFile
from isoview_core.formats.volumes import read_volume, volume_format, write_volume

__all__ = [
    "CodecConfig",
    "OmeZarrWriter",
    "StackFile",
    "is_complete",
    "read_volume",
    "remove_stale_partials",
    "volume_format",
    "write_volume",
]
