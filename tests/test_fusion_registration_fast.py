"""Tests of the fast registration (isoview_core.fusion.registration.fast) on simulated camera pairs."""

import numpy as np
import pytest
from pair_helpers import SCALING
from registration_helpers import (
    MAX_ROTATION_DEG,
    OFFSETS,
    RATIOS,
    TOLERANCE_PX,
    WITH_ROTATION,
    assert_close,
    camera_pair,
    rotated_truth,
)

from isoview_core.fusion.config import FusionConfig
from isoview_core.fusion.registration import (
    RegistrationResult,
    estimate_registration,
    fast,
)
from isoview_core.fusion.transform import transform_volume


@pytest.mark.parametrize("estimate_rotation", [False, True], ids=["translation", "rotation"])
@pytest.mark.parametrize("ratio", RATIOS)
@pytest.mark.parametrize("offset", OFFSETS)
def test_fast_registration_recovers_the_simulated_offsets(offset, ratio, estimate_rotation):
    reference, second, avg0 = camera_pair(offset, ratio)
    config = FusionConfig(estimate_rotation=estimate_rotation)
    result = estimate_registration(reference, second, transition_map=avg0, scaling=SCALING, config=config)
    assert isinstance(result, RegistrationResult) and result.method == "fast"
    assert_close(result, *offset, TOLERANCE_PX)
    if estimate_rotation:
        assert abs(result.rotation_deg) <= MAX_ROTATION_DEG, result
    else:
        assert result.rotation_deg == 0.0
    assert abs(result.coarse_offset_y_px - offset[0]) < 1 and abs(result.coarse_offset_x_px - offset[1]) < 1
    assert result.correlation > 0.9
    assert 1 <= result.evaluations <= 20


def test_fast_registration_recovers_an_added_rotation():
    reference, second, avg0 = camera_pair(OFFSETS[0], 2.5)
    theta = 0.4
    rotated = transform_volume(second, 0.0, 0.0, -theta)  # second(R_-θ (x - c) + c)
    result = estimate_registration(reference, rotated, transition_map=avg0, scaling=SCALING, config=WITH_ROTATION)
    assert_close(result, *rotated_truth(OFFSETS[0], theta), TOLERANCE_PX)
    assert abs(result.rotation_deg - theta) <= MAX_ROTATION_DEG


def test_block_averaged_working_grid_keeps_the_rotation_centre(monkeypatch):
    """Odd-sized planes on a 2x block grid (as 2048 x 2048 planes are processed): the grid's centre is not the plane's."""
    monkeypatch.setattr(fast, "WORKING_PIXELS", 1 << 14)
    reference, second, avg0 = camera_pair(OFFSETS[3], 0.4)
    window = (slice(None), slice(0, 255), slice(1, 224))
    reference, second, avg0 = np.ascontiguousarray(reference[window]), np.ascontiguousarray(second[window]), avg0[window[1:]]
    theta = 0.4
    result = estimate_registration(reference, transform_volume(second, 0.0, 0.0, -theta), transition_map=avg0, scaling=SCALING, config=WITH_ROTATION)
    assert_close(result, *rotated_truth(OFFSETS[3], theta), TOLERANCE_PX)
    assert abs(result.rotation_deg - theta) <= MAX_ROTATION_DEG


def test_full_depth_option_needs_no_transition_map():
    reference, second, _ = camera_pair(OFFSETS[0], 0.4)
    config = WITH_ROTATION.model_copy(update={"registration_data": "mip"})
    result = estimate_registration(reference, second, scaling=SCALING, config=config)
    assert_close(result, *OFFSETS[0], TOLERANCE_PX)
    assert abs(result.rotation_deg) <= MAX_ROTATION_DEG


# --- compiled block means and band-pass against numpy / SciPy ------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint16, np.bool_, np.float32, np.float64])
@pytest.mark.parametrize("factor", [1, 2, 3])
def test_block_means_equal_numpy_block_sums_bit_for_bit(dtype, factor):
    rng = np.random.default_rng(factor)
    image = (rng.random((3, 37, 41)) * (2 if dtype == np.bool_ else 65535)).astype(dtype)[:, ::-1, ::-1]  # flipped view
    rows, cols = 37 // factor * factor, 41 // factor * factor
    blocks = image[:, :rows, :cols].reshape(3, rows // factor, factor, cols // factor, factor)
    expected = blocks.sum(axis=-1, dtype=np.float32).sum(axis=-2) / np.float32(factor * factor)
    np.testing.assert_array_equal(fast._block_mean(image, factor), expected, strict=True)
    np.testing.assert_array_equal(fast._block_mean(image[1], factor), expected[1], strict=True)


@pytest.mark.parametrize("factor", [1, 2, 4])
def test_bandpass_equals_scipy_gaussian_filters_bit_for_bit(factor):
    from scipy import ndimage

    rng = np.random.default_rng(factor)
    stack = rng.integers(0, 4000, (5, 64, 80), dtype=np.uint16)[:, :, ::-1]
    planes = [0, 3, 4]
    means = fast._block_mean(stack[planes], factor)
    expected = np.stack(
        [
            ndimage.gaussian_filter(plane, fast.LOWPASS_SIGMA_PX / factor, mode="nearest")
            - ndimage.gaussian_filter(plane, fast.HIGHPASS_SIGMA_PX / factor, mode="nearest")
            for plane in means
        ]
    )
    np.testing.assert_array_equal(fast._bandpassed_planes(stack, planes, factor), expected, strict=True)


def _normal_equations_with_numpy(reference, warped, weights, inside, unknowns):
    """The Gauss-Newton sums written with numpy's gathers, gradients and products, plane by plane (the specification)."""
    planes, height, width = reference.shape
    sums, normal, rhs = np.zeros(6), np.zeros((unknowns, unknowns)), np.zeros(unknowns)
    for plane in range(planes):
        index = np.flatnonzero(weights[plane] & inside)
        if index.size < 16:
            continue
        a, b = (image[plane].ravel()[index].astype(np.float64) for image in (reference, warped))
        n, sa, sb, saa, sbb, sab = index.size, a.sum(), b.sum(), a @ a, b @ b, a @ b
        sums += [n, sa, sb, saa, sbb, sab]
        gain = (sab - sa * sb / n) / (sbb - sb * sb / n)
        intercept = (sa - gain * sb) / n
        warped_r, warped_c = (gradient.ravel()[index] for gradient in np.gradient(warped[plane]))
        reference_r, reference_c = (gradient.ravel()[index] for gradient in np.gradient(reference[plane]))
        jacobian_r = 0.5 * (gain * warped_r.astype(np.float64) + reference_r)
        jacobian_c = 0.5 * (gain * warped_c.astype(np.float64) + reference_c)
        rows, cols = np.divmod(index, width)
        columns = [jacobian_r, jacobian_c, jacobian_c * (rows - (height - 1) / 2) - jacobian_r * (cols - (width - 1) / 2)][:unknowns]
        system = np.stack([*columns, gain * b + intercept - a], axis=1)
        products = system.T @ system
        normal += products[:unknowns, :unknowns]
        rhs += products[:unknowns, unknowns]
    return sums, normal, rhs


@pytest.mark.parametrize("unknowns", [2, 3], ids=["translation", "rotation"])
def test_compiled_normal_equations_equal_numpys_gathered_products(unknowns):
    rng = np.random.default_rng(4)
    reference, warped = (rng.random((5, 40, 56), dtype=np.float32) * 1000 for _ in range(2))
    weights = np.zeros(reference.shape, bool)
    for plane in range(5):
        weights[plane, :, 8 * plane : 8 * plane + 20] = True  # a band per plane, as the slab around the transition
    weights[3] = False
    weights[3, 0, :10] = True  # 10 voxels: skipped, as fewer than 16
    inside = np.ones(reference.shape[1:], bool)
    inside[:, -5:] = False  # the transform's empty margin
    sums, normal, rhs = np.zeros(6), np.zeros((unknowns, unknowns)), np.zeros(unknowns)

    fast._accumulate_normal_equations(reference, warped, weights, inside, sums, normal, rhs)

    for got, expected in zip((sums, normal, rhs), _normal_equations_with_numpy(reference, warped, weights, inside, unknowns)):
        np.testing.assert_allclose(got, expected, rtol=1e-12)
