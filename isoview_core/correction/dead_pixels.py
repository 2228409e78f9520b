"""Dead / insensitive / hot pixel detection and replacement (ALGORITHMS.md §2.4).

Pixels whose temporal standard deviation or mean (over z) departs from their 2-D median
neighbourhood by more than a knee threshold are flagged and replaced, plane by plane, by the
median of their neighbourhood. Only flagged pixels change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
from scipy import ndimage

from isoview_core.correction.kernels import accumulate_z_sums, median_filter_3x3, relative_deviations, z_deviations
from isoview_core.numerics.percentiles import knee_threshold

#: Guard against division by a zero median of the mean map (the original divides unguarded).
MEAN_EPSILON = 1e-10


class ZStatistics:
    """Running per-pixel sum and sum of squares over z, fed block by block (exact integer sums)."""

    def __init__(self, plane_shape: tuple[int, int]) -> None:
        self.count = 0
        self._sum = np.empty(plane_shape, np.uint64)  # zeroed by the first add
        self._sum_squares = np.empty(plane_shape, np.uint64)

    def add(self, slab: np.ndarray, first_row: int = 0) -> None:
        """Accumulate a (Z, R, X) uint16 block of rows ``[first_row, first_row + R)`` of the next planes.

        Every row must be fed the same planes, block by block, before ``count`` is advanced with
        :meth:`advance`. Sums are exact (uint64). Whole C-contiguous slabs are the fast case: the compiled
        loop vectorises along their rows.
        """
        rows = slice(first_row, first_row + slab.shape[1])
        accumulate_z_sums(np.asarray(slab), self._sum[rows], self._sum_squares[rows], self.count == 0)

    def advance(self, planes: int) -> None:
        """Count ``planes`` more planes once all of their rows have been added."""
        self.count += planes

    def any(self) -> bool:
        """Whether any pixel was ever above 0 (its mean is not 0)."""
        return self.count > 0 and bool(self._sum.any())

    def mean(self) -> np.ndarray:
        """Per-pixel mean over z (float64)."""
        return np.divide(self._sum, max(self.count, 1), dtype=np.float64)

    def std(self) -> np.ndarray:
        """Per-pixel standard deviation over z with the N-1 normaliser (MATLAB ``std``), float32."""
        deviations = np.zeros(self._sum.shape, np.float32)
        if self.count >= 2:
            z_deviations(self._sum, self._sum_squares, self.count, deviations)
        return deviations


@dataclass(frozen=True)
class DefectivePixels:
    """Flagged pixels of one camera stack and the thresholds that flagged them."""

    mask: np.ndarray
    std_threshold: float
    mean_threshold: float

    @cached_property
    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of the flagged pixels, computed once."""
        return np.nonzero(self.mask)

    @cached_property
    def row_starts(self) -> np.ndarray:
        """(Y + 1,) int64: row ``r``'s flagged pixels are ``[row_starts[r], row_starts[r + 1])`` of :attr:`coordinates`."""
        return np.searchsorted(self.coordinates[0], np.arange(self.mask.shape[0] + 1)).astype(np.int64)

    @property
    def count(self) -> int:
        return int(self.coordinates[0].size)

    @property
    def fraction(self) -> float:
        return self.count / self.mask.size


def median_filter_2d(image: np.ndarray, kernel: tuple[int, int] = (3, 3)) -> np.ndarray:
    """2-D median filter with symmetric ('reflect') borders, as MATLAB ``medfilt2(..., 'symmetric')``.

    The common 3x3 case is the compiled :func:`~isoview_core.correction.kernels.median_filter_3x3`, 30x faster
    than ``scipy.ndimage.median_filter`` on 2048 x 2048 float64 with the same result; other kernels use SciPy.
    """
    if tuple(kernel) != (3, 3):
        return ndimage.median_filter(image, size=kernel, mode="reflect")
    out = np.empty_like(image)
    median_filter_3x3(image, out)
    return out


def detect_defective_pixels(
    std_map: np.ndarray,
    mean_map: np.ndarray,
    background: float,
    *,
    planes: int,
    kernel: tuple[int, int] = (3, 3),
    method: Literal["noise", "knee"] = "noise",
    std_sigmas: float = 6.0,
    overwrite_maps: bool = False,
) -> DefectivePixels:
    """Flag pixels whose z-std or background-corrected z-mean departs from their neighbourhood.

    Parameters
    ----------
    std_map, mean_map : ndarray
        (Y, X) standard deviation (N-1) and mean of the stack over z.
    background : float
        Scalar camera background, subtracted from the mean before the relative test.
    planes : int
        Number of planes N the maps were computed from (sets the std estimate's standard error).
    kernel : tuple of int
        2-D median kernel (rows, cols), symmetric borders.
    method : {"noise", "knee"}
        ``"knee"`` is the original: both distances thresholded at the knee of their sorted values.
        ``"noise"`` (default) keeps the original mean test but thresholds the std distance at
        ``std_sigmas`` standard errors of a std estimate, ``sigma_median / sqrt(2 (N - 1))``: the
        knee of raw std distances sits inside the specimen's noise when the specimen is bright,
        flagging ~1 % of its pixels while missing stuck pixels in the dark background.
    std_sigmas : float
        Standard errors beyond which a std deviates (``method="noise"``).
    overwrite_maps : bool
        Subtract the background in place when `mean_map` is float64 (one float64 map less in memory); its values
        are then the background-subtracted means.

    Returns
    -------
    DefectivePixels
        Bad-pixel mask ``(D_std > T_std) | (D_mean > T_mean)`` and both thresholds (the std
        threshold is relative to the local median std for ``"noise"``).

    References
    ----------
    Original ``clusterPT`` dead-pixel correction; ALGORITHMS.md §2.4.
    """
    std_map = np.asarray(std_map, dtype=np.float32)
    std_distance = median_filter_2d(std_map, kernel)
    if method == "knee":
        np.subtract(std_map, std_distance, out=std_distance)
        np.abs(std_distance, out=std_distance)
        std_threshold = knee_threshold(std_distance)
    else:  # in place of the medians: each is read before its distance is written
        relative_deviations(std_map, std_distance, np.float32(MEAN_EPSILON), std_distance)
        std_threshold = std_sigmas / math.sqrt(2.0 * max(planes - 1, 1))

    in_place = overwrite_maps and isinstance(mean_map, np.ndarray) and mean_map.dtype == np.float64
    mean_map = np.subtract(mean_map, background, dtype=np.float64, out=mean_map if in_place else None)
    mean_distance = median_filter_2d(mean_map, kernel)
    relative_deviations(mean_map, mean_distance, MEAN_EPSILON, mean_distance)
    mean_threshold = knee_threshold(mean_distance)

    mask = (std_distance > std_threshold) | (mean_distance > mean_threshold)
    return DefectivePixels(mask=mask, std_threshold=float(std_threshold), mean_threshold=mean_threshold)


def _reflect(indices: np.ndarray, size: int) -> np.ndarray:
    """Mirror indices that fall outside [0, size) the way MATLAB 'symmetric' / SciPy 'reflect' pad."""
    indices = np.where(indices < 0, -indices - 1, indices)
    return np.where(indices >= size, 2 * size - indices - 1, indices)


def neighbourhood_medians(
    slab: np.ndarray, rows: np.ndarray, cols: np.ndarray, *, kernel: tuple[int, int] = (3, 3)
) -> np.ndarray:
    """2-D median of the ``kernel`` neighbourhood of each (row, col) in every plane of a slab.

    Equal to ``median_filter(plane, kernel, mode="reflect")[rows, cols]`` per plane, but only
    evaluated where it is needed. Returns (Z, n) in the slab's dtype.
    """
    half_r, half_c = kernel[0] // 2, kernel[1] // 2
    d_rows, d_cols = np.meshgrid(np.arange(-half_r, half_r + 1), np.arange(-half_c, half_c + 1), indexing="ij")
    nb_rows = _reflect(rows[:, None] + d_rows.ravel()[None, :], slab.shape[1])
    nb_cols = _reflect(cols[:, None] + d_cols.ravel()[None, :], slab.shape[2])
    neighbours = slab[:, nb_rows, nb_cols]
    middle = neighbours.shape[-1] // 2
    return np.partition(neighbours, middle, axis=-1)[..., middle]


def replacements(
    slab: np.ndarray, defects: DefectivePixels | None, *, kernel: tuple[int, int] = (3, 3)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What replaces the flagged pixels of a (Z, Y, X) slab, as :func:`~isoview_core.correction.kernels.correct_and_project`
    takes it: ``(row_starts, cols, values)``, ``values`` (Z, n) their per-plane neighbourhood medians (none without defects)."""
    if defects is None:
        return np.zeros(slab.shape[1] + 1, np.int64), np.zeros(0, np.int64), np.zeros((slab.shape[0], 0), slab.dtype)
    rows, cols = defects.coordinates
    return defects.row_starts, cols.astype(np.int64, copy=False), neighbourhood_medians(slab, rows, cols, kernel=kernel)


def replace_defective_pixels(slab: np.ndarray, defects: DefectivePixels, *, kernel: tuple[int, int] = (3, 3)) -> None:
    """Replace flagged pixels of a (Z, Y, X) slab, in place, by their per-plane neighbourhood median."""
    rows, cols = defects.coordinates
    if rows.size:
        slab[:, rows, cols] = neighbourhood_medians(slab, rows, cols, kernel=kernel)
