"""The isotropic volume's figure: the three orthogonal maximum projections of each view and of the volume (issue 16)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from isoview_core.diagnostics._style import DPI, _contrast_limits, _new_figure, _save, _show

PROJECTION_NAMES = ("xy (max over z)", "xz (max over y)", "yz (max over x)")
"""Columns of :func:`plot_isotropic_projections`, in the order of the projections it takes."""


def plot_isotropic_projections(
    path: str | os.PathLike[str], projections: Mapping[str, Sequence[np.ndarray]], *, title: str, dpi: int = DPI
) -> Path:
    """Draw the projections figure: one row per volume (e.g. VW00 and VW90 on the isotropic grid, then the fusion).

    Parameters
    ----------
    path : str or os.PathLike
        PNG to write.
    projections : mapping of str to sequence of 3 ndarray
        Per row name, the maximum projections of a (z, y, x) volume on the isotropic grid over z, y and x:
        (Y, X), (Z, X) and (Z, Y). Every row on the same grid, so that an isotropic volume looks alike in every column.
    title : str
        Figure title.
    dpi : int, optional
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        `path`.

    Raises
    ------
    ValueError
        No row, or a row without three 2D projections.

    Notes
    -----
    Each view is sharp across its own detection axis only: VW00 blurred along z (the xz and yz columns), VW90 along x
    (the xy and xz columns); the fused volume should be sharp in all three. One contrast per column, from all rows.
    """
    rows = {name: [np.asarray(image) for image in images] for name, images in projections.items()}
    if not rows or any(len(images) != 3 or any(image.ndim != 2 for image in images) for images in rows.values()):
        raise ValueError(f"expected three 2D projections per row, got {({name: [i.shape for i in images] for name, images in rows.items()})}")
    figure, grid = _new_figure(title, (15, 4.6 * len(rows)), (len(rows), 3), dpi)
    for column, projection_name in enumerate(PROJECTION_NAMES):
        limits = _contrast_limits(*(images[column] for images in rows.values()))
        for row, (name, images) in enumerate(rows.items()):
            _show(figure, grid[row, column], images[column], f"{name}: {projection_name}", limits)
    return _save(figure, path)
