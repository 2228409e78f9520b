"""Uncompressed volumes in scratch files, mapped only while one block is read or written.

Blockwise computations over volumes larger than memory (the isotropic grid of a full-size timepoint is 5.7 GB of
float32, its two views 9.2 GB) read and write small blocks at arbitrary places. A compressed OME-Zarr view is
stored in whole planes, so a 64^3 block of it would decompress tens of full planes; a single ``np.memmap`` kept open
leaves every page it touched in the process's resident set until it is unmapped, so the memory would grow with the
volume after all. A :class:`ScratchVolume` maps its file for the one access and unmaps it at once: the data stays in
the kernel's page cache (shared, reclaimable, written back by the kernel), the process holds only the block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["ScratchVolume"]

COPY_SLAB_PLANES = 16
"""Planes copied at a time into a scratch volume: one shard of the default OME-Zarr layout."""


class ScratchVolume:
    """A C-ordered raw array in a file, sliced like a numpy array; every access maps the file and copies (module docstring)."""

    def __init__(self, path: Path, shape: Sequence[int], dtype: npt.DTypeLike) -> None:
        self.path = Path(path)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)

    @classmethod
    def create(cls, path: Path, shape: Sequence[int], dtype: npt.DTypeLike) -> ScratchVolume:
        """A new volume of zeros (a sparse file: no disk space is used before it is written)."""
        volume = cls(path, shape, dtype)
        with open(volume.path, "wb") as handle:
            handle.truncate(volume.nbytes)
        return volume

    @classmethod
    def copy_of(cls, path: Path, source: Any, *, slab_planes: int = COPY_SLAB_PLANES) -> ScratchVolume:
        """A scratch copy of ``source`` (a numpy or zarr array), read ``slab_planes`` planes at a time.

        Parameters
        ----------
        path : Path
            The file to write (replaced if present).
        source : array-like
            A (z, ...) array; only one slab of it is in memory at a time.
        slab_planes : int
            Planes per slab.

        Returns
        -------
        ScratchVolume
            The copy, of the source's shape and dtype.
        """
        volume = cls.create(path, source.shape, source.dtype)
        for start in range(0, volume.shape[0], slab_planes):
            planes = slice(start, min(start + slab_planes, volume.shape[0]))
            volume[planes] = np.asarray(source[planes])
        return volume

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        """Size of the data in bytes."""
        return math.prod(self.shape) * self.dtype.itemsize

    def __getitem__(self, key: Any) -> np.ndarray:
        """A copy of the selected values (the mapping is released before returning)."""
        mapped = self._mapped("r")
        try:
            return np.array(mapped[key])
        finally:
            del mapped

    def __setitem__(self, key: Any, value: npt.ArrayLike) -> None:
        """Write the selected values through a mapping released at once."""
        mapped = self._mapped("r+")
        try:
            mapped[key] = value
        finally:
            del mapped

    def _mapped(self, mode: str) -> np.memmap:
        return np.memmap(self.path, dtype=self.dtype, mode=mode, shape=self.shape)
