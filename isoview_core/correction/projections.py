"""Coordinate masks of the segmentation, accumulated slab by slab (ALGORITHMS.md §2.7)."""

from __future__ import annotations

import numpy as np

from isoview_core.numerics.rounding import coordinate_mean


class CoordinateMasks:
    """1-based mean foreground coordinates of a mask, 0 where a ray has no foreground (§2.7).

    ``xy`` (Y, X): mean plane index (z + 1) along each detection ray, the specimen mid-surface used
    by camera fusion. ``xz`` (Y, Z): mean column index (x + 1) per row and plane (channel fusion).
    """

    def __init__(self, shape: tuple[int, int, int]) -> None:
        planes, rows, cols = shape
        self._plane_sum = np.zeros((rows, cols), dtype=np.int64)
        self._plane_count = np.zeros((rows, cols), dtype=np.int64)
        self._column_sum = np.zeros((rows, planes), dtype=np.float64)
        self._column_count = np.zeros((rows, planes), dtype=np.int64)
        self._columns = np.arange(1, cols + 1, dtype=np.float32)

    def add(self, first_plane: int, mask_slab: np.ndarray) -> None:
        """Fold a boolean (Z, Y, X) mask slab starting at plane ``first_plane``."""
        for offset, plane in enumerate(mask_slab):
            self._plane_count += plane
            self._plane_sum[plane] += first_plane + offset + 1
            z = first_plane + offset
            self._column_count[:, z] = np.count_nonzero(plane, axis=1)
            self._column_sum[:, z] = plane.astype(np.float32) @ self._columns

    @property
    def xy(self) -> np.ndarray:
        return coordinate_mean(self._plane_sum, self._plane_count)

    @property
    def xz(self) -> np.ndarray:
        return coordinate_mean(self._column_sum, self._column_count)
