"""Geometry of the two orthogonal views: voxel <-> physical affines, the nominal VW90 -> VW00 transform, resampling.

Conventions (shared with :mod:`isoview_core.synthetic`): arrays are (z, y, x); physical coordinates are
micrometres, as (z, y, x) vectors; voxel ``(k, j, i)`` of a view sits at ``origin + (k dz, j dy, i dx)`` in the
view's own frame (origin 0 for a camera stack). Transforms are 4 x 4 affines acting on column vectors
``(z, y, x, 1)``; ``vw90_to_vw00`` maps a point of VW90's frame into VW00's, ``p00 = R p90 + t``. The output
frame is VW00's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from isoview_core.numerics.products import ordered_matmul

__all__ = [
    "NOMINAL_ROTATION",
    "IsotropicGrid",
    "index_to_physical",
    "isotropic_grid",
    "nominal_vw90_to_vw00",
    "resample_onto_grid",
    "rigid_transform",
    "rotation_angle_deg",
    "volume_centre_um",
]

NOMINAL_ROTATION = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
"""+90 degrees about y in (z, y, x) order: VW90's z (its detection axis) -> VW00's +x, its x -> VW00's -z."""

_SPLINE_MARGIN = 12
"""Extra input voxels around a block's footprint for cubic splines: the prefilter's influence decays as
0.268 ** distance, so the sub-volume's prefilter differs from the whole volume's by < 1e-6 of the signal."""
_SMOOTHING_TRUNCATE = 4.0
"""The smoothing's Gaussian reaches this many sigmas: a block reads as many extra input voxels."""
_INSIDE_TOLERANCE = 1e-6
"""Voxels: a sample this close outside a volume's first or last voxel still counts as inside (rounding)."""


def index_to_physical(voxel_um: Sequence[float], origin_um: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """The 4 x 4 affine from voxel indices ``(k, j, i)`` to physical ``origin + (k dz, j dy, i dx)`` (um).

    Parameters
    ----------
    voxel_um : sequence of float
        Voxel size ``(dz, dy, dx)`` in micrometres.
    origin_um : sequence of float, optional
        Physical position of voxel ``(0, 0, 0)``.

    Returns
    -------
    ndarray
        ``diag(dz, dy, dx, 1)`` with ``origin`` as translation; its inverse maps physical to voxel coordinates.
    """
    voxel = np.asarray(voxel_um, dtype=np.float64)
    if voxel.shape != (3,) or np.any(voxel <= 0):
        raise ValueError(f"voxel size {tuple(voxel_um)}: expected three positive sizes (dz, dy, dx) in um")
    matrix = np.diag([*voxel, 1.0])
    matrix[:3, 3] = np.asarray(origin_um, dtype=np.float64)
    return matrix


def rigid_transform(rotation: np.ndarray, translation: Sequence[float]) -> np.ndarray:
    """The 4 x 4 affine ``p -> rotation @ p + translation``."""
    matrix = np.eye(4)
    matrix[:3, :3] = rotation
    matrix[:3, 3] = translation
    return matrix


def rotation_angle_deg(rotation: np.ndarray) -> float:
    """Angle (degrees) of the 3 x 3 rotation (or the rotation block of a 4 x 4 affine), about its own axis."""
    cosine = (np.trace(np.asarray(rotation)[:3, :3]) - 1.0) / 2.0
    return math.degrees(math.acos(min(1.0, max(-1.0, cosine))))


def volume_centre_um(shape: Sequence[int], voxel_um: Sequence[float]) -> np.ndarray:
    """Physical centre ``(n - 1) / 2 * voxel`` of a view's voxel grid (origin 0), as (z, y, x) in um."""
    return (np.asarray(shape, dtype=np.float64) - 1.0) / 2.0 * np.asarray(voxel_um, dtype=np.float64)


def nominal_vw90_to_vw00(
    shape90: Sequence[int], voxel90: Sequence[float], shape00: Sequence[int], voxel00: Sequence[float]
) -> np.ndarray:
    """The nominal VW90 -> VW00 transform of the acquisition geometry.

    Parameters
    ----------
    shape90, voxel90 : sequence
        Shape (z, y, x) and voxel size (um) of VW90.
    shape00, voxel00 : sequence
        Shape and voxel size of VW00.

    Returns
    -------
    ndarray
        4 x 4 affine: :data:`NOMINAL_ROTATION` (+90 degrees about y: ``x' = z``, ``z' = -x``, ``y' = y``) and the
        translation that maps VW90's volume centre onto VW00's (:func:`volume_centre_um`).
    """
    centre90, centre00 = volume_centre_um(shape90, voxel90), volume_centre_um(shape00, voxel00)
    return rigid_transform(NOMINAL_ROTATION, centre00 - NOMINAL_ROTATION @ centre90)


@dataclass(frozen=True)
class IsotropicGrid:
    """An isotropic voxel grid of the output frame: voxel ``(k, j, i)`` sits at ``origin + voxel_um (k, j, i)``."""

    shape: tuple[int, int, int]
    voxel_um: float
    origin_um: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def index_to_physical(self) -> np.ndarray:
        """The grid's 4 x 4 voxel -> physical affine."""
        return index_to_physical((self.voxel_um,) * 3, self.origin_um)

    def centre_um(self) -> np.ndarray:
        """Physical centre of the grid."""
        return np.asarray(self.origin_um) + (np.asarray(self.shape) - 1.0) / 2.0 * self.voxel_um


def isotropic_grid(shape: Sequence[int], voxel_um: Sequence[float], iso_voxel_um: float) -> IsotropicGrid:
    """The isotropic grid of voxel ``iso_voxel_um`` that covers a view's volume (origin 0, its first voxel).

    Parameters
    ----------
    shape, voxel_um : sequence
        Shape (z, y, x) and voxel size (um) of the view whose frame is the output frame (VW00).
    iso_voxel_um : float
        The grid's voxel (um).

    Returns
    -------
    IsotropicGrid
        ``floor((n - 1) d / s) + 1`` voxels per axis: every grid voxel lies inside the view's volume.
    """
    if iso_voxel_um <= 0:
        raise ValueError(f"isotropic voxel {iso_voxel_um} um: expected a positive size")
    extent = (np.asarray(shape, dtype=np.float64) - 1.0) * np.asarray(voxel_um, dtype=np.float64)
    counts = np.floor(extent / iso_voxel_um + 1e-9).astype(int) + 1
    return IsotropicGrid(shape=tuple(int(n) for n in counts), voxel_um=float(iso_voxel_um))


def resample_onto_grid(
    volume: np.ndarray,
    voxel_um: Sequence[float],
    view_to_output: np.ndarray,
    grid: IsotropicGrid,
    *,
    origin_um: Sequence[float] = (0.0, 0.0, 0.0),
    order: int = 1,
    block_size: int = 64,
    outside: float = 0.0,
    smoothing_um: Sequence[float] | None = None,
) -> np.ndarray:
    """Resample a view onto an isotropic grid of the output frame, block by block.

    Every grid voxel ``q`` takes the view's value at ``view_to_output^-1 q`` (backward mapping). Output blocks of
    ``block_size^3`` voxels are processed one at a time: for each, only the input sub-volume under its footprint
    (plus the spline's margin) is read and interpolated, so the temporary memory is bounded by the block size,
    not by the volume's size.

    Parameters
    ----------
    volume : ndarray
        The view, (z, y, x).
    voxel_um : sequence of float
        Its voxel size (um).
    view_to_output : ndarray
        4 x 4 affine from the view's frame to the output frame (e.g. ``vw90_to_vw00``; identity for VW00).
    grid : IsotropicGrid
        The output grid.
    origin_um : sequence of float, optional
        Physical position of the view's voxel ``(0, 0, 0)`` in its own frame.
    order : {1, 3}, optional
        Spline order: 1 linear (default), 3 cubic (prefiltered per sub-volume, with a margin of
        :data:`_SPLINE_MARGIN` voxels).
    block_size : int, optional
        Edge of the output blocks.
    outside : float, optional
        Value of grid voxels whose source lies outside the view's volume (e.g. ``nan`` to mark the footprint).
    smoothing_um : sequence of float, optional
        Gaussian sigmas (z, y, x) of the view's own axes, um, by which it is blurred before it is sampled (mirrored at
        its faces, as the interpolation); each block reads the margin the blur needs, so the result does not depend
        on the block size.

    Returns
    -------
    ndarray
        float32 array of ``grid.shape``.

    References
    ----------
    .. [1] Unser, M. (1999). Splines: a perfect fit for signal and image processing. IEEE Signal Processing
       Magazine 16(6), 22-38 (B-spline interpolation, as in ``scipy.ndimage.map_coordinates``).
    """
    if volume.ndim != 3:
        raise ValueError(f"view of shape {volume.shape}: expected a (z, y, x) volume")
    if order not in (1, 3):
        raise ValueError(f"interpolation order {order}: expected 1 (linear) or 3 (cubic)")
    if block_size < 1:
        raise ValueError(f"block size {block_size}: expected a positive number of voxels")
    to_input = np.linalg.inv(index_to_physical(voxel_um, origin_um)) @ np.linalg.inv(view_to_output) @ grid.index_to_physical()
    sigmas = np.zeros(3) if smoothing_um is None else np.asarray(smoothing_um, dtype=np.float64) / np.asarray(voxel_um, dtype=np.float64)
    margins = [(0 if order == 1 else _SPLINE_MARGIN) + math.ceil(_SMOOTHING_TRUNCATE * sigma) for sigma in sigmas]
    out = np.empty(grid.shape, dtype=np.float32)
    starts = [range(0, n, block_size) for n in grid.shape]
    for corner in itertools.product(*starts):
        block = tuple(slice(c, min(c + block_size, n)) for c, n in zip(corner, grid.shape, strict=True))
        out[block] = _resample_block(volume, to_input, block, order, margins, outside, sigmas)
    return out


def _resample_block(
    volume: np.ndarray, to_input: np.ndarray, block: tuple[slice, ...], order: int, margins: Sequence[int], outside: float, sigmas: np.ndarray
) -> np.ndarray:
    """One output block: input voxel coordinates of its voxels, interpolated on the (smoothed) sub-volume they need."""
    k, j, i = (np.arange(s.start, s.stop, dtype=np.float64) for s in block)
    if not np.any(to_input[:3, :3] - np.diag(np.diag(to_input[:3, :3]))):
        return _resample_block_separable(volume, to_input, (k, j, i), order, margins, outside, sigmas)
    coords = np.stack(
        [row[0] * k[:, None, None] + row[1] * j[None, :, None] + row[2] * i[None, None, :] + row[3] for row in to_input[:3]]
    )
    extent = np.asarray(volume.shape, dtype=np.float64)[:, None, None, None] - 1.0
    inside = np.all((coords >= -_INSIDE_TOLERANCE) & (coords <= extent + _INSIDE_TOLERANCE), axis=0)
    values = np.full(inside.shape, outside, dtype=np.float32)
    if not inside.any():
        return values
    picked = coords[:, inside]
    low = [max(0, math.floor(picked[a].min()) - margins[a]) for a in range(3)]
    high = [min(n, math.ceil(picked[a].max()) + 1 + margins[a]) for a, n in enumerate(volume.shape)]
    sub = volume[tuple(slice(lo, hi) for lo, hi in zip(low, high, strict=True))]
    if sigmas.any():  # mirrored at the sub-volume's faces: right at the volume's own, out of the samples' reach elsewhere
        sub = ndimage.gaussian_filter(np.asarray(sub, dtype=np.float32), sigmas, mode="reflect", truncate=_SMOOTHING_TRUNCATE, output=np.float32)
    local = picked - np.asarray(low, dtype=np.float64)[:, None]
    values[inside] = ndimage.map_coordinates(sub, local, order=order, mode="reflect", prefilter=order > 1, output=np.float32)
    return values



def _resample_block_separable(
    volume: np.ndarray, to_input: np.ndarray, indices: Sequence[np.ndarray], order: int, margins: Sequence[int], outside: float, sigmas: np.ndarray
) -> np.ndarray:
    """:func:`_resample_block` where each grid axis maps onto the same axis of the view (VW00): three 1-D operators.

    Smoothing, spline prefilter and interpolation are each separable, so along each axis they are one small matrix
    (built by applying them to the identity, so it is the same operator as the 3-D path's), applied by three matrix
    products: about 10x less work per voxel than interpolating every voxel with (order + 1)^3 taps.
    """
    coords = [row[a] * index + row[3] for a, (row, index) in enumerate(zip(to_input[:3], indices, strict=True))]
    inside = [(c >= -_INSIDE_TOLERANCE) & (c <= n - 1 + _INSIDE_TOLERANCE) for c, n in zip(coords, volume.shape, strict=True)]
    values = np.full(tuple(c.size for c in coords), outside, dtype=np.float32)
    if not all(mask.any() for mask in inside):
        return values
    picked = [c[mask] for c, mask in zip(coords, inside, strict=True)]
    low = [max(0, math.floor(c.min()) - m) for c, m in zip(picked, margins, strict=True)]
    high = [min(n, math.ceil(c.max()) + 1 + m) for c, m, n in zip(picked, margins, volume.shape, strict=True)]
    sub = np.asarray(volume[tuple(slice(lo, hi) for lo, hi in zip(low, high, strict=True))], dtype=np.float32)
    operators = [_axis_operator(hi - lo, c - lo, order, sigma) for c, lo, hi, sigma in zip(picked, low, high, sigmas, strict=True)]
    # ordered products, not BLAS: the same volume in a watcher's worker and in a notebook (numerics.products)
    depth, rows, cols = sub.shape
    along_x = ordered_matmul(sub.reshape(depth * rows, cols), operators[2].T).reshape(depth, rows, -1)
    along_y = np.stack([ordered_matmul(operators[1], plane) for plane in along_x])
    along_z = ordered_matmul(operators[0], along_y.reshape(depth, -1)).reshape(len(operators[0]), *along_y.shape[1:])
    values[np.ix_(*inside)] = along_z
    return values


def _axis_operator(size: int, coordinates: np.ndarray, order: int, sigma: float) -> np.ndarray:
    """float32 matrix (len(coordinates), size): a signal of ``size`` samples smoothed by ``sigma`` (mirrored at its
    ends), then interpolated at ``coordinates`` with a B-spline of ``order`` (prefiltered, mirrored), as the 3-D path."""
    identity = np.eye(size)
    if sigma > 0:
        identity = ndimage.gaussian_filter1d(identity, sigma, axis=0, mode="reflect", truncate=_SMOOTHING_TRUNCATE)
    if order > 1:  # along axis 1 too: a prefiltered spline sampled at the integer columns returns each column itself
        identity = ndimage.spline_filter(identity, order=order, mode="reflect")
    columns = np.arange(size, dtype=np.float64)
    points = np.stack(np.broadcast_arrays(coordinates[:, None], columns[None, :]))
    return ndimage.map_coordinates(identity, points, order=order, mode="reflect", prefilter=False).astype(np.float32)
