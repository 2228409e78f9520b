"""Maximum projections and coordinate masks, accumulated slab by slab (ALGORITHMS.md §2.7, §2.9).

Projection names and orientations follow the original MATLAB pipeline:
``xy`` = max over z, shape (Y, X); ``xz`` = max over columns, shape (Y, Z);
``yz`` = max over rows, shape (X, Z).
"""

from __future__ import annotations

import numpy as np

from isoview_core.correction.stats import coordinate_mean

PROJECTION_NAMES = ("xy", "xz", "yz")


class MaxProjections:
    """The three maximum-intensity projections of a (Z, Y, X) stack fed block by block (planes, then rows)."""

    def __init__(self, shape: tuple[int, int, int], dtype: np.dtype = np.dtype(np.uint16)) -> None:
        planes, rows, cols = shape
        self.xy = np.zeros((rows, cols), dtype=dtype)
        self.xz = np.zeros((rows, planes), dtype=dtype)
        self.yz = np.zeros((cols, planes), dtype=dtype)

    def add(self, first_plane: int, slab: np.ndarray, first_row: int = 0) -> None:
        """Fold rows ``[first_row, first_row + R)`` of planes ``[first_plane, first_plane + Z)`` in."""
        planes = slice(first_plane, first_plane + slab.shape[0])
        rows = slice(first_row, first_row + slab.shape[1])
        if first_plane == 0:
            self.xy[rows] = slab.max(axis=0)
        else:
            np.maximum(self.xy[rows], slab.max(axis=0), out=self.xy[rows])
        self.xz[rows, planes] = slab.max(axis=2).T
        if first_row == 0:
            self.yz[:, planes] = slab.max(axis=1).T
        else:
            np.maximum(self.yz[:, planes], slab.max(axis=1).T, out=self.yz[:, planes])

    def as_dict(self) -> dict[str, np.ndarray]:
        """``{"xy": ..., "xz": ..., "yz": ...}``."""
        return {"xy": self.xy, "xz": self.xz, "yz": self.yz}


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
