"""``IsoviewArray``: a lazy, numpy-like view over a processed acquisition, corrected or fused.

>>> arr = IsoviewArray("/data/larva.fused")      # doctest: +SKIP
>>> arr.shape, arr.axes, arr.views               # doctest: +SKIP
((120, 592, 2, 2048, 2048), 'TZVYX', [(0, 0), (90, 1)])
>>> plane = arr[12, 300, 1]                      # one plane of view 90 at timepoint arr.timepoints[12]  # doctest: +SKIP

What it opens
    An output root (``<acquisition>.corrected`` or ``<acquisition>.fused``) gives ``(T, Z, Views, Y, X)``;
    one timepoint folder (``<root>/SPM00/TM000012``) gives ``(Z, Views, Y, X)``; a specimen folder
    (``<root>/SPM00``) is read as its root with that specimen. A root with several specimens needs
    ``specimen=``. Every path is built by :mod:`isoview_core.layout`; only the volumes' OME-Zarr
    attributes (``attributes.isoview``) say what a volume is, so the kind of the root (``"corrected"``:
    one view per camera and channel; ``"fused"``: one view per camera pair and channel) is detected from
    what it contains, never from its name.
Timepoints and views
    The timepoints are those whose folder holds at least one OME-Zarr volume, sorted: T index ``i`` is
    timepoint ``arr.timepoints[i]``. The views are every camera (corrected) or camera pair (fused) found
    at any timepoint, sorted by ``(camera, channel)`` or ``(view angle, channel)``; their shape, voxel
    type and scale come from the first timepoint that has them. A view missing at a present timepoint
    (not corrected or fused yet) reads as zeros.
Padding
    Views of different shapes (real acquisitions have e.g. 543 planes on cameras 0/1 and 592 on 2/3,
    and different z steps) are stacked by padding each with zeros after its end to the largest extent
    of each axis, so that ``arr[100, 0]`` works on every view. ``arr.depths`` and ``arr.scales`` give
    each view's real depth and voxel size, and ``arr.view(k)`` is view ``k`` alone, unpadded.
Indexing
    Integers (negative ones count from the end), slices (any step) and ``...``; the result is a numpy
    array with numpy's shape rules. Each selected view of each selected timepoint is read with one
    indexing of its zarr array, restricted to the part of the selection inside the view: only its
    chunks (one plane each) are read, and planes past a view's depth are zeros without any read.
Lazy arrays
    :meth:`IsoviewArray.to_dask` stacks the views' zarr arrays (dask chunks of one plane) with the same
    padding; it needs the ``dask`` package (installed with the ``prefect-dask`` dependency).
Why one module
    Its three parts, the indexing helpers, the catalog of an output root and the array class, are only
    used together; a good half of its length is the public methods' docstrings.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import zarr

from isoview_core.errors import FormatError, LayoutError
from isoview_core.formats.omezarr import (
    ome_zarr_voxel_size,
    read_ome_zarr,
    read_ome_zarr_attributes,
    read_ome_zarr_labels,
)
from isoview_core.formats.tiff import read_tiff
from isoview_core.layout import (
    VOLUME_SUFFIX,
    CorrectedPaths,
    FusedPaths,
    PairId,
    corrected_paths,
    output_timepoint_folder,
)
from isoview_core.naming import SPECIMEN_DIR_PATTERN, TIMEPOINT_DIR_PATTERN, specimen_dir_name

if TYPE_CHECKING:
    import dask.array

__all__ = ["IsoviewArray"]

PROJECTIONS = ("xy", "xz", "yz")
"""Projection names written beside every corrected and fused volume."""

_CANONICAL_AXES = "TZVYX"


# --- indexing ---------------------------------------------------------------------------------------


def _axis_indices(index: Any, length: int, axis: str) -> tuple[range, bool]:
    """The positions `index` selects on an axis of `length`, and whether the axis stays in the result."""
    if isinstance(index, slice):
        return range(*index.indices(length)), True
    if isinstance(index, bool | np.bool_):
        raise TypeError(f"boolean index on axis {axis}: IsoviewArray takes ints, slices and '...'")
    try:
        position = operator.index(index)
    except TypeError:
        raise TypeError(f"IsoviewArray takes ints, slices and '...' as indices; got {type(index).__name__} on axis {axis}") from None
    if not -length <= position < length:
        raise IndexError(f"index {position} is out of bounds for axis {axis} with size {length}")
    position %= length
    return range(position, position + 1), False


def _selection(key: Any, shape: tuple[int, ...], axes: str) -> list[tuple[range, bool]]:
    """Per axis: positions selected and whether the axis is kept (numpy's rules for ints, slices and one ``...``)."""
    key = key if isinstance(key, tuple) else (key,)
    ellipses = [at for at, index in enumerate(key) if index is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if ellipses:
        at = ellipses[0]
        key = key[:at] + (slice(None),) * (len(shape) - len(key) + 1) + key[at + 1 :]
    if len(key) > len(shape):
        raise IndexError(f"too many indices: {len(key)} for the {len(shape)} axes {axes}")
    key = key + (slice(None),) * (len(shape) - len(key))
    return [_axis_indices(index, length, axis) for index, length, axis in zip(key, shape, axes, strict=True)]


@dataclass(frozen=True)
class _Clipped:
    """The part of an axis selection inside one view: where it goes in the result, what to read, whether to flip."""

    target: slice
    source: slice
    reversed: bool


def _clip(positions: range, extent: int) -> _Clipped | None:
    """Restrict `positions` to ``[0, extent)``; None when none falls inside (zarr reads only steps >= 1)."""
    inside = [at for at, position in enumerate(positions) if position < extent]
    if not inside:
        return None
    first, last = inside[0], inside[-1]
    kept = positions[first : last + 1]
    ascending = kept if kept.step > 0 else kept[::-1]
    return _Clipped(slice(first, last + 1), slice(ascending[0], ascending[-1] + 1, ascending.step), kept.step < 0)


# --- what an output root holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """One view of the stack: a camera (corrected) or a camera pair with its view angle (fused), and a channel."""

    cameras: tuple[int, ...]
    channel: int
    angle: int | None = None

    @property
    def kind(self) -> str:
        return "corrected" if self.angle is None else "fused"

    @property
    def key(self) -> tuple[int, int]:
        """``(camera, channel)`` or ``(view angle, channel)``: the entry of :attr:`IsoviewArray.views`."""
        return (self.cameras[0] if self.angle is None else self.angle, self.channel)

    def paths(self, root: Path, specimen: int, timepoint: int) -> CorrectedPaths | FusedPaths:
        """The layout's paths of the view's outputs at `timepoint` (``volume``, ``projection(name)``)."""
        if self.angle is None:
            return corrected_paths(root, specimen, timepoint, self.cameras[0], self.channel)
        first, second = self.cameras
        return FusedPaths(root, PairId(specimen, timepoint, (first, second), self.angle, self.channel))

    @classmethod
    def of_volume(cls, path: Path) -> _Source:
        """What the volume at `path` is, from its attributes; FormatError unless its name is the layout's name for it."""
        attributes = read_ome_zarr_attributes(path)
        if "cameras" in attributes:
            source = cls(tuple(attributes["cameras"]), attributes["channel"], attributes["view"])
        elif "camera" in attributes:
            source = cls((attributes["camera"],), attributes["channel"])
        else:
            raise FormatError(f"{path}: no camera in its isoview attributes: not a corrected or fused volume")
        root = path.parent.parent.parent
        expected = source.paths(root, attributes["specimen"], attributes["timepoint"]).volume
        if expected != path:
            raise FormatError(f"{path}: its attributes describe {expected.relative_to(root)}")
        return source


@dataclass(frozen=True)
class _View:
    """A view and what its first volume says: shape ``(z, y, x)``, voxel type, scale and isoview attributes."""

    source: _Source
    shape: tuple[int, int, int]
    dtype: np.dtype
    scale: tuple[float, float, float]
    attributes: dict[str, Any]


class _Catalog:
    """The volumes of one specimen under one root: timepoints, views, and their zarr arrays opened once."""

    def __init__(self, root: Path, specimen: int, timepoints: list[int], views: list[_View], single: bool) -> None:
        self.root = root
        self.specimen = specimen
        self.timepoints = timepoints
        self.views = views
        self.single = single
        self._arrays: dict[tuple[int, int], zarr.Array] = {}

    @property
    def kind(self) -> str:
        return self.views[0].source.kind

    def volume(self, timepoint: int, view: int) -> Path:
        return self.views[view].source.paths(self.root, self.specimen, timepoint).volume

    def array(self, timepoint: int, view: int) -> zarr.Array | None:
        """The zarr array of `view` at `timepoint`; None while that volume does not exist."""
        cached = self._arrays.get((timepoint, view))
        if cached is not None:
            return cached
        path = self.volume(timepoint, view)
        if not path.is_dir():
            return None
        array = read_ome_zarr(path)
        expected = self.views[view].shape
        if tuple(array.shape) != expected:
            raise FormatError(f"{path}: shape {tuple(array.shape)} differs from {expected}, this view's at the first timepoint")
        self._arrays[(timepoint, view)] = array
        return array

    def read_into(self, target: np.ndarray, timepoint: int, view: int, positions: Sequence[range]) -> None:
        """Fill `target` ``(z, y, x)`` with the part of `positions` inside `view` at `timepoint`; the rest stays zero.

        Nothing is opened or read when no position falls inside the view, nor when its volume is missing.
        """
        clipped = [_clip(axis, extent) for axis, extent in zip(positions, self.views[view].shape, strict=True)]
        parts = [part for part in clipped if part is not None]
        if len(parts) < len(clipped) or (array := self.array(timepoint, view)) is None:
            return
        data = array[tuple(part.source for part in parts)]
        flipped = tuple(axis for axis, part in enumerate(parts) if part.reversed)
        target[tuple(part.target for part in parts)] = np.flip(data, flipped) if flipped else data


def _volumes_in(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{VOLUME_SUFFIX['zarr']}"))


def _timepoint_dirs(specimen_folder: Path) -> dict[int, Path]:
    """``{timepoint: folder}`` of the ``TM000012`` folders in a specimen folder."""
    matches = ((TIMEPOINT_DIR_PATTERN.match(folder.name), folder) for folder in specimen_folder.glob("TM*"))
    return {int(match["timepoint"]): folder for match, folder in matches if match and folder.is_dir()}


def _specimen_of(path: Path, found: int, asked: int | None) -> int:
    if asked not in (None, found):
        raise LayoutError(f"{path} is a folder of specimen {found}, not {asked}")
    return found


def _only_specimen(root: Path) -> int:
    specimens = sorted(int(match["specimen"]) for match in map(SPECIMEN_DIR_PATTERN.match, (p.name for p in root.iterdir())) if match)
    if len(specimens) != 1:
        raise LayoutError(f"{root}: expected one specimen folder SPMxx, found {specimens or 'none'}: pass specimen=")
    return specimens[0]


def _timepoint_folders(path: Path, specimen: int | None) -> tuple[Path, int, dict[int, Path], bool]:
    """Root, specimen, ``{timepoint: folder}`` and whether `path` is one timepoint folder."""
    timepoint, parent = TIMEPOINT_DIR_PATTERN.match(path.name), SPECIMEN_DIR_PATTERN.match(path.parent.name)
    own = SPECIMEN_DIR_PATTERN.match(path.name)
    if timepoint and parent:
        found = _specimen_of(path, int(parent["specimen"]), specimen)
        return path.parent.parent, found, {int(timepoint["timepoint"]): path}, True
    if own:
        return path.parent, _specimen_of(path, int(own["specimen"]), specimen), _timepoint_dirs(path), False
    specimen = _only_specimen(path) if specimen is None else specimen
    return path, specimen, _timepoint_dirs(path / specimen_dir_name(specimen)), False


def _first_view(source: _Source, path: Path) -> _View:
    """What the first volume found of a view says about it."""
    array = read_ome_zarr(path)
    shape = (int(array.shape[0]), int(array.shape[1]), int(array.shape[2]))
    return _View(source, shape, np.dtype(array.dtype), ome_zarr_voxel_size(path), read_ome_zarr_attributes(path))


def _catalog(path: Path, specimen: int | None) -> _Catalog:
    """Find the timepoints and views under `path`, reading the attributes only of volumes of views not seen yet."""
    if not path.is_dir():
        raise LayoutError(f"{path}: no such folder (expected a corrected or fused output root or timepoint folder)")
    root, specimen, folders, single = _timepoint_folders(path, specimen)
    views: dict[_Source, _View] = {}
    timepoints = []
    for timepoint in sorted(folders):
        volumes = _volumes_in(folders[timepoint])
        timepoints += [timepoint] if volumes else []
        known = {source.paths(root, specimen, timepoint).volume for source in views}
        for volume in (volume for volume in volumes if volume not in known):
            source = _Source.of_volume(volume)
            views[source] = _first_view(source, volume)
    if not views:
        raise LayoutError(f"{path}: no OME-Zarr volumes of specimen {specimen} (is it a corrected or fused output root?)")
    kinds = {source.kind for source in views}
    if len(kinds) > 1:
        raise LayoutError(f"{path}: holds both corrected and fused volumes; open each root on its own")
    ordered = sorted(views.values(), key=lambda view: view.source.key)
    return _Catalog(root, specimen, timepoints, ordered, single)


# --- the array --------------------------------------------------------------------------------------


class IsoviewArray:
    """A lazy, numpy-like view over a corrected or fused acquisition (see the module docstring).

    Parameters
    ----------
    path : str or os.PathLike
        A corrected or fused output root (``(T, Z, Views, Y, X)``), a specimen folder in one, or one
        timepoint folder (``<root>/SPM00/TM000012``, ``(Z, Views, Y, X)``).
    specimen : int, optional
        The specimen to open under a root that holds several.

    Raises
    ------
    LayoutError
        `path` is missing, holds no OME-Zarr volume, several specimens without `specimen`, or both kinds.
    FormatError
        A volume whose attributes do not match its name.
    """

    def __init__(self, path: str | Path, *, specimen: int | None = None) -> None:
        catalog = _catalog(Path(path).expanduser(), specimen)
        self._init(catalog, list(range(len(catalog.views))), view_axis=True)

    def _init(self, catalog: _Catalog, views: list[int], *, view_axis: bool) -> None:
        self._catalog = catalog
        self._views = views
        self._view_axis = view_axis

    @property
    def kind(self) -> str:
        """``"corrected"`` (one view per camera and channel) or ``"fused"`` (one per camera pair and channel)."""
        return self._catalog.kind

    @property
    def root(self) -> Path:
        """The corrected or fused output root."""
        return self._catalog.root

    @property
    def specimen(self) -> int:
        return self._catalog.specimen

    @property
    def axes(self) -> str:
        """Axis names: ``TZVYX`` for a root, ``ZVYX`` for a timepoint folder, without ``V`` after :meth:`view`."""
        return "".join(axis for axis in _CANONICAL_AXES if self._has_axis(axis))

    def _has_axis(self, axis: str) -> bool:
        return {"T": not self._catalog.single, "V": self._view_axis}.get(axis, True)

    @property
    def timepoints(self) -> list[int]:
        """The acquisition's timepoint of each T index."""
        return list(self._catalog.timepoints)

    @property
    def views(self) -> list[tuple[int, int]]:
        """``(camera, channel)`` (corrected) or ``(view angle, channel)`` (fused) of each view, in V order."""
        return [self._catalog.views[view].source.key for view in self._views]

    @property
    def depths(self) -> list[int]:
        """Each view's real number of planes (the stack pads the shallower ones with zeros)."""
        return [self._catalog.views[view].shape[0] for view in self._views]

    @property
    def scales(self) -> list[tuple[float, float, float]]:
        """Each view's voxel size ``(z, y, x)`` in micrometers."""
        return [self._catalog.views[view].scale for view in self._views]

    @property
    def dtype(self) -> np.dtype:
        return np.result_type(*(self._catalog.views[view].dtype for view in self._views))

    @property
    def _extent(self) -> tuple[int, int, int]:
        """``(z, y, x)`` of the stack: the largest of each axis over the views."""
        z, y, x = (int(length) for length in np.max([self._catalog.views[view].shape for view in self._views], axis=0))
        return z, y, x

    @property
    def shape(self) -> tuple[int, ...]:
        lengths = {"T": len(self._catalog.timepoints), "V": len(self._views), **dict(zip("ZYX", self._extent, strict=True))}
        return tuple(lengths[axis] for axis in self.axes)

    @property
    def ndim(self) -> int:
        return len(self.axes)

    @cached_property
    def metadata(self) -> dict[str, Any]:
        """Kind, root, specimen, axes, timepoints and, per view, what identifies it and what its volumes say.

        Each entry of ``"views"`` has ``camera`` (corrected) or ``view`` and ``cameras`` (fused),
        ``channel``, ``depth``, ``shape``, ``scale`` (micrometers), ``dtype`` and ``attributes``: the
        ``isoview`` attributes of its first volume (corrected: the channel XML fields under ``xml``).
        Fused views also have ``fusion_parameters``, ``{timepoint: parameters applied}`` (read from
        every volume on first access).
        """
        return {
            "kind": self.kind,
            "root": str(self.root),
            "specimen": self.specimen,
            "axes": self.axes,
            "timepoints": self.timepoints,
            "views": [self._view_metadata(view) for view in self._views],
        }

    def _view_metadata(self, view: int) -> dict[str, Any]:
        info = self._catalog.views[view]
        source = info.source
        identity = {"camera": source.cameras[0]} if source.angle is None else {"view": source.angle, "cameras": source.cameras}
        described = {**identity, "channel": source.channel, "depth": info.shape[0], "shape": info.shape}
        described |= {"scale": info.scale, "dtype": str(info.dtype), "attributes": info.attributes}
        if source.angle is not None:
            described["fusion_parameters"] = {
                timepoint: read_ome_zarr_attributes(volume).get("applied")
                for timepoint in self._catalog.timepoints
                if (volume := self._catalog.volume(timepoint, view)).is_dir()
            }
        return described

    def __getitem__(self, key: Any) -> np.ndarray:
        selection = dict(zip(self.axes, _selection(key, self.shape, self.axes), strict=True))
        positions = {axis: selection.get(axis, (range(1), False))[0] for axis in _CANONICAL_AXES}
        out = np.zeros([len(positions[axis]) for axis in _CANONICAL_AXES], dtype=self.dtype)
        spatial = [positions[axis] for axis in "ZYX"]
        for at, t in enumerate(positions["T"]):
            for slot, v in enumerate(positions["V"]):
                self._catalog.read_into(out[at, :, slot], self._catalog.timepoints[t], self._views[v], spatial)
        return out.reshape([len(indices) for indices, kept in selection.values() if kept])

    def __array__(self, dtype: npt.DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        """Everything, read into memory: for small selections (``np.asarray(arr.view(0))`` of one timepoint)."""
        data = self[...]
        return data if dtype is None else data.astype(dtype, copy=False)

    def __repr__(self) -> str:
        timepoints = self._catalog.timepoints
        span = f"{timepoints[0]}..{timepoints[-1]} ({len(timepoints)})" if timepoints else "none"
        return (
            f"IsoviewArray({self.kind}, shape={self.shape}, axes={self.axes!r}, dtype={self.dtype}, "
            f"timepoints={span}, views={self.views}, depths={self.depths}, root='{self.root}')"
        )

    def view(self, k: int) -> IsoviewArray:
        """View `k` alone, unpadded: axes ``TZYX`` (``ZYX`` for a timepoint folder).

        Parameters
        ----------
        k : int
            Index along V (``arr.views[k]``).

        Returns
        -------
        IsoviewArray
            Its own depth (``shape``), scale (``scales[0]``) and voxel type.
        """
        if not self._view_axis:
            raise IndexError("this IsoviewArray is already a single view")
        if not -len(self._views) <= k < len(self._views):
            raise IndexError(f"view {k} out of range: {len(self._views)} views {self.views}")
        single = IsoviewArray.__new__(IsoviewArray)
        single._init(self._catalog, [self._views[k]], view_axis=False)
        return single

    def to_dask(self) -> dask.array.Array:
        """The whole stack as a dask array of the views' zarr arrays, padded like the numpy indexing.

        Returns
        -------
        dask.array.Array
            Same shape, axes and dtype as this array; chunks of one plane of one view at one timepoint
            (padding and missing volumes are zero chunks that read nothing).

        Raises
        ------
        ImportError
            Without the ``dask`` package.
        """
        try:
            import dask.array as da
        except ImportError as exc:
            raise ImportError("IsoviewArray.to_dask needs the 'dask' package (pip install dask)") from exc
        timepoints = [self._timepoint_dask(da, timepoint, self._extent) for timepoint in self._catalog.timepoints]
        return timepoints[0] if self._catalog.single else da.stack(timepoints)

    def _timepoint_dask(self, da: Any, timepoint: int, spatial: tuple[int, ...]) -> dask.array.Array:
        volumes = [self._volume_dask(da, timepoint, view, spatial) for view in self._views]
        return da.stack(volumes, axis=1) if self._view_axis else volumes[0]

    def _volume_dask(self, da: Any, timepoint: int, view: int, spatial: tuple[int, ...]) -> dask.array.Array:
        array = self._catalog.array(timepoint, view)
        if array is None:
            return da.zeros(spatial, dtype=self.dtype, chunks=(1, *spatial[1:]))
        volume = da.from_zarr(array, chunks=(1, *array.shape[1:])).astype(self.dtype)
        padding = [(0, full - length) for full, length in zip(spatial, array.shape, strict=True)]
        return da.pad(volume, padding) if any(after for _, after in padding) else volume

    def _source(self, camera: int, channel: int | None) -> _Source:
        """The view whose key starts with `camera` (a view angle when fused) and, if given, has `channel`."""
        sources = [self._catalog.views[view].source for view in self._views]
        matches = [source for source in sources if source.key[0] == camera and channel in (None, source.channel)]
        what = "camera" if self.kind == "corrected" else "view angle"
        if not matches:
            raise ValueError(f"no {what} {camera}{'' if channel is None else f' channel {channel}'} among the views {self.views}")
        if len(matches) > 1:
            raise ValueError(f"{what} {camera} has channels {[match.channel for match in matches]}: pass channel=")
        return matches[0]

    def _checked_timepoint(self, timepoint: int) -> int:
        if timepoint not in self._catalog.timepoints:
            folder = output_timepoint_folder(self.root, self.specimen, timepoint)
            raise ValueError(f"timepoint {timepoint} has no volumes ({folder}); timepoints: {self._catalog.timepoints}")
        return timepoint

    def get_labels(self, timepoint: int, camera: int, label_type: str = "segmentation", *, channel: int | None = None) -> zarr.Array:
        """The label image stored with one volume (corrected volumes hold ``segmentation``).

        Parameters
        ----------
        timepoint : int
            The acquisition's timepoint (an entry of :attr:`timepoints`, not a T index).
        camera : int
            The camera (corrected) or view angle (fused): the first element of an entry of :attr:`views`.
        label_type : str, optional
            Name of the label image.
        channel : int, optional
            Needed only when `camera` has several channels.

        Returns
        -------
        zarr.Array
            Lazy ``(z, y, x)`` ``uint8`` labels at the view's own depth (unpadded).

        Raises
        ------
        ValueError
            `timepoint` has no volumes, or no view (or several) matches `camera` and `channel`.
        FormatError
            The volume is missing or has no such label image.
        """
        source = self._source(camera, channel)
        paths = source.paths(self.root, self.specimen, self._checked_timepoint(timepoint))
        return read_ome_zarr_labels(paths.volume, label_type)

    def get_projection(self, timepoint: int, camera: int, proj_type: str = "xy", *, channel: int | None = None) -> np.ndarray:
        """A maximum-intensity projection written beside one volume.

        Parameters
        ----------
        timepoint : int
            The acquisition's timepoint (an entry of :attr:`timepoints`).
        camera : int
            The camera (corrected) or view angle (fused), as for :meth:`get_labels`.
        proj_type : {"xy", "xz", "yz"}, optional
            Which projection.
        channel : int, optional
            Needed only when `camera` has several channels.

        Returns
        -------
        numpy.ndarray
            The projection image as stored.

        Raises
        ------
        ValueError
            An unknown `proj_type`, as for :meth:`get_labels` otherwise.
        FormatError
            The projection file is missing or unreadable.
        """
        if proj_type not in PROJECTIONS:
            raise ValueError(f"proj_type must be one of {PROJECTIONS}, got {proj_type!r}")
        source = self._source(camera, channel)
        return read_tiff(source.paths(self.root, self.specimen, self._checked_timepoint(timepoint)).projection(proj_type))
