"""Figures of a fused pair: blending weights along the transition map, the fusion result and an overview of the fused volume (ALGORITHMS.md §5)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from isoview_core.diagnostics._style import (
    ACCENT_COLOUR,
    DPI,
    FOREGROUND,
    REFERENCE_COLOUR,
    SECOND_COLOUR,
    _contrast_limits,
    _legend,
    _new_figure,
    _save,
    _show,
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
    figure = _new_figure("Blending weights", (5.5 * panels, 5))
    axes = figure.subplots(1, panels, width_ratios=(1, 1.2, 0.9)[:panels])
    row = transition_map.shape[0] // 2
    _transition_map(figure, axes[0], transition_map, planes, row)
    _transition_profile(axes[1], transition_map[row], planes, blending_range, row)
    if front_weights_profile is not None:
        _front_weights(axes[2], np.asarray(front_weights_profile, dtype=np.float64))
    return _save(figure, path, dpi)


def plot_fusion_result(
    path: str | os.PathLike[str],
    view1: np.ndarray,
    view2: np.ndarray,
    fused: np.ndarray,
    *,
    dpi: int = DPI,
) -> Path:
    """Draw ``fusion_result.png``: both views and the fused volume, in a plane and along z (§5).

    Parameters
    ----------
    path : str or os.PathLike
        PNG to write.
    view1, view2 : ndarray
        (Z, Y, X) corrected reference and transformed second camera, as blended.
    fused : ndarray
        (Z, Y, X) fused volume.
    dpi : int, optional
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        `path`.

    Notes
    -----
    2×4 grid. Top: the middle plane of view 1, view 2 and the fused volume (one common contrast)
    and their RGB composite (R = view 1, G = fused, B = view 2, each with its own contrast).
    Bottom: the same for the xz maximum projections (max over columns, z horizontal), where each
    view is sharp on its own side of z and the fused volume on both.
    """
    volumes = [np.asarray(volume) for volume in (view1, view2, fused)]
    if any(volume.ndim != 3 for volume in volumes) or len({volume.shape for volume in volumes}) != 1:
        raise ValueError(f"views and fused volume must be (Z, Y, X) of one shape, got {[v.shape for v in volumes]}")
    middle = volumes[0].shape[0] // 2
    figure = _new_figure("Fusion result", (17, 8.5))
    axes = figure.subplots(2, 4)
    _views_row(axes[0], [volume[middle] for volume in volumes], f"plane {middle}")
    _views_row(axes[1], [volume.max(axis=2).T for volume in volumes], "xz max projection")
    for projection_axes in axes[1]:
        projection_axes.set_aspect("auto")
        projection_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        projection_axes.set_xlabel("z (plane)")
    axes[1, 0].set_ylabel("y (row)")
    return _save(figure, path, dpi)


def plot_fused_overview(path: str | os.PathLike[str], fused: np.ndarray, *, dpi: int = DPI) -> Path:
    """Draw ``fused_overview.png``: 9 evenly spaced planes of the fused volume (§5).

    Parameters
    ----------
    path : str or os.PathLike
        PNG to write.
    fused : array_like
        (Z, Y, X) fused volume; a lazy array (e.g. zarr) is fine: only the shown planes are read.
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
    if len(fused.shape) != 3:
        raise ValueError(f"fused volume must be (Z, Y, X), got shape {fused.shape}")
    depth, rows, cols = fused.shape
    indices = np.unique(np.linspace(0, depth - 1, OVERVIEW_PLANES).round().astype(int))
    planes = [np.asarray(fused[int(z)]) for z in indices]
    limits = _contrast_limits(*planes)
    height = float(np.clip(11 * rows / cols, 5, 16))
    figure = _new_figure(f"Fused volume: {depth} planes, {OVERVIEW_PLANES} shown", (11, height + 0.8))
    axes = figure.subplots(3, 3)
    for plane_axes, z, plane in zip(axes.flat, indices, planes):
        _show(plane_axes, plane, f"plane {z}", limits)
    for unused in axes.flat[len(planes) :]:
        unused.set_visible(False)
    return _save(figure, path, dpi)


def _transition_map(figure: Figure, axes: Axes, transition_map: np.ndarray, planes: int, row: int) -> None:
    """The map coloured by plane, excluded pixels transparent (black), the profile row marked."""
    image = axes.imshow(np.ma.masked_equal(transition_map, 0), cmap="viridis", vmin=1, vmax=max(planes, 2), interpolation="nearest")
    axes.axhline(row, color=FOREGROUND, linewidth=0.8, linestyle="--")
    colour_bar = figure.colorbar(image, ax=axes, shrink=0.9)
    colour_bar.set_label("transition plane (1-based)")
    axes.set_title("transition map (black = excluded)")
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
    axes.set_title(f"profile through row {row}")
    axes.set_xlabel("x (column)")
    axes.set_ylabel("plane (1-based)")
    _legend(axes, loc="upper right")


def _front_weights(axes: Axes, front: np.ndarray) -> None:
    """Front-view weight along a ray and the back view's complement."""
    planes = np.arange(1, front.size + 1)
    axes.plot(planes, front, color=REFERENCE_COLOUR, linewidth=1.5, label="front view")
    axes.plot(planes, 1.0 - front, color=SECOND_COLOUR, linewidth=1.5, label="back view")
    axes.set_ylim(-0.05, 1.05)
    axes.set_title("weights along the centre ray")
    axes.set_xlabel("plane (1-based)")
    axes.set_ylabel("weight")
    _legend(axes, loc="center right")
