"""Volume dispatch: the reader and writer of a volume chosen from its file name (``.stack``, KLB, TIFF, OME-Zarr).

Every writer publishes its output atomically: the final path exists if and only if the output is complete
(:func:`~isoview_core.formats.atomic.is_complete`); and, unless fsync is turned off for a scratch run,
durably: a published output survives a power cut (see :mod:`isoview_core.formats.atomic`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import zarr

from isoview_core.errors import FormatError
from isoview_core.formats.codecs import CodecConfig
from isoview_core.formats.klb import read_klb, write_klb
from isoview_core.formats.omezarr import read_ome_zarr, write_ome_zarr
from isoview_core.formats.stack import StackFile
from isoview_core.formats.tiff import read_tiff, write_tiff

__all__ = ["VolumeFormat", "read_volume", "volume_format", "write_volume"]

logger = logging.getLogger(__name__)

VolumeFormat = Literal["stack", "klb", "tiff", "zarr"]

# Longest suffixes first, so ".ome.tif" is not mistaken for something else.
_SUFFIXES: tuple[tuple[str, VolumeFormat], ...] = (
    (".ome.zarr", "zarr"),
    (".ome.tiff", "tiff"),
    (".ome.tif", "tiff"),
    (".zarr", "zarr"),
    (".tiff", "tiff"),
    (".tif", "tiff"),
    (".klb", "klb"),
    (".stack", "stack"),
)


def volume_format(path: str | os.PathLike[str]) -> VolumeFormat:
    """Format of a volume file, from its name.

    Parameters
    ----------
    path : str or os.PathLike
        Volume file or folder name (case-insensitive suffix).

    Returns
    -------
    {"stack", "klb", "tiff", "zarr"}

    Raises
    ------
    FormatError
        Unknown suffix.
    """
    name = Path(path).name.lower()
    for suffix, kind in _SUFFIXES:
        if name.endswith(suffix):
            return kind
    raise FormatError(
        f"{os.fspath(path)}: unknown volume format '{Path(path).suffix}' (expected .stack, .klb, .tif, .ome.zarr)"
    )


def read_volume(
    path: str | os.PathLike[str],
    *,
    plane_shape: tuple[int, int] | None = None,
    expected_depth: int | None = None,
) -> np.ndarray | zarr.Array[Any]:
    """Read a volume, choosing the reader from the file name.

    Parameters
    ----------
    path : str or os.PathLike
        ``.stack``, ``.klb``, ``.tif``/``.tiff``/``.ome.tif`` or ``.zarr``/``.ome.zarr``.
    plane_shape : tuple of int, optional
        ``(height, width)`` of a raw ``.stack`` (from its XML); required for
        ``.stack``, ignored otherwise.
    expected_depth : int, optional
        Plane count the XML declares for a ``.stack`` (checked by :class:`StackFile`).

    Returns
    -------
    numpy.ndarray or zarr.Array
        ``(z, y, x)`` data: a read-only memmap for ``.stack``, an in-memory
        array for KLB and TIFF, the lazy level-0 array for OME-Zarr.

    Raises
    ------
    FormatError
        Unknown suffix, missing `plane_shape` for a stack, missing or unreadable file.
    StackSizeError
        A raw stack's size does not match its dimensions.
    """
    kind = volume_format(path)
    if kind == "stack":
        if plane_shape is None:
            raise FormatError(f"{os.fspath(path)}: reading a .stack needs plane_shape=(height, width) from its XML")
        height, width = plane_shape
        return StackFile(path, width, height, expected_depth=expected_depth).memmap()
    if not os.path.exists(path):
        raise FormatError(f"{os.fspath(path)}: no such file")
    if kind == "klb":
        return read_klb(path)
    if kind == "tiff":
        return read_tiff(path)
    return read_ome_zarr(path)


def write_volume(
    path: str | os.PathLike[str],
    array: npt.ArrayLike,
    *,
    voxel_size_um: Sequence[float] = (1.0, 1.0, 1.0),
    codec: CodecConfig | None = None,
    labels: npt.ArrayLike | None = None,
    attributes: Mapping[str, Any] | None = None,
    pyramid_levels: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a volume atomically, choosing the writer from the file name.

    Parameters
    ----------
    path : str or os.PathLike
        ``.klb``, ``.tif``/``.tiff``/``.ome.tif`` or ``.zarr``/``.ome.zarr``.
    array : array_like
        ``(z, y, x)`` volume (KLB and TIFF also take ``(y, x)`` images).
    voxel_size_um : tuple of float, optional
        Voxel size ``(z, y, x)`` in micrometers.
    codec : CodecConfig, optional
        OME-Zarr compression and layout; not used by KLB and TIFF.
    labels : array_like, optional
        Label volume stored inside an OME-Zarr as ``labels/segmentation``.
        Other formats cannot hold it: write it as its own volume.
    attributes : dict, optional
        Acquisition metadata: ``attrs["isoview"]`` in OME-Zarr, an OME
        ``MapAnnotation`` in TIFF; KLB cannot store it (it is dropped).
    pyramid_levels : int, optional
        OME-Zarr only: number of 2x-reduced (y, x) levels.
    overwrite : bool, optional
        Replace an existing output, once the new one is complete.

    Returns
    -------
    pathlib.Path
        The complete output.

    Raises
    ------
    FormatError
        Unknown suffix, a ``.stack`` path (raw data is never written), or
        `labels`/`pyramid_levels` for a format that cannot hold them.
    FileExistsError
        The output exists and `overwrite` is false.
    """
    kind = volume_format(path)
    name = os.fspath(path)
    if kind == "stack":
        raise FormatError(f"{name}: raw .stack files are never written; choose .klb, .tif or .ome.zarr")
    if kind == "zarr":
        return write_ome_zarr(
            path,
            array,
            labels=labels,
            voxel_size_um=voxel_size_um,
            codec=codec,
            pyramid_levels=pyramid_levels,
            attributes=attributes,
            overwrite=overwrite,
        )
    if labels is not None or pyramid_levels:
        raise FormatError(f"{name}: labels and pyramid levels can only be stored in OME-Zarr")
    volume = np.asarray(array)
    if kind == "klb":
        if attributes:
            logger.debug("%s: KLB cannot store attributes; dropping %s", name, sorted(attributes))
        return write_klb(path, volume, voxel_size_um=voxel_size_um, overwrite=overwrite)
    return write_tiff(path, volume, voxel_size_um=voxel_size_um, metadata=attributes, overwrite=overwrite)
