"""Pyramid levels of an OME-Zarr slab: y and x halved per level, by 2x2 means (images) or 2x2 nearest (labels)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["mean_2x2", "nearest_2x2", "pyramid"]


def mean_2x2(slab: np.ndarray) -> np.ndarray:
    """Halve y and x by 2x2 means (edges replicated), rounded half away from zero, same dtype."""
    odd = (0, slab.shape[1] % 2), (0, slab.shape[2] % 2)
    if any(pad for _, pad in odd):
        slab = np.pad(slab, ((0, 0), *odd), mode="edge")
    if slab.dtype.kind == "f":
        total = slab[:, 0::2, 0::2].astype(np.float64)
    else:
        total = slab[:, 0::2, 0::2].astype(
            np.uint32 if slab.dtype.kind == "u" and slab.dtype.itemsize <= 2 else np.int64
        )
    total += slab[:, 1::2, 0::2]
    total += slab[:, 0::2, 1::2]
    total += slab[:, 1::2, 1::2]
    if slab.dtype.kind == "f":
        return (total / 4).astype(slab.dtype)
    if slab.dtype.kind == "u":
        return ((total + 2) // 4).astype(slab.dtype)
    return np.where(total >= 0, (total + 2) // 4, -((2 - total) // 4)).astype(slab.dtype)


def nearest_2x2(slab: np.ndarray) -> np.ndarray:
    """Halve y and x by keeping the top-left pixel of each 2x2 block (for labels)."""
    return slab[:, ::2, ::2]


def pyramid(slab: np.ndarray, levels: int, reduce: Callable[[np.ndarray], np.ndarray]) -> list[np.ndarray]:
    """`slab` and its `levels` reductions, each `reduce` of the one before."""
    result = [slab]
    for _ in range(levels):
        result.append(reduce(result[-1]))
    return result
