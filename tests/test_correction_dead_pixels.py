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
    replacements,
)
from isoview_core.synthetic import SimulationConfig
from isoview_core.synthetic.camera import (
    camera_defects,
    dark_frame,
    render_camera_stack,
)
from isoview_core.synthetic.optics import foreground_mask

#: The shared small acquisition's geometry with a specimen four times as bright.
BRIGHT = SimulationConfig(shape=(48, 192, 160), timepoints=1, seed=3, nucleus_peak_adu=4800.0, cytoplasm_adu=1200.0)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 40), st.integers(1, 40)), elements=st.floats(0, 1000, width=32)))
def test_median_filter_equals_scipy_symmetric_median(image):
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


def test_replacements_hold_the_per_plane_medians_of_the_flagged_pixels_row_by_row():
    rng = np.random.default_rng(1)
    slab = rng.integers(0, 4000, (3, 30, 25)).astype(np.uint16)
    mask = np.zeros((30, 25), bool)
    mask[[0, 7, 7, 29, 12], [0, 3, 9, 24, 24]] = True
    medians = np.stack([ndimage.median_filter(plane, size=3, mode="reflect") for plane in slab])
    row_starts, cols, values = replacements(slab, DefectivePixels(mask, 0.0, 0.0))
    for row in range(30):
        flagged = cols[row_starts[row] : row_starts[row + 1]]
        assert np.array_equal(flagged, np.flatnonzero(mask[row]))
        assert np.array_equal(values[:, row_starts[row] : row_starts[row + 1]], medians[:, row, flagged])
    none = replacements(slab, None)
    assert not none[0].any() and none[1].size == 0 and none[2].shape == (3, 0)


def test_z_statistics_of_slabs_equal_numpy():
    volume = np.random.default_rng(1).integers(0, 65535, (11, 6, 7)).astype(np.uint16)
    stats = ZStatistics((6, 7))
    for start in range(0, 11, 4):
        for first_row in range(0, 6, 4):
            stats.add(volume[start : start + 4, first_row : first_row + 4], first_row)
        stats.advance(volume[start : start + 4].shape[0])
    assert np.allclose(stats.mean(), volume.mean(axis=0))
    assert np.allclose(stats.std(), volume.astype(float).std(axis=0, ddof=1), rtol=1e-6)


def _camera_stack(config, camera):
    """Raw stack, its z statistics, the simulator's defects, where the camera sees signal, and its scalar background."""
    stack = render_camera_stack(config, 0, camera)
    stats = ZStatistics(stack.shape[1:])
    stats.add(stack)
    stats.advance(stack.shape[0])
    truth = camera_defects(config, camera)
    signal = foreground_mask(config, 0, camera).any(axis=0)
    return stack, stats, truth, signal, float(np.percentile(dark_frame(config, camera), 3))


@pytest.fixture(scope="module")
def camera_stacks(small_config):
    """``_camera_stack`` of all four cameras of the shared small acquisition."""
    return [_camera_stack(small_config, camera) for camera in range(4)]


def _detectable(truth, signal, shape):
    """Dead and hot pixels anywhere; insensitive ones only where the camera sees signal."""
    detectable = np.zeros(shape, bool)
    for kind in ("dead", "hot"):
        rows, cols, _ = truth.of_kind(kind)
        detectable[rows, cols] = True
    rows, cols, _ = truth.of_kind("insensitive")
    detectable[rows, cols] = signal[rows, cols]
    return detectable


def _scores(mask, truth, signal):
    """Precision and recall (of the detectable defects) of a defect mask, and its rate of false positives."""
    defects = np.zeros_like(mask)
    defects[truth.rows, truth.cols] = True
    detectable = _detectable(truth, signal, mask.shape)
    precision = np.count_nonzero(mask & defects) / max(np.count_nonzero(mask), 1)
    recall = np.count_nonzero(mask & detectable) / np.count_nonzero(detectable)
    false_positive_rate = np.count_nonzero(mask & ~defects) / np.count_nonzero(~defects)
    return precision, recall, false_positive_rate


def test_defective_pixels_found_with_high_recall_and_few_false_positives(camera_stacks):
    for stack, stats, truth, signal, background in camera_stacks:
        found = detect_defective_pixels(stats.std(), stats.mean(), background, planes=stats.count)
        precision, recall, false_positive_rate = _scores(found.mask, truth, signal)
        assert recall >= 0.95, recall
        assert precision >= 0.6, precision
        assert false_positive_rate < 0.001, false_positive_rate


def test_overwriting_the_maps_finds_the_same_pixels_and_leaves_the_subtracted_means(camera_stacks):
    stack, stats, truth, signal, background = camera_stacks[0]
    mean = stats.mean()
    kept = detect_defective_pixels(stats.std(), mean, background, planes=stats.count)
    assert np.array_equal(mean, stats.mean())  # untouched without overwrite_maps
    overwritten = detect_defective_pixels(stats.std(), mean, background, planes=stats.count, overwrite_maps=True)
    assert np.array_equal(kept.mask, overwritten.mask) and kept.mask.any()
    assert (kept.std_threshold, kept.mean_threshold) == (overwritten.std_threshold, overwritten.mean_threshold)
    assert np.array_equal(mean, stats.mean() - background)


def test_default_std_test_beats_the_original_knee_on_a_bright_specimen():
    stack, stats, truth, signal, background = _camera_stack(BRIGHT, 0)
    default, original = (
        detect_defective_pixels(stats.std(), stats.mean(), background, planes=stats.count, method=method) for method in ("noise", "knee")
    )
    precision, recall, false_positive_rate = _scores(default.mask, truth, signal)
    knee_precision, knee_recall, knee_false_positive_rate = _scores(original.mask, truth, signal)
    assert recall >= knee_recall >= 0.95  # the original's mean test alone finds the defects
    assert precision >= 0.6 and knee_precision < 0.1, (precision, knee_precision)
    assert false_positive_rate < 0.001 and knee_false_positive_rate > 0.005, (false_positive_rate, knee_false_positive_rate)
    knee_false_positives = original.mask.copy()
    knee_false_positives[truth.rows, truth.cols] = False
    assert np.count_nonzero(knee_false_positives & signal) >= 0.95 * np.count_nonzero(knee_false_positives)  # in the specimen's noise

    # The std test alone (a flat mean map flags nothing): the knee misses the stuck pixels in the dark background.
    flat = np.ones_like(stats.mean())
    std_default, std_original = (
        detect_defective_pixels(stats.std(), flat, 0.0, planes=stats.count, method=method).mask for method in ("noise", "knee")
    )
    rows, cols, _ = truth.of_kind("dead")
    dark = ~signal[rows, cols]
    rows, cols = rows[dark], cols[dark]
    assert rows.size >= 3
    assert std_default[rows, cols].all() and not std_original[rows, cols].any()


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
