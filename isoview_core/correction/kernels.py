"""Compiled loops of the two passes of :func:`~isoview_core.correction.stack_correction.correct_stack` over a slab.

Each kernel does in one sweep over a (Z, Y, X) uint16 slab what took several numpy passes, each with its casts
and temporaries: pass 1 (z sums and sums of squares; the f x f block means of the reduced segmentation) and pass 2
(background subtraction, the percentile samples, masking, the three maximum projections). Measured on a
16 x 2048 x 2048 slab of /work/e2e/acquisition, CPU-s: pass 1 0.28 (numpy, row blocks) -> 0.05, pass 2 0.11 -> 0.025
(on another day's VM, where the first pass-2 kernel took 0.15: with private row lines, which LLVM vectorises, 0.065;
on a third day's, masking and the maxima in one loop over the subtracted line: 0.053 -> 0.020)
(see ``isoview_core.numerics.compiled`` for how kernels are compiled and cached).
"""

from __future__ import annotations

import numpy as np

from isoview_core.numerics.compiled import compiled


PLANES_PER_32_BIT_SUM = (2**32 - 1) // (2**16 - 1)
"""The most uint16 values whose sum fits 32 bits."""


@compiled
def accumulate_z_sums(block: np.ndarray, sums: np.ndarray, sum_squares: np.ndarray, reset: bool) -> None:
    """Add each pixel's values over the planes of a (Z, R, X) uint16 block, and their squares, to (R, X) uint64 sums.

    Exact: a uint16 square fits 32 bits, and 2**32 of them fit 64 bits; a row's values are first summed in 32 bits,
    :data:`PLANES_PER_32_BIT_SUM` planes at most (20 % faster than 64-bit sums throughout). With ``reset`` the sums
    start at 0 (each row zeroed while it is in the cache, so the sums can live in unzeroed buffers).
    """
    planes, rows, cols = block.shape
    row_sums = np.empty(cols, dtype=np.uint32)
    for row in range(rows):
        if reset:
            sums[row, :] = 0
            sum_squares[row, :] = 0
        for first in range(0, planes, PLANES_PER_32_BIT_SUM):
            row_sums[:] = 0
            for plane in range(first, min(planes, first + PLANES_PER_32_BIT_SUM)):
                for col in range(cols):
                    value = np.uint32(block[plane, row, col])
                    row_sums[col] += value
                    sum_squares[row, col] += np.uint64(value * value)
            for col in range(cols):
                sums[row, col] += row_sums[col]


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
    raw: np.ndarray,
    replacements: tuple[np.ndarray, np.ndarray, np.ndarray],
    background: np.ndarray,
    labels: np.ndarray,
    apply_mask: bool,
    projections: tuple[np.ndarray, np.ndarray, np.ndarray],
    first_plane: int,
    sample_step: int,
    sample_counts: np.ndarray,
    slab: np.ndarray,
) -> None:
    """Replace defective pixels of a (Z, Y, X) uint16 slab, subtract a background, count its samples, mask it, fold
    it into projections and write it to `slab`.

    Parameters
    ----------
    raw : ndarray
        Planes ``[first_plane, first_plane + Z)`` of the stack as read (read-only: a map of the page cache, so that
        the raw planes are never copied), or `slab` itself.
    replacements : tuple of ndarray
        The defective pixels and their values: ``row_starts`` (Y + 1,) int64, where row ``r``'s are
        ``[row_starts[r], row_starts[r + 1])`` of ``cols`` (n,) int64, sorted by row, and ``values`` (Z, n) uint16,
        what replaces them in each plane, before the subtraction.
    background : ndarray
        (Y, X) uint16 background, subtracted with clipping at 0 (zeros: no subtraction).
    labels : ndarray
        (Z, Y, X) uint8 mask labels (0 / 1); the slab is zeroed where they are 0 when ``apply_mask``.
    projections : tuple of ndarray
        (Y, X), (Y, Z) and (X, Z) uint16 maximum projections (xy, xz, yz) of the whole stack, zero before the first slab.
    sample_step : int
        Every ``sample_step``-th voxel of the stack in MATLAB's column-major order is a sample
        (:func:`~isoview_core.numerics.percentiles.matlab_subsample`), counted by value in ``sample_counts`` when,
        background-subtracted and not yet masked, it is above 0. Counted while its row is in the cache: a gather of
        the samples afterwards waits on memory for each one.
    slab : ndarray
        (Z, Y, X) uint16, receives the corrected planes.
    """
    xy, xz, yz = projections
    row_starts, replaced_cols, replaced_values = replacements
    planes, rows, cols = slab.shape
    plane_size = rows * cols
    first_sampled_column = np.full(sample_step, -1, dtype=np.int64)  # by (column * rows) % step
    column_period = sample_step // np.gcd(rows, sample_step)
    for col in range(min(column_period, cols)):
        first_sampled_column[(col * rows) % sample_step] = col
    column_maxima = np.empty(cols, dtype=np.uint16)
    # The subtraction goes to a private line (LLVM vectorises a loop only when it can tell its arrays apart, which
    # it cannot of the slab and the background); masking, the three maxima and the write back then share one loop
    # over that line (2.7x faster than one loop per step; the module docstring has the figures).
    subtracted = np.empty(cols, dtype=np.uint16)
    zero = np.uint16(0)
    for plane in range(planes):
        stack_plane = first_plane + plane
        plane_start = (-stack_plane * plane_size) % sample_step
        column_maxima[:] = 0
        for row in range(rows):
            line, background_row, label_line, xy_row = raw[plane, row], background[row], labels[plane, row], xy[row]
            for col in range(cols):
                value = line[col]
                subtracted[col] = value - min(value, background_row[col])
            for index in range(row_starts[row], row_starts[row + 1]):
                col = replaced_cols[index]
                value = replaced_values[plane, index]
                subtracted[col] = value - min(value, background_row[col])
            corrected_line = slab[plane, row]
            col = first_sampled_column[(plane_start - row) % sample_step]
            while 0 <= col < cols:
                value = subtracted[col]
                if value > 0:
                    sample_counts[value] += 1
                col += column_period
            row_maximum = zero
            for col in range(cols):
                value = subtracted[col]
                if apply_mask and label_line[col] == 0:
                    value = zero
                row_maximum = max(row_maximum, value)
                xy_row[col] = max(xy_row[col], value)
                column_maxima[col] = max(column_maxima[col], value)
                corrected_line[col] = value
            xz[row, stack_plane] = row_maximum
        for col in range(cols):
            yz[col, stack_plane] = max(yz[col, stack_plane], column_maxima[col])


@compiled
def z_deviations(sums: np.ndarray, sum_squares: np.ndarray, count: int, out: np.ndarray) -> None:
    """Write each pixel's standard deviation over ``count`` >= 2 planes (N-1 normaliser) into (Y, X) float32 ``out``.

    From the exact (Y, X) uint64 sums and sums of squares, with the float64 operations of the numpy original, in
    its order: ``sqrt(max((s * s / -N + q) / (N - 1), 0))``, the root taken in float32.
    """
    for row in range(sums.shape[0]):
        for col in range(sums.shape[1]):
            total = np.float64(sums[row, col])
            variance = (total * total / np.float64(-count) + np.float64(sum_squares[row, col])) / np.float64(count - 1)
            out[row, col] = np.sqrt(np.float32(max(variance, 0.0)))


@compiled
def median_filter_3x3(image: np.ndarray, out: np.ndarray) -> None:
    """Write the 3 x 3 median of a 2-D image with symmetric borders (edge rows and columns repeated) into ``out``.

    Each column of three is sorted once; a window's median is then the median of (largest of its three column
    minima, median of its three column medians, smallest of its three column maxima), an exact identity of the
    3 x 3 median (J. L. Smith, Xilinx XCELL 23, 1996). ``np.minimum`` / ``np.maximum`` throughout: NaNs propagate
    as in numpy. One pass instead of numpy's ten over row blocks, CPU-s for a 2048 x 2048 map: float64 0.075 -> 0.013,
    float32 0.007.
    """
    rows, cols = image.shape
    low = np.empty(cols + 2, dtype=image.dtype)  # sorted columns of three, one padding column on either side
    middle = np.empty(cols + 2, dtype=image.dtype)
    high = np.empty(cols + 2, dtype=image.dtype)
    for row in range(rows):
        above, centre, below = image[max(row - 1, 0)], image[row], image[min(row + 1, rows - 1)]
        for col in range(cols):
            a, b, c = above[col], centre[col], below[col]
            smaller, larger = np.minimum(a, b), np.maximum(a, b)
            median = np.minimum(larger, c)
            high[col + 1] = np.maximum(larger, c)
            low[col + 1] = np.minimum(smaller, median)
            middle[col + 1] = np.maximum(smaller, median)
        low[0], middle[0], high[0] = low[1], middle[1], high[1]
        low[cols + 1], middle[cols + 1], high[cols + 1] = low[cols], middle[cols], high[cols]
        result = out[row]
        for col in range(cols):
            largest_low = np.maximum(np.maximum(low[col], low[col + 1]), low[col + 2])
            smallest_high = np.minimum(np.minimum(high[col], high[col + 1]), high[col + 2])
            a, b, c = middle[col], middle[col + 1], middle[col + 2]
            median_of_medians = np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
            result[col] = np.maximum(
                np.minimum(largest_low, median_of_medians), np.minimum(np.maximum(largest_low, median_of_medians), smallest_high)
            )


@compiled
def relative_deviations(values: np.ndarray, medians: np.ndarray, epsilon: float, out: np.ndarray) -> None:
    """Write ``|(values - medians) / (medians + epsilon)|`` of two (Y, X) maps into ``out``, in the maps' precision.

    ``epsilon`` must have the maps' dtype (numpy casts a Python float to a float32 array's dtype). Equal to numpy's
    ``|values - medians| / (medians + epsilon)`` too, when ``medians + epsilon > 0``: IEEE division is sign-symmetric.
    """
    for row in range(values.shape[0]):
        for col in range(values.shape[1]):
            median = medians[row, col]
            out[row, col] = abs((values[row, col] - median) / (median + epsilon))


@compiled
def expand_mask(mask: np.ndarray, first_plane: int, first_row: int, factor: int, labels: np.ndarray) -> None:
    """Write the nearest upsampling of a (Z', R', X') boolean mask by ``factor`` into a (Z, R, X) uint8 block.

    ``labels[z, r, x] = mask[first_plane + z, (first_row + r) // factor, x // factor]``. Each reduced row is
    expanded once (a gather by a column table: a division per pixel costs 4x) and copied to its other rows:
    0.07 -> 0.012 CPU-s per 16 x 2048 x 2048 slab (numpy's repeat and broadcast copy).
    """
    planes, rows, cols = labels.shape
    column_of = np.arange(cols) // factor
    for plane in range(planes):
        source = mask[first_plane + plane]
        row = 0
        while row < rows:
            reduced_row = (first_row + row) // factor
            line, values = labels[plane, row], source[reduced_row]
            for col in range(cols):
                line[col] = values[column_of[col]]
            copies = min((reduced_row + 1) * factor - first_row, rows)
            for copy in range(row + 1, copies):
                labels[plane, copy] = line
            row = copies


@compiled
def mask_sums(
    mask: np.ndarray,
    column_indices: np.ndarray,
    column_widths: np.ndarray,
    plane_counts: np.ndarray,
    plane_sums: np.ndarray,
    column_sums: np.ndarray,
    column_counts: np.ndarray,
) -> None:
    """Sums over a reduced (Z, R, C) boolean mask that give the full-resolution mask's coordinate masks and size.

    Writes, per reduced pixel (R, C), the number of foreground planes and the sum of their 1-based indices, and per
    reduced row and plane (R, Z) the sums of ``column_indices`` (the 1-based full-resolution column indices inside
    each reduced column, summed) and of ``column_widths`` over its foreground. All are integers, exact in float64
    in any order: the same values as numpy's ``einsum``, in one pass instead of four with casts of the mask.
    """
    planes, rows, cols = mask.shape
    plane_counts[:] = 0
    plane_sums[:] = 0.0
    for plane in range(planes):
        for row in range(rows):
            index_sum = 0.0
            width_sum = 0.0
            for col in range(cols):
                if mask[plane, row, col]:
                    plane_counts[row, col] += 1
                    plane_sums[row, col] += plane + 1
                    index_sum += column_indices[col]
                    width_sum += column_widths[col]
            column_sums[row, plane] = index_sum
            column_counts[row, plane] = width_sum
