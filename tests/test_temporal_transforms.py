"""Temporal smoothing of the VW90 → VW00 rigid transforms, checked against a known drifting truth (issue 16)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from isoview_core.temporal import (
    applied_transform,
    parameters_to_rigid,
    rigid_to_parameters,
    smooth_transforms,
)
from isoview_core.synthetic.transform_series import CENTRE_UM, about_centre, corner_error_voxels, simulate_transform_series
from isoview_core.temporal.config import TemporalConfig

N_TIMEPOINTS = 30
CORRUPTED = 13
NOMINAL = Rotation.from_rotvec([0.0, np.pi / 2, 0.0])  # 90 degrees about y


def _truth() -> dict[int, np.ndarray]:
    return simulate_transform_series(N_TIMEPOINTS, corrupted=None).truth


def _estimates(truth: dict[int, np.ndarray], *, corrupted: int | None, seed: int = 0) -> dict[int, np.ndarray]:
    return simulate_transform_series(len(truth), corrupted=corrupted, seed=seed).estimates




def _errors(applied: dict[int, np.ndarray], truth: dict[int, np.ndarray]) -> np.ndarray:
    return np.array([corner_error_voxels(applied[t], truth[t]) for t in sorted(truth)])


def _smooth(estimates: dict, w: int, median: int = 0, **options) -> dict[int, np.ndarray]:
    config = TemporalConfig(window=w, param_median_filter_range=median)
    return smooth_transforms(
        estimates, reference_point_um=CENTRE_UM, config=config, first_timepoint=0,
        last_timepoint=N_TIMEPOINTS - 1, **options,
    )


def test_parameters_round_trip_to_the_transform_and_ignore_a_rotation_about_the_reference_point() -> None:
    truth = _truth()
    reference = (Rotation.from_rotvec(np.deg2rad([0.5, 0.2, -0.3])) * NOMINAL).as_matrix()
    for transform in truth.values():
        parameters = rigid_to_parameters(transform, reference_rotation=reference, reference_point_um=CENTRE_UM)
        rebuilt = parameters_to_rigid(parameters, reference_rotation=reference, reference_point_um=CENTRE_UM)
        np.testing.assert_allclose(rebuilt, transform, rtol=0, atol=1e-9)
    # s = R^T (c - t): the VW90 point landing on the reference point, unchanged by a rotation about it
    transform = truth[0]
    parameters = rigid_to_parameters(transform, reference_rotation=reference, reference_point_um=CENTRE_UM)
    np.testing.assert_allclose(transform[:3, :3] @ parameters[3:] + transform[:3, 3], CENTRE_UM, atol=1e-9)
    rotated = about_centre(transform, np.array([0.0, 0.0, 2.0]), np.zeros(3))
    moved = rigid_to_parameters(rotated, reference_rotation=reference, reference_point_um=CENTRE_UM)
    np.testing.assert_allclose(moved[3:], parameters[3:], atol=1e-9)
    np.testing.assert_allclose(np.rad2deg(np.linalg.norm(moved[:3] - parameters[:3])), 2.0, atol=0.01)


@pytest.mark.parametrize(
    ("w", "median", "bound"),
    [
        (5, 0, 0.5),  # the bound, with the default window
        (2, 3, 1.0),  # short window: needs the median prefilter, and meets a voxel only (6 without it)
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_corrupted_timepoint_does_not_jerk_the_applied_transforms(w: int, median: int, bound: float, seed: int) -> None:
    truth = _truth()
    estimates = _estimates(truth, corrupted=CORRUPTED, seed=seed)
    assert corner_error_voxels(estimates[CORRUPTED], truth[CORRUPTED]) > 20.0
    errors = _errors(_smooth(estimates, w, median), truth)
    assert errors.max() < bound, f"w={w}: worst {errors.max():.3f} voxel at timepoint {errors.argmax()}"


@pytest.mark.parametrize("w", [5, 2])
def test_smoothing_follows_a_smooth_drift_without_bias_and_reduces_the_noise(w: int) -> None:
    truth = _truth()
    bias = _errors(_smooth(truth, w), truth)
    assert bias.max() < 0.05, f"w={w}: noiseless drift off by {bias.max():.4f} voxel"
    estimates = _estimates(truth, corrupted=None, seed=1)
    noise = _errors(estimates, truth)
    errors = _errors(_smooth(estimates, w), truth)
    assert np.sqrt(np.mean(errors**2)) < 0.8 * np.sqrt(np.mean(noise**2))


def test_an_unreliable_timepoint_is_imputed_like_a_missing_one() -> None:
    truth = _truth()
    estimates = _estimates(truth, corrupted=CORRUPTED)
    qualities = {t: 0.9 for t in truth} | {CORRUPTED: 0.0}
    weighted = _smooth(estimates, 5, qualities=qualities)
    missing = _smooth(estimates | {CORRUPTED: None}, 5)
    for t in truth:
        np.testing.assert_array_equal(weighted[t], missing[t])
    assert corner_error_voxels(weighted[CORRUPTED], truth[CORRUPTED]) < 0.5


def test_the_live_window_gives_the_batch_value_once_complete() -> None:
    truth = _truth()
    estimates = _estimates(truth, corrupted=CORRUPTED)
    w = 5
    config = TemporalConfig(window=w)
    batch = _smooth(estimates, w)
    for t in range(N_TIMEPOINTS):
        complete = max(t + w, 2 * w)  # the first timepoints' window is shifted to 0 .. 2w
        known = {s: estimates[s] for s in range(min(complete, N_TIMEPOINTS - 1) + 1)}
        last = N_TIMEPOINTS - 1 if complete >= N_TIMEPOINTS - 1 else None
        live = applied_transform(
            t, known, reference_point_um=CENTRE_UM, config=config, first_timepoint=0, last_timepoint=last
        )
        assert live.final
        np.testing.assert_array_equal(live.applied, batch[t])
        if last is None:  # one estimate short: provisional
            early = applied_transform(
                t, {s: known[s] for s in range(complete)}, reference_point_um=CENTRE_UM, config=config,
                first_timepoint=0, last_timepoint=None,
            )
            assert not early.final


def test_a_non_rigid_estimate_is_refused() -> None:
    estimate = np.eye(4)
    estimate[0, 0] = 1.01
    with pytest.raises(ValueError, match="timepoint 3: not rigid"):
        applied_transform(
            3, {3: estimate}, reference_point_um=CENTRE_UM, config=TemporalConfig(), first_timepoint=0,
            last_timepoint=None,
        )
