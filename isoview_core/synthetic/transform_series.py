"""A time series of VW90 -> VW00 registrations with a known drifting truth, noise and one corrupted timepoint (issue 16).

What the temporal smoothing of the isotropic transforms is measured on: the truth is the nominal 90 degrees about y
plus a fixed small misalignment, drifting smoothly by 0.5 degree and 10 um over the series; each estimate adds
registration noise (RMS 0.05 degree and 0.2 um, about what the registration reaches on simulated views); one
timepoint is off by 3 degrees and 15 um, a registration that went wrong but does not know it. Errors are measured
where they matter, at the corners of a 100 x 200 x 200 um VW00 volume, in isotropic voxels of 0.8125 um.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

VOXEL_UM = 0.8125
"""Isotropic voxel the errors are given in: twice the 0.40625 um lateral pixel."""
CENTRE_UM = np.array([50.0, 100.0, 100.0])
"""Centre (z, y, x) of the 100 x 200 x 200 um VW00 volume: the reference point of the smoothing."""
CORNERS_UM = CENTRE_UM + np.array(list(itertools.product((-50, 50), (-100, 100), (-100, 100))), dtype=float)
"""The volume's corners, where a rotation error displaces most."""
_NOMINAL = Rotation.from_rotvec([0.0, np.pi / 2, 0.0])
_CORRECTION_DEG = np.array([1.2, -0.8, 1.5])
_OFFSET_UM = np.array([12.0, -8.0, 15.0])


@dataclass(frozen=True)
class TransformSeries:
    """The truth and the estimates by timepoint (4 x 4 rigid, VW90 um -> VW00 um), and the corrupted timepoint."""

    truth: dict[int, np.ndarray]
    estimates: dict[int, np.ndarray]
    corrupted: int | None


def about_centre(transform: np.ndarray, rotvec_deg: np.ndarray, shift_um: np.ndarray) -> np.ndarray:
    """`transform` followed by a rotation about :data:`CENTRE_UM` and a shift: a registration error."""
    error = Rotation.from_rotvec(np.deg2rad(rotvec_deg)).as_matrix()
    out = transform.copy()
    out[:3, :3] = error @ transform[:3, :3]
    out[:3, 3] = error @ (transform[:3, 3] - CENTRE_UM) + CENTRE_UM + shift_um
    return out


def simulate_transform_series(timepoints: int = 30, *, corrupted: int | None = 13, seed: int = 0) -> TransformSeries:
    """The drifting truth, its noisy estimates and, at `corrupted`, an estimate 3 degrees and 15 um off (module docstring).

    Parameters
    ----------
    timepoints : int
        Length of the series.
    corrupted : int or None
        The timepoint whose estimate is wrong; None for none.
    seed : int
        Seed of the registration noise.

    Returns
    -------
    TransformSeries
        Truth and estimates, timepoints ``0 .. timepoints - 1``.
    """
    truth = {}
    for t in range(timepoints):
        progress = (1.0 - np.cos(np.pi * t / max(timepoints - 1, 1))) / 2.0  # 0 -> 1, smooth
        rotation = Rotation.from_rotvec(np.deg2rad(_CORRECTION_DEG + 0.5 * progress * np.array([0.6, -0.48, 0.64]))) * _NOMINAL
        transform = np.eye(4)
        transform[:3, :3], transform[:3, 3] = rotation.as_matrix(), _OFFSET_UM + 10.0 * progress * np.array([0.36, 0.48, 0.8])
        truth[t] = transform
    rng = np.random.default_rng(seed)
    per_axis = 1.0 / np.sqrt(3.0)
    estimates = {t: about_centre(m, rng.normal(0.0, 0.05 * per_axis, 3), rng.normal(0.0, 0.2 * per_axis, 3)) for t, m in truth.items()}
    if corrupted is not None:
        estimates[corrupted] = about_centre(estimates[corrupted], np.array([0.0, 3.0, 0.0]), np.array([9.0, 0.0, 12.0]))
    return TransformSeries(truth=truth, estimates=estimates, corrupted=corrupted)


def corner_error_voxels(applied: np.ndarray, truth: np.ndarray) -> float:
    """Largest displacement, over the volume's corners, of where VW90 is sampled for them (isotropic voxels)."""
    homogeneous = np.c_[CORNERS_UM, np.ones(len(CORNERS_UM))].T
    moved = np.linalg.solve(applied, homogeneous) - np.linalg.solve(truth, homogeneous)
    return float(np.linalg.norm(moved[:3], axis=0).max() / VOXEL_UM)
