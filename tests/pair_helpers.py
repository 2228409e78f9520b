"""Shared helpers of the fusion tests: undo the simulator's pair transform exactly, collect slabs."""

from __future__ import annotations

import numpy as np

#: Integer pair offset the fusion tests simulate, so it can be undone exactly without registration.
OFFSET_Y, OFFSET_X = -4, 6


def align_second(volume: np.ndarray) -> np.ndarray:
    """Flip the second camera's columns and undo the simulator's integer offset (zero fill)."""
    flipped = volume[..., ::-1]
    out = np.zeros_like(flipped)
    rows, cols = flipped.shape[-2:]
    out[..., max(OFFSET_Y, 0) : rows + min(OFFSET_Y, 0), max(OFFSET_X, 0) : cols + min(OFFSET_X, 0)] = flipped[
        ..., max(-OFFSET_Y, 0) : rows + min(-OFFSET_Y, 0), max(-OFFSET_X, 0) : cols + min(-OFFSET_X, 0)
    ]
    return out


class CollectingSink:
    """A correction sink that keeps the corrected stack in memory."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.volume = np.zeros(shape, dtype=np.uint16)

    def write(self, first_plane: int, slab: np.ndarray, labels: np.ndarray | None = None) -> None:
        self.volume[first_plane : first_plane + slab.shape[0]] = slab
