"""The look shared by every diagnostic figure: dark theme, contrast limits, image panels, atomic PNG output (ALGORITHMS.md §5).

Figures are drawn with matplotlib's object API on an Agg canvas (no pyplot state, so it is safe in
worker threads) and published atomically (a temporary sibling renamed into place), creating
missing parent folders. Grey values are shown between the 1 % and 99 % percentiles of the non-zero
pixels, so that masked (zero-background) data are not washed out by their background.

Drawing is kept cheap (the 12 figures of a timepoint of two 64 x 2048 x 2048 pairs, drawn from their
previews, took 5.4-6.1 CPU-s, 3.4-4.0 with what follows): panels sit in fixed margins (:class:`Margins`)
instead of a layout engine (1.7 CPU-s), panel titles at a fixed height (0.8 CPU-s searching the tick
labels under them), images are opaque uint8 RGBA (:func:`_rgba`; their data are already at display size; the
default Hanning resampling cost 0.7 CPU-s), log axes label their ticks without mathtext (0.4 CPU-s for the
parser), and the PNG is written by :func:`_png_bytes` (Sub filter, zlib-ng level 2: a sixth of Pillow's time,
files about as large). Image and text panels without ticks have no axes: the images are scaled once and drawn
1:1 in figure pixels (:func:`_show`), which took the ten figures of two such pairs (drawn again in a warm process)
from 2.1 to 1.55 CPU-s, the PNGs written from the RGBA canvas included (0.23 to 0.13 of it).
"""

from __future__ import annotations

import os
import struct
import textwrap
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import imagecodecs
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec, SubplotSpec
from matplotlib.patches import Rectangle
from matplotlib.ticker import LogFormatter, LogLocator
from matplotlib.transforms import offset_copy

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


@dataclass(frozen=True)
class Margins:
    """Space around and between the panels of a figure, inches: fixed, so that no layout engine runs at every save.

    The defaults fit a grid of image panels with two-line titles and no tick labels under a
    :func:`_new_figure` title; figures with tick labels, axis labels, colour bars or outside legends
    widen the sides they need.
    """

    left: float = 0.1
    right: float = 0.1
    bottom: float = 0.1
    top: float = 0.8
    wspace: float = 0.15
    hspace: float = 0.5


TITLE_INCHES = 0.08
"""Gap between the top of a figure and its title."""


def _new_figure(
    title: str, size: tuple[float, float], grid: tuple[int, int], dpi: int, margins: Margins = Margins(), **spacing: object
) -> tuple[Figure, GridSpec]:
    """A dark figure on its own Agg canvas (no pyplot state) and its (rows, cols) grid of panels placed in `margins`.

    `spacing` goes to :meth:`Figure.add_gridspec` (e.g. ``width_ratios``). Panels are image panels
    (:func:`_show`, :func:`_text_panel`: no axes) or axes (``figure.add_subplot(grid[r, c])``,
    ``grid.subplots(...)``) where ticks or plots are needed.
    """
    width, height = size
    rows, cols = grid
    figure = Figure(figsize=size, dpi=dpi, facecolor=FIGURE_BACKGROUND)
    FigureCanvasAgg(figure)
    figure.suptitle(title, color=FOREGROUND, fontsize=14, y=1 - TITLE_INCHES / height, va="top")
    inner_width = width - margins.left - margins.right
    inner_height = height - margins.top - margins.bottom
    placement = {
        "left": margins.left / width,
        "right": 1 - margins.right / width,
        "bottom": margins.bottom / height,
        "top": 1 - margins.top / height,
        # gridspec spaces are fractions of the mean panel width / height
        "wspace": margins.wspace * cols / (inner_width - (cols - 1) * margins.wspace),
        "hspace": margins.hspace * rows / (inner_height - (rows - 1) * margins.hspace),
    }
    return figure, figure.add_gridspec(rows, cols, **placement, **spacing)


def _title(axes: Axes, text: str, **style: object) -> None:
    """`text` above `axes` at a fixed height: the default search for tick labels above the axes runs at every draw."""
    axes.set_title(text, y=1.0, **style)


TITLE_PAD_POINTS = 6.0
"""Gap between a panel and its title (matplotlib's default ``axes.titlepad``)."""


def _panel_title(figure: Figure, x: float, top: float, text: str, fontsize: float) -> None:
    """`text` centred at `x` above the height `top` (figure fractions), as an axes title would be."""
    above = offset_copy(figure.transFigure, fig=figure, y=TITLE_PAD_POINTS, units="points")
    figure.text(x, top, text, transform=above, ha="center", va="bottom", ma="center", fontsize=fontsize, color=FOREGROUND)


def _log_scale(axes: Axes) -> None:
    """A log y axis labelled in plain numbers (1000, 1e4), minor ticks at 2 and 5 times the decades.

    The default mathtext labels build a parser (0.4 CPU-s), and minor ticks at every multiple make
    about 45 tick objects per axes (1 ms each).
    """
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(LogFormatter())
    axes.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    axes.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    """Apply the dark theme to every axes, draw and publish the PNG atomically."""
    for axes in figure.axes:
        axes.set_facecolor(AXES_BACKGROUND)
        axes.tick_params(colors=FOREGROUND, which="both", labelsize=9)
        for spine in axes.spines.values():
            spine.set_edgecolor(EDGE)
        for text in (axes.title, axes.xaxis.label, axes.yaxis.label, axes.xaxis.offsetText, axes.yaxis.offsetText):
            text.set_color(FOREGROUND)
    final = Path(path)
    figure.canvas.draw()
    encoded = _png_bytes(np.asarray(figure.canvas.buffer_rgba()))
    with atomic_output(final, overwrite=True) as temporary:
        Path(temporary).write_bytes(encoded)
    return final


def _png_bytes(image: np.ndarray) -> bytes:
    """`image`, (Y, X, 3 or 4) uint8, as an 8-bit RGB or RGBA PNG: every row Sub-filtered, deflated by zlib-ng at level 2.

    The figures are written from their (opaque) RGBA canvas as it is.
    On a 2550 x 1275 figure this took 20 ms for 1.05 MB, where an RGB PNG of the same canvas took 40 ms for the same
    size (copying its strided RGB bytes cost 15 ms; the constant alpha filters to zeros, which deflate to almost
    nothing), zlib at level 1 29 ms for the deflate alone, and Pillow (adaptive filters) 140 ms for 1.4 MB (level 1).
    """
    rows, cols, channels = image.shape
    flat = image.reshape(rows, cols * channels)
    filtered = np.empty((rows, cols * channels + 1), np.uint8)
    filtered[:, 0] = 1  # Sub: each byte minus the one a pixel to its left, modulo 256
    filtered[:, 1 : channels + 1] = flat[:, :channels]
    np.subtract(flat[:, channels:], flat[:, :-channels], out=filtered[:, channels + 1 :])

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    colour_type = {3: 2, 4: 6}[channels]  # truecolour, truecolour with alpha
    header = struct.pack(">IIBBBBB", cols, rows, 8, colour_type, 0, 0, 0)  # 8 bits, deflate, filtered rows, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", imagecodecs.zlibng_encode(filtered, level=2)) + chunk(b"IEND", b"")


def _legend(axes: Axes, **placement: object) -> None:
    """A dark legend of the labelled artists of `axes`."""
    axes.legend(facecolor=AXES_BACKGROUND, edgecolor=EDGE, labelcolor=FOREGROUND, fontsize=8, framealpha=0.85, **placement)


def _text_panel(figure: Figure, cell: SubplotSpec, entries: Mapping[str, str]) -> None:
    """Name/value lines in `cell`, titled "parameters", without axes; long values wrap onto indented lines."""
    width = max(len(name) for name in entries)
    lines = []
    for name, value in entries.items():
        wrapped = textwrap.wrap(value, TEXT_PANEL_VALUE_WIDTH) or [""]
        lines += [f"{name:<{width}}  {wrapped[0]}", *(f"{'':<{width}}  {more}" for more in wrapped[1:])]
    box = cell.get_position(figure)
    _panel_title(figure, (box.x0 + box.x1) / 2, box.y1, "parameters", fontsize=12)
    figure.text(
        box.x0 + 0.02 * box.width,
        box.y0 + 0.95 * box.height,
        "\n".join(lines),
        va="top",
        ha="left",
        family="monospace",
        fontsize=11,
        color=FOREGROUND,
        linespacing=1.7,
    )


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

    Notes
    -----
    Summed as `factor` strided columns, then `factor` strided rows: 3 ms for a 2048 x 2048 uint16
    plane, where a mean over the block axes of a (rows, factor, cols, factor) view took 20 ms (the
    fusion keeps about 15 planes of each pair).
    """
    factor = -(-max(plane.shape) // max_pixels)
    if factor <= 1:
        return plane
    rows, cols = plane.shape[0] // factor, plane.shape[1] // factor
    cropped = plane[: rows * factor, : cols * factor]
    column_sums = cropped[:, 0::factor].astype(np.float32)
    for offset in range(1, factor):
        column_sums += cropped[:, offset::factor]
    block_sums = column_sums[0::factor].copy()
    for offset in range(1, factor):
        block_sums += column_sums[offset::factor]
    block_sums *= np.float32(1 / factor**2)
    return block_sums


def _every(image: np.ndarray, step: int) -> np.ndarray:
    """Every `step`-th element of `image` flattened, gathered without copying a strided `image` first (a slab's every
    fourth plane: 18 ms instead of 250 ms)."""
    return np.asarray(image).flat[np.arange(0, np.size(image), step)]


def _nonzero_values(image: np.ndarray, step: int = 1) -> np.ndarray:
    """Every `step`-th pixel of `image` (flattened) as float64, without zeros and non-finite values."""
    values = _every(image, step).astype(np.float64)
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
    """(Y, X, 4) opaque RGBA image of three planes, each with its own contrast, on their common extent."""
    rows = min(channel.shape[0] for channel in (red, green, blue))
    cols = min(channel.shape[1] for channel in (red, green, blue))
    channels = [channel[:rows, :cols] for channel in (red, green, blue)]
    return _rgba(*(_normalise(channel, _contrast_limits(channel)) for channel in channels))


def _rgba(red: np.ndarray, green: np.ndarray, blue: np.ndarray) -> np.ndarray:
    """(Y, X, 4) uint8 opaque image of three [0, 1] planes.

    Matplotlib draws such an image without colour mapping or masking: 9 panels of 512 x 512 took
    0.11 s instead of 0.18 s as float data with a grey colour map.
    """
    rgba = np.full((*red.shape, 4), 255, np.uint8)
    for index, channel in enumerate((red, green, blue)):
        np.multiply(channel, 255, out=rgba[..., index], casting="unsafe")
    return rgba


def _as_plane(image: np.ndarray) -> np.ndarray:
    """`image` if (Y, X), its middle plane if (Z, Y, X)."""
    image = np.asarray(image)
    if image.ndim == 3:
        return image[image.shape[0] // 2]
    if image.ndim != 2:
        raise ValueError(f"expected a (Y, X) plane or a (Z, Y, X) volume, got shape {image.shape}")
    return image


def _panel_rgba(image: np.ndarray, limits: tuple[float, float] | None) -> np.ndarray:
    """`image` as an opaque RGBA image: grey between `limits` when (Y, X), as it is when (Y, X, 4) (:func:`_composite`)."""
    if image.ndim == 2:
        grey = _normalise(image, limits)
        return _rgba(grey, grey, grey)
    return image


def _fitted(image: np.ndarray, width: float, height: float) -> np.ndarray:
    """`image` scaled by nearest neighbour to the largest size that fits `width` x `height` pixels, aspect kept."""
    rows, cols = image.shape[:2]
    scale = min(width / cols, height / rows)
    fitted_rows, fitted_cols = max(1, int(rows * scale)), max(1, int(cols * scale))
    picked_rows = (np.arange(fitted_rows) + 0.5) * rows // fitted_rows
    picked_cols = (np.arange(fitted_cols) + 0.5) * cols // fitted_cols
    return image[picked_rows.astype(np.intp)][:, picked_cols.astype(np.intp)]


class _PixelImage(Artist):
    """An opaque (Y, X, 4) uint8 image drawn 1:1 with its bottom-left corner at figure pixel (`left`, `bottom`).

    The renderer's own image call, without the resampling, masking and colour handling of matplotlib's image
    artists: a 575 x 575 panel took 7-9 ms through ``Figure.figimage`` at magnification 1.
    """

    def __init__(self, rgba: np.ndarray, left: int, bottom: int) -> None:
        super().__init__()
        self._bottom_up = np.ascontiguousarray(rgba[::-1])  # the renderer's rows go up from `bottom`
        self._left, self._bottom = left, bottom

    def draw(self, renderer: RendererBase) -> None:
        context = renderer.new_gc()
        renderer.draw_image(context, self._left, self._bottom, self._bottom_up)
        context.restore()


def _show(figure: Figure, cell: SubplotSpec, image: np.ndarray, title: str, limits: tuple[float, float] | None = None) -> None:
    """An image panel in `cell`: :func:`_panel_rgba` of `image` at the largest size that fits, centred, framed and titled.

    Drawn in figure pixels without axes: creating, laying out and drawing an axes per image (its ticks
    included, even unshown) and resampling into it cost as much again as the rest of an image figure.
    """
    rgba = _panel_rgba(image, limits)
    box = cell.get_position(figure)
    figure_width, figure_height = figure.bbox.width, figure.bbox.height
    fitted = _fitted(rgba, box.width * figure_width, box.height * figure_height)
    rows, cols = fitted.shape[:2]
    left = round(box.x0 * figure_width + (box.width * figure_width - cols) / 2)
    bottom = round(box.y0 * figure_height + (box.height * figure_height - rows) / 2)
    figure.add_artist(_PixelImage(fitted, left, bottom))
    frame = (left / figure_width, bottom / figure_height), cols / figure_width, rows / figure_height
    figure.add_artist(Rectangle(*frame, transform=figure.transFigure, fill=False, edgecolor=EDGE, linewidth=0.8))
    _panel_title(figure, (left + cols / 2) / figure_width, (bottom + rows) / figure_height, title, fontsize=10)


def _show_in_axes(axes: Axes, image: np.ndarray, title: str, limits: tuple[float, float] | None = None) -> None:
    """:func:`_panel_rgba` of `image` in `axes` (for a panel with tick labels), without ticks until the caller sets some."""
    axes.imshow(_panel_rgba(image, limits), interpolation="nearest")
    _title(axes, title, fontsize=10)
    axes.set_xticks([])
    axes.set_yticks([])


def _views_row(images: Sequence[np.ndarray], label: str) -> list[tuple[np.ndarray, str]]:
    """View 1, view 2, fused (common contrast) and their RGB composite: four RGBA images with their titles."""
    limits = _contrast_limits(*images)
    shown = [(_panel_rgba(image, limits), f"{name}, {label}") for image, name in zip(images, ("view 1", "view 2", "fused"))]
    view1, view2, fused = images
    return [*shown, (_composite(view1, fused, view2), f"R view 1, G fused, B view 2\n{label}")]
