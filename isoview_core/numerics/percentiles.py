"""MATLAB-faithful order statistics: ``prctile``, ``stack(1:step:end)`` sub-sampling, the knee threshold.

See ALGORITHMS.md §2.2 (percentile rule) and §2.4 (knee threshold).
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from isoview_core.numerics.rounding import round_half_away

logger = logging.getLogger(__name__)

KNEE_MAX_SAMPLES = 50_000


def hazen_percentile(samples: np.ndarray, percent: float) -> float:
    """MATLAB ``prctile`` (midpoint rule, NumPy ``method="hazen"``) on float64; 0.0 for empty input.

    Parameters
    ----------
    samples : ndarray
        Any shape; flattened. 8/16-bit unsigned integers take an exact histogram path (linear
        time, no float copy), as fast on millions of camera samples as a sort of thousands.
    percent : float
        Percentile in [0, 100].
    """
    samples = np.asarray(samples).ravel()
    if samples.dtype in (np.uint8, np.uint16):
        return hazen_percentile_of_counts(_value_counts(samples), percent)
    if samples.size == 0:
        logger.warning("percentile of an empty sample requested; returning 0.0")
        return 0.0
    return float(np.percentile(samples.astype(np.float64, copy=False), percent, method="hazen"))


def hazen_percentile_of_counts(counts: np.ndarray, percent: float) -> float:
    """:func:`hazen_percentile` of integer samples given as value counts (``counts[v]``: how often ``v`` occurs)."""
    n = int(counts.sum())
    if n == 0:
        logger.warning("percentile of an empty sample requested; returning 0.0")
        return 0.0
    return _hazen_from_histogram(counts, n, percent)


HISTOGRAM_CHUNK = 1 << 20
"""Samples counted at a time: ``np.bincount`` casts its input to int64, and the cast of 21 million samples at once,
in fresh memory, costs 10x the counting (0.53 against 0.05 s here); a chunk's cast stays in the cache."""


def _value_counts(samples: np.ndarray) -> np.ndarray:
    """How often each value of the 8/16-bit unsigned ``samples`` (1-D) occurs: int64 counts of 0 .. the dtype's maximum."""
    counts = np.zeros(np.iinfo(samples.dtype).max + 1, dtype=np.int64)
    for start in range(0, samples.size, HISTOGRAM_CHUNK):
        counts += np.bincount(samples[start : start + HISTOGRAM_CHUNK], minlength=counts.size)
    return counts


def _hazen_from_histogram(counts: np.ndarray, n: int, percent: float) -> float:
    """Hazen percentile from value counts: sample i (1-based) sits at rank 100 (i - 0.5) / n."""
    position = n * percent / 100.0 + 0.5  # 1-based fractional order statistic
    below = min(max(int(np.floor(position)), 1), n)
    above = min(below + 1, n)
    cumulative = np.cumsum(counts)
    low, high = np.searchsorted(cumulative, [below, above])  # value of the below-th / above-th sample
    fraction = min(max(position - below, 0.0), 1.0) if 1 <= position < n else 0.0
    return float(low + fraction * (high - low))


def matlab_subsample(slab: np.ndarray, step: int, first_plane: int = 0) -> np.ndarray:
    """Every ``step``-th voxel of a (Z, Y, X) slab in MATLAB's column-major (y, x, z) order (§2.2).

    ``first_plane`` is the slab's index in the whole stack, so that slabs of one stack together
    select exactly the voxels that ``stack(1:step:end)`` selects in MATLAB.
    """
    planes, rows, cols = slab.shape
    parts = [_plane_samples(slab[z], _plane_pattern(rows, cols, step, _plane_start(first_plane + z, rows * cols, step))) for z in range(planes)]
    return np.concatenate(parts) if parts else slab.reshape(-1)[:0]


def _plane_samples(plane: np.ndarray, pattern: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """The voxels of one (Y, X) plane at a pattern's (rows, cols, row-major indices): a flat take where the plane is
    contiguous, half the CPU of a 2-D fancy index (8 against 17 ms for 16 x 2048 x 2048 at step 100)."""
    rows, cols, flat = pattern
    return np.take(plane, flat) if plane.flags.c_contiguous else plane[rows, cols]


def _plane_start(plane: int, plane_size: int, step: int) -> int:
    """Column-major index, within plane `plane` of the stack, of its first voxel that ``stack(1:step:end)`` selects."""
    return (-plane * plane_size) % step


@functools.lru_cache(maxsize=32)
def _plane_pattern(rows: int, cols: int, step: int, start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, row-major indices) of column-major indices ``start, start + step, ...`` of a plane.

    A stack's planes share a few such patterns (``start`` cycles with the plane), so they are computed
    once: the divisions cost 20x more than gathering the voxels (0.57 s for a 512 x 512 x 512 volume at
    step 6 without the cache).
    """
    col, row = np.divmod(np.arange(start, rows * cols, step, dtype=np.intp), rows)
    flat = row * cols + col
    row.flags.writeable = col.flags.writeable = flat.flags.writeable = False
    return row, col, flat


def knee_threshold(values: np.ndarray) -> float:
    """Threshold at the knee of the sorted values (original ``determineThreshold``).

    The sorted curve is sub-sampled to at most ~50 000 points; the point farthest from the chord
    between its first and last points (1-based index on x, raw values on y, no normalisation) is
    the knee.

    Parameters
    ----------
    values : ndarray
        Distances of any shape (flattened and sorted here).

    Returns
    -------
    float
        The value at the knee.
    """
    ordered = _sorted(np.asarray(values, dtype=np.float64).ravel())
    if ordered.size == 0:
        raise ValueError("knee_threshold needs at least one value")
    if ordered.size > KNEE_MAX_SAMPLES:
        step = int(round_half_away(ordered.size / KNEE_MAX_SAMPLES))
        ordered = ordered[::step]
    n = ordered.size
    if n < 3:
        return float(ordered[-1])
    x = np.arange(1, n + 1, dtype=np.float64)
    chord = np.array([x[-1] - x[0], ordered[-1] - ordered[0]])
    rel_x = x - x[0]
    rel_y = ordered - ordered[0]
    projection = (rel_x * chord[0] + rel_y * chord[1]) / float(chord @ chord)
    distance = np.hypot(projection * chord[0] - rel_x, projection * chord[1] - rel_y)
    return float(ordered[int(np.argmax(distance))])


def _sorted(values: np.ndarray) -> np.ndarray:
    """``np.sort`` of 1-D float64 ``values``, sorting their bit patterns when no sign bit is set (the knee's distances).

    Without sign bits, the order of float64 bit patterns read as uint64 is the order of the values (NaNs last), and
    equal values have equal bits: the same sorted array, 30 % faster (0.19 against 0.27 s for 2048 x 2048 values).
    """
    bits = values.view(np.uint64)
    if bits.size and bits.max() < np.uint64(1 << 63):
        return np.sort(bits).view(np.float64)
    return np.sort(values)
