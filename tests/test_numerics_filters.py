import numpy as np
import pytest

from isoview_core.numerics.filters import anisotropic_gaussian, gaussian_taps

SCALING = 2.0 / (6.5 / 16)


def test_gaussian_taps_follow_the_original_support():
    assert gaussian_taps(5, 2.0).size == 7  # -ceil(5/2) .. ceil(5/2)
    assert gaussian_taps(1.016, 1.0).size == 3  # real-valued axial size, not truncated
    assert gaussian_taps(5, 2.0).sum() == pytest.approx(1.0)


def test_row_slabs_do_not_change_the_filtered_stack():
    volume = np.random.default_rng(0).integers(0, 3000, (6, 47, 31)).astype(np.uint16)
    whole = anisotropic_gaussian(volume, scaling=SCALING, splitting=1)
    assert np.array_equal(anisotropic_gaussian(volume, scaling=SCALING, splitting=10), whole)
