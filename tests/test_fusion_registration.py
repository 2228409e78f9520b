import math

import numpy as np
import pytest
from scipy import ndimage

from isoview_core.fusion import registration
from isoview_core.fusion.config import FusionConfig, ViewOrientation
from isoview_core.fusion.registration import (
    RegistrationResult,
    coarse_grid_search,
    estimate_registration,
    extract_slab,
    highpass_plane,
    matlab_median_filter,
    minimize_fminuncfa,
    slab_background_offset,
    slab_half_widths,
)
from isoview_core.fusion.transform import orient_second_camera, transform_volume
from isoview_core.numerics.filters import gaussian_taps
from isoview_core.numerics.percentiles import hazen_percentile
from isoview_core.numerics.rounding import round_half_away, to_u16

from pair_helpers import SCALING, corrected_camera, pair_simulation

SHAPE = (32, 256, 224)
# (offset_y_px, offset_x_px): both axes to +-45 px (+40 along x), and a small sub-pixel one
OFFSETS = [(-45.0, 40.0), (45.0, 45.0), (-44.6, -45.0), (7.3, -4.6)]
RATIOS = [0.4, 2.5]
TOLERANCE_PX = 0.05  # README; measured <= 0.015 px on this grid
MAX_ROTATION_DEG = 0.03  # spurious rotation when it is estimated; measured <= 0.016 deg
WITH_ROTATION = FusionConfig(estimate_rotation=True)


def pre_registration_map(s1, s2, planes, blending_range=4):
    """avg0 of §3.6 steps 1-2 (union mode): mean of both maps where both exist, anomalies removed."""
    a, b = s1.astype(np.float64), s2.astype(np.float64)
    both = (a > 0) & (b > 0)
    avg = np.where(both, to_u16((a + b) / 2), to_u16(np.maximum(a, b)))
    avg[(avg < blending_range) | (avg > planes - blending_range)] = 0
    return avg


_PAIRS = {}


def camera_pair(offset, ratio):
    """Corrected reference, corrected + oriented second camera, avg0 (cached per case)."""
    key = (offset, ratio)
    if key not in _PAIRS:
        config = pair_simulation(SHAPE, offset=offset, ratio=ratio, seed=11)
        (reference, first), (second, other) = (corrected_camera(config, camera) for camera in (0, 1))
        s1, s2 = first.coordinate_masks["xy"], other.coordinate_masks["xy"]
        orientation = ViewOrientation()  # the simulated second camera is mirrored left-right
        second, s2 = orient_second_camera(second, orientation), orient_second_camera(s2, orientation)
        _PAIRS[key] = reference, second, pre_registration_map(s1, s2, SHAPE[0])
    return _PAIRS[key]


def assert_close(result, offset_y, offset_x, tolerance):
    assert abs(result.offset_y_px - offset_y) <= tolerance, result
    assert abs(result.offset_x_px - offset_x) <= tolerance, result


def rotated_truth(offset, theta_deg):
    """The pair transform after turning the second camera by -theta: (R_theta o, theta) (backward mapping of §3.7)."""
    t = math.radians(theta_deg)
    return np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]]) @ np.array(offset)


# --- end to end on simulated camera pairs -------------------------------------------------


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


@pytest.mark.parametrize("offset, ratio", [(OFFSETS[3], 2.5), (OFFSETS[1], 0.4)])
def test_original_method_runs_and_lands_near_the_truth(offset, ratio):
    reference, second, avg0 = camera_pair(offset, ratio)
    config = WITH_ROTATION.model_copy(update={"registration_method": "original"})
    result = estimate_registration(reference, second, transition_map=avg0, scaling=SCALING, config=config)
    assert result.method == "original"
    assert_close(result, *offset, 0.6)
    assert abs(result.rotation_deg) < 0.5
    # the coarse stage is the original's grid (-50..50 step 10)
    assert result.coarse_offset_y_px % 10 == 0 and result.coarse_offset_x_px % 10 == 0
    assert abs(result.coarse_offset_y_px - offset[0]) <= 5 and abs(result.coarse_offset_x_px - offset[1]) <= 5
    assert result.correlation > 0.8
    assert result.evaluations <= FusionConfig().optimizer_max_evals + 20


def test_original_method_keeps_the_rotation_exactly_zero_when_not_estimated():
    reference, second, avg0 = camera_pair(OFFSETS[3], 2.5)
    result = estimate_registration(reference, second, transition_map=avg0, scaling=SCALING, config=FusionConfig(), method="original")
    assert result.rotation_deg == 0.0
    assert_close(result, *OFFSETS[3], 0.6)


def test_fast_registration_recovers_an_added_rotation():
    reference, second, avg0 = camera_pair(OFFSETS[0], 2.5)
    theta = 0.4
    rotated = transform_volume(second, 0.0, 0.0, -theta)  # second(R_-θ (x - c) + c)
    result = estimate_registration(reference, rotated, transition_map=avg0, scaling=SCALING, config=WITH_ROTATION)
    assert_close(result, *rotated_truth(OFFSETS[0], theta), TOLERANCE_PX)
    assert abs(result.rotation_deg - theta) <= MAX_ROTATION_DEG


def test_block_averaged_working_grid_keeps_the_rotation_centre(monkeypatch):
    """Odd-sized planes on a 2x block grid (as 2048 x 2048 planes are processed): the grid's centre is not the plane's."""
    monkeypatch.setattr(registration, "WORKING_PIXELS", 1 << 14)
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


def test_estimate_registration_rejects_bad_input():
    reference, second, avg0 = camera_pair(OFFSETS[3], 2.5)
    with pytest.raises(ValueError, match="transition map"):
        estimate_registration(reference, second, scaling=SCALING)
    with pytest.raises(ValueError, match="equal shape"):
        estimate_registration(reference, second[:, :-1], transition_map=avg0, scaling=SCALING)
    with pytest.raises(ValueError, match="does not match"):
        estimate_registration(reference, second, transition_map=avg0[:-1], scaling=SCALING)
    with pytest.raises(ValueError, match="empty"):
        estimate_registration(reference, second, transition_map=np.zeros_like(avg0), scaling=SCALING)
    with pytest.raises(ValueError, match="exceeds"):
        estimate_registration(reference, second, transition_map=avg0 + 40, scaling=SCALING)
    with pytest.raises(ValueError, match="method"):
        estimate_registration(reference, second, transition_map=avg0, scaling=SCALING, method="phase")
    with pytest.raises(ValueError, match="scaling"):
        estimate_registration(reference, second, transition_map=avg0, scaling=0.0)


# --- the original's building blocks -------------------------------------------------------


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


def direct_median(image, rows, cols):
    """medfilt2(image, [rows cols], 'symmetric') by brute force: n/2 - 1 samples before, n/2 after on even axes."""
    before_r, before_c = (rows - 1) // 2, (cols - 1) // 2  # = n/2 - 1 for even n, (n - 1)/2 for odd n
    padded = np.pad(image.astype(np.int64), ((rows, rows), (cols, cols)), mode="symmetric")
    out = np.empty(image.shape, dtype=np.float64)
    for r in range(image.shape[0]):
        for c in range(image.shape[1]):
            window = np.sort(padded[rows + r - before_r : rows + r - before_r + rows, cols + c - before_c : cols + c - before_c + cols].ravel())
            n = window.size
            out[r, c] = window[n // 2] if n % 2 else round_half_away((window[n // 2 - 1] + window[n // 2]) / 2)
    return out.astype(image.dtype)


@pytest.mark.parametrize("window", [(4, 2), (6, 3), (3, 3), (5, 2), (1, 4)])
def test_matlab_median_filter_matches_a_direct_computation(window):
    image = np.random.default_rng(5).integers(0, 40, (9, 7)).astype(np.uint16)
    filtered = matlab_median_filter(image, window)
    np.testing.assert_array_equal(filtered, direct_median(image, *window))
    if window == (3, 3):
        np.testing.assert_array_equal(filtered, ndimage.median_filter(image, size=window, mode="reflect"))


def test_even_window_median_differs_from_scipy_in_order_statistic_and_anchor():
    image = np.random.default_rng(6).integers(0, 1000, (12, 10)).astype(np.uint16)
    ours = matlab_median_filter(image, (4, 2))
    assert not np.array_equal(ours, ndimage.median_filter(image, size=(4, 2), mode="reflect"))
    low = ndimage.rank_filter(image, 3, size=(4, 2), mode="reflect", origin=-1)
    high = ndimage.rank_filter(image, 4, size=(4, 2), mode="reflect", origin=-1)
    np.testing.assert_array_equal(ours, to_u16((low.astype(float) + high) / 2))


def test_matlab_median_filter_at_the_default_100_by_20_window():
    image = np.random.default_rng(2).integers(0, 3000, (130, 60)).astype(np.uint16)
    low = ndimage.rank_filter(image, 999, size=(100, 20), mode="reflect", origin=-1)
    high = ndimage.rank_filter(image, 1000, size=(100, 20), mode="reflect", origin=-1)
    np.testing.assert_array_equal(matlab_median_filter(image, (100, 20)), to_u16((low.astype(float) + high) / 2))


def test_highpass_divides_the_column_window_by_the_axial_scaling():
    image = np.random.default_rng(8).integers(0, 500, (14, 11)).astype(np.uint16)
    # R = 4, scaling 2: median window (4, round(4 / 2) = 2); Gaussian (3, 1.5) px, sigma (1, 1)
    rows, cols = gaussian_taps(3, 1.0), gaussian_taps(1.5, 1.0)
    assert (rows.size, cols.size) == (5, 3)
    padded = np.pad(image.astype(np.float64), ((2, 2), (1, 1)), mode="edge")
    smoothed = sum(w * padded[k : k + 14, :] for k, w in enumerate(rows))
    smoothed = sum(w * smoothed[:, k : k + 11] for k, w in enumerate(cols))
    expected = np.clip(to_u16(smoothed).astype(np.int64) - direct_median(image, 4, 2).astype(np.int64), 0, None).astype(np.uint16)
    result = highpass_plane(image, median_range=4, gauss_kernel=3, gauss_sigma=1.0, scaling=2.0)
    np.testing.assert_array_equal(result, expected)
    no_gauss = highpass_plane(image, median_range=4, gauss_kernel=0, gauss_sigma=1.0, scaling=2.0)
    np.testing.assert_array_equal(no_gauss, np.clip(image.astype(np.int64) - direct_median(image, 4, 2), 0, None))


def test_coarse_search_ties_go_to_the_first_column_major_index():
    a = np.zeros((41, 41))
    b = np.zeros((41, 41))
    b[20, 20] = 1.0
    a[10, 20] = a[20, 10] = 5.0  # B shifted by (-10, 0) or by (0, -10): equal scores
    offsets = list(range(-20, 21, 10))
    best_r, best_c, scores = coarse_grid_search(a, b, offsets, offsets)
    i, j = offsets.index(-10), offsets.index(0)
    assert scores[i, j] == scores[j, i] == pytest.approx(0.5)
    assert (best_r, best_c) == (0, -10)  # column offset -10 is scanned before column offset 0


def test_coarse_search_score_and_undefined_shifts():
    rng = np.random.default_rng(9)
    a = rng.random((2, 12, 13))
    b = np.zeros((2, 12, 13))
    b[:, 1, 2] = [3.0, 1.0]  # near the corner: large negative shifts push it out of the frame
    offsets = [-5, 0, 4]
    best_r, best_c, scores = coarse_grid_search(a, b, offsets, offsets)
    assert np.isnan(scores[0, 0]) and np.isnan(scores[0, 2]) and np.isnan(scores[2, 0])
    assert scores[1, 2] == pytest.approx((3 * a[0, 1, 6] + a[1, 1, 6]) / (a.sum() * 4))
    assert np.nanargmax(scores) == np.ravel_multi_index((offsets.index(best_r), offsets.index(best_c)), scores.shape)
    with pytest.raises(ValueError, match="empty"):
        coarse_grid_search(a, np.zeros_like(b), offsets, offsets)


def test_fminuncfa_follows_the_original_iteration():
    visited = []

    def cost(p):
        visited.append(float(p[0]))
        return (float(p[0]) - 2.0) ** 2

    x, value, evaluations = minimize_fminuncfa(cost, [0.0], [1.0])
    # f0 at 0; probes 1 (new best), -1; g = -4, mu = 1.25 -> 5 (worse), backtrack -> 2.5; move there
    # probes 3.5, 1.5; g = 1, mu = 5 * 0.65 -> -0.75, 0.875 (both worse), 1.6875; ...
    assert visited[:10] == pytest.approx([0, 1, -1, 5, 2.5, 3.5, 1.5, -0.75, 0.875, 1.6875])
    assert x[0] == pytest.approx(2.0, abs=1e-3)
    assert value == pytest.approx(0.0, abs=1e-5)
    assert evaluations == len(visited)


def test_fminuncfa_converges_on_a_correlation_like_peak_and_stops_on_flat_costs():
    target = np.array([1.3, -0.7])
    x, value, evaluations = minimize_fminuncfa(lambda p: -math.exp(-np.sum((p - target) ** 2) / 8), [0.0, 0.0], [1.0, 1.0])
    np.testing.assert_allclose(x, target, atol=0.01)
    assert evaluations < 100
    x, value, evaluations = minimize_fminuncfa(lambda p: 3.0, [0.5, 0.5, 0.0], [1.0, 1.0, 0.1])
    np.testing.assert_array_equal(x, [0.5, 0.5, 0.0])
    assert (value, evaluations) == (3.0, 7)
