"""The registration figure of a camera pair: the two cameras overlaid before and after registration (ALGORITHMS.md §5)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from isoview_core.diagnostics._style import (
    DPI,
    _as_plane,
    _composite,
    _contrast_limits,
    _new_figure,
    _save,
    _show,
    _text_panel,
)


def plot_registration(
    path: str | os.PathLike[str],
    reference: np.ndarray,
    moving_before: np.ndarray,
    moving_after: np.ndarray,
    *,
    offset_x_px: float,
    offset_y_px: float,
    rotation_deg: float,
    correlation: float,
    method: str,
    dpi: int = DPI,
) -> Path:
    """Draw ``registration.png``: the camera pair before and after registration (§3.7, §5).

    Parameters
    ----------
    path : str or os.PathLike
        PNG to write.
    reference : ndarray
        Reference camera, (Y, X) plane or (Z, Y, X) volume (its middle plane is shown).
    moving_before : ndarray
        Second camera in the reference orientation (flipped) but not yet transformed, same form.
    moving_after : ndarray
        Second camera transformed into the reference frame, same form.
    offset_x_px, offset_y_px : float
        Estimated translation, pixels.
    rotation_deg : float
        Estimated in-plane rotation, degrees.
    correlation : float
        Correlation of the registered pair (quality).
    method : str
        How the parameters were obtained (e.g. ``"adaptive_slab"``, ``"lookup table"``).
    dpi : int, optional
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        `path`.

    Notes
    -----
    2×3 grid: reference, moving before and after (the two moving panels share one contrast);
    magenta/green overlays (reference = magenta, moving = green, so aligned structures are
    white) before and after, each channel with its own contrast; the parameters. Planes of
    different shapes are overlaid on their common top-left extent.
    """
    reference, before, after = (_as_plane(image) for image in (reference, moving_before, moving_after))
    figure, grid = _new_figure("Camera-pair registration", (11.5, 8.5), (2, 3), dpi)
    moving_limits = _contrast_limits(before, after)
    _show(figure, grid[0, 0], reference, "reference", _contrast_limits(reference))
    _show(figure, grid[0, 1], before, "moving, before", moving_limits)
    _show(figure, grid[0, 2], after, "moving, after", moving_limits)
    _show(figure, grid[1, 0], _composite(reference, before, reference), "overlay before\nreference magenta, moving green")
    _show(figure, grid[1, 1], _composite(reference, after, reference), "overlay after\nreference magenta, moving green")
    _text_panel(
        figure,
        grid[1, 2],
        {
            "x offset": f"{offset_x_px:+.2f} px",
            "y offset": f"{offset_y_px:+.2f} px",
            "rotation": f"{rotation_deg:+.3f}°",
            "correlation": f"{correlation:.4f}",
            "method": method,
        },
    )
    return _save(figure, path)
