"""Orientation and crop of the second camera (isoview_core.fusion.orientation)."""

import numpy as np
import pytest

from isoview_core.fusion.config import FusionCrop, ViewOrientation
from isoview_core.fusion.orientation import crop_volume, orient_second_camera

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("rotation", [-1, 0, 1])
@pytest.mark.parametrize("flip_z", [False, True])
@pytest.mark.parametrize("flips", [(True, False), (False, True), (True, True), (False, False)])
def test_orientation_order_is_flip_z_rotation_then_flips(rotation, flip_z, flips):
    volume = RNG.integers(0, 1000, (3, 4, 5)).astype(np.uint16)
    orientation = ViewOrientation(flip_z=flip_z, rotation=rotation, flip_horizontal=flips[0], flip_vertical=flips[1])
    expected = volume[::-1] if flip_z else volume
    expected = np.rot90(expected, k=-rotation, axes=(1, 2))
    if flips[0]:
        expected = expected[:, :, ::-1]
    if flips[1]:
        expected = expected[:, ::-1, :]
    oriented = orient_second_camera(volume, orientation)
    np.testing.assert_array_equal(oriented, expected)
    assert oriented.flags["C_CONTIGUOUS"]


def test_default_orientation_reverses_columns_and_clockwise_rotation_matches_spec():
    volume = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    np.testing.assert_array_equal(orient_second_camera(volume, ViewOrientation()), volume[:, :, ::-1])
    clockwise = orient_second_camera(volume, ViewOrientation(rotation=1, flip_horizontal=False))
    assert clockwise.shape == (2, 4, 3)
    assert clockwise[0, 0, 0] == volume[0, 2, 0]  # top-left comes from bottom-left after a clockwise turn


def test_two_dimensional_maps_follow_the_stack_and_flip_z_mirrors_plane_values():
    volume = np.zeros((10, 4, 5), dtype=np.uint16)
    volume[2, 1, 3] = 1
    plane_map = np.zeros((4, 5), dtype=np.uint16)
    plane_map[1, 3] = 3  # 1-based plane of the voxel above
    orientation = ViewOrientation(flip_z=True, rotation=1, flip_vertical=True)
    oriented_volume = orient_second_camera(volume, orientation)
    oriented_map = orient_second_camera(plane_map, orientation, planes=10)
    z, y, x = np.argwhere(oriented_volume)[0]
    assert oriented_map[y, x] == z + 1
    assert np.count_nonzero(oriented_map) == 1
    with pytest.raises(ValueError, match="planes="):
        orient_second_camera(plane_map, orientation)
    with pytest.raises(ValueError, match="exceeds"):
        orient_second_camera(plane_map, orientation, planes=2)


def test_crop_volume_uses_inclusive_back_plane_and_checks_bounds():
    volume = np.arange(6 * 7 * 8).reshape(6, 7, 8)
    crop = FusionCrop(left=2, top=1, width=3, height=4, front=1, back=3)
    np.testing.assert_array_equal(crop_volume(volume, crop), volume[1:4, 1:5, 2:5])
    np.testing.assert_array_equal(crop_volume(volume[0], crop), volume[0, 1:5, 2:5])
    assert crop_volume(volume, None) is volume
    np.testing.assert_array_equal(crop_volume(volume, FusionCrop(left=5, front=4)), volume[4:, :, 5:])
    for bad in (FusionCrop(left=6, width=3), FusionCrop(top=7), FusionCrop(front=4, back=2), FusionCrop(back=6)):
        with pytest.raises(ValueError):
            crop_volume(volume, bad)
