"""Compiled loops of the two passes of :func:`~isoview_core.correction.stack_correction.correct_stack` over a slab.

Each kernel does in one sweep over a (Z, Y, X) uint16 slab what took several numpy passes, each with its casts
and temporaries: pass 1 (z sums and sums of squares; the f x f block means of the reduced segmentation) and pass 2
(background subtraction, the percentile samples, masking, the three maximum projections). Measured on a
16 x 2048 x 2048 slab of /work/e2e/acquisition, CPU-s: pass 1 0.28 (numpy, row blocks) -> 0.05, pass 2 0.11 -> 0.025
(see ``isoview_core.numerics.compiled`` for how kernels are compiled and cached).
"""

from __future__ import annotations

import numpy as np

from isoview_core.numerics.compiled import compiled


@compiled
def accumulate_z_sums(block: np.ndarray, sums: np.ndarray, sum_squares: np.ndarray) -> None:
    """Add each pixel's values over the planes of a (Z, R, X) uint16 block, and their squares, to (R, X) uint64 sums.

    Exact: a uint16 square fits 32 bits, and 2**32 of them fit 64 bits.
    """
    planes, rows, cols = block.shape
    for row in range(rows):
        for plane in range(planes):
            for col in range(cols):
                value = np.uint64(block[plane, row, col])
                sums[row, col] += value
                sum_squares[row, col] += value * value


@compiled
def block_means(block: np.ndarray, means: np.ndarray, factor: int, scale: np.float32) -> None:
    """Write the means of the ``factor`` x ``factor`` pixel blocks of a (Z, R, X) uint16 block into (Z, R', X') float32.

    Blocks that overhang the block's last row or column repeat it (edge padding). As the numpy original: rows are
    summed exactly in uint32, then the row sums of a block are added in float32 (each sum rounded from float64) and
    multiplied in float32 by ``scale``, ``float32(1 / factor**2)``.
    """
    planes, rows, cols = block.shape
    column_blocks = means.shape[2]
    line = np.zeros(column_blocks * factor, dtype=np.uint32)
    for plane in range(planes):
        for row_block in range(means.shape[1]):
            line[:] = 0
            for offset in range(factor):
                row = min(row_block * factor + offset, rows - 1)
                for col in range(cols):
                    line[col] += block[plane, row, col]
                for col in range(cols, line.size):
                    line[col] += block[plane, row, cols - 1]
            for column_block in range(column_blocks):
                first_col = column_block * factor
                total = np.float32(line[first_col])
                for offset in range(1, factor):
                    total = np.float32(np.float64(total) + np.float64(line[first_col + offset]))
                means[plane, row_block, column_block] = total * scale


@compiled
def correct_and_project(
    slab: np.ndarray,
    background: np.ndarray,
    labels: np.ndarray,
    apply_mask: bool,
    projections: tuple[np.ndarray, np.ndarray, np.ndarray],
    first_plane: int,
    sample_step: int,
    sample_counts: np.ndarray,
) -> None:
    """Subtract a background from a (Z, Y, X) uint16 slab, count its samples, mask it and fold it into projections.

    Parameters
    ----------
    slab : ndarray
        Planes ``[first_plane, first_plane + Z)`` of the stack; overwritten with the corrected values.
    background : ndarray
        (Y, X) uint16 background, subtracted with clipping at 0 (zeros: no subtraction).
    labels : ndarray
        (Z, Y, X) uint8 mask labels (0 / 1); the slab is multiplied by them when ``apply_mask``.
    projections : tuple of ndarray
        (Y, X), (Y, Z) and (X, Z) uint16 maximum projections (xy, xz, yz) of the whole stack, zero before the first slab.
    sample_step : int
        Every ``sample_step``-th voxel of the stack in MATLAB's column-major order is a sample
        (:func:`~isoview_core.numerics.percentiles.matlab_subsample`), counted by value in ``sample_counts`` when,
        background-subtracted and not yet masked, it is above 0. Counted while its row is in the cache: a gather of
        the samples afterwards waits on memory for each one.
    """
    xy, xz, yz = projections
    planes, rows, cols = slab.shape
    plane_size = rows * cols
    first_sampled_column = np.full(sample_step, -1, dtype=np.int64)  # by (column * rows) % step
    column_period = sample_step // np.gcd(rows, sample_step)
    for col in range(min(column_period, cols)):
        first_sampled_column[(col * rows) % sample_step] = col
    column_maxima = np.empty(cols, dtype=np.uint16)
    for plane in range(planes):
        stack_plane = first_plane + plane
        plane_start = (-stack_plane * plane_size) % sample_step
        column_maxima[:] = 0
        for row in range(rows):
            row_maximum = np.uint16(0)
            for col in range(cols):
                value = slab[plane, row, col]
                slab[plane, row, col] = value - min(value, background[row, col])
            col = first_sampled_column[(plane_start - row) % sample_step]
            while 0 <= col < cols:
                value = slab[plane, row, col]
                if value > 0:
                    sample_counts[value] += 1
                col += column_period
            for col in range(cols):
                value = slab[plane, row, col]
                if apply_mask:
                    value *= labels[plane, row, col]
                slab[plane, row, col] = value
                row_maximum = max(row_maximum, value)
                xy[row, col] = max(xy[row, col], value)
                column_maxima[col] = max(column_maxima[col], value)
            xz[row, stack_plane] = row_maximum
        for col in range(cols):
            yz[col, stack_plane] = max(yz[col, stack_plane], column_maxima[col])
