"""Readers of OME-Zarr 0.5 images: levels and label images lazily, plane ranges fast, metadata and voxel sizes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype

from isoview_core.errors import FormatError
from isoview_core.formats.omezarr.metadata import (
    ATTRIBUTES_KEY,
    label_names,
    level_dataset,
    level_scale,
    open_image,
)
from isoview_core.formats.shards import PlaneShardReader

__all__ = [
    "ome_zarr_voxel_size",
    "read_ome_zarr",
    "read_ome_zarr_attributes",
    "read_ome_zarr_labels",
    "read_ome_zarr_planes",
]


def read_ome_zarr_planes(
    path: str | os.PathLike[str], start: int, stop: int, *, level: int = 0, out: np.ndarray | None = None
) -> np.ndarray:
    """Planes ``[start, stop)`` of an OME-Zarr level as a numpy array (``out`` when given).

    Volumes in the layout this module writes are read straight from their shard files
    (several times faster than through zarr); anything else goes through zarr. A reused ``out``
    buffer saves the allocation (and the page faults) of a new array per call: the planes are
    decoded into it, through no intermediate array of the whole range.
    """
    array_dir = Path(path) / str(level)
    reader = PlaneShardReader.for_array(array_dir)
    if reader is not None:
        return reader.read(start, stop, out=out)
    array = read_ome_zarr(path, level)
    if out is None:
        return np.asarray(array[start:stop])
    array.get_basic_selection(slice(start, stop), out=default_buffer_prototype().nd_buffer.from_numpy_array(out))
    return out


def read_ome_zarr(path: str | os.PathLike[str], level: int = 0) -> zarr.Array[Any]:
    """Open one resolution level of an OME-Zarr image, lazily.

    Parameters
    ----------
    path : str or os.PathLike
        OME-Zarr image folder.
    level : int, optional
        Pyramid level (0 = full resolution).

    Returns
    -------
    zarr.Array
        Read-only ``(z, y, x)`` array; slicing it reads only the chunks needed.

    Raises
    ------
    FormatError
        Missing or not an OME-Zarr image, or no such level.
    """
    root = Path(path)
    group, multiscale = open_image(root)
    node = group[level_dataset(root, multiscale, level).path]
    if not isinstance(node, zarr.Array):
        raise FormatError(f"{root}: level {level} is not an array")
    return node


def read_ome_zarr_labels(
    path: str | os.PathLike[str], name: str = "segmentation", *, level: int = 0
) -> zarr.Array[Any]:
    """Open a label image stored with an OME-Zarr image, lazily.

    Parameters
    ----------
    path : str or os.PathLike
        OME-Zarr image folder.
    name : str, optional
        Label image name, as listed in ``labels/zarr.json``.
    level : int, optional
        Pyramid level (0 = full resolution).

    Returns
    -------
    zarr.Array
        Read-only ``(z, y, x)`` ``uint8`` array.

    Raises
    ------
    FormatError
        No such label image or level.
    """
    root = Path(path)
    listed = label_names(root)
    if name not in listed:
        raise FormatError(f"{root}: no label image {name!r} (found: {', '.join(listed) or 'none'})")
    return read_ome_zarr(root / "labels" / name, level)


def read_ome_zarr_attributes(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Acquisition metadata stored by :class:`~isoview_core.formats.omezarr.OmeZarrWriter` (``attrs["isoview"]``).

    Parameters
    ----------
    path : str or os.PathLike
        OME-Zarr image folder.

    Returns
    -------
    dict
        The `attributes` given to the writer, as JSON values; empty if none.
    """
    group, _ = open_image(Path(path))
    return dict(group.attrs.get(ATTRIBUTES_KEY, {}))


def ome_zarr_voxel_size(path: str | os.PathLike[str], level: int = 0) -> tuple[float, float, float]:
    """Voxel size ``(z, y, x)`` in micrometers of one level of an OME-Zarr image.

    Parameters
    ----------
    path : str or os.PathLike
        OME-Zarr image folder.
    level : int, optional
        Pyramid level.

    Returns
    -------
    tuple of float
        The level's ``scale`` transform, times the multiscale-wide one if present.
    """
    root = Path(path)
    _, multiscale = open_image(root)
    return level_scale(root, multiscale, level)
