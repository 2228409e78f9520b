"""Diagnostic figures of camera-pair fusion and of its parameters over time (ALGORITHMS.md §5).

One PNG per figure, for every fused camera pair and timepoint (registration, intensity
correction, blending weights, fusion result, fused overview) or per acquisition (parameters
over time). Every function takes arrays in (Z, Y, X) or (Y, X) order, uint16 or float, and small
plain values; it draws with matplotlib's object API on an Agg canvas (no pyplot state, so it is
safe in worker threads), in a dark theme, and publishes the file atomically (a temporary sibling
renamed into place), creating missing parent folders.

Grey values are shown between the 1 % and 99 % percentiles of the non-zero pixels, so that masked
(zero-background) data are not washed out by their background.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from isoview_core.formats.atomic import atomic_output

__all__ = [
    "DPI",
    "plot_blending_weights",
    "plot_fused_overview",
    "plot_fusion_result",
    "plot_intensity_correction",
    "plot_parameters_over_time",
    "plot_registration",
]

DPI = 150
"""Resolution of every diagnostic PNG (§5)."""

CONTRAST_PERCENTILES = (1.0, 99.0)
"""Grey-value display range, percentiles of the non-zero pixels."""

HISTOGRAM_STEP = 100
"""Every this many voxels enter the intensity histograms (§5)."""

HISTOGRAM_UPPER_PERCENTILE = 99.5
"""The histograms' x range ends at this percentile of the reference camera's samples."""

HISTOGRAM_BINS = 120

MAX_CONTRAST_SAMPLES = 1_000_000
"""At most about this many pixels per image enter a contrast percentile (evenly strided)."""

OVERVIEW_PLANES = 9

TEXT_PANEL_VALUE_WIDTH = 22
"""Characters of a parameter value per line in the text panels (longer values wrap)."""

FIGURE_BACKGROUND = "#0d1117"
AXES_BACKGROUND = "black"
FOREGROUND = "#d0d7de"
EDGE = "#6e7781"
REFERENCE_COLOUR = "#ff4fd8"  # magenta, as in the registration overlay
SECOND_COLOUR = "#3ddc84"  # green
ACCENT_COLOUR = "#58a6ff"

PARAMETER_LABELS = {
    "offset_x_px": "x offset (px)",
    "offset_y_px": "y offset (px)",
    "rotation_deg": "rotation (°)",
    "intensity_ratio": "intensity ratio ρ\n(× second camera)",
    "transition_z": "transition plane",
}
"""Axis labels of the parameters of :func:`plot_parameters_over_time`; other keys show as named."""


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
    figure = _new_figure("Camera-pair registration", (11.5, 8.5))
    axes = figure.subplots(2, 3)
    moving_limits = _contrast_limits(before, after)
    _show(axes[0, 0], reference, "reference", _contrast_limits(reference))
    _show(axes[0, 1], before, "moving, before", moving_limits)
    _show(axes[0, 2], after, "moving, after", moving_limits)
    _show(axes[1, 0], _composite(reference, before, reference), "overlay before\nreference magenta, moving green")
    _show(axes[1, 1], _composite(reference, after, reference), "overlay after\nreference magenta, moving green")
    _text_panel(
        axes[1, 2],
        {
            "x offset": f"{offset_x_px:+.2f} px",
            "y offset": f"{offset_y_px:+.2f} px",
            "rotation": f"{rotation_deg:+.3f}°",
            "correlation": f"{correlation:.4f}",
            "method": method,
        },
    )
    return _save(figure, path, dpi)


def plot_intensity_correction(
    path: str | os.PathLike[str],
    reference: np.ndarray,
    second_before: np.ndarray,
    second_after: np.ndarray,
    *,
    intensity_ratio: float,
    background_reference: float,
    background_second: float,
    method: str,
    dpi: int = DPI,
) -> Path:
    """Draw ``intensity_correction.png``: intensity histograms of the pair before and after (§3.9, §5).

    Parameters
    ----------
    path : str or os.PathLike
        PNG to write.
    reference : ndarray
        Reference camera, any shape (typically the (Z, Y, X) volume).
    second_before, second_after : ndarray
        Second camera before and after intensity correction, any shape.
    intensity_ratio : float
        Signed single-number correction ρ: the multiplier applied to the second camera.
    background_reference, background_second : float
        Backgrounds subtracted from the two cameras (ADU).
    method : str
        How the ratio was obtained (e.g. ``"estimated"``, ``"fixed"``, ``"lookup table"``).
    dpi : int, optional
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        `path`.

    Notes
    -----
    Histograms of every 100th voxel with the zeros (masked background) left out; the x range
    ends at the 99.5 % percentile of the reference's samples, counts are on a log scale.
    """
    reference_values, before_values, after_values = (_nonzero_values(volume, HISTOGRAM_STEP) for volume in (reference, second_before, second_after))
    upper = float(np.percentile(reference_values, HISTOGRAM_UPPER_PERCENTILE)) if reference_values.size else 0.0
    bins = np.linspace(0.0, max(upper, 1.0), HISTOGRAM_BINS + 1)
    figure = _new_figure("Intensity correction between the cameras", (15, 5))
    axes = figure.subplots(1, 3, width_ratios=(1, 1, 0.7))
    _histograms(axes[0], bins, {"reference": reference_values, "second, before": before_values}, "before correction")
    _histograms(axes[1], bins, {"reference": reference_values, "second, after": after_values}, "after correction")
    _text_panel(
        axes[2],
        {
            "ratio ρ": f"{intensity_ratio:.4f} (× second)",
            "background ref.": f"{background_reference:.1f} ADU",
            "background 2nd": f"{background_second:.1f} ADU",
            "method": method,
        },
    )
    return _save(figure, path, dpi)


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


def plot_parameters_over_time(
    path: str | os.PathLike[str],
    timepoints: Sequence[int],
    estimated: Mapping[str, Sequence[float | None]],
    applied: Mapping[str, Sequence[float]],
    *,
    title: str,
    dpi: int = DPI,
) -> Path:
    """Draw the per-acquisition parameter figure: estimated vs applied parameters over time (§4, §5).

    Parameters
    ----------
    path : str or os.PathLike
        PNG to write.
    timepoints : sequence of int
        Timepoint of every sample.
    estimated : mapping of str to sequence of float or None
        Per parameter (e.g. ``offset_x_px``, ``offset_y_px``, ``rotation_deg``,
        ``intensity_ratio``, ``transition_z``), the raw estimate at every timepoint, None where
        none was made (drawn as a gap).
    applied : mapping of str to sequence of float
        Per parameter, the value used for fusion (e.g. the smoothed lookup table).
    title : str
        Figure title (e.g. ``"SPM00 CM00/CM01"``).
    dpi : int, optional
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        `path`.

    Raises
    ------
    ValueError
        No parameter given, or a series whose length differs from `timepoints`.

    Notes
    -----
    One row per parameter (estimated ones first), sharing the time axis: estimates as markers
    (their legend entry counts the missing ones), applied values as a line. Marker size shrinks
    with the number of timepoints, so 5 and 5000 timepoints both stay readable.
    """
    names = list(dict.fromkeys([*estimated, *applied]))
    if not names:
        raise ValueError("no parameter to plot: `estimated` and `applied` are both empty")
    times = np.asarray(timepoints, dtype=np.float64)
    figure = _new_figure(title, (12, 1.3 + 2.1 * len(names)))
    axes = figure.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    marker_size = float(np.clip(40 / np.sqrt(max(times.size, 1)), 1.0, 5.0))
    for parameter_axes, name in zip(axes, names):
        if name in applied:
            parameter_axes.plot(times, _series(applied[name], times, name), color=ACCENT_COLOUR, linewidth=1.4, label="applied")
        if name in estimated:
            values = _series(estimated[name], times, name)
            missing = int(np.isnan(values).sum())
            label = f"estimated ({missing} missing)" if missing else "estimated"
            parameter_axes.plot(
                times, values, linestyle="none", marker="o", markersize=marker_size, markeredgewidth=0, color=SECOND_COLOUR, alpha=0.8, label=label, zorder=3
            )
        parameter_axes.set_ylabel(PARAMETER_LABELS.get(name, name.replace("_", " ")))
        parameter_axes.grid(color=EDGE, alpha=0.35, linewidth=0.5)
        _legend(parameter_axes, loc="upper left", bbox_to_anchor=(1.01, 1.0), markerscale=5.0 / marker_size)
    axes[-1].set_xlabel("timepoint")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(figure, path, dpi)


# --- figure setup and output ------------------------------------------------------------------


def _new_figure(title: str, size: tuple[float, float]) -> Figure:
    """A dark, constrained-layout figure on its own Agg canvas (no pyplot state)."""
    figure = Figure(figsize=size, facecolor=FIGURE_BACKGROUND, layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, color=FOREGROUND, fontsize=14)
    return figure


def _save(figure: Figure, path: str | os.PathLike[str], dpi: int) -> Path:
    """Apply the dark theme to every axes and publish the PNG atomically."""
    for axes in figure.axes:
        axes.set_facecolor(AXES_BACKGROUND)
        axes.tick_params(colors=FOREGROUND, which="both", labelsize=9)
        for spine in axes.spines.values():
            spine.set_edgecolor(EDGE)
        for text in (axes.title, axes.xaxis.label, axes.yaxis.label, axes.xaxis.offsetText, axes.yaxis.offsetText):
            text.set_color(FOREGROUND)
    final = Path(path)
    with atomic_output(final, overwrite=True) as temporary:
        # zlib level 1: a quarter of the encoding time of the default 6, files ~15 % larger
        figure.savefig(temporary, format="png", dpi=dpi, facecolor=figure.get_facecolor(), pil_kwargs={"compress_level": 1})
    return final


def _legend(axes: Axes, **placement: object) -> None:
    """A dark legend of the labelled artists of `axes`."""
    axes.legend(facecolor=AXES_BACKGROUND, edgecolor=EDGE, labelcolor=FOREGROUND, fontsize=8, framealpha=0.85, **placement)


def _text_panel(axes: Axes, entries: Mapping[str, str]) -> None:
    """Name/value lines in an axes without frame; long values wrap onto indented lines."""
    width = max(len(name) for name in entries)
    lines = []
    for name, value in entries.items():
        wrapped = textwrap.wrap(value, TEXT_PANEL_VALUE_WIDTH) or [""]
        lines += [f"{name:<{width}}  {wrapped[0]}", *(f"{'':<{width}}  {more}" for more in wrapped[1:])]
    text = "\n".join(lines)
    axes.axis("off")
    axes.set_title("parameters")
    axes.text(0.02, 0.95, text, transform=axes.transAxes, va="top", ha="left", family="monospace", fontsize=11, color=FOREGROUND, linespacing=1.7)


# --- images -------------------------------------------------------------------------------------


def _nonzero_values(image: np.ndarray, step: int = 1) -> np.ndarray:
    """Every `step`-th pixel of `image` (flattened) as float64, without zeros and non-finite values."""
    values = np.ravel(image)[::step].astype(np.float64)
    return values[np.isfinite(values) & (values != 0)]


def _contrast_limits(*images: np.ndarray) -> tuple[float, float]:
    """1-99 % percentiles of the non-zero pixels of `images` together; (0, 1) when there are none."""
    values = np.concatenate([_nonzero_values(image, max(1, np.size(image) // MAX_CONTRAST_SAMPLES)) for image in images])
    if values.size == 0:
        return 0.0, 1.0
    low, high = (float(limit) for limit in np.percentile(values, CONTRAST_PERCENTILES))
    return (low, high) if high > low else (low - 0.5, low + 0.5)


def _normalise(image: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    """`image` mapped linearly from `limits` to [0, 1], clipped, float32."""
    low, high = limits
    return np.clip((np.asarray(image, dtype=np.float32) - low) / (high - low), 0.0, 1.0)


def _composite(red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> np.ndarray:
    """(Y, X, 3) RGB image of three planes, each with its own contrast, on their common extent."""
    rows = min(channel.shape[0] for channel in (red, green, blue))
    cols = min(channel.shape[1] for channel in (red, green, blue))
    channels = [channel[:rows, :cols] for channel in (red, green, blue)]
    return np.stack([_normalise(channel, _contrast_limits(channel)) for channel in channels], axis=-1)


def _as_plane(image: np.ndarray) -> np.ndarray:
    """`image` if (Y, X), its middle plane if (Z, Y, X)."""
    image = np.asarray(image)
    if image.ndim == 3:
        return image[image.shape[0] // 2]
    if image.ndim != 2:
        raise ValueError(f"expected a (Y, X) plane or a (Z, Y, X) volume, got shape {image.shape}")
    return image


def _show(axes: Axes, image: np.ndarray, title: str, limits: tuple[float, float] | None = None) -> None:
    """An image without ticks: grey between `limits`, or RGB when `image` is (Y, X, 3)."""
    if image.ndim == 3:
        axes.imshow(image, interpolation="auto")
    else:
        axes.imshow(image, cmap="gray", vmin=limits[0], vmax=limits[1], interpolation="auto")
    axes.set_title(title, fontsize=10)
    axes.set_xticks([])
    axes.set_yticks([])


def _views_row(axes: Sequence[Axes], images: Sequence[np.ndarray], label: str) -> None:
    """View 1, view 2, fused (common contrast) and their RGB composite in four axes."""
    limits = _contrast_limits(*images)
    for image_axes, image, name in zip(axes, images, ("view 1", "view 2", "fused")):
        _show(image_axes, image, f"{name}, {label}", limits)
    view1, view2, fused = images
    _show(axes[3], _composite(view1, fused, view2), f"R view 1, G fused, B view 2\n{label}")


# --- histograms and profiles --------------------------------------------------------------------


def _histograms(axes: Axes, bins: np.ndarray, samples: Mapping[str, np.ndarray], title: str) -> None:
    """Step histograms of the reference (magenta) and the second camera (green), log counts."""
    counted = False
    for (name, values), colour in zip(samples.items(), (REFERENCE_COLOUR, SECOND_COLOUR)):
        counts, _ = np.histogram(values, bins)
        axes.stairs(counts, bins, color=colour, linewidth=1.3, label=f"{name} (n = {values.size:,})")
        counted |= bool(counts.any())
    if counted:
        axes.set_yscale("log")
    else:
        axes.text(0.5, 0.5, "no non-zero voxels", transform=axes.transAxes, ha="center", color=FOREGROUND)
    axes.set_xlim(bins[0], bins[-1])
    axes.set_title(title)
    axes.set_xlabel("intensity (ADU)")
    axes.set_ylabel(f"voxels (every {HISTOGRAM_STEP}th)")
    _legend(axes, loc="upper right")


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


def _series(values: Sequence[float | None], times: np.ndarray, name: str) -> np.ndarray:
    """`values` as float64 with None as NaN, checked against the number of timepoints."""
    series = np.array([np.nan if value is None else value for value in values], dtype=np.float64)
    if series.shape != times.shape:
        raise ValueError(f"{name}: {series.size} values for {times.size} timepoints")
    return series
