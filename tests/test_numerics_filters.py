import numpy as np
import pytest

from scipy import ndimage

from isoview_core.numerics.filters import anisotropic_gaussian, anisotropic_kernels, correlate_rows, filter_separable, gaussian_taps

SCALING = 2.0 / (6.5 / 16)


def test_gaussian_taps_follow_the_original_support():
    assert gaussian_taps(5, 2.0).size == 7  # -ceil(5/2) .. ceil(5/2)
    assert gaussian_taps(1.016, 1.0).size == 3  # real-valued axial size, not truncated
    assert gaussian_taps(5, 2.0).sum() == pytest.approx(1.0)


def test_row_slabs_do_not_change_the_filtered_stack():
    volume = np.random.default_rng(0).integers(0, 3000, (6, 47, 31)).astype(np.uint16)
    whole = anisotropic_gaussian(volume, scaling=SCALING, splitting=1)
    assert np.array_equal(anisotropic_gaussian(volume, scaling=SCALING, splitting=10), whole)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 7, 9), (3, 11, 1), (1, 1, 1), (9, 600, 3), (4, 2, 700)])
def test_separable_filter_equals_scipy_correlate1d_bit_for_bit(shape, dtype):
    volume = (np.random.default_rng(0).random(shape) * 65535).astype(dtype)
    volume.flat[::5] = 0
    volume.flat[1::7] = 65535
    for axial, lateral in [anisotropic_kernels(5, 2.0, 4.9), (gaussian_taps(3, 1.2), gaussian_taps(9, 1.5)), (np.ones(1), np.ones(1))]:
        expected = ndimage.correlate1d(volume, lateral.astype(dtype), axis=1, mode="nearest")
        ndimage.correlate1d(expected, lateral.astype(dtype), axis=2, mode="nearest", output=expected)
        if shape[0] >= 4:
            ndimage.correlate1d(expected, axial.astype(dtype), axis=0, mode="nearest", output=expected)
        assert np.array_equal(filter_separable(volume, axial, lateral, dtype), expected)
        in_place = volume.copy()
        filter_separable(in_place, axial, lateral, dtype, in_place=True)
        assert np.array_equal(in_place, expected)


@pytest.mark.parametrize("length", [1, 3, 40])
def test_row_correlation_of_a_strided_view_equals_scipy_along_the_last_axis(length):
    weights = gaussian_taps(9, 1.5).astype(np.float32)  # 11 taps: rows shorter than the half-width replicate their ends
    volume = (np.random.default_rng(1).random((3, 8, 2 * length)) * 65535).astype(np.float32)
    view = volume[:, ::-2, ::2]  # flipped rows, every other column
    expected = ndimage.correlate1d(view, weights, axis=2, mode="nearest")
    correlate_rows(view, weights.astype(np.float64))  # SciPy's float32 taps, as it uses them
    assert np.array_equal(view, expected)
