"""Transition map (ALGORITHMS.md §3.6) and the fusion masks of unsegmented data (§3.5)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from pair_helpers import align_second, corrected_camera, pair_simulation

from isoview_core.correction.config import CorrectionConfig
from isoview_core.fusion.config import FusionConfig
from isoview_core.fusion.transition import (
    effective_blending_range,
    filter_for_mask,
    mask_minimum,
    mean_plane_map,
    remove_small_components,
    transition_map,
    transition_plane_summary,
    unsegmented_mask,
    unsegmented_masks,
)
from isoview_core.synthetic import foreground_mask

Z = 20  # planes of the hand examples; B = 4 keeps 1-based values 4 .. 16


def _map(*values: int) -> np.ndarray:
    return np.array([values], dtype=np.uint16)


# --- step 1: mask fusion ---------------------------------------------------------------------------


def test_overlap_rounds_half_away_and_drops_single_camera_pixels():
    s1 = _map(7, 8, 9, 0, 10, 0)
    s2 = _map(8, 8, 12, 11, 0, 0)
    result = transition_map(s1, s2, planes=Z, mask_fusion_mode="overlap")
    # (7+8)/2 = 7.5 -> 8 (MATLAB uint16 rounds .5 up; floor division would give 7), 10.5 -> 11
    assert result.tolist() == [[8, 8, 11, 0, 0, 0]]
    assert result.dtype == np.uint16


def test_union_takes_the_single_camera_where_only_one_sees_the_specimen():
    s1 = _map(7, 8, 9, 0, 10, 0)
    s2 = _map(8, 8, 12, 11, 0, 0)
    assert transition_map(s1, s2, planes=Z, mask_fusion_mode="union").tolist() == [[8, 8, 11, 11, 10, 0]]


# --- step 2: anomaly removal (1-based bounds [B, Z - B]) ---------------------------------------------


def test_anomaly_bounds_are_one_based_and_inclusive():
    values = _map(3, 4, 5, 15, 16, 17)
    result = transition_map(values, values, planes=Z, blending_range=4)
    assert result.tolist() == [[0, 4, 5, 15, 16, 0]]


def test_too_large_blending_range_is_reduced_to_fit_the_stack(caplog):
    with caplog.at_level(logging.WARNING):
        assert effective_blending_range(12, Z) == (Z - 1) // 2
    assert "does not fit" in caplog.text
    values = _map(8, 9, 10, 11, 12)
    # B = 12 would leave nothing in [12, 8]; reduced to 9, the bounds are [9, 11]
    assert transition_map(values, values, planes=Z, blending_range=12).tolist() == [[0, 9, 10, 11, 0]]


def test_map_emptied_by_anomaly_removal_falls_back_to_the_centre_plane(caplog):
    values = _map(1, 2, 19, 0)
    with caplog.at_level(logging.WARNING):
        result = transition_map(values, values, planes=Z, blending_range=4)
    assert result.tolist() == [[10, 10, 10, 10]]
    assert "empty" in caplog.text


# --- step 3: geometric override ----------------------------------------------------------------------


def test_geometric_override_uses_the_centre_plane_and_keeps_excluded_pixels():
    values = _map(5, 9, 3, 0, 14)
    result = transition_map(values, values, planes=21, blending_range=4, fusion_type="geometric")
    # round_half_away(21 / 2) = 11 (Python's round would give 10); 3 < B stays excluded
    assert result.tolist() == [[11, 11, 0, 0, 11]]


def test_geometric_override_uses_the_user_plane_unchecked():
    values = _map(5, 9, 0)
    result = transition_map(values, values, planes=Z, fusion_type="geometric", transition_plane=2)
    assert result.tolist() == [[2, 2, 0]]


# --- step 4: padding ---------------------------------------------------------------------------------


def test_centre_padding_fills_every_excluded_pixel():
    values = _map(5, 0, 3, 12)
    result = transition_map(values, values, planes=Z, padding="centre")
    assert result.tolist() == [[5, 10, 10, 12]]


def _disc_map(size: int = 41, radius: float = 6, value: int = 16) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size] - size // 2
    return np.where(rows**2 + cols**2 <= radius**2, value, 0).astype(np.uint16)


def test_smooth_padding_interpolates_a_ring_between_the_map_and_the_centre_plane():
    disc = _disc_map(value=16)
    result = transition_map(disc, disc, planes=Z, padding="smooth", padding_radius=8)
    rows, cols = np.mgrid[:41, :41] - 20
    distance = np.hypot(rows, cols)
    assert (result[disc > 0] == 16).all()
    assert (result[distance > 6 + 8 + 1.5] == 10).all()  # beyond the disk: centre plane
    ring = (distance > 7) & (distance < 13)
    assert ((result[ring] > 10) & (result[ring] < 16)).all()  # strictly between, no step
    along_row = result[20, 20:]
    assert (np.diff(along_row.astype(int)) <= 0).all()  # falls monotonically from 16 to 10
    assert (result > 0).all()


def test_smooth_padding_clamps_the_whole_map_to_the_bounds():
    disc = _disc_map(value=16)
    # geometric map at a user plane below B, then padded: the clamp lifts everything to >= B
    result = transition_map(disc, disc, planes=Z, fusion_type="geometric", transition_plane=2, padding="smooth", padding_radius=8)
    assert result.min() >= 4 and result.max() <= Z - 4
    assert (result[disc > 0] == 4).all()


def test_smooth_padding_with_a_radius_covering_the_image_uses_nearest_values_outside_the_hull():
    values = np.zeros((9, 9), dtype=np.uint16)
    values[4, 4] = 12
    result = transition_map(values, values, planes=Z, padding="smooth", padding_radius=50)
    assert (result == 12).all()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mask_fusion_mode": "intersection"}, "mask_fusion_mode"),
        ({"padding": "zero"}, "padding"),
        ({"blending_range": 0}, "blending range"),
        ({"padding_radius": 0}, "padding_radius"),
    ],
)
def test_invalid_options_are_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        transition_map(_map(5), _map(5), planes=Z, **options)


def test_maps_of_different_shapes_are_rejected():
    with pytest.raises(ValueError, match="equal shape"):
        transition_map(_map(5, 5), _map(5), planes=Z)


# --- summary -----------------------------------------------------------------------------------------


def test_transition_plane_summary_is_the_zero_based_median():
    assert transition_plane_summary(_map(0, 24, 25, 25, 0)) == 24.0
    assert transition_plane_summary(_map(24, 25)) == 23.5
    with pytest.raises(ValueError, match="empty"):
        transition_plane_summary(_map(0, 0))


# --- §3.5 building blocks ----------------------------------------------------------------------------


def test_mean_plane_map_is_one_based_and_rounds_half_away():
    mask = np.zeros((4, 1, 3), dtype=bool)
    mask[[0, 1], 0, 0] = True  # planes 1, 2 (1-based): mean 1.5 -> 2
    mask[3, 0, 1] = True  # plane 4
    assert mean_plane_map(mask).tolist() == [[2, 4, 0]]


def test_small_components_are_removed_with_26_connectivity():
    mask = np.zeros((10, 10, 10), dtype=bool)
    mask[1, 1, 1] = mask[2, 2, 2] = mask[3, 3, 3] = True  # 3 voxels touching only at corners
    mask[7, 7, 7] = mask[7, 7, 8] = True  # 2 voxels
    kept = remove_small_components(mask, min_fraction=3e-3)  # round(1000 * 3e-3) = 3 voxels
    assert kept[1, 1, 1] and kept[3, 3, 3]
    assert not kept[7, 7, 7] and not kept[7, 7, 8]
    assert remove_small_components(mask, min_fraction=0) is mask


def test_zero_percentile_is_the_true_minimum():
    filtered = np.arange(1000, dtype=np.uint16).reshape(10, 10, 10) + 7
    assert mask_minimum(filtered, percentile=0) == 7.0
    assert mask_minimum(filtered, percentile=50, subsample=1) == pytest.approx(506.5)


def test_native_uint16_filter_is_within_rounding_of_the_precise_filter():
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 4000, size=(8, 40, 30)).astype(np.uint16)
    precise = filter_for_mask(volume, scaling=2.0)
    native = filter_for_mask(volume, scaling=2.0, precise=False)
    assert np.abs(precise.astype(int) - native.astype(int)).max() <= 2


# --- unsegmented data on a synthetic pair ------------------------------------------------------------


@pytest.fixture(scope="module")
def unmasked_pair():
    """Config and corrected, unmasked stacks of camera 1 and of camera 2 as recorded (not flipped)."""
    config = pair_simulation((48, 128, 112), ratio=1.25)
    stacks = [corrected_camera(config, camera, CorrectionConfig(apply_segmentation_mask=False))[0] for camera in (0, 1)]
    return config, stacks[0], stacks[1]


def test_unsegmented_masks_share_the_larger_minimum_and_find_the_body(unmasked_pair):
    config, reference, recorded = unmasked_pair
    second = np.ascontiguousarray(recorded[..., ::-1])  # oriented (flipped), not registered
    masks = unsegmented_masks(reference, second, FusionConfig(), scaling=4.92)
    fusion = FusionConfig()
    minima = [
        mask_minimum(
            filter_for_mask(volume, scaling=4.92), percentile=fusion.fusion_mask_percentile, subsample=fusion.fusion_subsample_stacks
        )
        for volume in (reference, second)
    ]
    assert masks.shared_minimum == max(minima)
    truth = foreground_mask(config, 0, 0)
    dice = 2 * (masks.reference & truth).sum() / (masks.reference.sum() + truth.sum())
    assert dice > 0.8  # threshold at the foreground mean (mask_factor 1): the body's bright core
    assert np.array_equal(masks.reference_map, mean_plane_map(masks.reference))


def test_transition_map_of_unsegmented_data_sits_at_the_body_centre(unmasked_pair):
    config, reference, recorded = unmasked_pair
    masks = unsegmented_masks(reference, np.ascontiguousarray(recorded[..., ::-1]), FusionConfig(), scaling=4.92)
    second_mask, second_map = unsegmented_mask(align_second(recorded), masks.shared_minimum, scaling=4.92)
    assert second_mask.shape == reference.shape
    final = transition_map(masks.reference_map, second_map, planes=config.shape[0])
    # the body is centred on 0-based plane 23.5; the rounded map sits within a plane of it
    assert abs(transition_plane_summary(final) - 23.5) <= 1.0
    assert (final[final > 0] >= 4).all() and (final <= config.shape[0] - 4).all()
