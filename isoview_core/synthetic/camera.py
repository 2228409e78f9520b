"""sCMOS camera model: offset, Poisson photon noise, Gaussian read noise, defective pixels.

Each plane is digitised as ``offset + Poisson(g · s · e) / e + N(0, read_noise)``, rounded and
clipped to uint16, where ``s`` is the optical signal (ADU), ``e`` the electrons per ADU and ``g``
the pixel's gain (1 except for insensitive pixels). Each camera has a fixed set of defective
pixels, the same at every timepoint and in its dark frame:

* ``dead``: stuck at a constant a little below the offset, whatever the light; no variance.
* ``hot``: a large constant extra offset (``HOT_EXCESS_ADU``) plus the normal noise.
* ``insensitive``: gain ``INSENSITIVE_GAIN`` on the signal (visible only where there is signal).

Defects avoid the outermost pixel ring and lie at least ``DEFECT_SPACING`` pixels apart
(Chebyshev), so each one has a clean 3x3 neighbourhood, as the original dead-pixel detection
(ALGORITHMS.md §2.4) assumes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from isoview_core.synthetic.config import SimulationConfig, camera_role
from isoview_core.synthetic.optics import optical_planes

DefectKind = Literal["dead", "hot", "insensitive"]

DEAD_BELOW_OFFSET_ADU = (5.0, 15.0)
"""Range of how far below the camera offset a dead pixel is stuck."""
HOT_EXCESS_ADU = (500.0, 3000.0)
"""Range of a hot pixel's extra offset."""
INSENSITIVE_GAIN = (0.1, 0.3)
"""Range of an insensitive pixel's gain."""
DEFECT_SPACING = 3
"""Minimum Chebyshev distance between two defective pixels."""

_DEFECT_STREAM = 3
_DARK_STREAM = 4
_NOISE_STREAM = 5


@dataclass(frozen=True)
class CameraDefects:
    """Defective pixels of one camera.

    Attributes
    ----------
    rows, cols : ndarray
        (K,) int coordinates.
    kinds : tuple of DefectKind
        Kind of each pixel.
    values : ndarray
        (K,) float: the stuck level (dead, ADU), the extra offset (hot, ADU) or the gain (insensitive).
    """

    rows: np.ndarray
    cols: np.ndarray
    kinds: tuple[DefectKind, ...]
    values: np.ndarray

    def of_kind(self, kind: DefectKind) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, cols, values)`` of the defects of one kind."""
        selected = np.array([item == kind for item in self.kinds], dtype=bool)
        return self.rows[selected], self.cols[selected], self.values[selected]


def camera_defects(config: SimulationConfig, camera: int) -> CameraDefects:
    """The fixed defective pixels of ``camera`` (same at every timepoint), from the seed.

    Parameters
    ----------
    config : SimulationConfig
        Simulation parameters (seed, shape, ``defect_fraction``, offsets).
    camera : int
        Camera 0-3.

    Returns
    -------
    CameraDefects
        ``round(defect_fraction · H · W)`` pixels, uniformly spread over the frame (outer ring
        excluded), a third dead, a third insensitive, the rest hot (module docstring).
    """
    camera_role(camera)  # raises ValueError for an unknown camera
    _, height, width = config.shape
    rng = np.random.default_rng([config.seed, _DEFECT_STREAM, camera])
    count = round(config.defect_fraction * height * width)
    rows, cols = _spread_pixels(rng, count, height, width)
    count = len(rows)
    kinds: tuple[DefectKind, ...] = ("dead",) * (count // 3) + ("insensitive",) * (count // 3)
    kinds += ("hot",) * (count - len(kinds))
    offset = config.background_levels_adu[camera]
    ranges = {
        "dead": (offset - DEAD_BELOW_OFFSET_ADU[1], offset - DEAD_BELOW_OFFSET_ADU[0]),
        "hot": HOT_EXCESS_ADU,
        "insensitive": INSENSITIVE_GAIN,
    }
    low, high = np.array([ranges[kind] for kind in kinds], dtype=np.float64).reshape(-1, 2).T
    values = rng.uniform(low, high)
    dead = np.array([kind == "dead" for kind in kinds], dtype=bool)
    values[dead] = np.maximum(np.round(values[dead]), 0.0)
    return CameraDefects(rows=rows, cols=cols, kinds=kinds, values=values)


def dark_frame(config: SimulationConfig, camera: int) -> np.ndarray:
    """One dark frame of ``camera``, as the microscope saves it in ``Background_<camera>.tif``.

    Parameters
    ----------
    config : SimulationConfig
        Simulation parameters.
    camera : int
        Camera 0-3.

    Returns
    -------
    ndarray
        (Y, X) uint16: offset plus read noise, with the camera's hot and dead pixels.
    """
    rng = np.random.default_rng([config.seed, _DARK_STREAM, camera])
    return _digitize(np.zeros(config.shape[1:], dtype=np.float32), config, camera, camera_defects(config, camera), rng)


def camera_planes(config: SimulationConfig, timepoint: int, camera: int) -> Iterator[np.ndarray]:
    """The camera's raw stack, plane by plane, as the microscope would stream it.

    Parameters
    ----------
    config : SimulationConfig
        Simulation parameters.
    timepoint : int
        Timepoint.
    camera : int
        Camera 0-3.

    Yields
    ------
    ndarray
        (Y, X) uint16 planes in stack order.
    """
    defects = camera_defects(config, camera)
    rng = np.random.default_rng([config.seed, _NOISE_STREAM, timepoint, camera])
    for signal in optical_planes(config, timepoint, camera):
        yield _digitize(signal, config, camera, defects, rng)


def render_camera_stack(config: SimulationConfig, timepoint: int, camera: int) -> np.ndarray:
    """Raw stack of one camera at one timepoint, in memory.

    Parameters
    ----------
    config : SimulationConfig
        Simulation parameters (the seed makes the result deterministic).
    timepoint : int
        0 .. ``config.timepoints - 1``.
    camera : int
        Camera 0-3.

    Returns
    -------
    ndarray
        (Z, Y, X) uint16, byte for byte what :func:`simulate_acquisition` writes.
    """
    plane_type = np.dtype((np.uint16, config.shape[1:]))
    return np.fromiter(camera_planes(config, timepoint, camera), dtype=plane_type, count=config.shape[0])


def _digitize(
    signal: np.ndarray, config: SimulationConfig, camera: int, defects: CameraDefects, rng: np.random.Generator
) -> np.ndarray:
    """Photon noise, defects, offset and read noise on one (Y, X) float32 signal plane (modified in place)."""
    rows, cols, gains = defects.of_kind("insensitive")
    signal[rows, cols] *= gains.astype(np.float32)
    electrons = config.electrons_per_adu
    lit = signal > 0
    values = rng.standard_normal(signal.shape, dtype=np.float32)
    values *= np.float32(config.read_noise_adu[camera])
    values += np.float32(config.background_levels_adu[camera])
    values[lit] += (rng.poisson(signal[lit] * electrons) / electrons).astype(np.float32)
    rows, cols, excess = defects.of_kind("hot")
    values[rows, cols] += excess.astype(np.float32)
    rows, cols, stuck = defects.of_kind("dead")
    values[rows, cols] = stuck
    return np.clip(np.rint(values, out=values), 0, 65535, out=values).astype(np.uint16)


def _spread_pixels(rng: np.random.Generator, count: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``count`` random pixels off the outer ring, pairwise at least ``DEFECT_SPACING`` apart."""
    taken = np.zeros((height, width), dtype=bool)
    rows: list[int] = []
    cols: list[int] = []
    for _ in range(20 * count):
        if len(rows) == count:
            break
        row, col = int(rng.integers(1, height - 1)), int(rng.integers(1, width - 1))
        if taken[row, col]:
            continue
        rows.append(row)
        cols.append(col)
        taken[max(row - DEFECT_SPACING + 1, 0) : row + DEFECT_SPACING, max(col - DEFECT_SPACING + 1, 0) : col + DEFECT_SPACING] = True
    return np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)
