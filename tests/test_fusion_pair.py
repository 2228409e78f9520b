"""The camera pair's map arithmetic: the planes estimation reads, and transition maps of a sub-stack."""

from __future__ import annotations

import numpy as np
import pytest

from isoview_core.fusion.config import FusionConfig
from isoview_core.fusion.pair import planes_near_surface, shift_map

PLANES = 100
MARGIN = 5 + 4 + 1  # the larger slab half-width (intensity, 5) + blending range (4) + 1, the defaults


def _map(low: int, high: int) -> np.ndarray:
    """A uint16 1-based map with values ``low`` and ``high`` on a background of zeros."""
    plane_map = np.zeros((32, 48), np.uint16)
    plane_map[3, 4], plane_map[20, 40] = low, high
    return plane_map


def test_planes_near_surface_span_every_maps_non_zero_values_and_the_centre_plus_the_margin():
    maps = (_map(30, 52), _map(41, 47), np.zeros((32, 48), np.uint16))

    first, last = planes_near_surface(FusionConfig(), maps, PLANES)

    # 0-based first plane: lowest 1-based value 30 -> 29, minus the margin; last: highest value 52 plus the margin
    assert (first, last) == (30 - 1 - MARGIN, 52 + MARGIN)


def test_planes_near_surface_include_the_centre_and_the_geometric_plane_and_stay_inside_the_stack():
    maps = (_map(60, 62),)

    assert planes_near_surface(FusionConfig(), maps, PLANES) == (50 - 1 - MARGIN, 62 + MARGIN)
    assert planes_near_surface(FusionConfig(transition_plane=95), maps, PLANES) == (50 - 1 - MARGIN, PLANES)
    assert planes_near_surface(FusionConfig(), (_map(2, 3),), PLANES) == (0, 50 + MARGIN)


@pytest.mark.parametrize("config", [FusionConfig(registration_data="mip"), FusionConfig(data_type="unsegmented")])
def test_planes_near_surface_are_every_plane_for_mip_registration_and_unsegmented_data(config):
    assert planes_near_surface(config, (_map(40, 45),), PLANES) == (0, PLANES)


def test_shift_map_moves_the_non_zero_planes_to_the_sub_stack_and_keeps_the_zeros():
    transition = np.array([[0, 12, 30], [11, 0, 25]], np.uint16)

    shifted = shift_map(transition, 10)

    np.testing.assert_array_equal(shifted, [[0, 2, 20], [1, 0, 15]])
    assert shifted.dtype == np.uint16
    np.testing.assert_array_equal(transition, [[0, 12, 30], [11, 0, 25]])  # the map itself is left alone
