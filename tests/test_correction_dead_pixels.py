import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from isoview_core.correction.dead_pixels import (
    DefectivePixels,
    ZStatistics,
    detect_defective_pixels,
    median_filter_2d,
    replace_defective_pixels,
)
from isoview_core.synthetic.camera import camera_defects, dark_frame, render_camera_stack
from isoview_core.synthetic.optics import foreground_mask


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 40), st.integers(1, 40)), elements=st.floats(0, 1000, width=32)))
def test_median_network_equals_scipy_symmetric_median(image):
    assert np.array_equal(median_filter_2d(image), ndimage.median_filter(image, size=3, mode="reflect"))


def test_replacement_uses_per_plane_median_only_at_flagged_pixels():
    rng = np.random.default_rng(0)
    slab = rng.integers(0, 4000, (3, 30, 25)).astype(np.uint16)
    mask = np.zeros((30, 25), bool)
    mask[[0, 7, 29, 12], [0, 3, 24, 24]] = True
    expected = slab.copy()
    for z in range(3):
        expected[z][mask] = ndimage.median_filter(slab[z], size=3, mode="reflect")[mask]
    replace_defective_pixels(slab, DefectivePixels(mask, 0.0, 0.0))
    assert np.array_equal(slab, expected)


def test_z_statistics_of_slabs_equal_numpy():
    volume = np.random.default_rng(1).integers(0, 65535, (11, 6, 7)).astype(np.uint16)
    stats = ZStatistics((6, 7))
    for start in range(0, 11, 4):
        for first_row in range(0, 6, 4):
            stats.add(volume[start : start + 4, first_row : first_row + 4], first_row)
        stats.advance(volume[start : start + 4].shape[0])
    assert np.allclose(stats.mean(), volume.mean(axis=0))
    assert np.allclose(stats.std(), volume.astype(float).std(axis=0, ddof=1), rtol=1e-6)


@pytest.fixture(scope="module")
def camera_stacks(small_config):
    """Raw stacks, their statistics and the defects the simulator put in them, for all four cameras."""
    result = []
    for camera in range(4):
        stack = render_camera_stack(small_config, 0, camera)
        stats = ZStatistics(stack.shape[1:])
        stats.add(stack)
        truth = camera_defects(small_config, camera)
        signal = foreground_mask(small_config, 0, camera).any(axis=0)
        result.append((stack, stats, truth, signal, float(np.percentile(dark_frame(small_config, camera), 3))))
    return result


def _detectable(truth, signal, shape):
    """Dead and hot pixels anywhere; insensitive ones only where the camera sees signal."""
    detectable = np.zeros(shape, bool)
    for kind in ("dead", "hot"):
        rows, cols, _ = truth.of_kind(kind)
        detectable[rows, cols] = True
    rows, cols, _ = truth.of_kind("insensitive")
    detectable[rows, cols] = signal[rows, cols]
    return detectable


def test_defective_pixels_found_with_high_recall_and_few_false_positives(camera_stacks):
    for stack, stats, truth, signal, background in camera_stacks:
        found = detect_defective_pixels(stats.std(), stats.mean(), background, planes=stats.count)
        detectable = _detectable(truth, signal, found.mask.shape)
        all_defects = np.zeros_like(found.mask)
        all_defects[truth.rows, truth.cols] = True
        recall = np.count_nonzero(found.mask & detectable) / np.count_nonzero(detectable)
        false_positive_fraction = np.count_nonzero(found.mask & ~all_defects) / found.mask.size
        assert recall >= 0.95, recall
        assert false_positive_fraction < 0.001, false_positive_fraction


def test_original_knee_method_remains_available(camera_stacks):
    stack, stats, truth, signal, background = camera_stacks[0]
    found = detect_defective_pixels(stats.std(), stats.mean(), background, planes=stats.count, method="knee")
    hot_rows, hot_cols, _ = truth.of_kind("hot")
    assert found.mask[hot_rows, hot_cols].all()  # the mean test of the original finds every hot pixel


def test_corrected_defects_are_within_noise_of_their_neighbours(camera_stacks):
    for stack, stats, truth, signal, background in camera_stacks:
        found = detect_defective_pixels(stats.std(), stats.mean(), background, planes=stats.count)
        corrected = stack.copy()
        replace_defective_pixels(corrected, found)
        rows, cols = truth.rows, truth.cols
        flagged = found.mask[rows, cols]
        rows, cols = rows[flagged], cols[flagged]
        neighbours = np.stack([corrected[:, rows + dr, cols + dc] for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))]).astype(float)
        local_mean = neighbours.mean(axis=0)
        local_spread = neighbours.std(axis=0) + 3.0 * np.sqrt(np.maximum(local_mean - background, 1.0)) + 5.0
        before = np.abs(stack[:, rows, cols] - local_mean)
        after = np.abs(corrected[:, rows, cols] - local_mean)
        assert np.median(after / local_spread) < 1.0
        assert np.mean(after) < 0.2 * np.mean(before)
