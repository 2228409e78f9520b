"""The fused views' live time series follow the fused volumes on disk: new timepoints, reruns, interrupted appends."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from xml.etree import ElementTree

import numpy as np
import pytest
import zarr

from isoview_core.config import OutputConfig, ProcessingConfig
from isoview_core.formats.omezarr.reader import read_ome_zarr, read_ome_zarr_attributes
from isoview_core.layout import (
    FusedPaths,
    PairId,
    configured_corrected_paths,
    corrected_paths,
    corrected_series_path,
    fused_series_path,
    series_files,
)
from isoview_core.pipeline.correction import process_dataset
from isoview_core.pipeline.fusion import fuse
from isoview_core.pipeline.series import update_all_corrected_series, update_all_fused_series, update_fused_series
from isoview_core.results.bigstitcher import write_bigstitcher_dataset
from isoview_core.results.series import published_timepoints, record_fingerprint

PAIRS = (PairId(0, 0, (0, 1), 0, 0), PairId(0, 0, (2, 3), 90, 1))


@pytest.fixture(scope="module")
def fused(small_acquisition, tmp_path_factory):
    """The shared small acquisition corrected and fused (both timepoints, both pairs), without figures."""
    root = tmp_path_factory.mktemp("series")
    config = ProcessingConfig(acquisition=small_acquisition, corrected_dir=root / "corrected", fused_dir=root / "fused", save_diagnostics=False)
    process_dataset(config)
    fuse(config)
    return config


def _member(pair: PairId, timepoint: int) -> PairId:
    return PairId(pair.specimen, timepoint, pair.cameras, pair.view, pair.channel)


def _assert_series_matches_volumes(config: ProcessingConfig, pair: PairId, timepoints=(0, 1)) -> None:
    root = config.resolved_fused_dir()
    series = zarr.open_array(fused_series_path(root, pair.specimen, pair.view, pair.channel) / "0", mode="r")
    assert series.shape[0] == max(timepoints) + 1
    for timepoint in timepoints:
        paths = FusedPaths(root, _member(pair, timepoint))
        np.testing.assert_array_equal(series[timepoint], read_ome_zarr(paths.volume)[:])
    published = published_timepoints(fused_series_path(root, pair.specimen, pair.view, pair.channel))
    assert published == {t: record_fingerprint(FusedPaths(root, _member(pair, t)).record) for t in timepoints}


def test_fusion_publishes_every_timepoint_of_each_view_in_its_series(fused):
    root = fused.resolved_fused_dir()
    assert series_files(root) == [root / "SPM00_VW00_CHN00.ome.zarr", root / "SPM00_VW90_CHN01.ome.zarr"]
    for pair in PAIRS:
        _assert_series_matches_volumes(fused, pair)


def test_the_time_scale_is_the_interval_between_the_xml_timestamps(fused):
    root = fused.resolved_fused_dir()
    stamps = [
        datetime.fromisoformat(read_ome_zarr_attributes(configured_corrected_paths(fused, 0, t, 0, 0).volume)["xml"]["timestamp"]) for t in (0, 1)
    ]
    group = json.loads((fused_series_path(root, 0, 0, 0) / "zarr.json").read_text())
    scale = group["attributes"]["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale[0] == pytest.approx((stamps[1] - stamps[0]).total_seconds())
    volume_group = json.loads((FusedPaths(root, PAIRS[0]).volume / "zarr.json").read_text())
    assert scale[1:] == volume_group["attributes"]["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"]


def test_a_rerun_timepoint_is_rewritten_in_the_series(fused):
    series = fused_series_path(fused.resolved_fused_dir(), 0, 0, 0)
    before, first_volume = published_timepoints(series), zarr.open_array(series / "0", mode="r")[1]
    rerun = fused.model_copy(update={"timepoints": [1], "overwrite": True, "fusion": fused.fusion.model_copy(update={"fusion_type": "average"})})
    fuse(rerun, estimate_params=False)
    after = published_timepoints(series)
    assert after[0] == before[0] and after[1] != before[1]  # a new record, so a new fingerprint
    assert not np.array_equal(zarr.open_array(series / "0", mode="r")[1], first_volume)  # other blending, other data...
    for pair in PAIRS:
        _assert_series_matches_volumes(fused, pair)  # ...equal to the rerun's volume


def test_an_interrupted_append_is_repaired_by_the_next_update_of_the_view(fused):
    root = fused.resolved_fused_dir()
    series = fused_series_path(root, 0, 90, 1)
    group_path = series / "zarr.json"
    group = json.loads(group_path.read_text())
    del group["attributes"]["isoview"]["timepoints"]["1"]  # what a kill between placing the shards and publishing leaves
    group_path.write_text(json.dumps(group))
    assert update_fused_series(root, PAIRS[1]) == [1]
    assert update_fused_series(root, PAIRS[1]) == []
    _assert_series_matches_volumes(fused, PAIRS[1])


def test_series_are_rebuilt_from_the_fused_volumes_of_an_older_run_and_left_partial_files_removed(fused):
    root = fused.resolved_fused_dir()
    left = fused_series_path(root, 0, 0, 0) / "0" / "c" / "0" / "1" / "0" / "0.partial-5c557dce"  # a killed append's
    left.write_bytes(b"half")
    assert update_all_fused_series(root)[fused_series_path(root, 0, 0, 0)] == []
    assert not left.exists()
    for series in series_files(root):
        shutil.rmtree(series)
    appended = update_all_fused_series(root, corrected_root=fused.resolved_corrected_dir())
    assert appended == {root / "SPM00_VW00_CHN00.ome.zarr": [0, 1], root / "SPM00_VW90_CHN01.ome.zarr": [0, 1]}
    for pair in PAIRS:
        _assert_series_matches_volumes(fused, pair)


def test_an_exported_bigstitcher_dataset_follows_the_series(fused):
    root = fused.resolved_fused_dir()
    dataset = write_bigstitcher_dataset(root)
    group_path = fused_series_path(root, 0, 0, 0) / "zarr.json"
    shutil.rmtree(fused_series_path(root, 0, 0, 0))  # the view's series gone: the dataset lists VW90's only...
    write_bigstitcher_dataset(root)
    assert len(ElementTree.parse(dataset).findall(".//ViewSetups/ViewSetup")) == 1
    update_fused_series(root, PAIRS[0], corrected_root=fused.resolved_corrected_dir())  # ...until the series is back
    assert group_path.is_file()
    assert len(ElementTree.parse(dataset).findall(".//ViewSetups/ViewSetup")) == 2


def test_corrected_cameras_get_their_series_when_asked(small_acquisition, tmp_path):
    config = ProcessingConfig(
        acquisition=small_acquisition, corrected_dir=tmp_path / "corrected", output=OutputConfig(corrected_series=True), save_diagnostics=False
    )
    process_dataset(config)
    root = config.resolved_corrected_dir()
    assert [path.name for path in series_files(root)] == [f"SPM00_CM{camera:02d}_CHN{camera // 2:02d}.ome.zarr" for camera in range(4)]
    for camera in range(4):
        series = corrected_series_path(root, 0, camera, camera // 2)
        movie = zarr.open_array(series / "0", mode="r")
        for timepoint in (0, 1):
            paths = corrected_paths(root, 0, timepoint, camera, camera // 2)
            np.testing.assert_array_equal(movie[timepoint], read_ome_zarr(paths.volume)[:])
        assert published_timepoints(series) == {t: record_fingerprint(corrected_paths(root, 0, t, camera, camera // 2).record) for t in (0, 1)}
    shutil.rmtree(corrected_series_path(root, 0, 2, 1))
    assert update_all_corrected_series(root)[corrected_series_path(root, 0, 2, 1)] == [0, 1]
    assert all(timepoints == [] for series, timepoints in update_all_corrected_series(root).items())


def test_no_corrected_series_by_default(fused):
    assert series_files(fused.resolved_corrected_dir()) == []
