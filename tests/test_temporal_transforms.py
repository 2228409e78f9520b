"""Temporal smoothing of the VW90 → VW00 rigid transforms, checked against a known drifting truth (issue 16)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from isoview_core.temporal import (
    applied_transform,
    parameters_to_rigid,
    rigid_to_parameters,
    smooth_transforms,
)
from isoview_core.temporal.config import TemporalConfig

VOXEL_UM = 0.8125  # 2 x the 0.40625 um lateral pixel
CENTRE_UM = np.array([50.0, 100.0, 100.0])  # centre of a 100 x 200 x 200 um VW00 volume (z, y, x)
CORNERS_UM = CENTRE_UM + np.array(list(itertools.product((-50, 50), (-100, 100), (-100, 100))), dtype=float)
N_TIMEPOINTS = 30
CORRUPTED = 13
NOMINAL = Rotation.from_rotvec([0.0, np.pi / 2, 0.0])  # 90 degrees about y
CORRECTION_DEG = np.array([1.2, -0.8, 1.5])  # the small fixed misalignment, degrees
OFFSET_UM = np.array([12.0, -8.0, 15.0])


def _rigid(rotation: Rotation, translation: np.ndarray) -> np.ndarray:
    transform = np.eye(4)
    transform[:3, :3] = rotation.as_matrix()
    transform[:3, 3] = translation
    return transform


def _about_centre(transform: np.ndarray, rotvec_deg: np.ndarray, shift_um: np.ndarray) -> np.ndarray:
    """`transform` followed by a rotation about the overlap centre and a shift, as a registration error."""
    error = Rotation.from_rotvec(np.deg2rad(rotvec_deg)).as_matrix()
    out = transform.copy()
    out[:3, :3] = error @ transform[:3, :3]
    out[:3, 3] = error @ (transform[:3, 3] - CENTRE_UM) + CENTRE_UM + shift_um
    return out


def _truth() -> dict[int, np.ndarray]:
    """Nominal 90 degrees plus a fixed correction, drifting smoothly by 0.5 degree and 10 um over the series."""
    truth = {}
    for t in range(N_TIMEPOINTS):
        progress = (1.0 - np.cos(np.pi * t / (N_TIMEPOINTS - 1))) / 2.0  # 0 → 1, smooth
        drift_deg = 0.5 * progress * np.array([0.6, -0.48, 0.64])  # unit direction x 0.5 degree
        rotation = Rotation.from_rotvec(np.deg2rad(CORRECTION_DEG + drift_deg)) * NOMINAL
        translation = OFFSET_UM + 10.0 * progress * np.array([0.36, 0.48, 0.8])  # unit direction x 10 um
        truth[t] = _rigid(rotation, translation)
    return truth


def _estimates(truth: dict[int, np.ndarray], *, corrupted: int | None, seed: int = 0) -> dict[int, np.ndarray]:
    """Truth + registration noise (RMS 0.05 degree and 0.2 um); one timepoint 3 degrees and 15 um off."""
    rng = np.random.default_rng(seed)
    per_axis = 1.0 / np.sqrt(3.0)
    estimates = {
        t: _about_centre(transform, rng.normal(0.0, 0.05 * per_axis, 3), rng.normal(0.0, 0.2 * per_axis, 3))
        for t, transform in truth.items()
    }
    if corrupted is not None:
        estimates[corrupted] = _about_centre(estimates[corrupted], np.array([0.0, 3.0, 0.0]), np.array([9.0, 0.0, 12.0]))
    return estimates


def _error_voxels(applied: np.ndarray, truth: np.ndarray) -> float:
    """Largest displacement of the box corners where VW90 is sampled for them, in voxels."""
    homogeneous = np.c_[CORNERS_UM, np.ones(len(CORNERS_UM))].T
    moved = np.linalg.solve(applied, homogeneous) - np.linalg.solve(truth, homogeneous)
    return float(np.linalg.norm(moved[:3], axis=0).max() / VOXEL_UM)


def _errors(applied: dict[int, np.ndarray], truth: dict[int, np.ndarray]) -> np.ndarray:
    return np.array([_error_voxels(applied[t], truth[t]) for t in sorted(truth)])


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
    rotated = _about_centre(transform, np.array([0.0, 0.0, 2.0]), np.zeros(3))
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
    assert _error_voxels(estimates[CORRUPTED], truth[CORRUPTED]) > 20.0
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
    assert _error_voxels(weighted[CORRUPTED], truth[CORRUPTED]) < 0.5


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
