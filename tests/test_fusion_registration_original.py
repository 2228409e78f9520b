"""Tests of the original (multiFuse) registration (isoview_core.fusion.registration.original): end to end and its building blocks."""

import math

import numpy as np
import pytest
from pair_helpers import SCALING
from registration_helpers import OFFSETS, WITH_ROTATION, assert_close, camera_pair
from scipy import ndimage

from isoview_core.fusion.config import FusionConfig
from isoview_core.fusion.registration import estimate_registration
from isoview_core.fusion.registration.original import (
    coarse_grid_search,
    highpass_plane,
    matlab_median_filter,
    minimize_fminuncfa,
)
from isoview_core.numerics.filters import gaussian_taps
from isoview_core.numerics.rounding import round_half_away, to_u16

# --- end to end on simulated camera pairs -------------------------------------------------


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



# --- the original's building blocks -------------------------------------------------------


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
