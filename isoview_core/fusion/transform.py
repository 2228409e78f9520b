"""The rigid in-plane transform of the second camera of a pair (ALGORITHMS.md §3.7 "Applying the transform").

Orientation and crop come first, in :mod:`isoview_core.fusion.orientation`.

* :func:`transform_plane` / :func:`transform_volume` apply the registration result to every plane
  with backward mapping about the plane centre, Keys cubic convolution (a = -0.5, edge-clamped
  samples) or nearest-neighbour sampling, and zero outside the frame.

Speed (one core, float64 arithmetic, rounded once). A pure translation (θ = 0) is separable: two
1-D four-tap passes over blocks of 32 rows that stay in cache (``scipy.ndimage.correlate1d``
along the rows, shifted slices across them), about 25 ms for a 2048 x 2048 plane; an integer
shift or nearest-neighbour sampling is a gather (about 12 ms). A rotation needs the 16 samples of
every output pixel: per block, each pixel's 4 x 4 window is moved inside the frame once (the
weights of edge-clamped samples folded onto the edge sample), then every plane is gathered
from 16 shifted views with one index array, about 150 ms per 2048 x 2048 plane of a volume
(210 ms for a single plane, whose window geometry is not shared).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from scipy import ndimage

__all__ = [
    "Interpolation",
    "keys_cubic_weights",
    "transform_plane",
    "transform_volume",
]

Interpolation = Literal["cubic", "nearest"]

_BLOCK_PIXELS = 1 << 16
"""Output pixels per block (about 64k: every float64 temporary is 512 KiB and stays in cache)."""


def keys_cubic_weights(fraction: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keys cubic-convolution weights (a = -0.5, Catmull-Rom) of samples ``⌊s⌋-1 .. ⌊s⌋+2``.

    Parameters
    ----------
    fraction : ndarray or float
        ``d = s - ⌊s⌋`` in [0, 1).

    Returns
    -------
    tuple of ndarray
        ``½(-d + 2d² - d³)``, ``½(2 - 5d² + 3d³)``, ``½(d + 4d² - 3d³)``, ``½(-d² + d³)``;
        they sum to 1 and reproduce quadratics.

    References
    ----------
    .. [1] Keys, R. (1981). Cubic convolution interpolation for digital image processing. IEEE
       Transactions on Acoustics, Speech, and Signal Processing 29(6), 1153-1160.
    """
    d = np.asarray(fraction, dtype=np.float64)
    d2 = d * d
    return (
        0.5 * d * (-1.0 + d * (2.0 - d)),
        0.5 * (2.0 + d2 * (-5.0 + 3.0 * d)),
        0.5 * d * (1.0 + d * (4.0 - 3.0 * d)),
        0.5 * d2 * (d - 1.0),
    )


def transform_plane(
    plane: np.ndarray,
    offset_y_px: float,
    offset_x_px: float,
    rotation_deg: float = 0.0,
    *,
    order: Interpolation = "cubic",
    outside: float | None = 0.0,
) -> np.ndarray:
    """Rigid in-plane transform of one (Y, X) plane, as the original applies it to camera 2 (§3.7).

    Backward mapping about the plane centre ``(c_r, c_c) = ((H - 1)/2, (W - 1)/2)``: output pixel
    ``(r, c)`` samples the input at::

        r_src =  cos θ (r - c_r) + sin θ (c - c_c) + c_r - offset_y_px
        c_src = -sin θ (r - c_r) + cos θ (c - c_c) + c_c - offset_x_px

    so for θ = 0, ``out(r, c) = plane(r - offset_y_px, c - offset_x_px)``: a positive offset moves
    the content towards higher indices.

    Parameters
    ----------
    plane : ndarray
        (Y, X) image; any real dtype (bool for nearest only).
    offset_y_px, offset_x_px : float
        Row and column offsets (``offset_rows``, ``offset_cols`` of the spec; the original's
        ``bestXOffset``, ``bestYOffset``).
    rotation_deg : float
        θ in degrees.
    order : {"cubic", "nearest"}
        ``cubic``: Keys cubic convolution, a = -0.5, separable in rows and columns, sample indices
        clamped to the frame. ``nearest``: index ``⌊s + 0.5⌋`` clamped (masks, label maps).
    outside : float or None
        Value of output pixels whose source lies outside ``[0, H-1] x [0, W-1]`` (0 in the
        original's transform); None keeps their clamped-edge interpolation (the original's
        registration cost function).

    Returns
    -------
    ndarray
        Same shape and dtype. Integer images are rounded half away from zero and saturated to
        their range (``to_u16`` for uint16); floating images keep their dtype.

    Raises
    ------
    ValueError
        If ``plane`` is not 2-D, ``order`` is unknown, or cubic interpolation is asked of a bool
        image.

    References
    ----------
    .. [1] Keys, R. (1981). Cubic convolution interpolation for digital image processing. IEEE
       Transactions on Acoustics, Speech, and Signal Processing 29(6), 1153-1160.
    """
    plane = np.asarray(plane)
    if plane.ndim != 2:
        raise ValueError(f"expected a (Y, X) plane, got shape {plane.shape}")
    return transform_volume(
        plane[np.newaxis], offset_y_px, offset_x_px, rotation_deg, order=order, outside=outside
    )[0]


def transform_volume(
    volume: np.ndarray,
    offset_y_px: float,
    offset_x_px: float,
    rotation_deg: float = 0.0,
    *,
    order: Interpolation = "cubic",
    outside: float | None = 0.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Apply the same rigid in-plane transform to every plane of a (Z, Y, X) stack (§3.7).

    See :func:`transform_plane` for the mapping, the interpolation and the rounding. The sampling
    geometry is computed once and reused for every plane.

    Parameters
    ----------
    volume : ndarray
        (Z, Y, X) stack (camera 2, oriented); any strides, so the flipped view of
        :func:`~isoview_core.fusion.orientation.orient_second_camera` with ``copy=False`` is read in place.
    offset_y_px, offset_x_px : float
        Row and column offsets in pixels.
    rotation_deg : float
        θ in degrees.
    order : {"cubic", "nearest"}
        Interpolation.
    outside : float or None
        Value outside the frame; None keeps the clamped-edge values.
    out : ndarray, optional
        Destination of ``volume``'s shape and dtype (must not share memory with ``volume``).

    Returns
    -------
    ndarray
        The transformed stack (``out`` when given).

    Raises
    ------
    ValueError
        On a non-3-D volume, a wrong ``out``, an unknown ``order``, non-finite parameters, or
        cubic interpolation of a bool stack.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"expected a (Z, Y, X) stack, got shape {volume.shape}")
    if order not in ("cubic", "nearest"):
        raise ValueError(f"order must be 'cubic' or 'nearest', got {order!r}")
    if order == "cubic" and volume.dtype == np.bool_:
        raise ValueError("cubic interpolation of a bool stack; use order='nearest' for masks")
    if not all(math.isfinite(v) for v in (offset_y_px, offset_x_px, rotation_deg)):
        raise ValueError(f"non-finite transform ({offset_y_px}, {offset_x_px}, {rotation_deg})")
    if out is None:
        out = np.empty_like(volume)
    elif out.shape != volume.shape or out.dtype != volume.dtype:
        raise ValueError(f"out has shape {out.shape} / {out.dtype}, expected {volume.shape} / {volume.dtype}")
    elif np.shares_memory(out, volume):
        raise ValueError("out must not share memory with the input stack")
    if volume.size == 0:
        return out
    theta = math.radians(rotation_deg)
    rotated = not (math.sin(theta) == 0.0 and math.cos(theta) == 1.0)
    if rotated and order == "cubic" and min(volume.shape[1:]) < 4:
        raise ValueError(f"cubic rotation needs planes of at least 4 x 4 pixels, got {volume.shape[1:]}")
    if not rotated:
        for index in range(volume.shape[0]):
            _translate_plane(volume[index], offset_y_px, offset_x_px, order, outside, out[index])
    else:
        _rotate_volume(volume, offset_y_px, offset_x_px, theta, order, outside, out)
    return out


# --------------------------------------------------------------------------------------------
# output conversion


def _store(values: np.ndarray, destination: np.ndarray) -> None:
    """Write float64 ``values`` into ``destination``: integers rounded half away and saturated."""
    if np.issubdtype(destination.dtype, np.floating):
        destination[...] = values
        return
    if destination.dtype == np.bool_:
        destination[...] = values != 0
        return
    info = np.iinfo(destination.dtype)
    if info.min == 0:  # round half away == floor(v + 0.5) for v >= 0; truncation does the floor
        np.clip(values, 0.0, float(info.max), out=values)
        values += 0.5
        np.copyto(destination, values, casting="unsafe")
    else:
        rounded = np.sign(values) * np.floor(np.abs(values) + 0.5)
        np.copyto(destination, np.clip(rounded, info.min, info.max), casting="unsafe")


# --------------------------------------------------------------------------------------------
# θ = 0: separable translation


def _axis_sampling(length: int, offset: float, clamped: bool) -> tuple[int, int, int, float]:
    """Output range ``[start, stop)``, integer shift ``n`` and fraction ``d`` of ``s = i - offset = i + n + d``.

    ``[start, stop)`` are the outputs whose source lies in ``[0, length - 1]`` (all of them when
    ``clamped``).
    """
    shift = math.floor(-offset)
    fraction = -offset - shift
    if clamped:
        return 0, length, shift, fraction
    start = max(0, -shift)
    stop = min(length, length - shift - (1 if fraction > 0 else 0))
    return start, max(start, stop), shift, fraction


def _translate_plane(
    plane: np.ndarray, offset_rows: float, offset_cols: float, order: Interpolation, outside: float | None, out: np.ndarray
) -> None:
    """θ = 0: out(r, c) = plane(r - offset_rows, c - offset_cols), one 1-D pass per axis.

    Columns first (on the source rows, in their own dtype, read in place: ``plane`` may be a
    flipped view), then rows on contiguous float64 rows.
    """
    height, width = plane.shape
    clamped = outside is None
    r0, r1, row_shift, row_fraction = _axis_sampling(height, offset_rows, clamped)
    c0, c1, col_shift, col_fraction = _axis_sampling(width, offset_cols, clamped)
    if not clamped:
        _fill_outside(out, (r0, r1), (c0, c1), outside)
    if r1 <= r0 or c1 <= c0:
        return
    if order == "nearest":
        rows = np.clip(np.arange(r0, r1) + row_shift + (1 if row_fraction >= 0.5 else 0), 0, height - 1)
        cols = np.clip(np.arange(c0, c1) + col_shift + (1 if col_fraction >= 0.5 else 0), 0, width - 1)
        out[r0:r1, c0:c1] = plane[np.ix_(rows, cols)]
        return
    if row_fraction == 0.0 and col_fraction == 0.0:  # exact integer shift
        rows = np.clip(np.arange(r0, r1) + row_shift, 0, height - 1)
        cols = np.clip(np.arange(c0, c1) + col_shift, 0, width - 1)
        out[r0:r1, c0:c1] = plane[np.ix_(rows, cols)]
        return
    taps, before = (1, 0) if row_fraction == 0.0 else (4, 1)  # source rows per output row, and above it
    weights = keys_cubic_weights(row_fraction)
    block_rows = max(1, _BLOCK_PIXELS // width)
    result = np.empty((block_rows, c1 - c0))
    term = np.empty_like(result)
    for b0 in range(r0, r1, block_rows):  # blocks of rows whose temporaries stay in cache
        b1 = min(r1, b0 + block_rows)
        count = b1 - b0
        wanted = np.arange(b0 + row_shift - before, b1 + row_shift - before + taps - 1)
        rows = np.clip(wanted, 0, height - 1)
        # the column pass reads the source rows in place; rows beyond the frame repeat its edge rows
        columns = _interpolate_columns(plane[rows[0] : rows[-1] + 1], c0, c1, col_shift, col_fraction, clamped)
        if rows[0] != wanted[0] or rows[-1] != wanted[-1]:
            columns = columns[rows - rows[0]]
        if taps == 1:  # columns are float64 here: an integer column shift took the branch above
            _store(columns, out[b0:b1, c0:c1])
            continue
        values, scratch = result[:count], term[:count]
        np.multiply(columns[0:count], weights[0], out=values)
        for k in range(1, 4):
            np.multiply(columns[k : k + count], weights[k], out=scratch)
            values += scratch
        _store(values, out[b0:b1, c0:c1])


def _fill_outside(out: np.ndarray, rows: tuple[int, int], cols: tuple[int, int], value: float) -> None:
    """Set every pixel of ``out`` outside rows ``[r0, r1)`` x columns ``[c0, c1)`` to ``value``."""
    (r0, r1), (c0, c1) = rows, cols
    if r1 <= r0 or c1 <= c0:
        out[...] = value
        return
    out[:r0] = value
    out[r1:] = value
    out[r0:r1, :c0] = value
    out[r0:r1, c1:] = value


def _interpolate_columns(source: np.ndarray, c0: int, c1: int, shift: int, fraction: float, clamped: bool) -> np.ndarray:
    """Columns ``c0 .. c1-1`` of the 1-D Keys interpolation along axis 1 at ``s = c + shift + fraction``.

    ``scipy.ndimage.correlate1d`` with ``mode="nearest"`` clamps exactly as the interpolator does
    for every source position inside the frame; positions outside it (``clamped`` output) get
    their clamped samples gathered explicitly. Returns the source's dtype when ``fraction`` is 0,
    else float64.
    """
    width = source.shape[1]
    if fraction == 0.0:
        return np.take(source, np.clip(np.arange(c0, c1) + shift, 0, width - 1), axis=1)
    weights = np.array(keys_cubic_weights(fraction))
    if clamped:
        gathered = np.take(source, np.clip(np.arange(c0 + shift - 1, c1 + shift + 2), 0, width - 1), axis=1)
        filtered = ndimage.correlate1d(gathered, weights, axis=1, output=np.float64, mode="nearest", origin=-1)
        return filtered[:, 1 : 1 + c1 - c0]
    filtered = ndimage.correlate1d(source, weights, axis=1, output=np.float64, mode="nearest", origin=-1)
    return filtered[:, c0 + shift : c1 + shift]


# --------------------------------------------------------------------------------------------
# θ != 0: per-pixel gather, block by block


def _rotate_volume(
    volume: np.ndarray,
    offset_rows: float,
    offset_cols: float,
    theta: float,
    order: Interpolation,
    outside: float | None,
    out: np.ndarray,
) -> None:
    """General path: for each block of output rows, compute the sampling once, then do every plane."""
    _, height, width = volume.shape
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    centre_r, centre_c = (height - 1) / 2.0, (width - 1) / 2.0
    dc = np.arange(width, dtype=np.float64) - centre_c
    block_rows = max(1, _BLOCK_PIXELS // width)
    flat_planes = volume.reshape(volume.shape[0], -1)
    for r0 in range(0, height, block_rows):
        r1 = min(height, r0 + block_rows)
        dr = (np.arange(r0, r1, dtype=np.float64) - centre_r)[:, np.newaxis]
        rs = (cos_t * dr + (centre_r - offset_rows)) + sin_t * dc
        cs = (-sin_t * dr + (centre_c - offset_cols)) + cos_t * dc
        inside = None
        if outside is not None:
            inside = (rs >= 0.0) & (rs <= height - 1) & (cs >= 0.0) & (cs <= width - 1)
        if order == "nearest":
            index = _nearest_index(rs, height) * width + _nearest_index(cs, width)
            for z in range(volume.shape[0]):
                values = flat_planes[z].take(index)
                if inside is not None:
                    values[~inside] = outside
                out[z, r0:r1] = values
            continue
        window_r, weights_r = _cubic_window(rs, height)
        window_c, weights_c = _cubic_window(cs, width)
        first = window_r * width + window_c  # flat index of each pixel's top-left sample
        for z in range(volume.shape[0]):
            source = flat_planes[z]
            values = np.zeros(rs.shape, dtype=np.float64)
            for a in range(4):
                row = source[a * width :].take(first) * weights_c[0]
                for b in range(1, 4):
                    row += source[a * width + b :].take(first) * weights_c[b]
                row *= weights_r[a]
                values += row
            if inside is not None:
                values[~inside] = outside
            _store(values, out[z, r0:r1])


def _cubic_window(positions: np.ndarray, length: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """First sample of a 4-sample window inside ``[0, length)`` and the Keys weights over it.

    The window normally starts at ``⌊s⌋ - 1``; near and beyond the edges it is moved inside the
    frame and the weights of the clamped samples are added onto the edge sample they repeat, so
    that every pixel reads four consecutive samples and no index needs clamping per tap.
    """
    floor = np.floor(positions)
    weights = list(keys_cubic_weights(positions - floor))
    base = floor.astype(np.intp) - 1
    window = np.clip(base, 0, length - 4)
    moved = np.flatnonzero(base != window)
    if moved.size:
        folded = np.zeros((4, moved.size))
        columns = np.arange(moved.size)
        base_moved, window_moved = base.ravel()[moved], window.ravel()[moved]
        for tap in range(4):
            sample = np.clip(base_moved + tap, 0, length - 1) - window_moved
            folded[sample, columns] += weights[tap].ravel()[moved]
        for tap in range(4):
            weights[tap].ravel()[moved] = folded[tap]
    return window, weights


def _nearest_index(positions: np.ndarray, length: int) -> np.ndarray:
    """``⌊s + 0.5⌋`` clamped to ``[0, length - 1]`` (round half up, as the original)."""
    return np.clip(np.floor(positions + 0.5), 0, length - 1).astype(np.intp)
