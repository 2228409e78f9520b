"""Transition map (ALGORITHMS.md §3.6)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from isoview_core.fusion.transition import (
    effective_blending_range,
    transition_map,
    transition_plane_summary,
)

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


@pytest.mark.parametrize("mode", ["overlap", "union"])
def test_integer_maps_give_the_map_of_their_float_values(mode):
    """16-bit maps take an integer path: the same map as the float computation (round half away of the mean)."""
    rng = np.random.default_rng(3)
    s1, s2 = (np.where(rng.random((40, 50)) < 0.7, rng.integers(1, 65536, (40, 50)), 0).astype(np.uint16) for _ in range(2))
    s1[0, :3], s2[0, :3] = 65535, [65535, 65534, 0]
    for planes in (Z, 65535 + 5):
        expected = transition_map(s1.astype(np.float64), s2.astype(np.float64), planes=planes, mask_fusion_mode=mode)
        np.testing.assert_array_equal(transition_map(s1, s2, planes=planes, mask_fusion_mode=mode), expected, strict=True)
        small = s1.astype(np.uint8)
        expected = transition_map(small.astype(np.float64), s2.astype(np.float64), planes=planes, mask_fusion_mode=mode)
        np.testing.assert_array_equal(transition_map(small, s2, planes=planes, mask_fusion_mode=mode), expected, strict=True)
