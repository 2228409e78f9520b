"""The look shared by every diagnostic figure: dark theme, contrast limits, image panels, atomic PNG output (ALGORITHMS.md §5).

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot state, so it is safe in
worker threads) and published atomically (a temporary sibling renamed into place), creating
missing parent folders. Grey values are shown between the 1 % and 99 % percentiles of the non-zero
pixels, so that masked (zero-background) data are not washed out by their background.
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

from isoview_core.formats.atomic import atomic_output

DPI = 150
"""Resolution of every diagnostic PNG (§5)."""

CONTRAST_PERCENTILES = (1.0, 99.0)
"""Grey-value display range, percentiles of the non-zero pixels."""

MAX_CONTRAST_SAMPLES = 1_000_000
"""At most about this many pixels per image enter a contrast percentile (evenly strided)."""

DISPLAY_PIXELS = 512
"""Longest side of an image panel's data: a larger plane is block-averaged down to it (a panel is 450-600 px wide at :data:`DPI`)."""

TEXT_PANEL_VALUE_WIDTH = 22
"""Characters of a parameter value per line in the text panels (longer values wrap)."""

FIGURE_BACKGROUND = "#0d1117"

AXES_BACKGROUND = "black"

FOREGROUND = "#d0d7de"

EDGE = "#6e7781"

REFERENCE_COLOUR = "#ff4fd8"  # magenta, as in the registration overlay

SECOND_COLOUR = "#3ddc84"  # green

ACCENT_COLOUR = "#58a6ff"


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
    _fix_layout(figure)
    with atomic_output(final, overwrite=True) as temporary:
        # zlib level 1: a quarter of the encoding time of the default 6, files ~15 % larger
        figure.savefig(temporary, format="png", dpi=dpi, facecolor=figure.get_facecolor(), pil_kwargs={"compress_level": 1})
    return final


def _fix_layout(figure: Figure) -> None:
    """Run the constrained layout once and freeze it: ``savefig`` would otherwise draw the figure twice."""
    engine = figure.get_layout_engine()
    if engine is not None:
        engine.execute(figure)
        figure._layout_engine = None  # savefig would run a second, layout-only draw for any engine


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


def display_plane(plane: np.ndarray, max_pixels: int = DISPLAY_PIXELS) -> np.ndarray:
    """`plane` block-averaged by the smallest integer factor that brings its longest side to <= `max_pixels`.

    Parameters
    ----------
    plane : ndarray
        (Y, X) image, any numeric dtype.
    max_pixels : int
        Longest side allowed.

    Returns
    -------
    ndarray
        `plane` itself when small enough, else its float32 block means (edge blocks cropped): what a
        figure panel can show, at a fraction of the drawing time and memory.
    """
    factor = -(-max(plane.shape) // max_pixels)
    if factor <= 1:
        return plane
    rows, cols = plane.shape[0] // factor, plane.shape[1] // factor
    blocks = np.asarray(plane[: rows * factor, : cols * factor], dtype=np.float32).reshape(rows, factor, cols, factor)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


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
