"""The npe2 reader: IsoView results as napari layers with physical scale, contrast and one layer per view.

What it opens (always a folder; anything else is left to other readers)
    One live time series (``ACQ.fused/SPM00_VW00_CHN00.ome.zarr``, :mod:`isoview_core.results.series`);
    a root holding series (``ACQ.fused``): one image layer per series; a corrected or fused root without
    series (``ACQ.corrected``): one image layer per camera (or view) and channel, read through
    :class:`~isoview_core.results.array.IsoviewArray`, with the segmentation stored with each corrected
    volume as a labels layer; the acquisition folder itself (``ACQ``): its fused series when there are
    any, else its corrected root, else its fused root.
Layers
    Image layers are lazy dask arrays ``(t, z, y, x)`` named ``"VW00 CHN00"`` (fused) or ``"CM00 CHN00"``
    (corrected), coloured by channel (:data:`CHANNEL_COLORMAPS`) and blended additively, so that the
    views and channels overlay. Their scale is the series' NGFF scale in micrometers, with one time step
    for every series of the acquisition (:func:`common_interval_s`) so that a slider position is the same
    timepoint in every layer. Contrast limits are the series' OMERO window (percentiles of the first
    timepoint's voxels, written with the series); for corrected roots the same percentiles are taken from
    sampled planes of the first timepoint. A series shows only its published timepoints
    (``isoview.timepoints``): a timepoint whose chunks are being written is not shown until it is listed.
Metadata
    ``layer.metadata["isoview"]`` holds the series' ``isoview`` attributes (specimen, view, channel,
    cameras, published timepoints, time interval), or for a root the :attr:`IsoviewArray.metadata` of
    the view (its kind, timepoints and the first volume's attributes); ``layer.metadata["series"]`` is
    the series' folder, which :mod:`isoview_napari.live` re-reads to extend the time axis.

References
----------
npe2 reader contributions (https://napari.org/stable/plugins/building_a_plugin/guides.html);
OME-NGFF 0.5 multiscales and ``omero`` (https://ngff.openmicroscopy.org/0.5/).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import zarr

from isoview_core.errors import FormatError, IsoviewError
from isoview_core.layout import default_corrected_root, default_fused_root, series_files
from isoview_core.naming import SPECIMEN_DIR_PATTERN, TIMEPOINT_DIR_PATTERN
from isoview_core.results.array import IsoviewArray
from isoview_core.results.series import CONTRAST_PERCENTILES, CONTRAST_PLANES, published_timepoints

__all__ = [
    "CHANNEL_COLORMAPS",
    "LABELS_NAME",
    "LayerData",
    "SERIES_KEY",
    "common_interval_s",
    "napari_get_reader",
    "published_length",
    "read_isoview",
    "root_layers",
    "series_attributes",
    "series_layers",
    "series_levels",
]

LayerData = tuple[Any, dict[str, Any], str]
"""napari's layer data tuple: ``(data, layer keyword arguments, layer type)``."""

CHANNEL_COLORMAPS = ("green", "magenta", "cyan", "yellow", "red", "blue")
"""Colormap of channel ``c``: ``CHANNEL_COLORMAPS[c % 6]`` (two channels overlay as green and magenta)."""

SERIES_KEY = "series"
"""``layer.metadata[SERIES_KEY]``: the folder of the time series a layer shows (absent for root layers)."""

LABELS_NAME = "segmentation"
"""The label image stored with every corrected volume."""

_SPATIAL_UNIT = "micrometer"


# --- what a folder is ---------------------------------------------------------------------------------


def _group_attributes(path: Path) -> dict[str, Any] | None:
    """The attributes in a zarr v3 group's ``zarr.json``; None when `path` holds no readable group."""
    try:
        document = json.loads((path / "zarr.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("node_type") != "group":
        return None
    return document.get("attributes", {})


def _is_series(path: Path) -> bool:
    """Whether `path` is a live time series: an NGFF image whose first axis is time, with published timepoints."""
    attributes = _group_attributes(path) if path.is_dir() else None
    try:
        axes = attributes["ome"]["multiscales"][0]["axes"]
        return axes[0]["type"] == "time" and "timepoints" in attributes["isoview"]
    except (TypeError, KeyError, IndexError):
        return False


def _series_in(path: Path) -> list[Path]:
    """The series `path` is, or those at the top of it, or those of its fused root (`path` an acquisition)."""
    if _is_series(path):
        return [path]
    for root in (path, default_fused_root(path)):
        found = [series for series in series_files(root) if _is_series(series)]
        if found:
            return found
    return []


def _has_volumes(root: Path) -> bool:
    """Whether `root` is an output root: ``SPMxx/TMxxxxxx/*.ome.zarr`` below it (stops at the first found)."""
    for volume in root.glob("SPM[0-9][0-9]/TM*/*.ome.zarr"):
        if SPECIMEN_DIR_PATTERN.match(volume.parent.parent.name) and TIMEPOINT_DIR_PATTERN.match(volume.parent.name):
            return True
    return False


def _volume_root(path: Path) -> Path | None:
    """The output root `path` is, or the acquisition's corrected, else fused, root; None when none has volumes."""
    for root in (path, default_corrected_root(path), default_fused_root(path)):
        if root.is_dir() and _has_volumes(root):
            return root
    return None


def _single_path(path: str | Sequence[str]) -> Path | None:
    paths = [path] if isinstance(path, str | Path) else list(path)
    return Path(paths[0]).expanduser() if len(paths) == 1 else None


def napari_get_reader(path: str | Sequence[str]) -> Callable[[str | Sequence[str]], list[LayerData]] | None:
    """The npe2 reader hook: :func:`read_isoview` for an IsoView result folder, None for anything else.

    Parameters
    ----------
    path : str or sequence of str
        What napari was asked to open; only one folder is recognised.

    Returns
    -------
    callable or None
        :func:`read_isoview`, or None so that napari tries its other readers.
    """
    folder = _single_path(path)
    if folder is None or not folder.is_dir():
        return None
    if _series_in(folder) or _volume_root(folder) is not None:
        return read_isoview
    return None


def read_isoview(path: str | Sequence[str]) -> list[LayerData]:
    """Layers of an IsoView result folder (see the module docstring for what is recognised).

    Parameters
    ----------
    path : str or sequence of str
        A time series, a root holding series, a corrected or fused root, or an acquisition folder.

    Returns
    -------
    list of LayerData
        Image layers (one per series, or per camera / view and channel) then, for corrected roots, one
        labels layer per camera and channel.

    Raises
    ------
    IsoviewError
        `path` is none of these (napari shows the message).
    """
    folder = _single_path(path)
    if folder is None:
        raise IsoviewError(f"the IsoView reader opens one folder at a time, not {list(path)}")
    series = _series_in(folder)
    if series:
        return series_layers(series)
    root = _volume_root(folder)
    if root is None:
        raise IsoviewError(f"{folder}: no IsoView time series or corrected / fused volumes (is it an acquisition or its output root?)")
    return root_layers(root)


# --- time series --------------------------------------------------------------------------------------


def _multiscale(attributes: dict[str, Any]) -> dict[str, Any]:
    return attributes["ome"]["multiscales"][0]


def _level_scale(dataset: dict[str, Any]) -> list[float]:
    return [float(value) for value in dataset["coordinateTransformations"][0]["scale"]]


def series_attributes(series: Path) -> dict[str, Any]:
    """The ``isoview`` attributes of a series, read afresh (empty when it has no readable group)."""
    return dict((_group_attributes(series) or {}).get("isoview", {}))


def published_length(series: Path) -> int:
    """Length of the time axis a viewer may show: one past the last published timepoint (0 when none is)."""
    return max(published_timepoints(series), default=-1) + 1


def series_levels(series: Path, length: int | None = None) -> list[da.Array]:
    """The series' resolution levels, opened afresh (an open zarr array keeps its old shape) and cut to `length`.

    Parameters
    ----------
    series : Path
        The series folder.
    length : int, optional
        Timepoints to show (default: :func:`published_length`, or the whole array while none is published).

    Returns
    -------
    list of dask.array.Array
        ``(t, z, y, x)`` per level, full resolution first.
    """
    attributes = _group_attributes(series)
    if attributes is None:
        raise FormatError(f"{series}: not a time series (no readable zarr.json)")
    length = length or published_length(series) or None
    levels = []
    for dataset in _multiscale(attributes)["datasets"]:
        array = zarr.open_array(series / dataset["path"], mode="r")
        levels.append(da.from_zarr(array)[:length])
    return levels


def common_interval_s(isoview_attributes: Sequence[dict[str, Any]]) -> float:
    """One time step for every series of an acquisition: the median of their ``time_interval_s`` (1 s when unknown).

    Each series measures its interval from its own timestamps (the channel's XML), so two views can differ
    by milliseconds; napari would then step its slider by the smaller one and misalign the timepoints.
    """
    intervals = [float(attributes["time_interval_s"]) for attributes in isoview_attributes if attributes.get("time_interval_s")]
    return float(statistics.median(intervals)) if intervals else 1.0


def _layer_name(isoview: dict[str, Any], fallback: str) -> str:
    """``VW00 CHN00`` (fused view) or ``CM00 CHN00`` (camera) from the isoview attributes, else `fallback`."""
    channel = isoview.get("channel")
    for key, prefix in (("view", "VW"), ("camera", "CM")):
        if key in isoview and channel is not None:
            return f"{prefix}{int(isoview[key]):02d} CHN{int(channel):02d}"
    return fallback


def _colormap(channel: int) -> str:
    return CHANNEL_COLORMAPS[channel % len(CHANNEL_COLORMAPS)]


def series_layers(series: Sequence[Path]) -> list[LayerData]:
    """One image layer per time series, on a common time step (:func:`common_interval_s`).

    Parameters
    ----------
    series : sequence of Path
        Series folders (``SPM00_VW00_CHN00.ome.zarr``...).

    Returns
    -------
    list of LayerData
        ``(data, kwargs, "image")``: a dask array (a list of them with ``multiscale=True`` when the
        series has pyramid levels), scale, units, contrast limits from the OMERO window, name, colormap,
        additive blending and the ``isoview`` attributes as metadata.
    """
    documents = {path: _group_attributes(path) or {} for path in series}
    interval = common_interval_s([document.get("isoview", {}) for document in documents.values()])
    return [_series_layer(path, document, interval) for path, document in documents.items()]


def _series_layer(series: Path, attributes: dict[str, Any], interval_s: float) -> LayerData:
    multiscale = _multiscale(attributes)
    isoview = dict(attributes["isoview"])
    window = attributes["ome"]["omero"]["channels"][0]["window"]
    levels = series_levels(series)
    kwargs = {
        "name": _layer_name(isoview, series.name.removesuffix(".ome.zarr")),
        "scale": [interval_s, *_level_scale(multiscale["datasets"][0])[1:]],
        "axis_labels": [axis["name"] for axis in multiscale["axes"]],
        "units": [axis.get("unit") or "pixel" for axis in multiscale["axes"]],
        "contrast_limits": [float(window["start"]), float(window["end"])],
        "colormap": _colormap(int(isoview.get("channel", 0))),
        "blending": "additive",
        "multiscale": len(levels) > 1,
        "metadata": {"isoview": isoview, SERIES_KEY: str(series)},
    }
    return (levels if len(levels) > 1 else levels[0], kwargs, "image")


# --- corrected and fused roots (per-timepoint volumes) ------------------------------------------------


def _sampled_window(view: IsoviewArray) -> tuple[float, float]:
    """The series' contrast rule on a view: :data:`CONTRAST_PERCENTILES` of non-zero voxels of sampled planes of t 0."""
    depth = view.shape[1]
    planes = sorted({int(round(z)) for z in np.linspace(0, depth - 1, min(depth, CONTRAST_PLANES))})
    values = np.concatenate([view[0, plane].ravel() for plane in planes])
    values = values[values > 0]
    if not values.size:
        return 0.0, 1.0
    start, end = (float(value) for value in np.percentile(values, CONTRAST_PERCENTILES))
    return start, max(end, start + 1.0)


def _labels(array: IsoviewArray, key: int, channel: int, shape: tuple[int, ...]) -> da.Array | None:
    """The segmentation of one view over time, lazily (zeros where a timepoint has none); None if t 0 has none."""
    stacks = []
    for timepoint in array.timepoints:
        try:
            labels = array.get_labels(timepoint, key, LABELS_NAME, channel=channel)
        except FormatError:
            if not stacks:
                return None
            stacks.append(da.zeros(shape, dtype=np.uint8, chunks=(1, *shape[1:])))
            continue
        stacks.append(da.from_zarr(labels, chunks=(1, *labels.shape[1:])))
    return da.stack(stacks)


def root_layers(root: Path) -> list[LayerData]:
    """One image layer per camera (or fused view) and channel of an output root, and its segmentation as labels.

    Parameters
    ----------
    root : Path
        A corrected or fused output root (``SPMxx/TMxxxxxx/*.ome.zarr`` below it).

    Returns
    -------
    list of LayerData
        Image layers ``(t, z, y, x)`` (T index ``i`` is timepoint ``metadata["isoview"]["timepoints"][i]``,
        one step each), then one labels layer per view whose first timepoint has a segmentation.
    """
    array = IsoviewArray(root)
    prefix = "CM" if array.kind == "corrected" else "VW"
    images, labels = [], []
    for k, (key, channel) in enumerate(array.views):
        view = array.view(k)
        name = f"{prefix}{key:02d} CHN{channel:02d}"
        common = {
            "scale": [1.0, *array.scales[k]],
            "axis_labels": list("tzyx"),
            "units": ["pixel", *[_SPATIAL_UNIT] * 3],
            "metadata": {"isoview": view.metadata},
        }
        image = {
            "name": name,
            "contrast_limits": list(_sampled_window(view)),
            "colormap": _colormap(channel),
            "blending": "additive",
        }
        images.append((view.to_dask(), common | image, "image"))
        segmentation = _labels(array, key, channel, view.shape[1:])
        if segmentation is not None:
            labels.append((segmentation, common | {"name": f"{name} {LABELS_NAME}", "opacity": 0.4}, "labels"))
    return images + labels
