"""Quality alerts (isoview_core.quality): an offset jump and a dark camera injected in the simulator raise one alert
each, a clean acquisition none, a missing camera one; the rules on hand-written records (trend, ratio, steps,
recovery, focus); every alert is recorded once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from isoview_core.config import ProcessingConfig
from isoview_core.layout import FusedPaths, PairId, alerts_path, corrected_paths
from isoview_core.pipeline.correction import process_dataset
from isoview_core.pipeline.fusion import fuse
from isoview_core.quality.alerts import find_alerts, focus_measure, raise_alerts, read_alerts
from isoview_core.quality.config import AlertConfig
from isoview_core.records import CorrectedStackRecord
from isoview_core.synthetic import DarkCamera, OffsetJump, SimulationConfig, simulate_acquisition
from isoview_core.temporal.config import TemporalConfig

CLEAN = SimulationConfig(shape=(48, 192, 160), timepoints=6, seed=3)
"""The conftest geometry, over enough timepoints for a history of 3 before the faults."""
JUMP = OffsetJump(timepoint=4, pair=0, offset_x_px=3.0)
DARK = DarkCamera(camera=3, from_timepoint=3)
FAULTY = CLEAN.model_copy(update={"offset_jumps": (JUMP,), "dark_cameras": (DARK,)})
TIMEPOINTS = range(CLEAN.timepoints)
BOUNDS = AlertConfig()


def _processed(root: Path, simulation: SimulationConfig) -> ProcessingConfig:
    """Simulate, correct, estimate and fuse (window 2: the trend exists at every timepoint)."""
    simulate_acquisition(root, simulation)
    config = ProcessingConfig(acquisition=root, temporal=TemporalConfig(window=2), save_diagnostics=False)
    process_dataset(config)
    report = fuse(config)
    assert not report.errors
    return config


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> ProcessingConfig:
    return _processed(tmp_path_factory.mktemp("clean") / "acquisition", CLEAN)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> ProcessingConfig:
    """Camera pair 0/1 offset by 3 px more at TM4 only; camera 3 dark from TM3 on."""
    return _processed(tmp_path_factory.mktemp("faulty") / "acquisition", FAULTY)


def _alerts(config: ProcessingConfig, bounds: AlertConfig = BOUNDS, **roots: Path):
    corrected = roots.get("corrected", config.resolved_corrected_dir())
    fused = roots.get("fused", config.resolved_fused_dir())
    return find_alerts(corrected, fused, 0, TIMEPOINTS, bounds)


def _records_only(config: ProcessingConfig, tmp_path: Path) -> tuple[Path, Path]:
    """Private copies of the corrected and fused roots, without volumes: records, projections and estimates."""
    corrected, fused = tmp_path / "corrected", tmp_path / "fused"
    shutil.copytree(config.resolved_corrected_dir(), corrected, ignore=shutil.ignore_patterns("*.ome.zarr"))
    shutil.copytree(config.resolved_fused_dir(), fused, ignore=shutil.ignore_patterns("*.ome.zarr", "*.tif"))
    return corrected, fused


# --- simulated acquisitions ----------------------------------------------------------------------------------------


def test_an_offset_jump_and_a_dark_camera_raise_one_alert_each(faulty):
    alerts = _alerts(faulty)

    assert [(alert.kind, alert.timepoint, alert.cameras) for alert in alerts] == [("signal", 3, (3,)), ("offset", 4, (0, 1))]
    dark, jump = alerts
    assert dark.message.startswith("SPM00 TM000003 CHN01 camera 3: signal dropped to ")
    assert "foreground" in dark.message and "intensity" in dark.message and "bound 50 %" in dark.message
    assert dark.value < 0.05 and dark.reference["foreground_fraction"] > 0.15  # ~0 % of a fifth of the stack
    assert jump.message.startswith("SPM00 TM000004 CHN00 cameras 0/1: offset jumped 3.0 px from the previous timepoints (x 7.3")
    assert jump.message.endswith("bound 2 px)")
    assert jump.value == pytest.approx(3.0, abs=0.1)
    # the dark camera's pair measured noise from TM3 on (offsets of tens of pixels): no alert of its own
    assert not [alert for alert in alerts if alert.cameras == (2, 3)]


def test_a_clean_acquisition_raises_no_alert(clean):
    assert _alerts(clean) == []


def test_a_simulation_without_faults_is_written_as_before_injections_existed():
    assert not {"offset_jumps", "dark_cameras"} & CLEAN.model_dump().keys()  # ground_truth.json unchanged, byte for byte
    assert SimulationConfig.model_validate_json(FAULTY.model_dump_json()) == FAULTY
    assert FAULTY.offset_jump(0, 4) == (3.0, 0.0) and FAULTY.offset_jump(0, 5) == FAULTY.offset_jump(1, 4) == (0.0, 0.0)
    assert [FAULTY.is_dark(3, t) for t in TIMEPOINTS] == [False] * 3 + [True] * 3 and not FAULTY.is_dark(2, 5)


def test_checks_can_be_turned_off(faulty):
    assert _alerts(faulty, AlertConfig(enabled=False)) == []


def test_a_missing_camera_raises_one_alert_naming_it_when_it_goes_missing(clean, tmp_path):
    corrected, fused = _records_only(clean, tmp_path)
    for timepoint in (4, 5):  # the microscope stopped writing camera 1 at TM4
        corrected_paths(corrected, 0, timepoint, 1, 0).record.unlink()

    alerts = find_alerts(corrected, fused, 0, TIMEPOINTS, BOUNDS)

    assert [alert.message for alert in alerts] == [
        "SPM00 TM000004 CHN00 camera 1: missing (no corrected stack; 4 of the previous 4 timepoints had one)"
    ]


def test_each_alert_is_recorded_once_however_the_timepoints_are_checked(faulty, tmp_path):
    corrected, fused = _records_only(faulty, tmp_path)
    live = []
    for timepoint in TIMEPOINTS:  # as the service does: cameras after each correction, pairs after each fusion
        live += raise_alerts(corrected, fused, 0, [timepoint], BOUNDS, pairs=False)
    for timepoint in TIMEPOINTS:
        live += raise_alerts(corrected, fused, 0, range(timepoint, timepoint + 3), BOUNDS, cameras=False)

    rerun = raise_alerts(corrected, fused, 0, TIMEPOINTS, BOUNDS)  # a restart, or `isoview run` over the same data

    assert [(alert.kind, alert.timepoint) for alert in live] == [("signal", 3), ("offset", 4)]
    assert rerun == []
    assert len(alerts_path(fused).read_text().splitlines()) == 2
    assert read_alerts(fused) == live


# --- the rules, on hand-written records --------------------------------------------------------------------------

PATTERN = np.random.default_rng(0).gamma(2.0, 1.0, size=(32, 32))
"""A textured xy projection (gamma noise: sharp, positive); cameras scale it."""


def _write_camera(root: Path, timepoint: int, camera: int, *, foreground: float = 0.2, brightness: float = 200.0, blur: float = 0.0) -> None:
    """A corrected record and its xy projection, as the correction writes them (channel 0)."""
    paths = corrected_paths(root, 0, timepoint, camera, 0)
    paths.folder.mkdir(parents=True, exist_ok=True)
    record = CorrectedStackRecord(
        specimen=0, timepoint=timepoint, camera=camera, channel=0, source="raw.stack", volume=paths.volume.name, format="zarr",
        shape=(8, 32, 32), voxel_size_um=(2.0, 0.41, 0.41), background_value=100.0, background_source="dark frame",
        defective_pixels=0, defective_fraction=0.0, std_threshold=None, mean_threshold=None, min_intensity=[0.0],
        threshold_level=None, foreground_fraction=foreground, raw_bytes=16384, stored_bytes=4096, compression_ratio=4.0, timings_s={},
    )  # fmt: skip
    paths.record.write_text(record.model_dump_json())
    image = ndimage.gaussian_filter(PATTERN, blur) if blur else PATTERN
    tifffile.imwrite(paths.projection("xy"), (brightness * image).astype(np.float32))


def _write_pair(root: Path, timepoint: int, *, offset_x: float = 7.3, ratio: float = 1.25, applied: dict | None = None) -> None:
    """Cameras 0/1's estimate (and, with `applied`, fusion record) at `timepoint`."""
    parameters = {"offset_x_px": offset_x, "offset_y_px": -4.6, "rotation_deg": 0.0, "intensity_ratio": ratio, "transition_z": 24.0}
    paths = FusedPaths(root, PairId(0, timepoint, (0, 1), 0, 0))
    paths.folder.mkdir(parents=True, exist_ok=True)
    paths.estimate.write_text(json.dumps({"timepoint": timepoint, "cameras": [0, 1], "view": 0, "channel": 0, "parameters": parameters}))
    if applied is not None:
        paths.record.write_text(json.dumps({"timepoint": timepoint, "cameras": [0, 1], "applied": parameters | applied}))


def _acquisition(tmp_path: Path, pairs: list[dict], cameras: list[dict] | None = None) -> tuple[Path, Path]:
    """Corrected and fused roots: per timepoint, the pair's keywords and camera 0's (camera 1 always lit)."""
    corrected, fused = tmp_path / "corrected", tmp_path / "fused"
    for timepoint, pair in enumerate(pairs):
        _write_camera(corrected, timepoint, 0, **(cameras[timepoint] if cameras else {}))
        _write_camera(corrected, timepoint, 1)
        _write_pair(fused, timepoint, **pair)
    return corrected, fused


def _found(corrected: Path, fused: Path, count: int) -> list[tuple[str, int]]:
    return [(alert.kind, alert.timepoint) for alert in find_alerts(corrected, fused, 0, range(count), BOUNDS)]


def test_a_pair_off_its_smoothed_trend_raises_an_alert_against_the_trend(tmp_path):
    # two timepoints: too few to compare with previous ones, only the trend compares
    corrected, fused = _acquisition(tmp_path, [{"applied": {}}, {"offset_x": 7.3, "applied": {"offset_x_px": 4.0}}])

    [alert] = find_alerts(corrected, fused, 0, range(2), BOUNDS)

    assert alert.message == "SPM00 TM000001 CHN00 cameras 0/1: offset jumped 3.3 px from the smoothed trend (x 4.00 -> 7.30, y -4.60 -> -4.60 px; bound 2 px)"
    assert alert.reference == {"offset_x_px": 4.0, "offset_y_px": -4.6}


@pytest.mark.parametrize(("ratio", "raised"), [(1.40, True), (1.35, False)])  # 12 % and 8 % from 1.25
def test_an_intensity_ratio_change_beyond_ten_percent_raises_an_alert(tmp_path, ratio, raised):
    corrected, fused = _acquisition(tmp_path, [{}] * 4 + [{"ratio": ratio}])

    alerts = find_alerts(corrected, fused, 0, range(5), BOUNDS)

    expected = ["SPM00 TM000004 CHN00 cameras 0/1: intensity ratio changed 12 % from the previous timepoints (1.250 -> 1.400; bound 10 %)"]
    assert [alert.message for alert in alerts] == (expected if raised else [])


def test_a_lasting_offset_step_raises_one_alert(tmp_path):
    corrected, fused = _acquisition(tmp_path, [{}] * 4 + [{"offset_x": 10.3}] * 6)

    assert _found(corrected, fused, 10) == [("offset", 4)]


def test_a_camera_dark_again_after_recovering_raises_a_second_alert_and_its_pair_is_not_checked_while_dark(tmp_path):
    lit, dark = {}, {"foreground": 0.001, "brightness": 0.5}
    cameras = [lit] * 4 + [dark] * 2 + [lit] * 4 + [dark] * 3
    # a pair with a dark camera estimates noise: offsets tens of pixels off, ratios a hundred times too large
    pairs = [{"offset_x": 40.0 + 20 * (t % 2), "ratio": 150.0} if camera is dark else {} for t, camera in enumerate(cameras)]
    corrected, fused = _acquisition(tmp_path, pairs, cameras)

    assert _found(corrected, fused, len(cameras)) == [("signal", 4), ("signal", 10)]


def test_a_defocused_camera_raises_a_signal_alert_naming_the_focus(tmp_path):
    corrected, fused = _acquisition(tmp_path, [{}] * 5, [{}] * 4 + [{"blur": 2.0}])

    [alert] = find_alerts(corrected, fused, 0, range(5), BOUNDS)

    assert alert.kind == "signal" and alert.cameras == (0,) and alert.timepoint == 4
    assert "focus" in alert.message and "foreground" not in alert.message and "intensity" not in alert.message


def test_the_focus_measure_follows_sharpness_not_brightness():
    sharp = focus_measure(PATTERN)
    assert focus_measure(3.0 * PATTERN) == pytest.approx(sharp)
    assert focus_measure(ndimage.gaussian_filter(PATTERN, 2.0)) < 0.1 * sharp
    assert np.isnan(focus_measure(np.zeros((8, 8))))


def test_a_history_shorter_than_its_minimum_is_refused():
    with pytest.raises(ValueError, match="min_history 6 > history 5"):
        AlertConfig(min_history=6)

