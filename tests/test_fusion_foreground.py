"""Foreground masks of unsegmented data (ALGORITHMS.md §3.5) and the transition map built from them."""

from __future__ import annotations

import numpy as np
import pytest
from pair_helpers import align_second, corrected_camera, pair_simulation

from isoview_core.correction.config import CorrectionConfig
from isoview_core.fusion.config import FusionConfig
from isoview_core.fusion.foreground import (
    filter_for_mask,
    mask_minimum,
    mean_plane_map,
    remove_small_components,
    unsegmented_mask,
    unsegmented_masks,
)
from isoview_core.fusion.transition import transition_map, transition_plane_summary
from isoview_core.synthetic import foreground_mask

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
