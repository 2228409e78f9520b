"""The compiled loops of the correction passes against independent numpy computations (odd shapes, 0 and 65535)."""

import numpy as np
import pytest

from scipy import ndimage

from isoview_core.correction.kernels import (
    PLANES_PER_32_BIT_SUM,
    accumulate_z_sums,
    block_means,
    correct_and_project,
    expand_mask,
    mask_sums,
    median_filter_3x3,
    relative_deviations,
    z_deviations,
)
from isoview_core.numerics.percentiles import matlab_subsample


def _raw(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Random uint16 values with the extremes 0 and 65535 present."""
    values = np.random.default_rng(seed).integers(0, 65536, shape).astype(np.uint16)
    values.flat[::7] = 0
    values.flat[3::11] = 65535
    return values


@pytest.mark.parametrize("reset", [False, True])
@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 7, 9), (17, 13, 33)])
def test_z_sums_equal_numpy(shape, reset):
    block = _raw(shape, 0)
    sums = np.full(shape[1:], 3, dtype=np.uint64)
    sum_squares = np.full(shape[1:], 5, dtype=np.uint64)
    accumulate_z_sums(block, sums, sum_squares, reset)
    wide = block.astype(np.uint64)
    assert np.array_equal(sums, (0 if reset else 3) + wide.sum(axis=0))
    assert np.array_equal(sum_squares, (0 if reset else 5) + (wide * wide).sum(axis=0))


def test_z_sums_stay_exact_beyond_what_32_bits_hold():
    block = np.full((PLANES_PER_32_BIT_SUM + 2, 1, 3), 65535, dtype=np.uint16)
    sums, sum_squares = np.zeros((2, 1, 3), dtype=np.uint64)
    accumulate_z_sums(block, sums, sum_squares, True)
    assert np.all(sums == (PLANES_PER_32_BIT_SUM + 2) * 65535) and sums[0, 0] > 2**32
    assert np.all(sum_squares == (PLANES_PER_32_BIT_SUM + 2) * 65535**2)


@pytest.mark.parametrize("planes", [2, 3, 64])
def test_z_deviations_equal_the_numpy_formula(planes):
    block = _raw((planes, 9, 11), 6)
    block[:, 0, :] = 65535  # constant pixels: a variance that rounds to 0 or below
    block[:, 1, :] = 0
    sums, sum_squares = np.zeros((2, 9, 11), dtype=np.uint64)
    accumulate_z_sums(block, sums, sum_squares, True)
    variance = sums.astype(np.float64)
    np.multiply(variance, variance, out=variance)
    variance /= -planes
    variance += sum_squares
    variance /= planes - 1
    np.maximum(variance, 0.0, out=variance)
    deviations = np.full((9, 11), np.nan, dtype=np.float32)
    z_deviations(sums, sum_squares, planes, deviations)
    assert np.array_equal(deviations, np.sqrt(variance, dtype=np.float32))
    assert np.array_equal(deviations[:2], np.zeros((2, 11), dtype=np.float32))


def _median_network(image: np.ndarray) -> np.ndarray:
    """The 3 x 3 median by numpy's minimum / maximum on the symmetrically padded image (NaNs propagate)."""
    padded = np.pad(image, 1, mode="symmetric")
    rows, cols = image.shape
    window = [padded[r : r + rows, c : c + cols] for r in range(3) for c in range(3)]
    for _ in range(len(window)):  # bubble passes of a min / max network: a full sort of the nine
        for i in range(len(window) - 1):
            window[i], window[i + 1] = np.minimum(window[i], window[i + 1]), np.maximum(window[i], window[i + 1])
    return window[4]


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (7, 1), (2, 2), (13, 29)])
def test_median_filter_3x3_equals_scipy(shape, dtype):
    image = _raw(shape, 7).astype(dtype) // 4096  # few values: many ties
    image.flat[::5] = 0
    image.flat[1::6] = 65535
    out = np.empty_like(image)
    median_filter_3x3(image, out)
    assert np.array_equal(out, ndimage.median_filter(image, size=3, mode="reflect"))


def test_median_filter_3x3_propagates_nans_as_numpy():
    image = np.random.default_rng(8).random((11, 12))
    image[3, 4] = image[0, 0] = image[10, 7] = np.nan
    out = np.empty_like(image)
    median_filter_3x3(image, out)
    assert np.array_equal(out, _median_network(image), equal_nan=True)
    assert np.isnan(out).sum() == np.isnan(_median_network(image)).sum() > 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relative_deviations_equal_numpy(dtype):
    rng = np.random.default_rng(9)
    values = (rng.random((10, 13)) * 100 - 20).astype(dtype)
    medians = (rng.random((10, 13)) * 100 - 20).astype(dtype)
    values[0], medians[0] = 0.0, 0.0
    medians[1, :3] = values[1, :3]
    epsilon = dtype(1e-10)
    expected = np.abs((values - medians) / (medians + 1e-10))
    out = np.empty_like(values)
    relative_deviations(values, medians, epsilon, out)
    assert out.dtype == expected.dtype and np.array_equal(out, expected)
    relative_deviations(values, medians, epsilon, medians)  # in place of the medians
    assert np.array_equal(medians, expected)


@pytest.mark.parametrize("factor", [1, 2, 4, 5])
@pytest.mark.parametrize("first_plane, first_row, rows", [(0, 0, 17), (2, 5, 9), (1, 10, 1)])
def test_expand_mask_equals_numpy_repeat(factor, first_plane, first_row, rows):
    first_row = first_row // factor * factor
    mask = np.random.default_rng(10).random((5, 12, 4)) < 0.5
    cols = 4 * factor - factor // 2
    full = np.repeat(np.repeat(mask, factor, axis=1), factor, axis=2)
    rows = min(rows, full.shape[1] - first_row)
    labels = np.full((3, rows, cols), 7, dtype=np.uint8)
    expand_mask(mask, first_plane, first_row, factor, labels)
    assert np.array_equal(labels, full[first_plane : first_plane + 3, first_row : first_row + rows, :cols])


def test_mask_sums_equal_einsum():
    mask = np.random.default_rng(11).random((6, 5, 7)) < 0.4
    mask[:, 0] = False
    mask[2] = True
    indices = np.arange(1, 8) * 9.0
    widths = np.array([3, 3, 3, 3, 3, 3, 2], dtype=np.float64)
    sums = np.full((5, 7), -1, dtype=np.int64), np.full((5, 7), np.nan), np.full((5, 6), np.nan), np.full((5, 6), np.nan)
    mask_sums(mask, indices, widths, *sums)
    assert np.array_equal(sums[0], mask.sum(axis=0))
    assert np.array_equal(sums[1], np.einsum("zyx,z->yx", mask, np.arange(1, 7, dtype=np.float64)))
    assert np.array_equal(sums[2], np.einsum("zyx,x->yz", mask, indices))
    assert np.array_equal(sums[3], np.einsum("zyx,x->yz", mask, widths))


@pytest.mark.parametrize("factor", [2, 3, 4, 17])
@pytest.mark.parametrize("shape", [(3, 8, 8), (2, 9, 13), (4, 1, 5)])
def test_block_means_equal_edge_padded_numpy(shape, factor):
    block = _raw(shape, 1)
    rows, cols = (-(-size // factor) for size in shape[1:])
    padded = np.pad(block, ((0, 0), (0, rows * factor - shape[1]), (0, cols * factor - shape[2])), mode="edge")
    row_sums = padded.reshape(shape[0], rows, factor, cols * factor).sum(axis=2, dtype=np.uint32)
    expected = row_sums[:, :, 0::factor].astype(np.float32)  # float32 sums of the row sums, as the original
    for offset in range(1, factor):
        expected += row_sums[:, :, offset::factor]
    expected *= np.float32(1.0 / factor**2)
    means = np.full((shape[0], rows, cols), np.nan, dtype=np.float32)
    block_means(block, means, factor, np.float32(1.0 / factor**2))
    assert np.array_equal(means, expected)


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("defects", [0, 5])
@pytest.mark.parametrize("apply_mask", [True, False])
@pytest.mark.parametrize("shape, first_plane, step", [((3, 7, 9), 0, 5), ((4, 6, 11), 5, 4), ((1, 1, 1), 2, 1), ((5, 12, 10), 3, 100)])
def test_correction_of_a_slab_equals_numpy(shape, first_plane, step, apply_mask, defects, in_place):
    raw = _raw(shape, 2)
    raw.flags.writeable = in_place  # read from a read-only map of the raw planes, or corrected where it lies
    background = _raw(shape[1:], 3) // 2
    labels = (np.random.default_rng(4).random(shape) < 0.5).astype(np.uint8)
    planes, rows, cols = shape
    previous = [_raw(size, 5) // 4 for size in ((rows, cols), (rows, first_plane + planes + 2), (cols, first_plane + planes + 2))]
    projections = tuple(array.copy() for array in previous)
    counts = np.zeros(65536, dtype=np.int64)
    flagged = np.zeros(shape[1:], dtype=bool)
    flagged.flat[np.random.default_rng(6).choice(flagged.size, min(defects, flagged.size), replace=False)] = True
    flagged_rows, flagged_cols = np.nonzero(flagged)
    values = _raw((planes, flagged_rows.size), 7)
    replacements = np.searchsorted(flagged_rows, np.arange(rows + 1)), flagged_cols, values
    expected_raw = raw.copy()
    expected_raw[:, flagged_rows, flagged_cols] = values
    slab = raw if in_place else np.full(shape, 1234, dtype=np.uint16)
    correct_and_project(raw, replacements, background, labels, apply_mask, projections, first_plane, step, counts, slab)

    raw = expected_raw
    subtracted = raw - np.minimum(raw, background)
    samples = matlab_subsample(subtracted, step, first_plane)
    expected = subtracted * labels if apply_mask else subtracted
    assert np.array_equal(counts, np.bincount(samples[samples > 0], minlength=65536))
    assert np.array_equal(slab, expected)
    xy, xz, yz = (array.copy() for array in previous)
    np.maximum(xy, expected.max(axis=0), out=xy)
    xz[:, first_plane : first_plane + planes] = expected.max(axis=2).T
    np.maximum(yz[:, first_plane : first_plane + planes], expected.max(axis=1).T, out=yz[:, first_plane : first_plane + planes])
    for got, want in zip(projections, (xy, xz, yz)):
        assert np.array_equal(got, want)
