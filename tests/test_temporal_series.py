"""Batch parameter analysis (ALGORITHMS.md §4.2) and the lookup table (§4.4)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from isoview_core.records import PARAMETER_NAMES, FusionParameters
from isoview_core.temporal import LookupTable, smooth_parameters
from isoview_core.temporal.config import TemporalConfig

RAW = TemporalConfig(
    temporal_smoothing=False, offset_averaging_range=0, angle_averaging_range=0, intensity_averaging_range=0
)
"""No smoothing, no averaging: the table is the (interpolated) estimates."""


def _parameters(x: float, y: float = 0.0, rotation: float = 0.0, ratio: float = 1.0, z: float = 20.0) -> FusionParameters:
    return FusionParameters(offset_x_px=x, offset_y_px=y, rotation_deg=rotation, intensity_ratio=ratio, transition_z=z)


def _applied(table: LookupTable) -> np.ndarray:
    return np.array([row.applied.as_array() for row in table.rows])


def _smoothed(table: LookupTable) -> np.ndarray:
    return np.array([row.smoothed.as_array() for row in table.rows])


def drifting_series(corrupted: int, seed: int = 0) -> tuple[np.ndarray, list[FusionParameters], np.ndarray]:
    """The issue's acceptance series: 30 timepoints, slow drift, sigma = 0.1 px, one corrupted estimate."""
    rng = np.random.default_rng(seed)
    t = np.arange(30)
    truth = np.column_stack([7.3 + 0.05 * t, -4.6 - 0.03 * t, 0.2 + 0.002 * t, 1.10 + 0.002 * t, 24.0 + 0.02 * t])
    noise = np.array([0.1, 0.1, 0.01, 0.005, 0.1])
    measured = truth + rng.normal(size=truth.shape) * noise
    measured[corrupted, 0:2] += 8.0
    measured[corrupted, 3] *= 1.5
    return t, [FusionParameters.from_array(row) for row in measured], truth


@pytest.mark.parametrize("corrupted", [1, 14, 28])
def test_acceptance_drift_with_one_corrupted_timepoint(corrupted: int) -> None:
    t, estimates, truth = drifting_series(corrupted)
    table = smooth_parameters(t, estimates, t, TemporalConfig())
    applied = _applied(table)
    assert np.abs(applied[:, 0:2] - truth[:, 0:2]).max() < 0.5
    assert np.abs(applied[:, 3] - truth[:, 3]).max() < 0.05  # the x1.5 ratio is rejected too
    # the corrupted estimate is kept in the table, for QC
    assert table.rows[corrupted].estimated == estimates[corrupted]


def test_fusion_parameters_array_round_trip() -> None:
    p = _parameters(1.5, -2.0, 0.3, 1.2, 17.0)
    assert PARAMETER_NAMES == ("offset_x_px", "offset_y_px", "rotation_deg", "intensity_ratio", "transition_z")
    np.testing.assert_array_equal(p.as_array(), [1.5, -2.0, 0.3, 1.2, 17.0])
    assert FusionParameters.from_array(p.as_array()) == p
    with pytest.raises(ValueError, match="5 values"):
        FusionParameters.from_array([1.0, 2.0])


def test_interpolation_between_uneven_references() -> None:
    references = [2, 6, 16]
    estimates = [_parameters(0.0), _parameters(4.0), _parameters(24.0)]
    table = smooth_parameters(references, estimates, range(20), RAW)
    x = _applied(table)[:, 0]
    # before the first / after the last reference: nearest; between: distance-weighted linear
    np.testing.assert_allclose(x[:3], 0.0)
    np.testing.assert_allclose(x[2:7], [0.0, 1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(x[6:17], 4.0 + 2.0 * np.arange(11))
    np.testing.assert_allclose(x[16:], 24.0)
    assert [row.estimated is not None for row in table.rows] == [t in references for t in range(20)]


def test_without_interpolation_the_nearest_reference_is_used() -> None:
    config = RAW.model_copy(update={"temporal_interpolation": False})
    table = smooth_parameters([0, 4, 10], [_parameters(0.0), _parameters(4.0), _parameters(10.0)], range(12), config)
    np.testing.assert_array_equal(_applied(table)[:, 0], [0, 0, 0, 4, 4, 4, 4, 4, 10, 10, 10, 10])  # ties -> earlier


def test_smoothing_abscissa_is_the_reference_position() -> None:
    """Values quadratic in the *position* of uneven references are reproduced exactly (they are not in time)."""
    references = [0, 1, 2, 3, 10, 11, 12, 30, 31, 32, 40, 41, 50]
    position = np.arange(len(references))
    values = 1.0 + 0.5 * position - 0.05 * position**2
    config = TemporalConfig(smoothing_window=7, offset_averaging_range=0)
    table = smooth_parameters(references, [_parameters(v) for v in values], references, config)
    np.testing.assert_allclose(_applied(table)[:, 0], values, atol=1e-10)


def test_missing_record_is_imputed_by_the_smoothing() -> None:
    t = np.arange(25)
    estimates: list[FusionParameters | None] = [_parameters(1.0 + 0.2 * k) for k in t]
    estimates[9] = None
    table = smooth_parameters(t, estimates, t, TemporalConfig(offset_averaging_range=0))
    assert table.rows[9].estimated is None
    assert table.rows[9].smoothed.offset_x_px == pytest.approx(1.0 + 0.2 * 9, abs=1e-10)


def test_mean_and_median_averaging_use_the_per_parameter_ranges() -> None:
    values = np.array([0.0, 1.0, 2.0, 30.0, 4.0, 5.0, 6.0, 7.0])
    estimates = [_parameters(v, v, v, 1.0 + v, v) for v in values]
    config = RAW.model_copy(update={"offset_averaging_range": 1, "angle_averaging_range": 2, "intensity_averaging_range": 0})
    mean = _applied(smooth_parameters(range(8), estimates, range(8), config))

    def clipped_mean(radius: int) -> np.ndarray:
        return np.array([values[max(i - radius, 0) : i + radius + 1].mean() for i in range(8)])

    np.testing.assert_allclose(mean[:, 0], clipped_mean(1))  # offsets: offset range
    np.testing.assert_allclose(mean[:, 1], clipped_mean(1))
    np.testing.assert_allclose(mean[:, 2], clipped_mean(2))  # rotation: angle range
    np.testing.assert_allclose(mean[:, 3], 1.0 + values)  # ratio: intensity range 0
    np.testing.assert_allclose(mean[:, 4], clipped_mean(1))  # transition plane: offset range

    median = _applied(smooth_parameters(range(8), estimates, range(8), config.model_copy(update={"averaging": "median"})))
    # window of row 0 is [0, 1] -> 0.5 (even count: mean of the two middle values); the spike at 3 disappears
    np.testing.assert_allclose(median[:, 0], [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 6.0, 6.5])


def test_nan_propagate_versus_omit() -> None:
    estimates: list[FusionParameters | None] = [_parameters(float(k)) for k in range(10)]
    estimates[4] = None
    config = RAW.model_copy(update={"offset_averaging_range": 2})
    propagated = _applied(smooth_parameters(range(10), estimates, range(10), config))[:, 0]
    assert np.isnan(propagated[2:7]).all() and not np.isnan(propagated[[0, 1, 7, 8, 9]]).any()
    omit = config.model_copy(update={"temporal_nan_policy": "omit"})
    omitted = _applied(smooth_parameters(range(10), estimates, range(10), omit))
    assert omitted[4, 0] == pytest.approx(np.mean([2.0, 3.0, 5.0, 6.0]))
    assert not np.isnan(omitted[:, [0, 1, 4]]).any()  # offsets and transition plane: range 2
    assert np.isnan(omitted[4, [2, 3]]).all()  # rotation and ratio: range 0, nothing else to average


def test_nan_in_the_table_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        smooth_parameters([0, 1], [_parameters(1.0), None], range(2), RAW)
    assert "NaN" in caplog.text


def test_static_mode_returns_one_value() -> None:
    t, estimates, _ = drifting_series(corrupted=14)
    applied = _applied(smooth_parameters(t, estimates, t, TemporalConfig(static_parameters=True)))
    assert np.unique(applied, axis=0).shape[0] == 1
    # the original's static value is the mean of the averaged table: about the mid-series truth
    assert applied[0, 0] == pytest.approx(7.3 + 0.05 * 14.5, abs=0.15)
    median_config = TemporalConfig(static_parameters=True, static_method="median")
    median = _applied(smooth_parameters(t, estimates, t, median_config))
    assert np.unique(median, axis=0).shape[0] == 1


def test_median_prefilter_removes_a_spike_and_keeps_missing_records() -> None:
    values = [1.0, 1.0, 9.0, 1.0, 1.0, 1.0]
    estimates: list[FusionParameters | None] = [_parameters(v) for v in values]
    estimates[5] = None
    config = RAW.model_copy(update={"param_median_filter_range": 3})
    smoothed = _smoothed(smooth_parameters(range(6), estimates, range(6), config))[:, 0]
    np.testing.assert_array_equal(smoothed[:5], 1.0)  # windows clipped at the ends, NaN skipped
    assert np.isnan(smoothed[5])
    with pytest.raises(ValueError, match="odd"):
        smooth_parameters(range(6), estimates, range(6), RAW.model_copy(update={"param_median_filter_range": 4}))


@pytest.mark.parametrize("static", [False, True])
def test_read_factors_off_leaves_the_ratio_empty(static: bool, caplog: pytest.LogCaptureFixture) -> None:
    config = RAW.model_copy(update={"read_factors": False, "static_parameters": static})
    with caplog.at_level(logging.WARNING):
        table = smooth_parameters(range(5), [_parameters(1.0, ratio=1.3)] * 5, range(5), config)
    assert not caplog.text  # an empty ratio column is expected, not a missing estimate
    assert all(np.isnan(row.applied.intensity_ratio) and np.isnan(row.smoothed.intensity_ratio) for row in table.rows)
    assert table.rows[0].estimated.intensity_ratio == 1.3
    assert table.rows[0].applied.offset_x_px == 1.0


def test_lookup_table_csv_round_trip(tmp_path: Path) -> None:
    t, estimates, _ = drifting_series(corrupted=3)
    estimates[5] = None
    estimates[7] = estimates[7].model_copy(update={"intensity_ratio": float("nan")})
    table = smooth_parameters(t[::2], estimates[::2], range(31), TemporalConfig(smoothing_window=7))
    path = table.save_csv(tmp_path / "SPM00_pair.lookup.csv")
    header = path.read_text().splitlines()[0].split(",")
    assert header[:4] == ["timepoint", "offset_x_px_estimated", "offset_x_px_smoothed", "offset_x_px_applied"]

    loaded = LookupTable.load_csv(path)
    assert [row.timepoint for row in loaded.rows] == list(range(31))
    for original, restored in zip(table.rows, loaded.rows, strict=True):
        assert (original.estimated is None) == (restored.estimated is None)
        for stage in ("estimated", "smoothed", "applied"):
            if getattr(original, stage) is not None:
                np.testing.assert_array_equal(getattr(restored, stage).as_array(), getattr(original, stage).as_array())
    assert loaded.applied_at(12) == table.applied_at(12)
    with pytest.raises(KeyError, match="no row for timepoint 99"):
        loaded.applied_at(99)


def test_load_csv_refuses_a_foreign_table(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("timepoints,x_offset\n0,1.0\n")
    with pytest.raises(ValueError, match="missing columns"):
        LookupTable.load_csv(path)


@pytest.mark.parametrize(
    ("timepoints", "estimates", "full", "match"),
    [
        ([0, 1], [None], range(2), "2 reference timepoints but 1 estimates"),
        ([1, 0], [None, None], range(2), "strictly increasing"),
        ([], [], range(2), "non-empty"),
        ([0, 1], [None, None], [], "non-empty"),
        ([0.5, 1.5], [None, None], range(2), "integers"),
    ],
)
def test_invalid_series_are_refused(timepoints: list, estimates: list, full: range, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        smooth_parameters(timepoints, estimates, full, RAW)
