"""Read-time crop, rotation and flip of a camera stack (ALGORITHMS.md §2.1 steps 2-4)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isoview_core.correction.config import CorrectionConfig, CropBox


@dataclass(frozen=True)
class Orientation:
    """How raw (Z, Y, X) planes become the stack that is corrected: crop, then rotate, then flip."""

    crop: CropBox | None = None
    rotation: int = 0
    flip_horizontal: bool = False
    flip_vertical: bool = False

    def plane_range(self, raw_depth: int) -> tuple[int, int]:
        """Raw planes ``[start, stop)`` that are read."""
        if self.crop is None:
            return 0, raw_depth
        stop = raw_depth if self.crop.depth is None else min(raw_depth, self.crop.front + self.crop.depth)
        return self.crop.front, stop

    def _window(self, rows: int, cols: int) -> tuple[slice, slice]:
        if self.crop is None:
            return slice(0, rows), slice(0, cols)
        bottom = rows if self.crop.height is None else min(rows, self.crop.top + self.crop.height)
        right = cols if self.crop.width is None else min(cols, self.crop.left + self.crop.width)
        return slice(self.crop.top, bottom), slice(self.crop.left, right)

    def output_shape(self, raw_shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """Shape of the oriented stack."""
        start, stop = self.plane_range(raw_shape[0])
        rows, cols = self._window(raw_shape[1], raw_shape[2])
        height, width = rows.stop - rows.start, cols.stop - cols.start
        if self.rotation:
            height, width = width, height
        return stop - start, height, width

    def apply(self, raw_slab: np.ndarray) -> np.ndarray:
        """Oriented, C-contiguous copy-free view where possible (a copy when anything changes the layout)."""
        rows, cols = self._window(raw_slab.shape[-2], raw_slab.shape[-1])
        slab = raw_slab[..., rows, cols]
        if self.rotation:
            slab = np.rot90(slab, k=-self.rotation, axes=(-2, -1))
        if self.flip_horizontal:
            slab = slab[..., :, ::-1]
        if self.flip_vertical:
            slab = slab[..., ::-1, :]
        return np.ascontiguousarray(slab)

    def raw_coordinates(self, rows: np.ndarray, cols: np.ndarray, raw_plane_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Raw (row, col) of oriented pixels (rows, cols): the inverse of the in-plane part of :meth:`apply`."""
        raw_rows, raw_cols = raw_plane_shape
        index = np.arange(raw_rows * raw_cols, dtype=np.int64).reshape(1, raw_rows, raw_cols)
        flat = self.apply(index)[0][rows, cols]
        return np.divmod(flat, raw_cols)


def correction_orientation(config: CorrectionConfig, camera: int, *, flip: bool) -> Orientation:
    """The read-time orientation of one camera's stack (ALGORITHMS.md §2.1 steps 2-4).

    Parameters
    ----------
    config : CorrectionConfig
        Crop boxes, rotation and flips of the correction.
    camera : int
        The camera whose crop box applies.
    flip : bool
        Apply the configured flips (``flipHFlag`` / ``flipVFlag``): the original flips the last
        camera of each pair only, which the driver knows (the stage knows no camera pairs).

    Returns
    -------
    Orientation
        Crop of ``camera``, the rotation of every camera and the flips where ``flip``.
    """
    return Orientation(
        crop=config.crop.get(camera),
        rotation=config.correction_rotation,
        flip_horizontal=config.correction_flip_horizontal and flip,
        flip_vertical=config.correction_flip_vertical and flip,
    )
