"""The compiled loops of the correction passes against independent numpy computations (odd shapes, 0 and 65535)."""

import numpy as np
import pytest

from isoview_core.correction.kernels import accumulate_z_sums, block_means, correct_and_project
from isoview_core.numerics.percentiles import matlab_subsample


def _raw(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Random uint16 values with the extremes 0 and 65535 present."""
    values = np.random.default_rng(seed).integers(0, 65536, shape).astype(np.uint16)
    values.flat[::7] = 0
    values.flat[3::11] = 65535
    return values


@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 7, 9), (17, 13, 33)])
def test_z_sums_equal_numpy(shape):
    block = _raw(shape, 0)
    sums = np.full(shape[1:], 3, dtype=np.uint64)
    sum_squares = np.full(shape[1:], 5, dtype=np.uint64)
    accumulate_z_sums(block, sums, sum_squares)
    wide = block.astype(np.uint64)
    assert np.array_equal(sums, 3 + wide.sum(axis=0))
    assert np.array_equal(sum_squares, 5 + (wide * wide).sum(axis=0))


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


@pytest.mark.parametrize("apply_mask", [True, False])
@pytest.mark.parametrize("shape, first_plane, step", [((3, 7, 9), 0, 5), ((4, 6, 11), 5, 4), ((1, 1, 1), 2, 1), ((5, 12, 10), 3, 100)])
def test_correction_of_a_slab_equals_numpy(shape, first_plane, step, apply_mask):
    raw = _raw(shape, 2)
    background = _raw(shape[1:], 3) // 2
    labels = (np.random.default_rng(4).random(shape) < 0.5).astype(np.uint8)
    planes, rows, cols = shape
    previous = [_raw(size, 5) // 4 for size in ((rows, cols), (rows, first_plane + planes + 2), (cols, first_plane + planes + 2))]
    projections = tuple(array.copy() for array in previous)
    counts = np.zeros(65536, dtype=np.int64)
    slab = raw.copy()
    correct_and_project(slab, background, labels, apply_mask, projections, first_plane, step, counts)

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
