"""BigStitcher / BigDataViewer export: a SpimData ``dataset.xml`` over the live fused time series, read in place.

``<fused root>/dataset.xml`` (:func:`isoview_core.layout.bigstitcher_dataset_path`) describes every fused time
series of the root (``SPM00_VW00_CHN00.ome.zarr``..., see :mod:`isoview_core.results.series`) as one SpimData
2 dataset: one view setup per series (specimen, view, channel), the union of their published timepoints, and
an initial registration that shows both views roughly aligned. No voxel is copied.

Image loader
------------
``format="bdv.multimg.zarr"`` (BigStitcher's OME-Zarr loader, ``XmlIoAllenOMEZarrLoader`` in
multiview-reconstruction), written as its version ``3.1``: ``zarr.version="ZarrV3"`` selects the Zarr v3 reader,
which also reads the NGFF 0.5 ``ome`` attributes; ``<zarr type="relative">.</zarr>`` is the container (the
fused root, relative to the XML); one ``<zgroup setup= tp= path= indicies=>`` per published view names the
series (relative to the container) and, in ``indicies``, the index along its first non-spatial axis, ``t``.
The loader orders the axes x, y, z, (c), (t) by the NGFF axis names and types and slices the ``indicies`` off,
so our ``(t, z, y, x)`` series is read in place, timepoint ``t`` at index ``t``; extra pyramid levels become
BigDataViewer's mipmaps (their scales relative to level 0).

Gap: older loaders do not read our series. The plain BigDataViewer plugin of the same format name
(``bigdataviewer-omezarr``) and multiview-reconstruction releases before the Zarr v3 loader read only
5-D ``(t, c, z, y, x)`` NGFF 0.4 (Zarr v2) images, one per view and timepoint, always at ``t = c = 0``. With
those, the documented conversion is BigStitcher's own "Resave as OME-Zarr" of this dataset from a Fiji that reads
it, or a copy of each timepoint into such 5-D images; the series need a Zarr v3 reader with sharding, and a
codec it knows (blosc, zstd, gzip: not JPEG-LS).

Registration
------------
BigDataViewer's coordinates are (x, y, z), a voxel's centre at integer coordinates; each ``<affine>`` is a
3 x 4 matrix, row-major, mapping (x, y, z, 1) to world; a view's transforms are listed outermost first (the
model is their product in list order, so the last one is applied first). As BigStitcher does, the world unit
is the smallest voxel size of all views (here: ``u`` micrometers):

* every view: ``calibration`` = diag(voxel size / ``u``) (x, y, z);
* a view at ``v`` degrees (VW90), after its calibration: the right-handed rotation by ``v`` about +y,
  ``x' = x cos v + z sin v``, ``z' = -x sin v + z cos v`` (for v = 90: ``x' = z``, ``z' = -x``; the view's
  detection axis z turns into world +x), about the centre of its calibrated volume, which it moves onto the
  centre of the specimen's VW00 volume (its lowest channel).

So the views of a specimen overlap with the orthogonal axes exchanged; BigStitcher refines the rest (the
views' relative offset, and a mirror if the cameras' orientation flips one of them).

Kept in step live
-----------------
:func:`write_bigstitcher_dataset` rebuilds the file from the series' metadata after each append, under a lock,
and publishes it atomically only when it changed: rewriting is idempotent. What BigStitcher saved into the
file is kept: a view registration whose transforms are not the initial ones (a refinement), and the sections
this module does not write (interest points, bounding boxes, stitching results...).

References
----------
SpimData XML (``mpicbg.spim.data.XmlKeys``, ``XmlIoSequenceDescription``, ``XmlIoViewRegistrations``),
https://github.com/bigdataviewer/spimdata; the ``bdv.multimg.zarr`` loader (``XmlIoAllenOMEZarrLoader``,
``AllenOMEZarrLoader``, ``AllenOMEZarrProperties``) and the calibration of ``SpimData2`` datasets,
https://github.com/JaneliaSciComp/multiview-reconstruction; H. Hörl et al., "BigStitcher: reconstructing
high-resolution image datasets of cleared and expanded samples", Nat. Methods 16, 870-874 (2019).
"""

from __future__ import annotations

import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from isoview_core import layout
from isoview_core.errors import FormatError, LayoutError
from isoview_core.formats.atomic import write_text_atomically
from isoview_core.formats.locks import exclusive_lock
from isoview_core.formats.omezarr.metadata import ATTRIBUTES_KEY, open_image

__all__ = [
    "CALIBRATION_NAME",
    "IMAGE_LOADER_FORMAT",
    "FusedSeries",
    "bigstitcher_dataset",
    "initial_registration",
    "read_fused_series",
    "write_bigstitcher_dataset",
]

logger = logging.getLogger(__name__)

SPIMDATA_VERSION = "0.2"
IMAGE_LOADER_FORMAT = "bdv.multimg.zarr"
IMAGE_LOADER_VERSION = "3.1"
ZARR_V3_TAG = "ZarrV3"
"""The loader's ``zarr.version`` value that selects its Zarr v3 reader."""
CALIBRATION_NAME = "calibration"
"""Name of the voxel-size transform, as BigStitcher names it."""
ILLUMINATION = 0
"""The one illumination attribute: a fused view has no separate illumination sides."""
SPATIAL_AXES = ("x", "y", "z")
"""BigDataViewer's axis order."""
_UNIT_SYMBOLS = {"micrometer": "µm", "nanometer": "nm", "millimeter": "mm"}
_WRITTEN_SECTIONS = {"BasePath", "SequenceDescription", "ViewRegistrations"}


class _SeriesAttributes(BaseModel):
    """The ``isoview`` attributes of a series that the export reads."""

    model_config = ConfigDict(extra="ignore")

    specimen: int = Field(ge=0)
    view: int = Field(ge=0, lt=360, multiple_of=90)
    channel: int = Field(ge=0)
    timepoints: dict[int, str]


class FusedSeries(BaseModel):
    """What the export needs of one fused time series: identity, geometry and published timepoints.

    Sizes and voxel sizes are in BigDataViewer's (x, y, z) order.
    """

    model_config = ConfigDict(frozen=True)

    path: Path
    specimen: int = Field(ge=0)
    view: int = Field(ge=0, lt=360, multiple_of=90)
    channel: int = Field(ge=0)
    size_xyz: tuple[int, int, int]
    voxel_size_xyz: tuple[float, float, float]
    unit: str
    timepoints: tuple[int, ...]

    @property
    def name(self) -> str:
        """The series' name: its folder name without ``.ome.zarr`` (``SPM00_VW00_CHN00``)."""
        return self.path.name.removesuffix(layout.SERIES_SUFFIX)

    @property
    def setup_id(self) -> int:
        """View setup id, stable as series appear: ``100 * (4 * specimen + view / 90) + channel`` (VW90 CHN01: 101)."""
        return 100 * (4 * self.specimen + self.view // 90) + self.channel


def read_fused_series(path: Path) -> FusedSeries:
    """Read the metadata of one live time series ``(t, z, y, x)``.

    Parameters
    ----------
    path : Path
        The series (``<fused root>/SPM00_VW00_CHN00.ome.zarr``).

    Returns
    -------
    FusedSeries
        Size and voxel size of level 0, unit of the spatial axes, published timepoints (sorted).

    Raises
    ------
    FormatError
        Not an NGFF 0.5 image with axes t, z, y, x, or without the ``isoview`` series attributes.
    """
    path = Path(path)
    group, multiscale = open_image(path)
    names = [axis.name for axis in multiscale.axes]
    if sorted(names) != ["t", "x", "y", "z"]:
        raise FormatError(f"{path}: axes {names}, expected a time series with axes t, z, y, x")
    units = {axis.unit for axis in multiscale.axes if axis.name in SPATIAL_AXES}
    if len(units) != 1:
        raise FormatError(f"{path}: spatial axes in different units {sorted(map(str, units))}")
    unit = str(units.pop() or "pixel")
    dataset = multiscale.datasets[0]
    scale = dataset.coordinateTransformations[0].scale  # NGFF: a dataset's first transform is its scale
    array = group[dataset.path]
    try:
        attributes = _SeriesAttributes.model_validate(group.attrs.get(ATTRIBUTES_KEY, {}))
    except ValidationError as error:
        raise FormatError(f"{path}: not a fused time series ({ATTRIBUTES_KEY} attributes: {error.errors()[0]['msg']})") from error
    return FusedSeries(
        path=path,
        specimen=attributes.specimen,
        view=attributes.view,
        channel=attributes.channel,
        size_xyz=tuple(int(array.shape[names.index(axis)]) for axis in SPATIAL_AXES),
        voxel_size_xyz=tuple(float(scale[names.index(axis)]) for axis in SPATIAL_AXES),
        unit=_UNIT_SYMBOLS.get(unit, unit),
        timepoints=tuple(sorted(attributes.timepoints)),
    )


# --- registration ------------------------------------------------------------------------------------


def _calibration(series: FusedSeries, unit: float) -> np.ndarray:
    """3 x 4 affine: voxel (x, y, z) -> world, in multiples of `unit`."""
    return np.hstack([np.diag(np.asarray(series.voxel_size_xyz) / unit), np.zeros((3, 1))])


def _centre(series: FusedSeries, unit: float) -> np.ndarray:
    """World position of the centre of the series' calibrated volume (voxel centres at integer coordinates)."""
    return _calibration(series, unit)[:, :3] @ ((np.asarray(series.size_xyz) - 1) / 2)


def _rotation_about_y(degrees: int) -> np.ndarray:
    """Right-handed rotation about y by a multiple of 90 degrees, exactly (``+z`` turns into ``+x`` at 90)."""
    c, s = (int(round(f(np.radians(degrees)))) for f in (np.cos, np.sin))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=float)


def _rotation_name(view: int) -> str:
    """Name of the initial rotation of view `view` onto VW00."""
    return f"VW{view:02d} onto VW00: {view} degrees about y"


def initial_registration(series: FusedSeries, reference: FusedSeries, unit: float) -> list[tuple[str, np.ndarray]]:
    """The named transforms of a view's initial registration, outermost first (SpimData's list order).

    Parameters
    ----------
    series : FusedSeries
        The view.
    reference : FusedSeries
        The VW00 series its centre is moved onto (itself for VW00, or when the specimen has no VW00).
    unit : float
        World unit: the smallest voxel size of all views.

    Returns
    -------
    list of (str, ndarray)
        ``[(calibration, C)]`` for VW00; ``[(rotation, T), (calibration, C)]`` for a view at ``v`` degrees,
        ``T = [R | c_ref - R c]`` with ``R`` the rotation by ``v`` about y, ``c`` and ``c_ref`` the centres
        of the calibrated volumes. Each transform is a 3 x 4 affine on (x, y, z, 1).
    """
    calibration = (CALIBRATION_NAME, _calibration(series, unit))
    if series.view == 0:
        return [calibration]
    rotation = _rotation_about_y(series.view)
    shift = _centre(reference, unit) - rotation @ _centre(series, unit)
    return [(_rotation_name(series.view), np.hstack([rotation, shift[:, None]])), calibration]


def _reference(series: FusedSeries, everything: Sequence[FusedSeries]) -> FusedSeries:
    """The specimen's VW00 series of lowest channel; `series` itself when there is none."""
    candidates = [other for other in everything if other.specimen == series.specimen and other.view == 0]
    return min(candidates, key=lambda other: other.channel) if candidates else series


# --- XML ---------------------------------------------------------------------------------------------


def _number(value: float) -> str:
    """Shortest text that reads back as `value` (integers without a fraction, no ``-0``)."""
    value = float(value) + 0.0
    return str(int(value)) if value.is_integer() else repr(value)


def _numbers(values: Iterable[float]) -> str:
    return " ".join(_number(value) for value in values)


def _text(parent: ET.Element, tag: str, text: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = text
    return element


def _integer_pattern(values: Sequence[int]) -> str:
    """SpimData's integer pattern of sorted `values`: runs as ``first-last``, joined by commas (``0-3,5``)."""
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ",".join(str(first) if first == last else f"{first}-{last}" for first, last in runs)


def _image_loader(parent: ET.Element, series: Sequence[FusedSeries], xml_dir: Path) -> None:
    loader = ET.SubElement(parent, "ImageLoader", {"format": IMAGE_LOADER_FORMAT, "version": IMAGE_LOADER_VERSION, "zarr.version": ZARR_V3_TAG})
    _text(loader, "zarr", ".", type="relative")
    zgroups = ET.SubElement(loader, "zgroups")
    for view in series:
        path = Path(os.path.relpath(view.path, xml_dir)).as_posix()
        for timepoint in view.timepoints:
            ET.SubElement(zgroups, "zgroup", {"setup": str(view.setup_id), "tp": str(timepoint), "path": path, "indicies": str(timepoint)})


def _view_setups(parent: ET.Element, series: Sequence[FusedSeries]) -> None:
    setups = ET.SubElement(parent, "ViewSetups")
    for view in series:
        setup = ET.SubElement(setups, "ViewSetup")
        _text(setup, "id", str(view.setup_id))
        _text(setup, "name", view.name)
        _text(setup, "size", _numbers(view.size_xyz))
        voxel_size = ET.SubElement(setup, "voxelSize")
        _text(voxel_size, "unit", view.unit)
        _text(voxel_size, "size", _numbers(view.voxel_size_xyz))
        attributes = ET.SubElement(setup, "attributes")
        for name, value in (("illumination", ILLUMINATION), ("channel", view.channel), ("tile", view.specimen), ("angle", view.view)):
            _text(attributes, name, str(value))
    for name, tag, ids in (
        ("illumination", "Illumination", {ILLUMINATION}),
        ("channel", "Channel", {view.channel for view in series}),
        ("tile", "Tile", {view.specimen for view in series}),
        ("angle", "Angle", {view.view for view in series}),
    ):
        section = ET.SubElement(setups, "Attributes", {"name": name})
        for value in sorted(ids):
            entity = ET.SubElement(section, tag)
            _text(entity, "id", str(value))
            _text(entity, "name", str(value))
            if tag == "Angle":
                _text(entity, "axis", "0 1 0")
                _text(entity, "degrees", str(value))


def _view_registrations(parent: ET.Element, series: Sequence[FusedSeries], timepoints: Sequence[int]) -> None:
    unit = min(min(view.voxel_size_xyz) for view in series)
    transforms = {view.setup_id: initial_registration(view, _reference(view, series), unit) for view in series}
    registrations = ET.SubElement(parent, "ViewRegistrations")
    for timepoint in timepoints:
        for view in series:
            registration = ET.SubElement(registrations, "ViewRegistration", {"timepoint": str(timepoint), "setup": str(view.setup_id)})
            for name, affine in transforms[view.setup_id]:
                transform = ET.SubElement(registration, "ViewTransform", {"type": "affine"})
                _text(transform, "Name", name)
                _text(transform, "affine", _numbers(affine.ravel()))


def bigstitcher_dataset(series: Sequence[FusedSeries], xml_dir: Path) -> ET.Element:
    """Build the SpimData tree of a BigStitcher dataset over fused time series (no file is read or written).

    Parameters
    ----------
    series : sequence of FusedSeries
        The series, e.g. from :func:`read_fused_series`; ordered by view setup id in the tree.
    xml_dir : Path
        Folder the XML will be written to: series paths are written relative to it.

    Returns
    -------
    xml.etree.ElementTree.Element
        ``<SpimData version="0.2">`` with ``BasePath``, ``SequenceDescription`` (image loader, view setups and
        their attributes, timepoints as an integer pattern, missing views) and ``ViewRegistrations`` (every
        timepoint and setup, :func:`initial_registration`).

    Raises
    ------
    ValueError
        No series, two series with one setup id, or no published timepoint at all.
    """
    series = sorted(series, key=lambda view: view.setup_id)
    if not series:
        raise ValueError("a BigStitcher dataset needs at least one time series")
    ids = [view.setup_id for view in series]
    if len(set(ids)) != len(ids):
        raise ValueError(f"two series share a view setup (specimen, view, channel): {[view.name for view in series]}")
    timepoints = sorted({timepoint for view in series for timepoint in view.timepoints})
    if not timepoints:
        raise ValueError(f"no timepoint published yet in {', '.join(view.name for view in series)}")
    root = ET.Element("SpimData", {"version": SPIMDATA_VERSION})
    _text(root, "BasePath", ".", type="relative")
    sequence = ET.SubElement(root, "SequenceDescription")
    _image_loader(sequence, series, xml_dir)
    _view_setups(sequence, series)
    _text(ET.SubElement(sequence, "Timepoints", {"type": "pattern"}), "integerpattern", _integer_pattern(timepoints))
    missing = ET.SubElement(sequence, "MissingViews")
    for timepoint in timepoints:
        for view in series:
            if timepoint not in view.timepoints:
                ET.SubElement(missing, "MissingView", {"timepoint": str(timepoint), "setup": str(view.setup_id)})
    _view_registrations(root, series, timepoints)
    return root


# --- live file ---------------------------------------------------------------------------------------


def _transform_names(registration: ET.Element) -> list[str | None]:
    return [transform.findtext("Name") for transform in registration.iter("ViewTransform")]


def _keep_refinements(tree: ET.Element, previous: ET.Element) -> None:
    """Carry into `tree` what BigStitcher saved into `previous`: refined registrations and its own sections."""
    refined = {
        (old.get("timepoint"), old.get("setup")): old
        for old in previous.iterfind("ViewRegistrations/ViewRegistration")
    }
    registrations = tree.find("ViewRegistrations")
    for index, new in enumerate(list(registrations)):  # type: ignore[arg-type]
        old = refined.get((new.get("timepoint"), new.get("setup")))
        if old is not None and _transform_names(old) != _transform_names(new):
            registrations[index] = old  # type: ignore[index]
    tree.extend(section for section in previous if section.tag not in _WRITTEN_SECTIONS)


def _previous_dataset(path: Path) -> ET.Element | None:
    """The dataset.xml on disk, or None when there is none or it does not parse (then it is replaced, with a warning)."""
    if not path.is_file():
        return None
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as error:
        logger.warning("%s: unreadable (%s); rewritten without the registrations saved in it", path, error)
        return None


def _xml_text(tree: ET.Element) -> str:
    ET.indent(tree, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(tree, encoding="unicode") + "\n"


def write_bigstitcher_dataset(fused_root: Path) -> Path:
    """Write or refresh ``<fused root>/dataset.xml`` over the root's fused time series (call it after each append).

    Parameters
    ----------
    fused_root : Path
        The fusion output root holding ``SPM00_VW00_CHN00.ome.zarr``... (a series whose first timepoint is
        still being appended, without ``zarr.json``, is left for the next call).

    Returns
    -------
    Path
        The dataset XML (:func:`isoview_core.layout.bigstitcher_dataset_path`), replaced atomically, and only
        when its content changed; refinements BigStitcher saved into it are kept (see the module notes).

    Raises
    ------
    LayoutError
        The root is no folder or holds no published time series.
    FormatError
        A series' metadata is not that of a fused time series.
    """
    root = Path(fused_root)
    if not root.is_dir():
        raise LayoutError(f"{root}: no such folder (expected a fused root, <acquisition>{layout.FUSED_ROOT_SUFFIX})")
    target = layout.bigstitcher_dataset_path(root)
    with exclusive_lock(layout.bigstitcher_lock_path(root)):
        paths = [path for path in layout.series_files(root) if (path / "zarr.json").is_file()]
        if not paths:
            raise LayoutError(f"{root}: no fused time series to export (SPM00_VW00_CHN00{layout.SERIES_SUFFIX}... appear as timepoints are fused)")
        try:
            tree = bigstitcher_dataset([read_fused_series(path) for path in paths], root)
        except ValueError as error:
            raise LayoutError(f"{root}: {error}") from error
        previous = _previous_dataset(target)
        if previous is not None:
            _keep_refinements(tree, previous)
        text = _xml_text(tree)
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            write_text_atomically(target, text)
            logger.info("%s: %d view setups, timepoints %s", target, len(paths), tree.findtext("SequenceDescription/Timepoints/integerpattern"))
    return target
