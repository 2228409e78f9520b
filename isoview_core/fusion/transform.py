"""The rigid in-plane transform of the second camera of a pair (ALGORITHMS.md §3.7 "Applying the transform").

Orientation and crop come first, in :mod:`isoview_core.fusion.orientation`.

* :func:`transform_plane` / :func:`transform_volume` apply the registration result to every plane
  with backward mapping about the plane centre, Keys cubic convolution (a = -0.5, edge-clamped
  samples) or nearest-neighbour sampling, and zero outside the frame.

Speed (one core, float64 arithmetic, rounded once). A pure translation (θ = 0) is separable: two
1-D four-tap passes, columns then rows, in one compiled loop over rows that keeps four filtered
rows in cache (:func:`~isoview_core.fusion.kernels.translate_plane`), about 5 ms for a 2048 x
2048 uint16 plane (7 ms for a flipped view; 25-45 ms with scipy and numpy passes); an integer
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

from isoview_core.fusion.kernels import STORE_FLOAT, STORE_SIGNED, STORE_UNSIGNED, translate_plane

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
        _translate_volume(volume, offset_y_px, offset_x_px, order, outside, out)
    else:
        _rotate_volume(volume, offset_y_px, offset_x_px, theta, order, outside, out)
    return out


# --------------------------------------------------------------------------------------------
# output conversion


def _store(values: np.ndarray, destination: np.ndarray) -> None:
    """Write float64 ``values`` into ``destination``: integers rounded half away and saturated (rotation path)."""
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


def _translate_volume(
    volume: np.ndarray, offset_rows: float, offset_cols: float, order: Interpolation, outside: float | None, out: np.ndarray
) -> None:
    """θ = 0: ``out(z, r, c) = volume(z, r - offset_rows, c - offset_cols)``, one 1-D pass per axis.

    Nearest-neighbour sampling and integer shifts are a gather. A fractional shift is the compiled
    separable pass of :func:`~isoview_core.fusion.kernels.translate_plane`: columns first, on the
    source rows read in place (``volume`` may be a flipped view), then rows.
    """
    planes, height, width = volume.shape
    clamped = outside is None
    r0, r1, row_shift, row_fraction = _axis_sampling(height, offset_rows, clamped)
    c0, c1, col_shift, col_fraction = _axis_sampling(width, offset_cols, clamped)
    if not clamped:
        for index in range(planes):
            _fill_outside(out[index], (r0, r1), (c0, c1), outside)
    if r1 <= r0 or c1 <= c0:
        return
    nearest = order == "nearest"
    if nearest or (row_fraction == 0.0 and col_fraction == 0.0):
        rows = np.clip(np.arange(r0, r1) + row_shift + (1 if nearest and row_fraction >= 0.5 else 0), 0, height - 1)
        cols = np.clip(np.arange(c0, c1) + col_shift + (1 if nearest and col_fraction >= 0.5 else 0), 0, width - 1)
        for index in range(planes):
            out[index, r0:r1, c0:c1] = volume[index][np.ix_(rows, cols)]
        return
    store, low, high = _store_mode(out.dtype)
    row_weights, first_row = _axis_weights(row_shift, row_fraction)
    col_weights, first_col = _axis_weights(col_shift, col_fraction)
    for index in range(planes):
        translate_plane(volume[index], out[index], first_row, row_weights, first_col, col_weights, r0, r1, c0, c1, store, low, high)


def _axis_weights(shift: int, fraction: float) -> tuple[np.ndarray, int]:
    """Keys weights along one axis (a single 1 for an integer shift) and the offset of the first sample."""
    if fraction == 0.0:
        return np.ones(1), shift
    return np.array(keys_cubic_weights(fraction)), shift - 1


def _store_mode(dtype: np.dtype) -> tuple[int, float, float]:
    """How :func:`~isoview_core.fusion.kernels.translate_plane` converts float64 into ``dtype``, and its range."""
    if np.issubdtype(dtype, np.floating):
        return STORE_FLOAT, 0.0, 0.0
    info = np.iinfo(dtype)
    return (STORE_UNSIGNED if info.min == 0 else STORE_SIGNED), float(info.min), float(info.max)


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
