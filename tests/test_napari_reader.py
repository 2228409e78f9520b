"""The napari plugin: IsoView results open as layers with their physical scale, contrast and time axis, and grow live.

Headless: napari's Qt-free ``ViewerModel`` opens the folders through the plugin (``plugin="isoview"``), as
``napari ACQ.fused`` does in a window.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # npe2's pydantic-v1 style models, at import
    import napari
    import npe2
    from napari.components import ViewerModel

from isoview_core.config import ProcessingConfig
from isoview_core.formats.omezarr import ome_zarr_voxel_size, read_ome_zarr, read_ome_zarr_labels, write_ome_zarr
from isoview_core.layout import corrected_paths, default_corrected_root, default_fused_root, fused_series_path, series_files
from isoview_core.pipeline.correction import process_dataset
from isoview_core.pipeline.fusion import fuse
from isoview_core.results.series import append_timepoint
from isoview_napari.live import follow, refresh_series_layers
from isoview_napari.reader import napari_get_reader

SHAPE = (6, 24, 32)
VOXEL = (2.0, 0.5, 0.5)


@pytest.fixture(scope="module", autouse=True)
def _isoview_plugin_discovered():
    """napari finds the plugin through its ``napari.manifest`` entry point (``napari.Viewer`` discovers by itself)."""
    npe2.PluginManager.instance().discover()


@pytest.fixture(scope="module")
def acquisition(small_acquisition, tmp_path_factory) -> Path:
    """An acquisition folder ``acq`` with its default ``acq.corrected`` and ``acq.fused`` beside it (2 timepoints)."""
    folder = tmp_path_factory.mktemp("napari") / "acq"
    folder.mkdir()
    config = ProcessingConfig(
        acquisition=small_acquisition,
        corrected_dir=default_corrected_root(folder),
        fused_dir=default_fused_root(folder),
        save_diagnostics=False,
    )
    process_dataset(config)
    fuse(config)
    return folder


def _open(path: Path) -> ViewerModel:
    viewer = ViewerModel()
    viewer.open(str(path), plugin="isoview")
    return viewer


def _attributes(series: Path) -> dict:
    return json.loads((series / "zarr.json").read_text())["attributes"]


def _window(series: Path) -> list[float]:
    """The series' OMERO contrast window ``[start, end]``."""
    window = _attributes(series)["ome"]["omero"]["channels"][0]["window"]
    return [window["start"], window["end"]]


def _level0_scale(attributes: dict) -> list[float]:
    return attributes["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]


def test_a_fused_root_opens_one_layer_per_view_with_the_series_scale_window_and_time_axis(acquisition):
    fused = default_fused_root(acquisition)
    viewer = _open(fused)
    series = series_files(fused)
    assert [layer.name for layer in viewer.layers] == ["VW00 CHN00", "VW90 CHN01"]
    assert [layer.colormap.name for layer in viewer.layers] == ["green", "magenta"]
    intervals = []
    for layer, path in zip(viewer.layers, series, strict=True):
        attributes = _attributes(path)
        assert list(layer.scale[1:]) == pytest.approx(_level0_scale(attributes)[1:])
        assert [str(unit) for unit in layer.units] == ["second", "micrometer", "micrometer", "micrometer"]
        start, end = _window(path)
        assert layer.contrast_limits == pytest.approx([start, end])
        data = np.asarray(layer.data)
        np.testing.assert_array_equal(data, zarr.open_array(path / "0", mode="r")[:])
        assert data.min() < start < end < data.max()  # neither black nor saturated
        assert layer.blending == "additive"
        assert layer.metadata["isoview"]["timepoints"] == attributes["isoview"]["timepoints"]
        intervals.append(attributes["isoview"]["time_interval_s"])
    # each series times itself from its own channel's XML: one common step keeps a slider position one timepoint
    assert viewer.layers[0].scale[0] == viewer.layers[1].scale[0] == pytest.approx(np.median(intervals))
    assert viewer.dims.ndim == 4 and viewer.dims.axis_labels == ("t", "z", "y", "x")
    assert viewer.dims.nsteps[0] == 2 == len(_attributes(series[0])["isoview"]["timepoints"])


def test_the_acquisition_folder_opens_its_fused_series_and_one_series_opens_alone(acquisition):
    assert [layer.name for layer in _open(acquisition).layers] == ["VW00 CHN00", "VW90 CHN01"]
    series = fused_series_path(default_fused_root(acquisition), 0, 90, 1)
    (layer,) = _open(series).layers
    assert layer.name == "VW90 CHN01" and layer.data.shape[0] == 2
    assert list(layer.scale) == pytest.approx(_level0_scale(_attributes(series)))


def test_a_corrected_root_opens_each_camera_and_its_segmentation_as_labels(acquisition):
    corrected = default_corrected_root(acquisition)
    viewer = _open(corrected)
    images = [layer for layer in viewer.layers if isinstance(layer, napari.layers.Image)]
    labels = [layer for layer in viewer.layers if isinstance(layer, napari.layers.Labels)]
    names = ["CM00 CHN00", "CM01 CHN00", "CM02 CHN01", "CM03 CHN01"]
    assert [layer.name for layer in images] == names
    assert [layer.name for layer in labels] == [f"{name} segmentation" for name in names]
    for camera, (image, label) in enumerate(zip(images, labels, strict=True)):
        channel = camera // 2
        volume = corrected_paths(corrected, 0, 1, camera, channel).volume
        assert list(image.scale) == list(label.scale) == pytest.approx([1.0, *ome_zarr_voxel_size(volume)])
        np.testing.assert_array_equal(np.asarray(image.data[1]), read_ome_zarr(volume)[:])
        segmentation = read_ome_zarr_labels(volume)[:]
        assert segmentation.max() > 0
        np.testing.assert_array_equal(np.asarray(label.data[1]), segmentation)
        first = np.asarray(image.data[0])
        low, high = image.contrast_limits
        assert first.min() < low < high < first.max()
        assert image.colormap.name == ("green", "magenta")[channel] and image.blending == "additive"
        assert image.metadata["isoview"]["views"][0]["camera"] == camera


def test_the_reader_declines_what_it_does_not_recognise(acquisition, small_acquisition, tmp_path):
    volume = corrected_paths(default_corrected_root(acquisition), 0, 0, 0, 0).volume
    (tmp_path / "notes.txt").write_text("not an image")
    for path in (small_acquisition, volume, tmp_path, tmp_path / "notes.txt", tmp_path / "missing"):
        assert napari_get_reader(str(path)) is None, path
    assert napari_get_reader([str(acquisition), str(acquisition)]) is None
    assert napari_get_reader(str(acquisition)) is not None


# --- live: timepoints published after opening ----------------------------------------------------------


def _publish(series: Path, timepoint: int, *, minute: float, levels: int = 0, view: int = 0) -> Path:
    """Write a (z, y, x) volume with a masked border and publish it as `timepoint`, stamped `minute` minutes in."""
    data = np.random.default_rng(timepoint).integers(100, 4000, SHAPE, dtype=np.uint16)
    data[:, :4] = 0
    folder = series.parent / "volumes" / series.name
    volume = write_ome_zarr(folder / f"TM{timepoint:06d}.ome.zarr", data, voxel_size_um=VOXEL, pyramid_levels=levels)
    stamp = f"2026-12-03T10:{int(minute):02d}:{round(minute % 1 * 60):02d}+00:00"
    attributes = {"specimen": 0, "view": view, "channel": view // 90, "cameras": [0, 1]}
    append_timepoint(series, volume, timepoint=timepoint, fingerprint=f"f{timepoint}", timestamp=stamp, attributes=attributes)
    return volume


def test_series_timed_apart_by_their_own_xml_share_one_time_step(tmp_path):
    root = tmp_path / "acq.fused"
    for view, minutes in ((0, (0, 1, 2)), (90, (0.5, 1.55, 2.6))):  # 60 s and 63 s per timepoint
        for timepoint, minute in enumerate(minutes):
            _publish(fused_series_path(root, 0, view, view // 90), timepoint, minute=minute, view=view)
    viewer = _open(root)
    assert [layer.metadata["isoview"]["time_interval_s"] for layer in viewer.layers] == [60.0, 63.0]
    assert [layer.scale[0] for layer in viewer.layers] == [61.5, 61.5]
    assert viewer.dims.nsteps[0] == 3


@pytest.mark.parametrize("levels", [0, 1])
def test_a_timepoint_published_after_opening_is_shown_after_one_refresh(tmp_path, levels):
    series = tmp_path / "acq.fused" / "SPM00_VW00_CHN00.ome.zarr"
    for timepoint in (0, 1):
        _publish(series, timepoint, minute=timepoint, levels=levels)
    viewer = _open(series)
    (layer,) = viewer.layers
    assert layer.multiscale == bool(levels) and layer.level_shapes[0][0] == 2 and layer.scale[0] == 60.0
    viewer.dims.current_step = (1, 3, 0, 0)  # the last timepoint, plane 3
    assert refresh_series_layers(viewer) == []
    third = _publish(series, 2, minute=2, levels=levels)
    assert refresh_series_layers(viewer) == ["VW00 CHN00"]
    assert [tuple(shape) for shape in layer.level_shapes] == [(3, *read_ome_zarr(third, level).shape) for level in range(levels + 1)]
    assert viewer.dims.nsteps[0] == 3
    assert viewer.dims.current_step[:2] == (2, 3)  # it was on the last timepoint: it follows to the new one
    shown = read_ome_zarr(third, layer.data_level)[3]
    np.testing.assert_array_equal(layer._slice.image.raw, shown)  # what napari draws now
    assert layer.contrast_limits == pytest.approx(_window(series))


def test_a_viewer_looking_back_stays_there_and_the_time_step_follows_the_new_timestamps(tmp_path):
    series = tmp_path / "acq.fused" / "SPM00_VW00_CHN00.ome.zarr"
    for timepoint, minute in enumerate((0, 1, 2, 4)):  # steps of 60, 60 and 120 s: 60 s per timepoint
        _publish(series, timepoint, minute=minute)
    viewer = _open(series)
    (layer,) = viewer.layers
    assert layer.scale[0] == 60.0
    viewer.dims.current_step = (2, 4, 0, 0)  # timepoint 2 of 0..3, plane 4
    _publish(series, 4, minute=8)  # a fourth step of 240 s: the median becomes 90 s
    assert refresh_series_layers(viewer) == ["VW00 CHN00"]
    assert layer.scale[0] == pytest.approx(90.0) and layer.metadata["isoview"]["time_interval_s"] == pytest.approx(90.0)
    assert layer.data.shape[0] == 5 and viewer.dims.current_step[:2] == (2, 4)


def test_a_timepoint_whose_append_is_not_finished_is_not_shown(tmp_path):
    series = tmp_path / "acq.fused" / "SPM00_VW00_CHN00.ome.zarr"
    for timepoint in (0, 1):
        _publish(series, timepoint, minute=timepoint)
    viewer = _open(series)
    group = series / "zarr.json"
    before = group.read_text()
    _publish(series, 2, minute=2)
    finished = group.read_text()
    group.write_text(before)  # chunks and array grown, the group not yet rewritten: a kill between steps 4 and 5
    assert zarr.open_array(series / "0", mode="r").shape[0] == 3
    assert refresh_series_layers(viewer) == [] and viewer.layers[0].data.shape[0] == 2
    assert _open(series).layers[0].data.shape[0] == 2  # nor by a viewer opened now
    group.write_text(finished)
    assert refresh_series_layers(viewer) == ["VW00 CHN00"] and viewer.layers[0].data.shape[0] == 3


def test_follow_refreshes_on_each_tick_of_a_qt_timer_owned_by_the_application(tmp_path):
    from qtpy.QtCore import QCoreApplication

    application = QCoreApplication.instance() or QCoreApplication([])  # no display needed
    series = tmp_path / "acq.fused" / "SPM00_VW00_CHN00.ome.zarr"
    for timepoint in (0, 1):
        _publish(series, timepoint, minute=timepoint)
    viewer = _open(series)
    assert viewer.dims.current_step[0] == 0
    timer = follow(viewer, 2.5)
    try:
        assert timer.isActive() and timer.interval() == 2500 and timer.parent() is application
        assert viewer.dims.current_step[0] == 1  # live views start on the newest timepoint
        _publish(series, 2, minute=2)
        timer.timeout.emit()  # one tick, delivered at once (the timer and the viewer live in this thread)
        assert viewer.layers[0].data.shape[0] == 3 and viewer.dims.current_step[0] == 2
    finally:
        timer.stop()
    with pytest.raises(ValueError, match="interval_s must be positive"):
        follow(viewer, 0)
