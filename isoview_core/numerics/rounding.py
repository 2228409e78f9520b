"""MATLAB-faithful rounding and casts shared by every stage (ALGORITHMS.md §0, §2.7).

NumPy rounds halves to even; MATLAB's ``round`` and ``uint16`` round them away from zero.
"""

from __future__ import annotations

import numpy as np


def round_half_away(values: np.ndarray | float) -> np.ndarray | float:
    """MATLAB ``round``: halves go away from zero (NumPy's ``round`` goes to even)."""
    values = np.asarray(values, dtype=np.float64)
    rounded = np.sign(values) * np.floor(np.abs(values) + 0.5)
    return rounded if rounded.ndim else float(rounded)


def to_u16(values: np.ndarray) -> np.ndarray:
    """MATLAB ``uint16(v)``: round half away from zero, then saturate to [0, 65535]."""
    return np.clip(round_half_away(values), 0, 65535).astype(np.uint16)


def coordinate_mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``round_half_away(total / count)`` as uint16 and 0 where ``count`` is 0: 1-based coordinate maps (§2.7)."""
    mean = np.divide(total, count, out=np.zeros(total.shape, dtype=np.float64), where=count > 0)
    return round_half_away(mean).astype(np.uint16)
