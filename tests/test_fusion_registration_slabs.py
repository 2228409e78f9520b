"""Tests of the adaptive slab around the transition surface (isoview_core.fusion.registration.slabs)."""

import numpy as np
import pytest

from isoview_core.fusion.registration import (
    extract_slab,
    slab_background_offset,
    slab_half_widths,
)
from isoview_core.numerics.percentiles import hazen_percentile


def test_slab_follows_the_transition_map_and_stays_inside_the_stack():
    planes = 10
    volume = np.broadcast_to(np.arange(1, planes + 1, dtype=np.uint16)[:, None, None] * 10, (planes, 3, 4)).copy()
    volume[:, 0, 0] += 1  # a distinct value at one pixel
    transition = np.array([[2, 5, 5, 0], [9, 5, 5, 5], [5, 5, 5, 5]], dtype=np.uint16)
    lower, upper = slab_half_widths(transition, planes, 3)
    assert (lower, upper) == (1, 1)  # min 2 -> L = 1; max 9 of 10 planes -> U = 1
    assert slab_half_widths(transition, planes, 0) == (0, 0)
    slab = extract_slab(volume, transition, lower, upper)
    assert slab.shape == (3, 3, 4)
    for j in range(3):
        expected = np.where(transition > 0, (transition.astype(int) - 1 - lower + j + 1) * 10, 0)
        expected[0, 0] += 1
        np.testing.assert_array_equal(slab[j], expected)
    with pytest.raises(ValueError, match="leaves"):
        extract_slab(volume, transition, 3, 3)


def test_slab_background_offset_is_the_pooled_percentile_of_non_zero_voxels():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 50, (3, 8, 9)).astype(np.uint16)
    b = rng.integers(0, 80, (3, 8, 9)).astype(np.uint16)
    pooled = np.concatenate([a[a > 0], b[b > 0]])
    assert slab_background_offset(a, b, percentile=5.0, subsample=1) == pytest.approx(hazen_percentile(pooled, 5.0))
    assert slab_background_offset(np.zeros_like(a), np.zeros_like(b), percentile=5.0, subsample=1) == 0.0
