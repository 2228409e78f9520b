"""Figures of a fused pair: blending weights along the transition map, the fusion result and an overview of the fused volume (ALGORITHMS.md §5)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from isoview_core.diagnostics._style import (
    ACCENT_COLOUR,
    DISPLAY_PIXELS,
    DPI,
    FOREGROUND,
    REFERENCE_COLOUR,
    SECOND_COLOUR,
    Margins,
    _contrast_limits,
    _legend,
    _new_figure,
    _save,
    _show,
    _show_in_axes,
    _title,
    _views_row,
)

OVERVIEW_PLANES = 9


def plot_blending_weights(
    path: str | os.PathLike[str],
    transition_map: np.ndarray,
    *,
    planes: int,
    blending_range: int,
    front_weights_profile: np.ndarray | None = None,
    dpi: int = DPI,
) -> Path:
    """Draw ``blending_weights.png``: the transition map and the blend zone around it (§3.6, §3.10, §5).

    Parameters
    ----------
    path : str or os.PathLike
        PNG to write.
    transition_map : ndarray
        (Y, X) final fusion mask: 1-based transition plane per pixel, 0 = excluded.
    planes : int
        Number of planes Z of the stacks.
    blending_range : int
        Blending range B (planes on each side of the transition).
    front_weights_profile : ndarray, optional
        (Z,) weight of the front view along one ray through the centre; drawn, with the back
        view's complementary weight, in a third panel.
    dpi : int, optional
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        `path`.

    Notes
    -----
    Plane numbers are 1-based, as in the map. The profile through the middle row is shaded over
    the planes that are blended, 1-based ``m - B + 1`` to ``m + B`` (the front view is used below
    the band, the back view above); excluded pixels (0) are black in the map and gaps in the
    profile.
    """
    transition_map = np.asarray(transition_map)
    if transition_map.ndim != 2:
        raise ValueError(f"transition map must be 2-D (Y, X), got shape {transition_map.shape}")
    panels = 2 if front_weights_profile is None else 3
    margins = Margins(left=0.75, right=0.2, bottom=0.6, top=0.75, wspace=0.85)
    figure, grid = _new_figure("Blending weights", (5.5 * panels, 5), (1, panels), dpi, margins, width_ratios=(1, 1.2, 0.9)[:panels])
    axes = grid.subplots(squeeze=False)[0]
    row = transition_map.shape[0] // 2
    _transition_map(figure, axes[0], transition_map, planes, row)
    _transition_profile(axes[1], transition_map[row], planes, blending_range, row)
    if front_weights_profile is not None:
        _front_weights(axes[2], np.asarray(front_weights_profile, dtype=np.float64))
    return _save(figure, path)


def plot_fusion_result(
    path: str | os.PathLike[str],
    planes: Sequence[np.ndarray],
    xz_projections: Sequence[np.ndarray],
    *,
    plane_index: int,
    dpi: int = DPI,
) -> Path:
    """Draw ``fusion_result.png``: both views and the fused volume, in a plane and along z (§5).

    Parameters
    ----------
    path : str or os.PathLike
        PNG to write.
    planes : sequence of 3 ndarray
        (Y, X) plane `plane_index` of the corrected reference, the transformed second camera (as
        blended) and the fused volume; any display size (:func:`display_plane`), one for all three.
    xz_projections : sequence of 3 ndarray
        (Y, Z) maximum projections over the columns of the same three volumes (:class:`MaxProjections`' ``xz``).
    plane_index : int
        Which plane `planes` are (0-based), for the titles.
    dpi : int, optional
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        `path`.

    Notes
    -----
    2×4 grid. Top: the planes of view 1, view 2 and the fused volume (one common contrast)
    and their RGB composite (R = view 1, G = fused, B = view 2, each with its own contrast).
    Bottom: the same for the xz maximum projections (max over columns, z horizontal), where each
    view is sharp on its own side of z and the fused volume on both.
    """
    planes = [np.asarray(plane) for plane in planes]
    projections = [np.asarray(projection) for projection in xz_projections]
    for images, form in ((planes, "(Y, X) planes"), (projections, "(Y, Z) projections")):
        if len(images) != 3 or any(image.ndim != 2 for image in images) or len({image.shape for image in images}) != 1:
            raise ValueError(f"expected three {form} of one shape, got {[image.shape for image in images]}")
    figure, grid = _new_figure("Fusion result", (17, 8.5), (2, 4), dpi, Margins(left=0.35, bottom=0.6))
    for column, (image, title) in enumerate(_views_row(planes, f"plane {plane_index}")):
        _show(figure, grid[0, column], image, title)
    for column, (image, title) in enumerate(_views_row(projections, "xz max projection")):
        projection_axes = figure.add_subplot(grid[1, column])
        _show_in_axes(projection_axes, image, title)
        projection_axes.set_aspect("auto")
        projection_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        projection_axes.set_xlabel("z (plane)")
        if column == 0:
            projection_axes.set_ylabel("y (row)")
    return _save(figure, path)


def overview_plane_indices(depth: int) -> list[int]:
    """The planes ``fused_overview.png`` shows: :data:`OVERVIEW_PLANES` evenly spaced, each at most once (0-based)."""
    if depth < 1:
        raise ValueError(f"a volume of {depth} planes has nothing to show")
    return [int(z) for z in np.unique(np.linspace(0, depth - 1, OVERVIEW_PLANES).round().astype(int))]


def plot_fused_overview(path: str | os.PathLike[str], planes: Mapping[int, np.ndarray], *, depth: int, dpi: int = DPI) -> Path:
    """Draw ``fused_overview.png``: 9 evenly spaced planes of the fused volume (§5).

    Parameters
    ----------
    path : str or os.PathLike
        PNG to write.
    planes : mapping of int to ndarray
        The (Y, X) planes :func:`overview_plane_indices` names, by index; any display size.
    depth : int
        Planes of the fused volume.
    dpi : int, optional
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        `path`.

    Notes
    -----
    3×3 grid with one common contrast; planes are numbered from 0. A volume of fewer than 9
    planes shows each plane once.
    """
    indices = overview_plane_indices(depth)
    if sorted(planes) != indices or any(np.ndim(planes[z]) != 2 for z in indices):
        raise ValueError(f"expected (Y, X) planes {indices} of a {depth}-plane volume, got {sorted(planes)}")
    shown = [np.asarray(planes[z]) for z in indices]
    rows, cols = shown[0].shape
    limits = _contrast_limits(*shown)
    height = float(np.clip(11 * rows / cols, 5, 16))
    figure, grid = _new_figure(f"Fused volume: {depth} planes, {len(indices)} shown", (11, height + 0.8), (3, 3), dpi, Margins(top=0.65, hspace=0.35))
    for index, (z, plane) in enumerate(zip(indices, shown)):
        _show(figure, grid[divmod(index, 3)], plane, f"plane {z}", limits)
    return _save(figure, path)


def _transition_map(figure: Figure, axes: Axes, transition_map: np.ndarray, planes: int, row: int) -> None:
    """The map coloured by plane (every n-th pixel down to the display size, in full-size coordinates), excluded pixels
    transparent (black), the profile row marked."""
    rows, cols = transition_map.shape
    step = -(-max(rows, cols) // DISPLAY_PIXELS)
    shown = np.ma.masked_equal(transition_map[::step, ::step], 0)
    extent = (-0.5, cols - 0.5, rows - 0.5, -0.5)
    image = axes.imshow(shown, cmap="viridis", vmin=1, vmax=max(planes, 2), interpolation="nearest", extent=extent)
    axes.axhline(row, color=FOREGROUND, linewidth=0.8, linestyle="--")
    colour_bar = figure.colorbar(image, ax=axes, shrink=0.9)
    colour_bar.set_label("transition plane (1-based)")
    _title(axes, "transition map (black = excluded)")
    axes.set_xlabel("x (column)")
    axes.set_ylabel("y (row)")


def _transition_profile(axes: Axes, profile: np.ndarray, planes: int, blending_range: int, row: int) -> None:
    """Transition plane along one row with the blended planes shaded; excluded pixels are gaps."""
    columns = np.arange(profile.size)
    transition = np.where(profile > 0, profile, np.nan).astype(np.float64)
    axes.fill_between(
        columns,
        transition - blending_range + 0.5,
        transition + blending_range + 0.5,
        step="mid",
        color=ACCENT_COLOUR,
        alpha=0.45,
        linewidth=0,
        label=f"blend zone (B = {blending_range} planes each side)",
    )
    axes.plot(columns, transition, drawstyle="steps-mid", color=FOREGROUND, linewidth=1.2, label="transition plane m")
    axes.text(0.02, 0.03, "front view", transform=axes.transAxes, color=FOREGROUND, fontsize=9)
    axes.text(0.02, 0.97, "back view", transform=axes.transAxes, color=FOREGROUND, fontsize=9, va="top")
    axes.set_xlim(-0.5, max(profile.size - 0.5, 0.5))
    axes.set_ylim(0.5, planes + 0.5)
    _title(axes, f"profile through row {row}")
    axes.set_xlabel("x (column)")
    axes.set_ylabel("plane (1-based)")
    _legend(axes, loc="upper right")


def _front_weights(axes: Axes, front: np.ndarray) -> None:
    """Front-view weight along a ray and the back view's complement."""
    planes = np.arange(1, front.size + 1)
    axes.plot(planes, front, color=REFERENCE_COLOUR, linewidth=1.5, label="front view")
    axes.plot(planes, 1.0 - front, color=SECOND_COLOUR, linewidth=1.5, label="back view")
    axes.set_ylim(-0.05, 1.05)
    _title(axes, "weights along the centre ray")
    axes.set_xlabel("plane (1-based)")
    axes.set_ylabel("weight")
    _legend(axes, loc="center right")
