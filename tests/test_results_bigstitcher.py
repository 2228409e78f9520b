"""The BigStitcher dataset.xml over fused time series: SpimData structure, numbers, registration, live rewrites,
and an independent reader (pydantic-bigstitcher's models of the BigStitcher XML)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import zarr

from isoview_core import layout
from isoview_core.errors import FormatError, LayoutError
from isoview_core.results.bigstitcher import (
    IMAGE_LOADER_FORMAT,
    bigstitcher_dataset,
    read_fused_series,
    write_bigstitcher_dataset,
)

SHAPE_ZYX = (8, 32, 24)
VW00_VOXEL_ZYX = (2.0, 0.4, 0.4)
VW90_VOXEL_ZYX = (1.6, 0.4, 0.8)


def write_series(
    root: Path, *, view: int, channel: int, timepoints: list[int], voxel_zyx=VW00_VOXEL_ZYX, shape_zyx=SHAPE_ZYX, specimen: int = 0
) -> Path:
    """A live fused time series as results/series.py publishes it: NGFF 0.5 (t, z, y, x), ``isoview`` attributes."""
    path = layout.fused_series_path(root, specimen, view, channel)
    ome = {
        "version": "0.5",
        "multiscales": [
            {
                "name": path.name.removesuffix(".ome.zarr"),
                "axes": [{"name": "t", "type": "time", "unit": "second"}]
                + [{"name": axis, "type": "space", "unit": "micrometer"} for axis in "zyx"],
                "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [10.0, *voxel_zyx]}]}],
            }
        ],
        "omero": {"channels": [{"color": "FFFFFF", "window": {"min": 0, "max": 65535, "start": 0, "end": 900}, "label": "x", "active": True}]},
    }
    isoview = {
        "specimen": specimen,
        "view": view,
        "channel": channel,
        "cameras": [0, 1] if view == 0 else [2, 3],
        "timepoints": {str(t): f"fp{t}" for t in timepoints},
        "time_interval_s": 10.0,
    }
    group = zarr.create_group(store=str(path), zarr_format=3, attributes={"ome": ome, "isoview": isoview}, overwrite=True)
    array = group.create_array("0", shape=(max(timepoints) + 1, *shape_zyx), dtype="uint16", chunks=(1, *shape_zyx), dimension_names=["t", "z", "y", "x"])
    for t in timepoints:
        array[t] = t + 1
    return path


@pytest.fixture
def fused_root(tmp_path: Path) -> Path:
    """VW00 CHN00 with timepoints 0-2, VW90 CHN01 with 0-1 (its third still being fused)."""
    root = tmp_path / "acq.fused"
    write_series(root, view=0, channel=0, timepoints=[0, 1, 2])
    write_series(root, view=90, channel=1, timepoints=[0, 1], voxel_zyx=VW90_VOXEL_ZYX)
    return root


def floats(text: str | None) -> list[float]:
    assert text is not None
    return [float(value) for value in text.split()]


def registration_model(registration: ET.Element) -> np.ndarray:
    """4 x 4 world-from-voxel model of a ViewRegistration: its transforms multiplied in list order (SpimData's rule)."""
    model = np.eye(4)
    for transform in registration.iter("ViewTransform"):
        affine = np.vstack([np.reshape(floats(transform.findtext("affine")), (3, 4)), [0, 0, 0, 1]])
        model = model @ affine
    return model


def registration(tree: ET.Element, timepoint: int, setup: int) -> ET.Element:
    found = tree.find(f"ViewRegistrations/ViewRegistration[@timepoint='{timepoint}'][@setup='{setup}']")
    assert found is not None, (timepoint, setup)
    return found


def test_view_setups_sizes_voxel_sizes_and_attributes(fused_root: Path) -> None:
    tree = ET.parse(write_bigstitcher_dataset(fused_root)).getroot()
    assert tree.tag == "SpimData" and tree.get("version") == "0.2"
    assert tree.find("BasePath").get("type") == "relative" and tree.findtext("BasePath") == "."
    setups = {setup.findtext("name"): setup for setup in tree.iterfind("SequenceDescription/ViewSetups/ViewSetup")}
    assert sorted(setups) == ["SPM00_VW00_CHN00", "SPM00_VW90_CHN01"]
    vw00, vw90 = setups["SPM00_VW00_CHN00"], setups["SPM00_VW90_CHN01"]
    assert (vw00.findtext("id"), vw90.findtext("id")) == ("0", "101")
    assert vw00.findtext("size") == vw90.findtext("size") == "24 32 8"  # x y z
    assert floats(vw00.findtext("voxelSize/size")) == [0.4, 0.4, 2.0]
    assert floats(vw90.findtext("voxelSize/size")) == [0.8, 0.4, 1.6]  # from its own zarr scale, reordered to x y z
    assert vw00.findtext("voxelSize/unit") == "µm"
    assert {child.tag: child.text for child in vw90.find("attributes")} == {"illumination": "0", "channel": "1", "tile": "0", "angle": "90"}
    sections = {section.get("name"): section for section in tree.iterfind("SequenceDescription/ViewSetups/Attributes")}
    assert sorted(sections) == ["angle", "channel", "illumination", "tile"]
    assert [channel.findtext("id") for channel in sections["channel"]] == ["0", "1"]
    angle90 = sections["angle"].find("Angle[id='90']")
    assert floats(angle90.findtext("axis")) == [0, 1, 0] and angle90.findtext("degrees") == "90"


def test_timepoints_missing_views_and_loader_paths(fused_root: Path) -> None:
    xml = write_bigstitcher_dataset(fused_root)
    assert xml == fused_root / "dataset.xml"
    tree = ET.parse(xml).getroot()
    sequence = tree.find("SequenceDescription")
    assert sequence.find("Timepoints").get("type") == "pattern" and sequence.findtext("Timepoints/integerpattern") == "0-2"
    assert [(view.get("timepoint"), view.get("setup")) for view in sequence.iterfind("MissingViews/MissingView")] == [("2", "101")]
    loader = sequence.find("ImageLoader")
    assert (loader.get("format"), loader.get("version"), loader.get("zarr.version")) == (IMAGE_LOADER_FORMAT, "3.1", "ZarrV3")
    container = loader.find("zarr")
    assert container.get("type") == "relative" and container.text == "."
    zgroups = [(group.get("setup"), group.get("tp"), group.get("path"), group.get("indicies")) for group in loader.iterfind("zgroups/zgroup")]
    assert zgroups == [
        ("0", "0", "SPM00_VW00_CHN00.ome.zarr", "0"),
        ("0", "1", "SPM00_VW00_CHN00.ome.zarr", "1"),
        ("0", "2", "SPM00_VW00_CHN00.ome.zarr", "2"),
        ("101", "0", "SPM00_VW90_CHN01.ome.zarr", "0"),
        ("101", "1", "SPM00_VW90_CHN01.ome.zarr", "1"),
    ]
    # resolved as the loader does (XML folder / <zarr> / path / dataset path), the index along t holds that timepoint
    for setup, tp, path, index in zgroups:
        array = zarr.open_array(str(xml.parent / container.text / path / "0"), mode="r")
        assert array[int(index)].max() == int(tp) + 1
    registrations = [(r.get("timepoint"), r.get("setup")) for r in tree.iterfind("ViewRegistrations/ViewRegistration")]
    assert registrations == [(str(t), s) for t in range(3) for s in ("0", "101")]


def test_gaps_in_the_published_timepoints_are_left_out(tmp_path: Path) -> None:
    root = tmp_path / "acq.fused"
    write_series(root, view=0, channel=0, timepoints=[0, 1, 3, 7, 8, 9])
    write_series(root, view=90, channel=1, timepoints=[1, 3], voxel_zyx=VW90_VOXEL_ZYX)
    tree = ET.parse(write_bigstitcher_dataset(root)).getroot()
    assert tree.findtext("SequenceDescription/Timepoints/integerpattern") == "0-1,3,7-9"
    missing = [(int(v.get("timepoint")), int(v.get("setup"))) for v in tree.iterfind("SequenceDescription/MissingViews/MissingView")]
    assert missing == [(0, 101), (7, 101), (8, 101), (9, 101)]


def test_vw00_registration_is_its_calibration(fused_root: Path) -> None:
    tree = ET.parse(write_bigstitcher_dataset(fused_root)).getroot()
    transforms = list(registration(tree, 1, 0).iter("ViewTransform"))
    assert [t.findtext("Name") for t in transforms] == ["calibration"]
    # BigStitcher's convention: world unit = the smallest voxel size of all views (0.4 um)
    assert floats(transforms[0].findtext("affine")) == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 5, 0]


def test_vw90_registration_rotates_90_degrees_about_y_onto_vw00(fused_root: Path) -> None:
    tree = ET.parse(write_bigstitcher_dataset(fused_root)).getroot()
    vw90 = registration(tree, 0, 101)
    names = [t.findtext("Name") for t in vw90.iter("ViewTransform")]
    assert names == ["VW90 onto VW00: 90 degrees about y", "calibration"]  # outermost first
    assert floats(list(vw90.iter("ViewTransform"))[1].findtext("affine")) == [2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 4, 0]
    model, vw00 = registration_model(vw90), registration_model(registration(tree, 0, 0))
    x, y, z = 23, 31, 7  # last voxel index along x, y, z
    # the centres of the two volumes coincide
    np.testing.assert_allclose(model @ [x / 2, y / 2, z / 2, 1], vw00 @ [x / 2, y / 2, z / 2, 1])
    np.testing.assert_allclose(vw00 @ [x / 2, y / 2, z / 2, 1], [11.5, 15.5, 17.5, 1])
    # a step along VW90's z (1.6 um = 4 units) goes to world +x, along its x (0.8 um = 2 units) to world -z, y stays y
    origin = model @ [0, 0, 0, 1]
    np.testing.assert_allclose(model @ [0, 0, 1, 1] - origin, [4, 0, 0, 0])
    np.testing.assert_allclose(model @ [1, 0, 0, 1] - origin, [0, 0, -2, 0])
    np.testing.assert_allclose(model @ [0, 1, 0, 1] - origin, [0, 1, 0, 0])
    # hence voxel (0, 0, 0) lands at c00 - R c90, with c90 = (23, 15.5, 14) and R c90 = (z, y, -x) = (14, 15.5, -23)
    np.testing.assert_allclose(origin, [11.5 - 14, 0, 17.5 + 23, 1])
    assert np.isclose(np.linalg.det(model[:3, :3]), 2 * 1 * 4)  # a proper rotation: no mirror


def test_rewriting_is_idempotent_and_follows_appends(fused_root: Path) -> None:
    xml = write_bigstitcher_dataset(fused_root)
    first, inode = xml.read_bytes(), xml.stat().st_ino
    assert write_bigstitcher_dataset(fused_root) == xml
    assert xml.read_bytes() == first and xml.stat().st_ino == inode  # unchanged: not even replaced
    write_series(fused_root, view=90, channel=1, timepoints=[0, 1, 2, 3], voxel_zyx=VW90_VOXEL_ZYX)
    tree = ET.parse(write_bigstitcher_dataset(fused_root)).getroot()
    assert tree.findtext("SequenceDescription/Timepoints/integerpattern") == "0-3"
    assert [(v.get("timepoint"), v.get("setup")) for v in tree.iterfind("SequenceDescription/MissingViews/MissingView")] == [("3", "0")]
    assert len(tree.findall("SequenceDescription/ImageLoader/zgroups/zgroup")) == 7
    assert not list(fused_root.glob("*.partial-*"))


def test_refinements_saved_by_bigstitcher_survive_a_rewrite(fused_root: Path) -> None:
    xml = write_bigstitcher_dataset(fused_root)
    tree = ET.parse(xml).getroot()
    refined = registration(tree, 1, 101)
    stitching = ET.Element("ViewTransform", {"type": "affine"})
    ET.SubElement(stitching, "Name").text = "Stitching Transform"
    ET.SubElement(stitching, "affine").text = "1 0 0 3.5 0 1 0 -2 0 0 1 0"
    refined.insert(0, stitching)
    boxes = ET.SubElement(tree, "BoundingBoxes")
    ET.SubElement(boxes, "BoundingBox", {"title": "embryo", "min": "0 0 0", "max": "10 10 10"})
    ET.ElementTree(tree).write(xml, encoding="UTF-8", xml_declaration=True)  # as BigStitcher's "Save" would

    write_series(fused_root, view=0, channel=0, timepoints=[0, 1, 2, 3])
    rewritten = ET.parse(write_bigstitcher_dataset(fused_root)).getroot()
    kept = registration(rewritten, 1, 101)
    assert [t.findtext("Name") for t in kept.iter("ViewTransform")][0] == "Stitching Transform"
    np.testing.assert_allclose(registration_model(kept)[:3, 3], registration_model(registration(rewritten, 0, 101))[:3, 3] + [3.5, -2, 0])
    assert [t.findtext("Name") for t in registration(rewritten, 3, 101).iter("ViewTransform")][0].startswith("VW90 onto VW00")
    assert rewritten.find("BoundingBoxes/BoundingBox").get("title") == "embryo"
    assert rewritten.findtext("SequenceDescription/Timepoints/integerpattern") == "0-3"


def test_an_independent_reader_parses_it(fused_root: Path) -> None:
    from pydantic_bigstitcher import SpimData2, ZGroupE
    from pydantic_bigstitcher.transform import parse_transform_xyz

    data = SpimData2.from_xml(write_bigstitcher_dataset(fused_root).read_bytes())
    assert data.base_path.type == "relative" and data.base_path.path == "."
    loader = data.sequence_description.image_loader
    assert loader.fmt == "bdv.multimg.zarr" and loader.zarr.type == "relative" and loader.zarr.path == "."
    groups = loader.zgroups.elements
    assert all(isinstance(group, ZGroupE) for group in groups)
    assert [(group.setup, group.tp, group.indicies) for group in groups][-1] == ("101", "1", "1")
    setups = data.sequence_description.view_setups.elements
    assert [(s.ident, s.name, s.size, s.voxel_size.size) for s in setups] == [
        ("0", "SPM00_VW00_CHN00", "24 32 8", "0.4 0.4 2"),
        ("101", "SPM00_VW90_CHN01", "24 32 8", "0.8 0.4 1.6"),
    ]
    assert setups[1].attributes.angle == "90" and setups[1].attributes.channel == "1"
    assert data.sequence_description.time_points.elements == ["0-2"]
    assert [(m.timepoint, m.setup) for m in data.sequence_description.missing_views.elements] == [("2", "101")]
    rotation = parse_transform_xyz(data.view_registrations.elements[1].view_transforms[0]).transform
    assert rotation.affine["x"] == {"x": 0, "y": 0, "z": 1} and rotation.affine["z"] == {"x": -1, "y": 0, "z": 0}


def test_the_xml_uses_only_names_the_spimdata_readers_know(fused_root: Path) -> None:
    """Second check, against the element and attribute names of spimdata's XmlKeys and the loader's XmlIo."""
    spimdata = {
        "SpimData", "BasePath", "SequenceDescription", "ImageLoader", "ViewSetups", "ViewSetup", "id", "name", "size",
        "voxelSize", "unit", "attributes", "illumination", "channel", "tile", "angle", "Attributes", "Illumination",
        "Channel", "Tile", "Angle", "axis", "degrees", "Timepoints", "integerpattern", "MissingViews", "MissingView",
        "ViewRegistrations", "ViewRegistration", "ViewTransform", "Name", "affine",
    }  # fmt: skip
    loader = {"zarr", "zgroups", "zgroup"}
    tree = ET.parse(write_bigstitcher_dataset(fused_root)).getroot()
    assert {element.tag for element in tree.iter()} == spimdata | loader
    zgroup_attributes = {name for group in tree.iter("zgroup") for name in group.attrib}
    assert zgroup_attributes == {"setup", "tp", "path", "indicies"}


def test_read_fused_series(fused_root: Path) -> None:
    series = read_fused_series(layout.fused_series_path(fused_root, 0, 90, 1))
    assert (series.specimen, series.view, series.channel, series.setup_id) == (0, 90, 1, 101)
    assert series.size_xyz == (24, 32, 8) and series.voxel_size_xyz == (0.8, 0.4, 1.6)
    assert series.timepoints == (0, 1) and series.unit == "µm" and series.name == "SPM00_VW90_CHN01"


def test_a_view_that_is_no_multiple_of_90_degrees_is_refused(tmp_path: Path) -> None:
    path = write_series(tmp_path, view=45, channel=0, timepoints=[0])
    with pytest.raises(FormatError, match="not a fused time series"):
        read_fused_series(path)


def test_a_root_without_series_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "acq.fused").mkdir()
    with pytest.raises(LayoutError, match=r"acq\.fused: no fused time series"):
        write_bigstitcher_dataset(tmp_path / "acq.fused")
    with pytest.raises(LayoutError, match="no such folder"):
        write_bigstitcher_dataset(tmp_path / "elsewhere")


def test_a_series_being_created_is_left_for_the_next_call(fused_root: Path) -> None:
    (layout.fused_series_path(fused_root, 0, 0, 1)).mkdir()  # first append in progress: no zarr.json yet
    tree = ET.parse(write_bigstitcher_dataset(fused_root)).getroot()
    assert len(tree.findall("SequenceDescription/ViewSetups/ViewSetup")) == 2


def test_the_tree_builder_refuses_nothing_to_show(fused_root: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        bigstitcher_dataset([], fused_root)
    series = read_fused_series(layout.fused_series_path(fused_root, 0, 0, 0))
    with pytest.raises(ValueError, match="share a view setup"):
        bigstitcher_dataset([series, series], fused_root)
    with pytest.raises(ValueError, match="no timepoint published"):
        bigstitcher_dataset([series.model_copy(update={"timepoints": ()})], fused_root)
