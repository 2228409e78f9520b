import json
import shutil

import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader
from pair_helpers import assert_seam_follows_the_map, fusion_inputs

from isoview_core.config import ProcessingConfig
from isoview_core.fusion.config import FusionConfig
from isoview_core.fusion.records import load_fusion_record
from isoview_core.layout import (
    ESTIMATE_SUFFIX,
    FusedPaths,
    PairId,
    output_files,
    parameters_over_time_figure,
)
from isoview_core.numerics.rounding import round_half_away, to_u16
from isoview_core.pipeline.correction import process_dataset
from isoview_core.pipeline.fusion import fuse
from isoview_core.synthetic import GroundTruth
from isoview_core.temporal.config import TemporalConfig

CONTRACT_KEYS = {"timepoint", "cameras", "view", "channel", "blending", "window", "estimated", "applied", "timings_s"}
PARAMETER_KEYS = {"offset_x_px", "offset_y_px", "rotation_deg", "intensity_ratio", "transition_z"}


@pytest.fixture(scope="module")
def fused(small_acquisition, tmp_path_factory):
    """The shared small acquisition corrected and fused once (both timepoints, both pairs)."""
    root = tmp_path_factory.mktemp("fusion")
    config = ProcessingConfig(acquisition=small_acquisition, corrected_dir=root / "corrected", fused_dir=root / "fused")
    process_dataset(config)
    report = fuse(config)
    return config, report


def pair_id(timepoint: int, pair: int) -> PairId:
    return PairId(0, timepoint, (0, 1), 0, 0) if pair == 0 else PairId(0, timepoint, (2, 3), 90, 1)


def test_every_pair_of_every_timepoint_is_fused_with_the_contract(fused):
    config, report = fused
    assert report.errors == [] and len(report.estimated) == 4 and len(report.fused) == 4
    for timepoint in (0, 1):
        for pair in (0, 1):
            paths = FusedPaths(config.resolved_fused_dir(), pair_id(timepoint, pair))
            record = json.loads(paths.record.read_text())
            assert set(record) == CONTRACT_KEYS
            assert set(record["estimated"]) == PARAMETER_KEYS == set(record["applied"])
            assert record["timepoint"] == timepoint and record["window"] == [0, 1]
            assert record["cameras"] == list(pair_id(timepoint, pair).cameras)
            for name in ("registration", "intensity_correction", "blending_weights", "fusion_result", "fused_overview"):
                assert paths.figure(name).is_file()
            assert not list(paths.diagnostics.glob("*.npz")), "a preview was left undrawn"
    assert parameters_over_time_figure(config.resolved_fused_dir(), (0, 1)).is_file()


def test_estimated_parameters_match_the_ground_truth(fused, small_acquisition):
    config, _ = fused
    truth = GroundTruth.load(small_acquisition / "ground_truth.json")
    for pair, pair_truth in enumerate(truth.pairs):
        for timepoint in (0, 1):
            estimated = load_fusion_record(FusedPaths(config.resolved_fused_dir(), pair_id(timepoint, pair)).record).estimated
            assert abs(estimated.offset_x_px - pair_truth.offset_x_px) <= 0.05, estimated
            assert abs(estimated.offset_y_px - pair_truth.offset_y_px) <= 0.05, estimated
            assert estimated.rotation_deg == 0.0  # not estimated by default
            assert abs(estimated.intensity_ratio / pair_truth.intensity_ratio - 1) <= 0.01, estimated


def test_fused_volume_is_ome_zarr_with_the_corrected_scale(fused, small_config):
    config, _ = fused
    paths = FusedPaths(config.resolved_fused_dir(), pair_id(1, 0))
    [image, *_] = list(Reader(parse_url(str(paths.volume)))())
    assert image.metadata["coordinateTransformations"][0][0]["scale"] == pytest.approx([2.0, 6.5 / 16, 6.5 / 16])
    volume = np.asarray(image.data[0])
    assert volume.shape == small_config.shape and volume.dtype == np.uint16
    attributes = zarr.open_group(str(paths.volume), mode="r").attrs["isoview"]
    applied = load_fusion_record(paths.record).applied
    assert attributes["cameras"] == [0, 1] and attributes["applied"] == applied.model_dump()
    inputs = fusion_inputs(config.resolved_corrected_dir(), pair_id(1, 0), config.fusion, applied)
    assert_seam_follows_the_map(volume, inputs, config.fusion.blending_range_cameras)
    np.testing.assert_array_equal(tifffile.imread(paths.projection("xy")), volume.max(axis=0))


def test_rerun_skips_unchanged_pairs_and_static_mode_refuses_them(fused):
    config, _ = fused
    again = fuse(config)
    assert again.estimated == [] and again.fused == [] and len(again.skipped) == 4
    static = fuse(config.model_copy(update={"temporal": TemporalConfig(static_parameters=True), "save_diagnostics": False}))
    assert len(static.fused) == 4  # applied parameters changed: every pair is fused again
    records = [r for r in static.fused if r.cameras == (0, 1)]
    assert records[0].applied == records[1].applied  # one value for the whole acquisition


def test_blending_modes_produce_different_seams(fused, tmp_path):
    """Each mode blends the registered cameras as §3.10 says; adaptive and geometric differ only around their seams.

    Every mode reuses the estimates of the ``fused`` run, so all three apply the same parameters.
    """
    config, _ = fused
    blending_range = FusionConfig().blending_range_cameras
    volumes, maps, applied = {}, {}, {}
    for blending in ("adaptive", "geometric", "average"):
        for estimate in output_files(config.resolved_fused_dir(), ESTIMATE_SUFFIX):
            target = tmp_path / blending / estimate.relative_to(config.resolved_fused_dir())
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(estimate, target)
        fusion = FusionConfig(fusion_type=blending)
        variant = config.model_copy(update={"fused_dir": tmp_path / blending, "fusion": fusion, "timepoints": [0], "save_diagnostics": False})
        report = fuse(variant)
        assert report.errors == [] and report.estimated == [] and {r.blending for r in report.fused} == {blending}
        paths = FusedPaths(tmp_path / blending, pair_id(0, 0))
        volumes[blending] = np.asarray(zarr.open_array(str(paths.volume / "0"), mode="r")[:])
        applied[blending] = load_fusion_record(paths.record).applied
        inputs = fusion_inputs(config.resolved_corrected_dir(), pair_id(0, 0), fusion, applied[blending])
        maps[blending] = inputs.transition.astype(np.int64)
        if blending == "average":
            np.testing.assert_array_equal(volumes[blending], to_u16((inputs.reference.astype(np.float64) + inputs.second) / 2))
        else:
            assert_seam_follows_the_map(volumes[blending], inputs, blending_range)
    assert applied["adaptive"] == applied["geometric"] == applied["average"]
    planes = volumes["adaptive"].shape[0]
    assert set(np.unique(maps["geometric"])) == {0, round_half_away(planes / 2)} and len(np.unique(maps["adaptive"])) > 2
    # where both maps have a plane, the two modes agree outside [min(m) - B, max(m) + B) of the column
    both = (maps["adaptive"] > 0) & (maps["geometric"] > 0)
    k = np.arange(planes)[:, None, None]
    low, high = np.minimum(maps["adaptive"], maps["geometric"]), np.maximum(maps["adaptive"], maps["geometric"])
    seams = (k >= low - blending_range) & (k < high + blending_range)
    differ = volumes["adaptive"] != volumes["geometric"]
    assert differ[:, both].any() and not (differ & ~seams)[:, both].any()
    assert not np.array_equal(volumes["adaptive"], volumes["average"])


def test_missing_corrected_stack_is_a_one_line_error(small_acquisition, tmp_path):
    config = ProcessingConfig(acquisition=small_acquisition, corrected_dir=tmp_path / "nothing", fused_dir=tmp_path / "fused", timepoints=[0])
    report = fuse(config)
    assert report.fused == [] and len(report.errors) >= 2
    assert all("\n" not in error and "corrected stack missing" in error for error in report.errors[:2])


def test_a_failed_registration_is_a_one_line_error_naming_the_pair(fused, monkeypatch, tmp_path):
    import isoview_core.pipeline.pair as pair_module

    config, _ = fused

    def no_overlap(*args, **kwargs):
        raise ValueError("registration: the two cameras' slabs do not overlap at the estimated offset")

    monkeypatch.setattr(pair_module, "estimate_registration", no_overlap)
    retry = config.model_copy(update={"fused_dir": tmp_path / "fused", "timepoints": [0]})
    report = fuse(retry)
    estimation_errors = [error for error in report.errors if "do not overlap" in error]
    expected = [f"{FusedPaths(tmp_path / 'fused', pair_id(0, pair)).estimate}: registration: the two cameras' slabs do not overlap" for pair in (0, 1)]
    assert [error.split(" at the")[0] for error in estimation_errors] == expected
    assert report.fused == []  # without an estimate nothing is fused, and the run still ends with its report


def test_estimates_with_nan_measures_round_trip_through_their_json(fused, tmp_path):
    import math

    from isoview_core.fusion.records import load_estimate
    from isoview_core.pipeline.fusion import known_estimates

    config, _ = fused
    source = FusedPaths(config.resolved_fused_dir(), pair_id(0, 0)).estimate
    estimate = load_estimate(source)
    nan_parameters = estimate.parameters.model_copy(update={"intensity_ratio": float("nan")})
    broken = estimate.model_copy(update={"parameters": nan_parameters, "registration": estimate.registration.model_copy(update={"correlation": float("nan")})})
    target = FusedPaths(tmp_path, pair_id(0, 0)).estimate
    target.parent.mkdir(parents=True)
    target.write_text(broken.model_dump_json())
    reread = load_estimate(target)
    assert math.isnan(reread.registration.correlation) and math.isnan(reread.parameters.intensity_ratio)
    assert math.isnan(known_estimates(tmp_path, pair_id(0, 0))[0].intensity_ratio)


def test_parameters_over_time_are_drawn_from_a_series_second_timepoint_on(fused, tmp_path):
    from isoview_core.pipeline.fusion import plot_parameters

    config, _ = fused
    series = tmp_path / "fused"
    for timepoint in (0, 1):  # the series of cameras 0+1, one timepoint after the other
        paths = FusedPaths(config.resolved_fused_dir(), pair_id(timepoint, 0))
        target = FusedPaths(series, pair_id(timepoint, 0))
        target.folder.mkdir(parents=True, exist_ok=True)
        for source in (paths.estimate, paths.record):
            shutil.copy(source, target.folder / source.name)
        figure = plot_parameters(series, (0, (0, 1), 0, 0), config)
        if timepoint == 0:
            assert figure is None and not parameters_over_time_figure(series, (0, 1)).exists()
        else:
            assert figure == parameters_over_time_figure(series, (0, 1)) and figure.is_file()


@pytest.fixture(scope="module")
def fused_by_two_workers(fused, tmp_path_factory):
    """The same pairs fused again with two worker threads, recording where the figures were drawn and whether numpy
    advised huge pages in each estimation and fusion job."""
    import threading

    from isoview_core.pipeline import fusion as fusion_module
    from isoview_core.pipeline.huge_pages import USER_SETTING, huge_page_advice

    config, _ = fused
    drawn_in, advice_in_jobs = [], []

    def recording(function, record):
        def recorded(*args, **kwargs):
            record()
            return function(*args, **kwargs)

        return recorded

    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(USER_SETTING, raising=False)
        patch.setattr(fusion_module, "draw_pair_diagnostics", recording(fusion_module.draw_pair_diagnostics, lambda: drawn_in.append(threading.get_ident())))
        for name in ("estimate_pair", "fuse_job"):
            patch.setattr(fusion_module, name, recording(getattr(fusion_module, name), lambda: advice_in_jobs.append(huge_page_advice())))
        advice_before = huge_page_advice()
        output = tmp_path_factory.mktemp("two_workers") / "fused"
        report = fuse(config.model_copy(update={"fused_dir": output}), workers=2)
        advice_after = huge_page_advice()
    return report, output, threading.get_ident(), drawn_in, advice_in_jobs, (advice_before, advice_after)


def test_figures_are_drawn_in_the_calling_thread_with_worker_threads(fused_by_two_workers):
    """Matplotlib holds the GIL while it draws: in the workers the figures only cost more CPU (draw_diagnostics)."""
    report, output, caller, drawn_in, _, _ = fused_by_two_workers
    assert not report.errors and len(report.fused) == 4
    assert drawn_in == [caller] * 4  # each pair of both timepoints, in this thread
    assert len(list(output.rglob("fusion_result.png"))) == 4


def test_jobs_run_without_numpy_huge_page_advice_which_the_run_restores(fused_by_two_workers):
    """The estimations and fusions fault their short-lived arrays in page by page (pipeline.huge_pages)."""
    from isoview_core.pipeline.huge_pages import huge_page_advice

    if huge_page_advice() is None:
        pytest.skip("this numpy has no switch for its huge-page advice")
    report, _, _, _, advice_in_jobs, (before, after) = fused_by_two_workers
    assert not report.errors and len(report.estimated) == 4 and len(report.fused) == 4
    assert advice_in_jobs == [False] * 8
    assert after is before
