"""Foreground segmentation: anisotropic Gaussian filter + adaptive threshold (ALGORITHMS.md §2.6).

Two interchangeable methods:

* ``segment_full_resolution`` is the original: the whole corrected stack filtered in float64 row
  slabs, rounded to uint16, thresholded.
* ``ReducedSegmentation`` accumulates f x f lateral block means while the stack streams past, filters
  that small volume with a Gaussian that averages the camera noise exactly as much as the original
  filter does (so the threshold statistics agree), and thresholds it; the mask is expanded back to full resolution slab by slab. It is ~f^2 cheaper and
  agrees with the original (Dice >= 0.99, tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from isoview_core.correction.kernels import block_means, expand_mask, mask_sums
from isoview_core.numerics.filters import (
    anisotropic_gaussian,
    anisotropic_kernels,
    filter_separable,
    gaussian_taps,
)
from isoview_core.numerics.percentiles import hazen_percentile, matlab_subsample
from isoview_core.numerics.rounding import coordinate_mean


@dataclass(frozen=True)
class ThresholdLevel:
    """The adaptive threshold of one stack: ``level = mask_min + tau * (mean_foreground - mask_min)``."""

    mask_min: float
    mean_foreground: float
    level: float


def threshold_level(filtered: np.ndarray, *, mask_percentile: float, threshold: float, subsample_factor: int) -> ThresholdLevel:
    """Adaptive level from the filtered stack: low percentile (zeros kept) and mean of what lies above it."""
    mask_min = hazen_percentile(matlab_subsample(filtered, subsample_factor), mask_percentile)
    above = filtered[filtered > mask_min]
    mean_foreground = float(above.mean(dtype=np.float64)) if above.size else mask_min
    return ThresholdLevel(mask_min, mean_foreground, mask_min + threshold * (mean_foreground - mask_min))


def segment_full_resolution(
    volume: np.ndarray,
    *,
    kernel: float = 5,
    sigma: float = 2.0,
    scaling: float = 1.0,
    threshold: float = 0.4,
    mask_percentile: float = 1.0,
    subsample_factor: int = 100,
    splitting: int = 10,
) -> tuple[np.ndarray, ThresholdLevel]:
    """Foreground mask of a whole corrected stack by the original method (reference implementation)."""
    filtered = anisotropic_gaussian(volume, kernel=kernel, sigma=sigma, scaling=scaling, splitting=splitting)
    level = threshold_level(filtered, mask_percentile=mask_percentile, threshold=threshold, subsample_factor=subsample_factor)
    return filtered > level.level, level


def _noise_matched_taps(full_taps: np.ndarray, factor: int) -> np.ndarray:
    """Gaussian taps on the 1/``factor`` grid whose noise gain, after an f x f block mean, equals ``full_taps``'.

    White noise of variance v leaves ``v * sum(w**2)`` per separable axis; a block mean of f
    samples per axis leaves ``v / f``. Bisection on sigma matches ``sum(w_r**2) / f`` to
    ``sum(w**2)``; when the block mean alone already averages more, no further filter is applied.
    """
    target = float(np.sum(full_taps**2)) * factor
    if factor == 1 or target >= 1.0:
        return full_taps if factor == 1 else np.ones(1)
    low, high = 0.05, 10.0
    for _ in range(60):
        sigma = 0.5 * (low + high)
        taps = gaussian_taps(max(1.0, 6.0 * sigma), sigma)
        low, high = (sigma, high) if np.sum(taps**2) > target else (low, sigma)
    return gaussian_taps(max(1.0, 6.0 * sigma), sigma)


class ReducedSegmentation:
    """Segmentation at 1/``factor`` lateral resolution, fed slab by slab while a stack streams past.

    Feed every raw (oriented) slab in order with :meth:`add`, replace the defective pixels' share of
    their blocks with :meth:`correct_defects`, call :meth:`compute` once, then expand each slab's
    labels with :meth:`fill_labels`. The full-resolution mask is the reduced one repeated f x f times,
    so its projections, foreground count and coordinate masks are computed exactly from the small
    mask.
    """

    def __init__(self, shape: tuple[int, int, int], factor: int) -> None:
        if factor < 2:
            raise ValueError(f"reduced segmentation needs a downsample factor >= 2, got {factor}")
        self.shape = shape
        self.factor = factor
        planes, rows, cols = shape
        self._rows_padded = -(-rows // factor) * factor
        self._cols_padded = -(-cols // factor) * factor
        # every block is written by add (all planes are fed)
        self.reduced = np.empty((planes, self._rows_padded // factor, self._cols_padded // factor), np.float32)
        self.mask: np.ndarray | None = None
        self.level: ThresholdLevel | None = None

    def add(self, first_plane: int, slab: np.ndarray, first_row: int = 0) -> None:
        """Accumulate the f x f block means of a (Z, R, X) block at plane ``first_plane``, row ``first_row``.

        ``first_row`` must be a multiple of f; a block may end at the last row whatever its height.
        """
        f = self.factor
        first = first_row // f
        target = self.reduced[first_plane : first_plane + slab.shape[0], first : first + -(-slab.shape[1] // f)]
        block_means(np.asarray(slab), target, f, np.float32(1.0 / (f * f)))

    def correct_defects(self, rows: np.ndarray, cols: np.ndarray, raw_values: np.ndarray) -> None:
        """Make each block the mean of its good pixels: drop defective pixels (raw values (Z, n)) from it."""
        if rows.size == 0:
            return
        f = self.factor
        blocks = (rows // f) * self.reduced.shape[2] + cols // f
        unique, inverse = np.unique(blocks, return_inverse=True)
        bad_sum = np.zeros((self.shape[0], unique.size), dtype=np.float64)
        np.add.at(bad_sum.T, inverse, raw_values.T.astype(np.float64))
        bad_count = np.bincount(inverse, minlength=unique.size)
        good = f * f - bad_count
        flat = self.reduced.reshape(self.shape[0], -1)
        block_sum = flat[:, unique].astype(np.float64) * (f * f)
        with np.errstate(invalid="ignore", divide="ignore"):
            corrected = np.where(good > 0, (block_sum - bad_sum) / np.maximum(good, 1), flat[:, unique])
        flat[:, unique] = corrected

    def compute(self, *, kernel: float, sigma: float, scaling: float, threshold: float, mask_percentile: float, subsample_factor: int) -> ThresholdLevel:
        """Filter the reduced volume in place (the block means are not kept) and threshold it (the original's rule,
        at reduced resolution). Runs once.

        The threshold statistics (a low percentile, then the mean of what lies above it) depend on
        how much the filter averages the camera noise, so the in-plane Gaussian on the reduced grid
        is chosen to give exactly the noise reduction of the full-resolution filter.
        """
        f = self.factor
        axial, lateral_full = anisotropic_kernels(kernel, sigma, scaling)
        lateral = _noise_matched_taps(lateral_full, f)
        filtered = filter_separable(self.reduced, axial, lateral, np.float32, in_place=True)
        filtered += 0.5  # the original rounds the filtered stack to uint16 (in place: no second reduced volume)
        np.floor(filtered, out=filtered)
        self.level = threshold_level(
            filtered, mask_percentile=mask_percentile, threshold=threshold, subsample_factor=max(1, subsample_factor // (f * f))
        )
        self.mask = filtered > self.level.level
        return self.level

    def _computed_mask(self) -> np.ndarray:
        if self.mask is None:
            raise RuntimeError("ReducedSegmentation.compute() must run first")
        return self.mask

    def _expand(self, small: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        """Repeat ``small`` f times along ``axes`` and crop to the full-resolution size."""
        for axis in axes:
            small = np.repeat(small, self.factor, axis=axis)
        return small

    def fill_labels(self, first_plane: int, labels: np.ndarray, first_row: int = 0) -> None:
        """Write the full-resolution mask of a (Z, R, X) block at (``first_plane``, ``first_row``) into ``labels`` (uint8).

        ``first_row`` must be a multiple of f (see :func:`~isoview_core.correction.kernels.expand_mask`).
        """
        expand_mask(self._computed_mask(), first_plane, first_row, self.factor, labels)

    def _block_sizes(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns of the full image inside each reduced row / column (edge blocks are cropped)."""
        f = self.factor
        rows = np.minimum(f, self.shape[1] - f * np.arange(self.reduced.shape[1]))
        cols = np.minimum(f, self.shape[2] - f * np.arange(self.reduced.shape[2]))
        return rows, cols

    @cached_property
    def _mask_sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Plane counts and plane index sums (R', C'), column index sums and column counts (R', Z) of the full mask.

        One compiled pass over the reduced mask (:func:`~isoview_core.correction.kernels.mask_sums`), shared by
        :meth:`foreground_voxels` and :meth:`coordinate_masks`: 0.06 -> 0.005 CPU-s per 64 x 512 x 512 mask.
        """
        mask = self._computed_mask()
        planes, rows, cols = mask.shape
        f = self.factor
        column = np.arange(1, self._cols_padded + 1, dtype=np.float64).reshape(-1, f)
        column[column > self.shape[2]] = 0
        _, widths = self._block_sizes()
        sums = np.empty((rows, cols), dtype=np.int64), np.empty((rows, cols)), np.empty((rows, planes)), np.empty((rows, planes))
        mask_sums(mask, column.sum(axis=1), widths.astype(np.float64), *sums)
        return sums

    def foreground_voxels(self) -> int:
        """Number of foreground voxels of the full-resolution mask."""
        rows, _ = self._block_sizes()
        column_counts = self._mask_sums[3]
        return int(rows @ column_counts.astype(np.int64).sum(axis=1))

    def mask_projections(self) -> dict[str, np.ndarray]:
        """xy (Y, X), xz (Y, Z) and yz (X, Z) maximum projections of the full-resolution mask (uint8)."""
        mask = self._computed_mask()
        planes, rows, cols = self.shape
        return {
            "xy": self._expand(mask.any(axis=0), (0, 1))[:rows, :cols].view(np.uint8),
            "xz": self._expand(mask.any(axis=2).T, (0,))[:rows].view(np.uint8),
            "yz": self._expand(mask.any(axis=1).T, (0,))[:cols].view(np.uint8),
        }

    def coordinate_masks(self) -> dict[str, np.ndarray]:
        """1-based coordinate masks of the full-resolution mask (§2.7), exactly, from the reduced one."""
        _, rows, cols = self.shape
        plane_count, plane_sum, column_sum, column_count = self._mask_sums
        xy = self._expand(coordinate_mean(plane_sum, plane_count), (0, 1))[:rows, :cols]
        xz = self._expand(coordinate_mean(column_sum, column_count), (0,))[:rows]
        return {"xy": xy, "xz": xz}
