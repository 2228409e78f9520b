"""OME-Zarr (OME-NGFF 0.5 on Zarr v3) volumes: typed metadata, a streaming atomic writer, lazy and fast readers.

Modules: :mod:`.metadata` (NGFF models in and out of ``zarr.json``), :mod:`.pyramid` (2x2 reductions),
:mod:`.writer` (:class:`OmeZarrWriter`, :func:`write_ome_zarr`), :mod:`.reader` (the ``read_*`` functions).
"""

from __future__ import annotations

from isoview_core.formats.omezarr.metadata import ATTRIBUTES_KEY, NGFF_VERSION
from isoview_core.formats.omezarr.reader import (
    ome_zarr_voxel_size,
    read_ome_zarr,
    read_ome_zarr_attributes,
    read_ome_zarr_labels,
    read_ome_zarr_planes,
)
from isoview_core.formats.omezarr.writer import OmeZarrWriter, write_ome_zarr

__all__ = [
    "ATTRIBUTES_KEY",
    "NGFF_VERSION",
    "OmeZarrWriter",
    "ome_zarr_voxel_size",
    "read_ome_zarr",
    "read_ome_zarr_attributes",
    "read_ome_zarr_labels",
    "read_ome_zarr_planes",
    "write_ome_zarr",
]
