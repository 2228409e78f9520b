"""Maximum-intensity projections of a (Z, Y, X) stack accumulated block by block (ALGORITHMS.md §2.9).

Names and orientations follow the original MATLAB pipeline: ``xy`` = max over z, shape (Y, X);
``xz`` = max over columns, shape (Y, Z); ``yz`` = max over rows, shape (X, Z). Used by the
correction (corrected stacks, masks) and the fusion (fused volumes).
"""

from __future__ import annotations

import numpy as np

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
