"""Tests of the synthetic IsoView acquisition generator (isoview_core.synthetic)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from isoview_core.correction.dead_pixels import median_filter_2d
from isoview_core.metadata import read_channel_xml
from isoview_core.naming import raw_stack_name
from isoview_core.synthetic import (
    GROUND_TRUTH_NAME,
    GroundTruth,
    PairConfig,
    SimulationConfig,
    camera_defects,
    dark_frame,
    foreground_mask,
    render_camera_signal,
    render_camera_stack,
    sharp_specimen,
    simulate_acquisition,
    specimen_drift,
    view90_to_view0_um,
)

CONFIG = SimulationConfig(timepoints=2)
CHANNEL_OF_CAMERA = {0: 0, 1: 0, 2: 1, 3: 1}
EQUAL_OPTICS = {"blur_sigma_px": (1.5, 1.5), "attenuation_far": 1.0}
"""Both cameras of a pair blur and attenuate alike: the second camera is then exactly the reference, transformed."""


@pytest.fixture(scope="module")
def acquisition(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GroundTruth]:
    root = tmp_path_factory.mktemp("synthetic") / "acquisition"
    return root, simulate_acquisition(root, CONFIG)


def _stack_path(root: Path, timepoint: int, camera: int) -> Path:
    return root / "SPM00" / f"TM{timepoint:05d}" / "ANG000" / raw_stack_name(0, timepoint, camera, CHANNEL_OF_CAMERA[camera])


def test_layout_names_and_sizes(acquisition: tuple[Path, GroundTruth]) -> None:
    root, _ = acquisition
    depth, height, width = CONFIG.shape
    expected = {GROUND_TRUTH_NAME} | {f"SPM00/Background_{camera}.tif" for camera in range(4)}
    for timepoint in range(CONFIG.timepoints):
        expected |= {f"SPM00/TM{timepoint:05d}/ch0.xml", f"SPM00/TM{timepoint:05d}/ch1.xml"}
        expected |= {str(_stack_path(root, timepoint, camera).relative_to(root)) for camera in range(4)}
    assert {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()} == expected
    for timepoint in range(CONFIG.timepoints):
        for camera in range(4):
            assert _stack_path(root, timepoint, camera).stat().st_size == 2 * width * height * depth
    for camera in range(4):
        background = tifffile.imread(root / "SPM00" / f"Background_{camera}.tif")
        assert background.dtype == np.uint16 and background.shape == (height, width)
        np.testing.assert_array_equal(background, dark_frame(CONFIG, camera))


@pytest.mark.parametrize("channel", [0, 1])
def test_channel_xml_parses_back(acquisition: tuple[Path, GroundTruth], channel: int) -> None:
    root, _ = acquisition
    depth, height, width = CONFIG.shape
    metadata = read_channel_xml(root / "SPM00" / "TM00001" / f"ch{channel}.xml")
    assert metadata.cameras == [2 * channel, 2 * channel + 1]
    assert [dims.shape_zyx for dims in metadata.dimensions] == [CONFIG.shape, CONFIG.shape]
    assert metadata.voxel_size_um == pytest.approx(CONFIG.voxel_size_um)
    assert metadata.view == 90 * channel
    assert metadata.time_point == 1
    assert metadata.wavelength_nm == (488, 561)[channel]
    assert metadata.camera_orientation == "Normal"
    assert metadata.attributes["camera_index"] == "2"
    assert metadata.attributes["camera_roi"] == f"0_{height}_0_{width},0_{height}_0_{width}"
    assert metadata.attributes["planes"] == f"0-{depth - 1},0-{depth - 1}"
    assert {"data_header", "specimen_name", "timestamp", "specimen_XYZT", "camera_type", "exposure_time", "detection_filter"} <= set(
        metadata.attributes
    )


def test_written_stacks_are_the_renders_and_deterministic(acquisition: tuple[Path, GroundTruth]) -> None:
    root, _ = acquisition
    for camera in range(4):
        written = np.fromfile(_stack_path(root, 1, camera), dtype="<u2").reshape(CONFIG.shape)
        np.testing.assert_array_equal(written, render_camera_stack(CONFIG, 1, camera))
    other_seed = CONFIG.model_copy(update={"seed": 1})
    assert not np.array_equal(render_camera_stack(other_seed, 1, 0), render_camera_stack(CONFIG, 1, 0))
    assert not np.array_equal(render_camera_stack(CONFIG, 0, 0), render_camera_stack(CONFIG, 1, 0))


def test_a_replay_writes_the_recorded_planes_of_timepoint_t_mod_n(acquisition: tuple[Path, GroundTruth], tmp_path: Path) -> None:
    root, _ = acquisition
    replayed = tmp_path / "replayed"
    assert simulate_acquisition(replayed, CONFIG.model_copy(update={"timepoints": 3}), replay=root).timepoints == 3
    for timepoint, source in ((0, 0), (1, 1), (2, 0)):
        for camera in range(4):
            assert _stack_path(replayed, timepoint, camera).read_bytes() == _stack_path(root, source, camera).read_bytes()
    assert read_channel_xml(replayed / "SPM00" / "TM00002" / "ch0.xml").attributes["time_point"] == "2"


def test_ground_truth_round_trip(acquisition: tuple[Path, GroundTruth]) -> None:
    root, truth = acquisition
    loaded = GroundTruth.load(root / GROUND_TRUTH_NAME)
    assert loaded == truth
    assert loaded.config == CONFIG
    assert loaded.shape == CONFIG.shape and loaded.timepoints == 2 and loaded.seed == 0
    assert [(pair.cameras, pair.view, pair.rotation_deg) for pair in loaded.pairs] == [((0, 1), 0, 0.0), ((2, 3), 90, 0.0)]
    assert (loaded.pairs[0].offset_x_px, loaded.pairs[0].offset_y_px, loaded.pairs[0].intensity_ratio) == (7.3, -4.6, 1.25)
    assert [camera.background_level for camera in loaded.cameras] == list(CONFIG.background_levels_adu)
    assert loaded.per_timepoint[1].drift == pytest.approx(CONFIG.drift_px_per_timepoint)
    kinds = [kind for _, _, kind in loaded.cameras[0].defective_pixels]
    assert len(kinds) == round(CONFIG.defect_fraction * CONFIG.shape[1] * CONFIG.shape[2])
    assert {kind: kinds.count(kind) for kind in set(kinds)} == {"dead": 5, "insensitive": 5, "hot": 5}


def test_existing_acquisition_is_refused_unless_overwrite(tmp_path: Path) -> None:
    config = SimulationConfig(shape=(6, 24, 20), timepoints=1, n_nuclei=5)
    simulate_acquisition(tmp_path, config)
    with pytest.raises(FileExistsError, match="already holds an acquisition"):
        simulate_acquisition(tmp_path, config)
    truth = simulate_acquisition(tmp_path, config.model_copy(update={"seed": 3}), overwrite=True)
    assert GroundTruth.load(tmp_path / GROUND_TRUTH_NAME).seed == truth.seed == 3


@pytest.mark.parametrize("pair", [0, 1])
def test_second_camera_is_mirrored_shifted_scaled_reference_subpixel(pair: int) -> None:
    config = CONFIG.model_copy(update=EQUAL_OPTICS)
    transform = config.pairs[pair]
    reference = render_camera_signal(config, 0, 2 * pair)
    flipped = render_camera_signal(config, 0, 2 * pair + 1)[:, :, ::-1]
    shift, _, _ = phase_cross_correlation(reference.max(axis=0), flipped.max(axis=0), upsample_factor=100)
    np.testing.assert_allclose(shift, (transform.offset_y_px, transform.offset_x_px), atol=0.2)
    aligned = ndimage.shift(flipped, (0, transform.offset_y_px, transform.offset_x_px), order=3)
    assert np.abs(transform.intensity_ratio * aligned - reference).max() < 1e-3 * reference.max()
    assert reference.sum() / flipped.sum() == pytest.approx(transform.intensity_ratio, rel=1e-4)


def _overlap(offset: int, size: int) -> tuple[slice, slice]:
    """Index ranges ``(reference, moving)`` with ``reference[i] <-> moving[i - offset]``, both inside ``size``."""
    return slice(max(0, offset), size + min(0, offset)), slice(max(0, -offset), size - max(0, offset))


def test_second_camera_convention_exact_for_integer_offsets() -> None:
    offset_x, offset_y, ratio = 6, -5, 1.6
    pairs = (PairConfig(offset_x_px=offset_x, offset_y_px=offset_y, intensity_ratio=ratio), CONFIG.pairs[1])
    config = CONFIG.model_copy(update={**EQUAL_OPTICS, "pairs": pairs})
    (rows, moving_rows), (cols, moving_cols) = _overlap(offset_y, config.shape[1]), _overlap(offset_x, config.shape[2])
    # aligned(y, x) = second_flipped(y - offset_y, x - offset_x) matches the reference, times the ratio
    reference = render_camera_signal(config, 1, 0)
    flipped = render_camera_signal(config, 1, 1)[:, :, ::-1]
    np.testing.assert_allclose(ratio * flipped[:, moving_rows, moving_cols], reference[:, rows, cols], rtol=1e-4, atol=1e-3)
    flipped_mask = foreground_mask(config, 1, 1)[:, :, ::-1]
    np.testing.assert_array_equal(flipped_mask[:, moving_rows, moving_cols], foreground_mask(config, 1, 0)[:, rows, cols])


@pytest.mark.parametrize(("offset", "ratio"), [(40.0, 0.5), (-40.0, 2.0)])
def test_large_offsets_keep_the_specimen_in_both_views(offset: float, ratio: float) -> None:
    pair = PairConfig(offset_x_px=offset, offset_y_px=-offset, intensity_ratio=ratio)
    config = CONFIG.model_copy(update={**EQUAL_OPTICS, "pairs": (pair, pair)})
    for reference_camera in (0, 2):
        reference = render_camera_signal(config, 0, reference_camera)
        second = render_camera_signal(config, 0, reference_camera + 1)
        assert foreground_mask(config, 0, reference_camera).sum() == foreground_mask(config, 0, reference_camera + 1).sum()
        assert reference.sum() / second.sum() == pytest.approx(ratio, rel=1e-3)


def test_depth_dependent_blur_and_attenuation() -> None:
    config = CONFIG.model_copy(update={"n_nuclei": 0})
    front, back = 13, 34  # symmetric about the body centre (plane 23.5): same cross-section
    for first, second in ((0, 1), (2, 3)):
        facing_front = render_camera_signal(config, 0, first)
        facing_back = render_camera_signal(config, 0, second)[:, :, ::-1]
        centre = (slice(None), config.shape[1] // 2, config.shape[2] // 2 - 1)
        # uniform cytoplasm: the body centre shows the attenuation alone
        inside = slice(6, 41)  # planes whose centre pixel is inside the body, away from its smooth surface
        profile = facing_front[centre][inside]
        assert np.all(np.diff(profile) < 0)
        assert 0.4 <= profile[-1] / profile[0] < 0.6
        assert np.all(np.diff(facing_back[centre][inside]) > 0)

        def sharpness(image: np.ndarray) -> float:
            return float(np.abs(np.diff(image, axis=1)).max() / image.max())

        assert sharpness(facing_front[front]) > 1.5 * sharpness(facing_front[back])
        assert sharpness(facing_back[back]) > 1.5 * sharpness(facing_back[front])


def test_foreground_mask_is_what_a_threshold_segmentation_recovers() -> None:
    stack = render_camera_stack(CONFIG, 0, 1).astype(np.float64)
    smoothed = ndimage.gaussian_filter(stack, (0.4, 2.0, 2.0))
    low = np.percentile(smoothed, 1)
    level = low + 0.4 * (smoothed[smoothed > low].mean() - low)
    segmented = smoothed > level
    truth = foreground_mask(CONFIG, 0, 1)
    assert 0.1 < truth.mean() < 0.5
    assert (segmented & truth).sum() / (segmented | truth).sum() > 0.8


@pytest.mark.parametrize("view", [0, 90])
def test_specimen_drift_matches_ground_truth(view: int) -> None:
    config = CONFIG.model_copy(update={"timepoints": 4, "drift_px_per_timepoint": (0.5, -0.4, 1.1)})
    moved = np.subtract(ndimage.center_of_mass(sharp_specimen(config, 3, view)), ndimage.center_of_mass(sharp_specimen(config, 0, view)))
    np.testing.assert_allclose(moved, specimen_drift(config, 3, view), atol=0.02)
    if view == 0:
        np.testing.assert_allclose(specimen_drift(config, 3, view), (1.5, -1.2, 3.3))


def test_defective_pixels_are_anomalous(acquisition: tuple[Path, GroundTruth]) -> None:
    root, truth = acquisition
    for camera in range(4):
        stack = np.fromfile(_stack_path(root, 0, camera), dtype="<u2").reshape(CONFIG.shape).astype(np.float64)
        background = truth.cameras[camera].background_level
        std = stack.std(axis=0, ddof=1)
        mean = stack.mean(axis=0) - background
        neighbours = median_filter_2d(mean)
        dark = tifffile.imread(root / "SPM00" / f"Background_{camera}.tif").astype(np.float64)
        defects = camera_defects(CONFIG, camera)
        assert [(y, x, kind) for y, x, kind in truth.cameras[camera].defective_pixels] == list(
            zip(defects.rows.tolist(), defects.cols.tolist(), defects.kinds)
        )
        lit_insensitive = 0
        for (y, x, kind), value in zip(truth.cameras[camera].defective_pixels, defects.values):
            if kind == "dead":
                assert std[y, x] == 0 and stack[0, y, x] == dark[y, x] == value < background
            elif kind == "hot":
                assert mean[y, x] - neighbours[y, x] > 400
                assert dark[y, x] - background > 400
            elif neighbours[y, x] > 50:  # insensitive: only visible where there is light
                assert mean[y, x] < 0.5 * neighbours[y, x]
                lit_insensitive += 1
        assert lit_insensitive >= 1  # the insensitive branch was exercised


def test_real_time_mode_writes_growing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import isoview_core.synthetic.acquisition as writer

    config = SimulationConfig(shape=(16, 64, 48), timepoints=2, n_nuclei=20)
    interval = 0.6
    stack = tmp_path / "SPM00" / "TM00000" / "ANG000" / raw_stack_name(0, 0, 2, 1)
    seen: list[tuple[int, bool]] = []

    def pause(seconds: float) -> None:
        """The writer's pause after each plane: what a reader sees of TM0's camera 2 then (no polling race)."""
        if stack.exists():
            seen.append((stack.stat().st_size, (stack.parent.parent / "ch1.xml").exists()))
        time.sleep(seconds)

    monkeypatch.setattr(writer, "time", SimpleNamespace(monotonic=time.monotonic, sleep=pause))
    completed: list[tuple[int, float]] = []
    started = time.monotonic()
    simulate_acquisition(tmp_path, config, interval_s=interval, on_timepoint=lambda timepoint: completed.append((timepoint, time.monotonic() - started)))
    plane = 2 * 64 * 48
    assert [size for size, _ in seen] == [plane * n for n in range(1, 17)] + [16 * plane] * 16  # whole planes, one at a time
    assert all(xml_first for _, xml_first in seen)  # the channel XML is there before its stacks
    assert [timepoint for timepoint, _ in completed] == [0, 1]
    assert completed[1][1] >= 2 * interval * 0.9  # paced: one timepoint per interval
    assert stack.stat().st_size == 16 * plane


def test_invalid_requests_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="camera 4"):
        render_camera_stack(CONFIG, 0, 4)
    with pytest.raises(ValueError, match="timepoint 2"):
        render_camera_stack(CONFIG, 2, 0)
    with pytest.raises(ValueError, match="interval_s"):
        simulate_acquisition(tmp_path, CONFIG, interval_s=0)
    with pytest.raises(ValueError, match="body_semi_axes"):
        SimulationConfig(body_semi_axes=(0.6, 0.3, 0.3))


def test_a_turned_view_90_maps_onto_view_0_by_the_rigid_truth() -> None:
    config = SimulationConfig(shape=(32, 160, 160), view90_geometry="rotation", seed=3)
    truth = view90_to_view0_um(config)
    np.testing.assert_allclose(truth[:3, :3], [[0, 0, -1], [0, 1, 0], [1, 0, 0]])  # VW90 z -> VW00 +x, x -> -z
    voxel = np.asarray(config.voxel_size_um)
    view0, view90 = sharp_specimen(config, 1, 0), sharp_specimen(config, 1, 90)
    inverse = np.linalg.inv(truth)  # VW00 index -> VW90 index, for ndimage's pull resampling
    turned = ndimage.affine_transform(view90, np.diag(1 / voxel) @ inverse[:3, :3] @ np.diag(voxel), offset=inverse[:3, 3] / voxel, output_shape=view0.shape, order=1)
    both = (turned > 0) & (view0 > 0)
    assert np.corrcoef(turned[both], view0[both])[0, 1] > 0.9  # measured 0.93: nuclei sampled on grids 5x coarser in z
    mirrored = ndimage.affine_transform(view90[:, :, ::-1], np.diag(1 / voxel) @ inverse[:3, :3] @ np.diag(voxel), offset=inverse[:3, 3] / voxel, output_shape=view0.shape, order=1)
    assert np.corrcoef(mirrored[both], view0[both])[0, 1] < 0.5


def test_view_90_is_a_rigid_motion_only_when_turned() -> None:
    with pytest.raises(ValueError, match="rigid motion"):
        view90_to_view0_um(SimulationConfig())
    with pytest.raises(ValueError, match="does not fit view 90"):
        SimulationConfig(view90_geometry="rotation")  # 96 um deep, 65 um wide
    assert "view90_geometry" not in SimulationConfig().model_dump()  # ground_truth.json as before the option
