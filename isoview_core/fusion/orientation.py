"""Orientation and crop of the second camera of a pair (ALGORITHMS.md §3.3 crop, §3.4 orientation).

* :func:`orient_second_camera` brings camera 2 (volume or 2-D map) into the reference camera's
  orientation: ``flip_z``, 90° rotation, then the horizontal / vertical flips.
* :func:`crop_volume` cuts the per-camera crop box.
"""

from __future__ import annotations

import numpy as np

from isoview_core.fusion.config import FusionCrop, ViewOrientation

__all__ = ["crop_volume", "orient_second_camera"]


def orient_second_camera(
    volume: np.ndarray, orientation: ViewOrientation, *, planes: int | None = None, copy: bool = True
) -> np.ndarray:
    """Bring the second camera of a pair into the reference camera's orientation (§3.4).

    Order: ``flip_z`` (reverse planes), ``rotation`` (+1 = 90° clockwise =
    ``np.rot90(k=-1)`` in the (y, x) plane, -1 = counter-clockwise), ``flip_horizontal`` (reverse
    columns), ``flip_vertical`` (reverse rows). The original has only the two flips, horizontal
    first.

    Parameters
    ----------
    volume : ndarray
        (Z, Y, X) stack, or a (Y, X) map of the same camera (coordinate mask, mask projection).
    orientation : ViewOrientation
        The view's orientation settings.
    planes : int, optional
        Number of planes ``Z`` of the stack a 2-D map belongs to. Needed only when ``flip_z`` is
        set and ``volume`` is 2-D: the map's values are then taken as 1-based plane indices
        (0 = empty) and mirrored, ``v -> Z + 1 - v``.
    copy : bool
        False: return a view of ``volume`` where possible (flips as negative strides), to feed
        :func:`~isoview_core.fusion.transform.transform_volume` without a copy; a 2-D map with ``flip_z`` is always a new array.

    Returns
    -------
    ndarray
        Oriented C-contiguous copy, or a view for ``copy=False`` (a rotation swaps Y and X).

    Raises
    ------
    ValueError
        If ``volume`` is neither 2-D nor 3-D, or a 2-D map needs ``planes`` and it is missing or
        smaller than a value of the map.
    """
    volume = np.asarray(volume)
    if volume.ndim not in (2, 3):
        raise ValueError(f"expected a (Z, Y, X) stack or a (Y, X) map, got shape {volume.shape}")
    oriented = volume
    if orientation.flip_z:
        if volume.ndim == 3:
            oriented = oriented[::-1]
        else:
            oriented = _mirror_plane_indices(oriented, planes)
    if orientation.rotation:
        oriented = np.rot90(oriented, k=-orientation.rotation, axes=(-2, -1))
    if orientation.flip_horizontal:
        oriented = oriented[..., :, ::-1]
    if orientation.flip_vertical:
        oriented = oriented[..., ::-1, :]
    return np.ascontiguousarray(oriented) if copy else oriented


def _mirror_plane_indices(plane_map: np.ndarray, planes: int | None) -> np.ndarray:
    """1-based plane values of a map after reversing the stack: ``Z + 1 - v``, 0 stays 0."""
    if planes is None:
        raise ValueError("flip_z on a 2-D map needs planes= (the map holds 1-based plane indices)")
    if plane_map.size and int(plane_map.max()) > planes:
        raise ValueError(f"map value {int(plane_map.max())} exceeds the stack's {planes} planes")
    mirrored = np.where(plane_map > 0, planes + 1 - plane_map.astype(np.int64), 0)
    return mirrored.astype(plane_map.dtype)


def crop_volume(volume: np.ndarray, crop: FusionCrop | None) -> np.ndarray:
    """Cut a camera's fusion crop box (§3.3): columns ``[left, left+width)``, rows ``[top, top+height)``, planes ``[front, back]``.

    Parameters
    ----------
    volume : ndarray
        (Z, Y, X) stack, or a (Y, X) map of the same camera (cropped in-plane only; its values are
        not changed, so 1-based plane values of a map stay relative to the uncropped stack).
    crop : FusionCrop or None
        The box; ``width``/``height`` None run to the last column/row, ``back`` None to the last
        plane (``back`` is inclusive, the original's convention). None returns ``volume``.

    Returns
    -------
    ndarray
        A view of ``volume``.

    Raises
    ------
    ValueError
        If the box does not lie inside the volume or is empty.
    """
    volume = np.asarray(volume)
    if volume.ndim not in (2, 3):
        raise ValueError(f"expected a (Z, Y, X) stack or a (Y, X) map, got shape {volume.shape}")
    if crop is None:
        return volume
    rows, cols = volume.shape[-2:]
    bottom = rows if crop.height is None else crop.top + crop.height
    right = cols if crop.width is None else crop.left + crop.width
    if crop.top >= rows or bottom > rows or crop.left >= cols or right > cols:
        raise ValueError(
            f"crop rows [{crop.top}, {bottom}) x columns [{crop.left}, {right}) does not fit a {rows} x {cols} frame"
        )
    if volume.ndim == 2:
        return volume[crop.top : bottom, crop.left : right]
    depth = volume.shape[0]
    back = depth - 1 if crop.back is None else crop.back
    if not crop.front <= back < depth:
        raise ValueError(f"crop planes [{crop.front}, {back}] (back inclusive) do not fit a stack of {depth} planes")
    return volume[crop.front : back + 1, crop.top : bottom, crop.left : right]
