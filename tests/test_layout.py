"""The output layout: every name the pipeline writes, in one place (ALGORITHMS.md §2.10)."""

from pathlib import Path

from isoview_core import layout
from isoview_core.config import OutputConfig, ProcessingConfig
from isoview_core.layout import FusedPaths, PairId, corrected_paths, pair_series_files

PAIR = PairId(specimen=0, timepoint=12, cameras=(0, 1), view=0, channel=0)


def test_corrected_paths_of_one_camera_stack():
    paths = corrected_paths(Path("acq.corrected"), 0, 12, 1, 0)
    assert paths.folder == Path("acq.corrected/SPM00/TM000012")
    assert paths.volume.name == "SPM00_TM000012_CM01_CHN00.ome.zarr"
    assert paths.record.name == "SPM00_TM000012_CM01_CHN00.json"
    assert paths.projection("xz", mask=True).name == "SPM00_TM000012_CM01_CHN00.segmentationMask_xzProjection.tif"
    assert paths.coordinate_mask("xy").name == "SPM00_TM000012_CM01_CHN00.xyMask.tif"
    assert corrected_paths(Path("r"), 0, 12, 1, 0, "klb").mask.name == "SPM00_TM000012_CM01_CHN00.segmentationMask.klb"
    assert layout.corrected_channel_xml(Path("r"), 0, 12, 1) == Path("r/SPM00/TM000012/SPM00_TM000012_CHN01.xml")


def test_output_roots_and_stack_paths_follow_a_processing_config(tmp_path):
    acquisition = tmp_path / "acq"
    assert layout.default_corrected_root(acquisition) == tmp_path / "acq.corrected"
    assert layout.default_fused_root(acquisition) == tmp_path / "acq.fused"
    config = ProcessingConfig(acquisition=acquisition, output=OutputConfig(format="klb"))
    assert layout.configured_corrected_paths(config, 0, 12, 1, 0) == corrected_paths(tmp_path / "acq.corrected", 0, 12, 1, 0, "klb")


def test_fused_paths_of_one_pair_and_its_diagnostics():
    paths = FusedPaths(Path("acq.fused"), PAIR)
    assert paths.volume == Path("acq.fused/SPM00/TM000012/SPM00_TM000012_CM00_CM01_VW00_CHN00.ome.zarr")
    assert paths.record.name.endswith(".fusion.json") and paths.estimate.name.endswith(".estimate.json")
    assert paths.transition_map.name == "SPM00_TM000012_CM00_CM01_VW00_CHN00.fusionMask.tif"
    assert paths.figure("registration") == Path("acq.fused/diagnostics/TM000012/cam0_1/registration.png")
    assert layout.parameters_over_time_figure(Path("acq.fused"), (2, 3)).name == "parameters_over_time_cam2_3.png"


def test_series_files_find_every_timepoint_of_one_pair_only(tmp_path):
    for timepoint, cameras in [(0, (0, 1)), (7, (0, 1)), (7, (2, 3))]:
        estimate = FusedPaths(tmp_path, PairId(0, timepoint, cameras, 0, 0)).estimate
        estimate.parent.mkdir(parents=True, exist_ok=True)
        estimate.touch()
    found = sorted(path.name for path in pair_series_files(tmp_path, PAIR, layout.ESTIMATE_SUFFIX))
    assert found == ["SPM00_TM000000_CM00_CM01_VW00_CHN00.estimate.json", "SPM00_TM000007_CM00_CM01_VW00_CHN00.estimate.json"]


def test_service_files_and_the_folders_of_a_timepoint(tmp_path):
    assert layout.journal_path(tmp_path) == tmp_path / "service" / "journal.jsonl"
    assert layout.problems_path(tmp_path) == tmp_path / "service" / "problems.jsonl"
    assert layout.watcher_lock_path(tmp_path) == tmp_path / "service" / "watcher.lock"
    FusedPaths(tmp_path / "f", PAIR).diagnostics.mkdir(parents=True)
    assert layout.timepoint_output_folders(tmp_path / "c", tmp_path / "f", tmp_path / "i", 0, 12) == [
        tmp_path / "c/SPM00/TM000012",
        tmp_path / "f/SPM00/TM000012",
        tmp_path / "i/SPM00/TM000012",
        tmp_path / "f/diagnostics/TM000012",
        tmp_path / "f/diagnostics/TM000012/cam0_1",
    ]


def test_output_files_lists_every_volume_or_record(tmp_path):
    volumes = [FusedPaths(tmp_path, PairId(0, t, (0, 1), 0, 0)).volume for t in (3, 1)]
    for volume in volumes:
        volume.mkdir(parents=True)
    assert layout.output_files(tmp_path) == sorted(volumes)
    assert layout.output_files(tmp_path, layout.FUSION_RECORD_SUFFIX) == []


def test_time_series_and_export_paths_sit_at_the_top_of_their_roots(tmp_path):
    fused, corrected = tmp_path / "acq.fused", tmp_path / "acq.corrected"
    assert layout.fused_series_path(fused, 0, 90, 1) == fused / "SPM00_VW90_CHN01.ome.zarr"
    assert layout.corrected_series_path(corrected, 1, 3, 0) == corrected / "SPM01_CM03_CHN00.ome.zarr"
    assert layout.bigstitcher_dataset_path(fused) == fused / "dataset.xml"
    assert layout.alerts_path(fused) == fused / "service" / "alerts.jsonl"
    for path in (layout.fused_series_path(fused, 0, 0, 0), layout.fused_series_path(fused, 0, 90, 1), fused / "SPM00" / "x.ome.zarr"):
        path.mkdir(parents=True)
    assert layout.series_files(fused) == [fused / "SPM00_VW00_CHN00.ome.zarr", fused / "SPM00_VW90_CHN01.ome.zarr"]


def test_outputs_of_one_specimen_and_the_specimens_with_outputs(tmp_path):
    for specimen in (0, 3):
        folder = tmp_path / f"SPM{specimen:02d}" / "TM000001"
        folder.mkdir(parents=True)
        (folder / f"SPM{specimen:02d}_TM000001_CM00_CM01_VW00_CHN00.fusion.json").write_text("{}")
    (tmp_path / "SPM00_VW00_CHN00.ome.zarr").mkdir()  # a time series, not a specimen folder
    assert layout.output_specimens(tmp_path) == [0, 3]
    assert [path.parent.parent.name for path in layout.output_files(tmp_path, layout.FUSION_RECORD_SUFFIX, 3)] == ["SPM03"]
