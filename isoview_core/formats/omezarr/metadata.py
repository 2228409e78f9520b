"""NGFF 0.5 metadata of the OME-Zarr outputs, built and parsed through ome-zarr-models' typed models.

The writer stores the models' JSON (validated when built) in the groups' ``zarr.json``; the readers parse
it back into the same models, so a malformed or foreign group is reported at the boundary, by name.

References
----------
OME-NGFF 0.5 specification (https://ngff.openmicroscopy.org/0.5/), as modelled by ``ome-zarr-models``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from ome_zarr_models.common.coordinate_transformations import VectorScale
from ome_zarr_models.v05.axes import Axis
from ome_zarr_models.v05.image import ImageAttrs
from ome_zarr_models.v05.image_label import ImageLabelAttrs
from ome_zarr_models.v05.image_label_types import Label, Source
from ome_zarr_models.v05.labels import LabelsAttrs
from ome_zarr_models.v05.multiscales import Dataset, Multiscale
from pydantic import BaseModel, ValidationError

from isoview_core.errors import FormatError

__all__ = [
    "ATTRIBUTES_KEY",
    "AXES",
    "NGFF_VERSION",
    "image_attributes",
    "image_label_attributes",
    "json_ready",
    "label_names",
    "labels_attributes",
    "level_dataset",
    "level_scale",
    "ome_json",
    "open_image",
]

NGFF_VERSION = "0.5"
ATTRIBUTES_KEY = "isoview"
"""Root-group attribute under which acquisition metadata is stored."""

AXES = ("z", "y", "x")
"""Axis (and zarr dimension) names of every array, in memory order."""


def _multiscale(name: str, voxel_size_um: Sequence[float], levels: int, method: str) -> Multiscale:
    """Levels ``0..levels``: z kept, y and x scaled by ``2**level`` (the pyramid halves them per level)."""
    z, y, x = voxel_size_um
    return Multiscale(
        name=name,
        axes=[Axis(name=axis, type="space", unit="micrometer") for axis in AXES],
        datasets=[
            Dataset.build(path=str(level), scale=[z, y * 2**level, x * 2**level], translation=None)
            for level in range(levels + 1)
        ],
        type=method,
    )


def image_attributes(name: str, voxel_size_um: Sequence[float], levels: int) -> ImageAttrs:
    """``ome`` attributes of an image group whose levels are 2x2 means of the one before.

    Parameters
    ----------
    name : str
        Multiscale name (the output's name without ``.ome.zarr``).
    voxel_size_um : tuple of float
        Level-0 voxel size ``(z, y, x)`` in micrometers.
    levels : int
        Number of reduced levels.

    Returns
    -------
    ome_zarr_models.v05.image.ImageAttrs
        One multiscale of type ``"local_mean"`` over the arrays ``"0"`` ... ``str(levels)``.
    """
    return ImageAttrs(version=NGFF_VERSION, multiscales=[_multiscale(name, voxel_size_um, levels, "local_mean")])


def labels_attributes(names: Sequence[str]) -> LabelsAttrs:
    """``ome`` attributes of the ``labels`` group listing the label images `names`."""
    return LabelsAttrs(version=NGFF_VERSION, labels=list(names))


def image_label_attributes(name: str, voxel_size_um: Sequence[float], levels: int) -> ImageLabelAttrs:
    """``ome`` attributes of the label image ``labels/<name>`` (levels by 2x2 nearest, source ``../../``).

    Parameters
    ----------
    name : str
        Label image name.
    voxel_size_um : tuple of float
        Level-0 voxel size ``(z, y, x)`` in micrometers (the image's).
    levels : int
        Number of reduced levels (the image's).

    Returns
    -------
    ome_zarr_models.v05.image_label.ImageLabelAttrs
    """
    return ImageLabelAttrs(
        version=NGFF_VERSION,
        image_label=Label(source=Source(image="../../")),
        multiscales=[_multiscale(name, voxel_size_um, levels, "nearest")],
    )


def ome_json(attributes: BaseModel) -> dict[str, Any]:
    """The JSON stored under ``"ome"`` for a metadata model (NGFF key names, unset fields left out)."""
    return attributes.model_dump(mode="json", by_alias=True, exclude_none=True)


def json_ready(attributes: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Copy `attributes` as plain JSON (numpy scalars and arrays, paths converted)."""

    def convert(value: Any) -> Any:
        if isinstance(value, np.generic | np.ndarray):
            return value.tolist()
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")

    try:
        return json.loads(json.dumps(dict(attributes), default=convert, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{where}: attributes cannot be stored as JSON ({exc})") from exc


def open_image(path: Path) -> tuple[zarr.Group, Multiscale]:
    """Open an OME-Zarr image (or image-label) group; return it and its single multiscale.

    Raises
    ------
    FormatError
        Missing, not a zarr v3 group, no ``ome.multiscales`` attribute, or metadata that is not valid NGFF 0.5.
    """
    try:
        group = zarr.open_group(store=str(path), mode="r", zarr_format=3)
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path}: cannot open as OME-Zarr ({exc})") from exc
    ome = group.attrs.get("ome", {})
    if not ome.get("multiscales"):
        raise FormatError(f"{path}: not an OME-Zarr image (no 'ome.multiscales' attribute)")
    try:
        attributes = ImageAttrs.model_validate(ome)
    except ValidationError as exc:
        raise FormatError(f"{path}: invalid OME-Zarr {NGFF_VERSION} image metadata ({exc})") from exc
    return group, attributes.multiscales[0]


def level_dataset(path: Path, multiscale: Multiscale, level: int) -> Dataset:
    """The dataset (array path and transforms) of pyramid `level`; FormatError if there is none."""
    datasets = multiscale.datasets
    if not 0 <= level < len(datasets):
        raise FormatError(f"{path}: level {level} does not exist (levels 0..{len(datasets) - 1})")
    return datasets[level]


def level_scale(path: Path, multiscale: Multiscale, level: int) -> tuple[float, float, float]:
    """Voxel size of pyramid `level`: its ``scale`` transform, times the multiscale-wide one if present."""
    scale = np.ones(3)
    dataset = level_dataset(path, multiscale, level)
    for transforms in (dataset.coordinateTransformations, multiscale.coordinateTransformations or ()):
        for transform in transforms:
            if transform.type != "scale":
                continue
            if not isinstance(transform, VectorScale):
                raise FormatError(f"{path}: level {level}'s scale is stored in a file, which is not supported")
            scale *= transform.scale
    return tuple(float(v) for v in scale)  # type: ignore[return-value]


def label_names(path: Path) -> list[str]:
    """Names of the label images listed in ``<path>/labels``; FormatError if there is no such group."""
    try:
        group = zarr.open_group(store=str(path / "labels"), mode="r", zarr_format=3)
        return LabelsAttrs.model_validate(group.attrs["ome"]).labels
    except (OSError, ValueError, KeyError) as exc:
        raise FormatError(f"{path}: no label images") from exc
