"""Separable Gaussian filters of the original pipeline (``imgaussianAnisotropy``), MATLAB-faithful (ALGORITHMS.md §2.6).

The 1-D correlations are two compiled loops, bit for bit SciPy's ``correlate1d``: :func:`correlate_middle_axis`
(the columns and the planes, vectorised along the contiguous axis) and :func:`correlate_rows` (along the contiguous
axis itself). The three passes over a 64 x 512 x 512 float32 volume (the reduced segmentation of a 64 x 2048 x 2048
stack) take 0.046 CPU-s in place against SciPy's 0.28 (0.147 when the rows went through
:func:`correlate_middle_axis` on a transposed view, and its loops indexed the line buffer with offsets).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from isoview_core.numerics.compiled import compiled
from isoview_core.numerics.rounding import to_u16
from isoview_core.numerics.slabs import row_slabs

logger = logging.getLogger(__name__)


def gaussian_taps(size: float, sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian weights on taps ``-ceil(size/2) .. ceil(size/2)`` (original helper)."""
    half = math.ceil(size / 2)
    taps = np.arange(-half, half + 1, dtype=np.float64)
    weights = np.exp(-(taps**2) / (2.0 * sigma**2))
    return weights / weights.sum()


def anisotropic_kernels(kernel: float, sigma: float, scaling: float) -> tuple[np.ndarray, np.ndarray]:
    """(axial, lateral) taps of ``imgaussianAnisotropy``: z size and sigma divided by the axial scaling (min 1)."""
    return gaussian_taps(max(1.0, kernel / scaling), max(1.0, sigma / scaling)), gaussian_taps(kernel, sigma)


def filter_separable(volume: np.ndarray, axial: np.ndarray, lateral: np.ndarray, dtype: type, *, in_place: bool = False) -> np.ndarray:
    """Correlate a (Z, Y, X) volume with separable taps: rows, columns, then planes (original helper).

    Parameters
    ----------
    volume : ndarray
        The (Z, Y, X) volume.
    axial, lateral : ndarray
        1-D taps along Z and along Y and X.
    dtype : type
        Working and output precision.
    in_place : bool
        Filter `volume` itself (it must be C-contiguous, of `dtype`): no second volume in memory, and none of
        the page faults of a fresh one (~0.5 s per 512 MB here).

    Returns
    -------
    ndarray
        The filtered volume in ``dtype``, with replicate ('nearest') borders; filtered in-plane
        only below 4 planes, as the original helper does.
    """
    if in_place and (volume.dtype != dtype or not volume.flags.c_contiguous):
        raise ValueError(f"in-place filtering needs a C-contiguous {np.dtype(dtype)} volume, got {volume.dtype}")
    out = volume if in_place else np.array(volume, dtype=dtype, order="C")
    planes, rows, cols = out.shape
    lateral_weights = _symmetric_weights(lateral, dtype)
    correlate_middle_axis(out, lateral_weights)
    correlate_rows(out, lateral_weights)
    if planes >= 4:
        correlate_middle_axis(out.reshape(1, planes, rows * cols), _symmetric_weights(axial, dtype))
    else:
        logger.warning("stack of %d planes filtered in-plane only (as the original helper does)", planes)
    return out


def _symmetric_weights(taps: np.ndarray, dtype: type) -> np.ndarray:
    """The taps in ``dtype`` as SciPy's ``correlate1d`` uses them (float64); they must be odd and mirror-symmetric."""
    weights = np.asarray(taps, dtype=dtype).astype(np.float64)
    if weights.size % 2 == 0 or np.any(np.abs(weights - weights[::-1]) > np.finfo(np.float64).eps):
        raise ValueError(f"separable filter taps must be odd and symmetric, got {taps}")
    return weights


#: Columns of a line buffer: the float64 lines of one chunk stay in the CPU cache.
_LINE_CHUNK = 512


@compiled
def correlate_middle_axis(volume: np.ndarray, weights: np.ndarray) -> None:
    """Correlate an (A, L, B) volume along its middle axis, in place, with odd symmetric float64 ``weights``.

    Bit for bit SciPy's ``correlate1d(mode="nearest")`` for symmetric weights: float64 lines, the centre product
    plus the pair sums ``(left + right) * w`` from the outermost pair inwards, rounded once to the volume's dtype.
    The inner loops run over rows of the line buffer taken as views, indexed from 0: numba then vectorises them
    (1.3-2x faster than indexing ``line[position + offset, column]``).
    """
    outer, length, inner = volume.shape
    half = weights.size // 2
    line = np.empty((length + 2 * half, min(inner, _LINE_CHUNK)), dtype=np.float64)
    total = np.empty(line.shape[1], dtype=np.float64)
    for index in range(outer):
        for first in range(0, inner, _LINE_CHUNK):
            width = min(_LINE_CHUNK, inner - first)
            for position in range(length + 2 * half):
                source, target = volume[index, min(max(position - half, 0), length - 1), first : first + width], line[position]
                for column in range(width):
                    target[column] = source[column]
            for position in range(length):
                centre = line[position + half]
                for column in range(width):
                    total[column] = centre[column] * weights[half]
                for offset in range(half, 0, -1):
                    weight = weights[half - offset]
                    left, right = line[position + half - offset], line[position + half + offset]
                    for column in range(width):
                        total[column] += (left[column] + right[column]) * weight
                target = volume[index, position, first : first + width]
                for column in range(width):
                    target[column] = total[column]


@compiled
def correlate_rows(volume: np.ndarray, weights: np.ndarray) -> None:
    """Correlate each row of an (A, B, L) volume along its last axis, in place, with odd symmetric float64 ``weights``.

    The arithmetic of :func:`correlate_middle_axis` (bit for bit SciPy's ``correlate1d(mode="nearest")``), vectorised
    along the row: a float64 copy of it with replicated ends, then the centre product and the pair sums from the
    outermost pair inwards, on shifted views of the line. On the rows of 16 planes of 1024 x 1024 float32: 22 ms
    (9 taps) and 54 ms (33 taps), against 186 and 220 ms for :func:`correlate_middle_axis` on their transposed view.
    """
    outer, rows, length = volume.shape
    half = weights.size // 2
    line = np.empty(length + 2 * half, dtype=np.float64)
    total = np.empty(length, dtype=np.float64)
    for index in range(outer):
        for row in range(rows):
            source = volume[index, row]
            for position in range(length + 2 * half):
                line[position] = source[min(max(position - half, 0), length - 1)]
            centre = line[half : half + length]
            for position in range(length):
                total[position] = centre[position] * weights[half]
            for offset in range(half, 0, -1):
                weight = weights[half - offset]
                left, right = line[half - offset : half - offset + length], line[half + offset : half + offset + length]
                for position in range(length):
                    total[position] += (left[position] + right[position]) * weight
            for position in range(length):
                source[position] = total[position]


def anisotropic_gaussian(
    volume: np.ndarray, *, kernel: float = 5, sigma: float = 2.0, scaling: float = 1.0, splitting: int = 10
) -> np.ndarray:
    """Original anisotropic Gaussian of a (Z, Y, X) stack: float64, row slabs with margins, uint16 out.

    Parameters
    ----------
    volume : ndarray
        Corrected stack.
    kernel, sigma : float
        In-plane kernel size and sigma; the axial ones are divided by ``scaling`` (minimum 1).
    scaling : float
        Axial step / lateral pixel size.
    splitting : int
        Number of row slabs (bounds the float64 working memory); the result does not depend on it.
    """
    axial, lateral = anisotropic_kernels(kernel, sigma, scaling)
    out = np.empty(volume.shape, dtype=np.uint16)
    for (start, stop), (lo, hi) in row_slabs(volume.shape[1], splitting, margin=int(2 * kernel)):
        filtered = filter_separable(volume[:, lo:hi], axial, lateral, np.float64)
        out[:, start:stop] = to_u16(filtered[:, start - lo : stop - lo])
    return out
