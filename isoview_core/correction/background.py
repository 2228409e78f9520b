"""Camera background: the dark frame ``Background_<k>.tif`` or an estimate from the stack (§1.5, §2.3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from isoview_core.errors import IsoviewError
from isoview_core.numerics.percentiles import hazen_percentile


def read_background_frame(path: Path) -> np.ndarray:
    """Read a camera dark frame as a 2-D uint16 image (a 3-D file gives its max projection over axis 0).

    Raises
    ------
    IsoviewError
        When the file cannot be read or is not an image; the message names the file.
    """
    try:
        frame = tifffile.imread(path)
    except Exception as error:  # tifffile raises many types for broken files
        raise IsoviewError(f"{path}: unreadable background TIFF ({error})") from error
    if frame.ndim == 3:
        frame = frame.max(axis=0)
    if frame.ndim != 2:
        raise IsoviewError(f"{path}: background TIFF must be a 2-D image, got shape {frame.shape}")
    return frame.astype(np.uint16, copy=False)


def scalar_background(frame: np.ndarray, percentile: float = 3.0) -> float:
    """The original's scalar camera background: a low percentile (MATLAB rule) of the dark frame."""
    return hazen_percentile(frame, percentile)


def check_frame_shape(frame: np.ndarray, plane_shape: tuple[int, int], path: Path | None) -> None:
    """Raise a clear error when a dark frame does not match the stack's planes."""
    if frame.shape != tuple(plane_shape):
        raise IsoviewError(
            f"{path or 'background frame'}: shape {frame.shape[0]}x{frame.shape[1]} does not match "
            f"the camera planes {plane_shape[0]}x{plane_shape[1]}"
        )
