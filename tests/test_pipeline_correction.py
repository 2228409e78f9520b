import json

import numpy as np
import pytest
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader

from isoview_core.config import OutputConfig, ProcessingConfig
from isoview_core.formats import read_volume
from isoview_core.layout import corrected_paths
from isoview_core.pipeline.correction import correct_timepoint, process_dataset
from isoview_core.records import load_record
from isoview_core.synthetic import dark_frame, render_camera_stack


@pytest.fixture(scope="module")
def corrected(small_acquisition, tmp_path_factory):
    """The small acquisition corrected once to OME-Zarr (timepoint 0 only)."""
    config = ProcessingConfig(
        acquisition=small_acquisition,
        corrected_dir=tmp_path_factory.mktemp("out") / "corrected",
        timepoints=[0],
        output=OutputConfig(pyramid_levels=2),
    )
    reports = process_dataset(config)
    return config, reports


def _stack_background(raw, frame, correction):
    """Independent §2.5 stack background: percentile of the non-zero MATLAB-order samples of ``raw - frame``, clipped at 0."""
    subtracted = np.clip(raw.astype(np.int32) - frame, 0, None)
    samples = subtracted.transpose(0, 2, 1).ravel()[:: correction.subsample_factor]  # MATLAB order: y fastest, then x, z
    return np.percentile(samples[samples > 0], correction.background_percentile, method="hazen")


def test_every_camera_stack_is_corrected_with_its_record(corrected, small_config):
    config, reports = corrected
    [report] = reports
    assert report.errors == [] and len(report.records) == 4
    for record in report.records:
        paths = corrected_paths(config.resolved_corrected_dir(), 0, 0, record.camera, record.channel)
        assert paths.volume.name == f"SPM00_TM000000_CM{record.camera:02d}_CHN{record.channel:02d}.ome.zarr"
        assert load_record(paths.record) == record
        assert record.compression_ratio > 2
        # [mask_min, stack background]: the segmentation's minimum is taken before the dark frame is
        # subtracted (the camera offset); the stack background after it.
        raw, frame = render_camera_stack(small_config, 0, record.camera), dark_frame(small_config, record.camera)
        offset = small_config.background_levels_adu[record.camera]
        assert record.min_intensity == [pytest.approx(offset, abs=1), _stack_background(raw, frame, config.correction)]
        for name in ("xy", "xz", "yz"):
            assert paths.projection(name).is_file() and paths.projection(name, mask=True).is_file()
        assert paths.coordinate_mask("xy").is_file()
    assert (paths.folder / "SPM00_TM000000_CHN00.xml").is_file()


def test_ome_zarr_opens_with_ome_zarr_py_with_the_xml_scale(corrected, small_config):
    config, _ = corrected
    paths = corrected_paths(config.resolved_corrected_dir(), 0, 0, 1, 0)
    nodes = list(Reader(parse_url(str(paths.volume)))())
    image = nodes[0]
    transforms = image.metadata["coordinateTransformations"]
    pixel = 6.5 / 16
    assert transforms[0][0]["scale"] == pytest.approx([2.0, pixel, pixel])
    assert transforms[1][0]["scale"] == pytest.approx([2.0, 2 * pixel, 2 * pixel])
    assert image.data[0].shape == small_config.shape
    labels = np.asarray(zarr.open_group(str(paths.volume), mode="r")["labels/segmentation/0"][:])
    volume = np.asarray(image.data[0])
    assert 0.05 < labels.mean() < 0.95 and np.all(volume[labels == 0] == 0)
    attrs = zarr.open_group(str(paths.volume), mode="r").attrs.asdict()
    assert attrs["isoview"]["camera"] == 1 and attrs["isoview"]["xml"]["stack_direction"] == "Z"


def test_rerun_skips_finished_stacks_unless_overwrite(corrected):
    config, _ = corrected
    rerun = correct_timepoint(config, 0, 0)
    assert rerun.records == [] and len(rerun.skipped) == 4
    forced = correct_timepoint(config.model_copy(update={"overwrite": True}), 0, 0)
    assert len(forced.records) == 4


def test_truncated_stack_is_reported_and_other_stacks_still_corrected(acquisition_copy, tmp_path):
    stack = next((acquisition_copy / "SPM00" / "TM00001" / "ANG000").glob("*CM2*.stack"))
    size = stack.stat().st_size
    with open(stack, "r+b") as handle:
        handle.truncate(size - 1000)
    config = ProcessingConfig(acquisition=acquisition_copy, corrected_dir=tmp_path / "out")
    reports = process_dataset(config)
    assert [len(r.records) for r in reports] == [4, 3]
    [error] = reports[1].errors
    assert stack.name in error and str(size - 1000) in error and "\n" not in error


def test_klb_output_round_trips_the_same_volume(corrected, small_acquisition, tmp_path):
    zarr_config, _ = corrected
    config = ProcessingConfig(acquisition=small_acquisition, corrected_dir=tmp_path / "klb", timepoints=[0], output=OutputConfig(format="klb"))
    [report] = process_dataset(config)
    assert len(report.records) == 4
    klb = corrected_paths(config.resolved_corrected_dir(), 0, 0, 0, 0, "klb")
    ome = corrected_paths(zarr_config.resolved_corrected_dir(), 0, 0, 0, 0)
    assert np.array_equal(read_volume(klb.volume), np.asarray(read_volume(ome.volume)))
    assert json.loads(klb.record.read_text())["format"] == "klb"


def test_an_all_zero_stack_is_an_error_naming_it_and_the_others_are_corrected(acquisition_copy, tmp_path):
    stack = next((acquisition_copy / "SPM00" / "TM00000" / "ANG000").glob("*CM1*.stack"))
    stack.write_bytes(bytes(stack.stat().st_size))
    reports = process_dataset(ProcessingConfig(acquisition=acquisition_copy, corrected_dir=tmp_path / "out", timepoints=[0]))
    [error] = reports[0].errors
    assert [r.camera for r in reports[0].records] == [0, 2, 3]
    assert error.startswith(str(stack)) and "every pixel of all 48 planes is 0" in error


def test_a_volume_left_without_its_record_by_a_killed_run_is_redone(small_acquisition, tmp_path):
    config = ProcessingConfig(acquisition=small_acquisition, corrected_dir=tmp_path / "out", timepoints=[0])
    [first] = process_dataset(config)
    paths = corrected_paths(config.resolved_corrected_dir(), 0, 0, 1, 0)
    paths.record.unlink()  # killed after the volume was published, before the record
    [again] = process_dataset(config)
    assert again.errors == [] and [r.camera for r in again.records] == [1] and paths.record.is_file()
    assert again.records[0].defective_pixels == next(r for r in first.records if r.camera == 1).defective_pixels


@pytest.mark.parametrize("workers", [1, 2])
def test_the_jobs_of_a_run_keep_the_heap_until_it_ends(corrected, tmp_path, monkeypatch, workers):
    """The jobs reuse the memory earlier jobs freed (heap.py), with one worker or several; the run hands it back."""
    from isoview_core.pipeline import correction as correction_module
    from isoview_core.pipeline import heap

    config, _ = corrected
    seen = []
    correct = correction_module.correct_camera_stack

    def recording(*args, **kwargs):
        seen.append(heap._kept_heap.active)
        return correct(*args, **kwargs)

    monkeypatch.setattr(correction_module, "correct_camera_stack", recording)
    [report] = process_dataset(config.model_copy(update={"corrected_dir": tmp_path / "corrected"}), workers=workers)
    assert report.errors == [] and len(report.records) == 4
    assert seen == [True] * 4
    assert not heap._kept_heap.active
