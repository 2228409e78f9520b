"""Blending of the two corrected, registered camera stacks into one volume (ALGORITHMS.md §3.10).

Every fused voxel is computed in float32 from the two input voxels and cast once with
:func:`~isoview_core.numerics.rounding.to_u16` (MATLAB ``uint16``: round half away, saturate), so
nothing wraps around or clips at the seam. Voxels depend only on the same voxel of the inputs and
on the absolute plane index, so a stack can be fused slab by slab (``first_plane``) and the
output may overwrite one of the inputs: streaming through the stacks needs at most the two inputs
in memory (or mapped) plus a few planes of float32 scratch.
"""

from __future__ import annotations

import importlib.util
import logging
from types import ModuleType
from typing import Literal

import numpy as np

from isoview_core.numerics.rounding import to_u16

logger = logging.getLogger(__name__)

FusionType = Literal["adaptive", "geometric", "average", "wavelet"]
EmptyMaskFill = Literal["zero", "reference", "max"]

_CHUNK_VOXELS = 1 << 22
"""Voxels processed together (4 Mi: one 2048 x 2048 plane), bounding the float32 scratch."""


def blending_weights(transition_map: np.ndarray, planes: int, blending_range: int, front_flag: Literal[1, 2] = 1) -> np.ndarray:
    """Weight of the **front** view in adaptive / geometric fusion, per voxel (§3.10 table).

    With ``m`` the 1-based transition plane of a column, ``B`` the blending range and ``k`` the
    0-based plane: 1 for ``k < m - B``; ``1 - 0.5 j / (B - 1)`` for ``m - B <= k <= m - 1``
    (``j = k - (m - B)``); ``0.5 - 0.5 j / (B - 1)`` for ``m <= k <= m + B - 1`` (``j = k - m``);
    0 for ``k >= m + B``. The back view's weight is ``1 - w``. ``B = 1`` is a hard cut (front for
    ``k <= m - 1``).

    Parameters
    ----------
    transition_map : ndarray
        (Y, X) 1-based transition planes, 0 = excluded.
    planes : int
        Number of planes ``Z`` of the returned volume (planes ``0 .. Z - 1``).
    blending_range : int
        ``B`` >= 1.
    front_flag : {1, 2}
        Only validated here: the front view is camera 1 for 1 and camera 2 for 2; the weights
        are the front view's whichever camera it is.

    Returns
    -------
    ndarray
        (Z, Y, X) float32 front weight; NaN in excluded columns (``map == 0``), which
        ``empty_mask_fill`` handles instead of a weight.

    Raises
    ------
    ValueError
        For ``blending_range < 1``, ``front_flag`` not 1 or 2, or a non-2-D map.
    """
    _check_common(transition_map, blending_range, front_flag)
    plane_index = np.arange(planes, dtype=np.int64)
    return _front_weights(plane_index, np.asarray(transition_map), blending_range)


def blend(
    reference: np.ndarray,
    second: np.ndarray,
    transition_map: np.ndarray | None = None,
    *,
    fusion_type: FusionType = "adaptive",
    blending_range: int = 4,
    front_flag: Literal[1, 2] = 1,
    empty_mask_fill: EmptyMaskFill = "zero",
    matlab_saturating_average: bool = False,
    wavelet_name: str = "db4",
    wavelet_level: int = 5,
    first_plane: int = 0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Fuse the two corrected camera stacks of a pair, or a slab of planes of them (§3.10).

    Parameters
    ----------
    reference, second : ndarray
        (Z, Y, X) uint16 planes ``first_plane .. first_plane + Z - 1`` of camera 1 (``V1``) and of
        the registered camera 2 (``V2``), both background-subtracted and intensity-corrected.
        NumPy memory maps work: each chunk of planes is read once.
    transition_map : ndarray, optional
        (Y, X) 1-based transition planes of the whole stack, 0 = excluded (required for
        ``adaptive`` and ``geometric``).
    fusion_type : {"adaptive", "geometric", "average", "wavelet"}
        ``adaptive``: front view, linear blend over ``2 B`` planes around the map, back view
        (:func:`blending_weights`). ``geometric``: the same on a map flattened to one plane by
        :func:`~isoview_core.fusion.transition.transition_map`. ``average``: ``(V1 + V2) / 2``.
        ``wavelet``: per plane ``db4``, 5 levels, approximations averaged, details by larger
        magnitude (needs PyWavelets).
    blending_range : int
        ``B`` >= 1; ``B = 1`` is a hard cut at the transition plane (logged as a warning).
    front_flag : {1, 2}
        1: camera 1 is the front view (sharp at low planes); 2: camera 2.
    empty_mask_fill : {"zero", "reference", "max"}
        Adaptive / geometric only, columns with ``map == 0``: 0 (original), ``V1`` (later port)
        or ``max(V1, V2)`` (early port).
    matlab_saturating_average : bool
        ``average`` only: saturate ``V1 + V2`` at 65535 before halving, as MATLAB's uint16 sum.
    first_plane : int
        0-based index in the whole stack of the first plane given (slab-wise fusion).
    out : ndarray, optional
        (Z, Y, X) C-contiguous uint16 destination; may be ``reference`` or ``second`` itself.

    Returns
    -------
    ndarray
        (Z, Y, X) uint16 fused planes (``out`` when given).

    Raises
    ------
    ValueError
        On shape or dtype mismatches, a missing or non-flat map, invalid options.
    ImportError
        For ``wavelet`` without PyWavelets installed.

    Notes
    -----
    Weights and sums are float32 per chunk of planes, cast once per voxel; the original blends in
    double precision, which can differ by one grey level where a blended value lies within
    float32 rounding of a half-integer. The wavelet rule follows the MATLAB toolbox's
    ``wfusimg(..., 'mean', 'max')`` (§6 item 24), assumed equivalent to a standard multilevel
    DWT with symmetric extension (§8).

    References
    ----------
    .. [1] Chhetri, R. K. et al. (2015). Whole-animal functional and developmental imaging with
       isotropic spatial resolution. Nature Methods 12, 1171-1178.
    .. [2] Pajares, G., de la Cruz, J. M. (2004). A wavelet-based image fusion tutorial.
       Pattern Recognition 37, 1855-1872.
    """
    if reference.shape != second.shape or reference.ndim != 3:
        raise ValueError(f"camera stacks must be 3-D and of equal shape, got {reference.shape} and {second.shape}")
    if reference.dtype != np.uint16 or second.dtype != np.uint16:
        raise ValueError(f"camera stacks must be uint16, got {reference.dtype} and {second.dtype}")
    if first_plane < 0:
        raise ValueError(f"first_plane must be >= 0, got {first_plane}")
    if empty_mask_fill not in ("zero", "reference", "max"):
        raise ValueError(f"empty_mask_fill must be 'zero', 'reference' or 'max', got {empty_mask_fill!r}")
    if out is None:
        out = np.empty(reference.shape, dtype=np.uint16)
    elif out.shape != reference.shape or out.dtype != np.uint16 or not out.flags.c_contiguous:
        raise ValueError(f"out must be C-contiguous uint16 of shape {reference.shape}, got {out.dtype} {out.shape}")

    if fusion_type in ("adaptive", "geometric"):
        if transition_map is None:
            raise ValueError(f"{fusion_type} fusion needs a transition map")
        transition_map = np.asarray(transition_map)
        _check_common(transition_map, blending_range, front_flag)
        if transition_map.shape != reference.shape[1:]:
            raise ValueError(f"transition map {transition_map.shape} does not match the planes {reference.shape[1:]}")
        if fusion_type == "geometric" and np.unique(transition_map[transition_map > 0]).size > 1:
            raise ValueError("geometric fusion needs a flat map: build it with transition_map(..., fusion_type='geometric')")
        if blending_range == 1:
            logger.warning("blending range 1: hard cut at the transition plane, no blending")
        front, back = (reference, second) if front_flag == 1 else (second, reference)
        zones = _BlendZones(transition_map, blending_range, range(first_plane, first_plane + reference.shape[0]))
        for index in range(reference.shape[0]):
            _blend_plane(
                front[index],
                back[index],
                reference[index],
                second[index],
                zones,
                plane=first_plane + index,
                empty_mask_fill=empty_mask_fill,
                out=out[index],
            )
    elif fusion_type == "average":
        for start, stop in _chunks(reference.shape):
            out[start:stop] = _average(reference[start:stop], second[start:stop], saturating=matlab_saturating_average)
    elif fusion_type == "wavelet":
        wavelets = _pywt()
        for plane in range(reference.shape[0]):
            out[plane] = _wavelet_plane(wavelets, reference[plane], second[plane], wavelet_name, wavelet_level)
    else:
        raise ValueError(f"unknown fusion_type {fusion_type!r}: adaptive, geometric, average or wavelet")
    return out


def _check_common(transition_map: np.ndarray, blending_range: int, front_flag: int) -> None:
    if blending_range < 1:
        raise ValueError(f"blending_range must be >= 1, got {blending_range}")
    if front_flag not in (1, 2):
        raise ValueError(f"front_flag must be 1 or 2, got {front_flag}")
    if np.ndim(transition_map) != 2:
        raise ValueError(f"transition map must be 2-D (Y, X), got shape {np.shape(transition_map)}")


def _chunks(shape: tuple[int, ...]) -> list[tuple[int, int]]:
    step = max(1, _CHUNK_VOXELS // max(1, shape[1] * shape[2]))
    return [(start, min(start + step, shape[0])) for start in range(0, shape[0], step)]


def _front_weights(plane_index: np.ndarray, transition_map: np.ndarray, blending_range: int) -> np.ndarray:
    """(len(plane_index), Y, X) float32 front weights for absolute 0-based planes; NaN where map == 0."""
    m = transition_map.astype(np.int32)
    offset = plane_index.astype(np.int32)[:, None, None] - m[None]  # k - m
    if blending_range == 1:
        weights = (offset < 0).astype(np.float32)
    else:
        step = np.float32(0.5 / (blending_range - 1))
        before = np.minimum(np.float32(1), np.float32(1) - step * (offset + blending_range).astype(np.float32))
        after = np.maximum(np.float32(0), np.float32(0.5) - step * offset.astype(np.float32))
        weights = np.where(offset < 0, before, after)
    weights[:, m == 0] = np.nan
    return weights


class _BlendZones:
    """A transition map prepared for blending a run of planes one by one.

    Outside its zone (``|k - m|`` beyond the blending range) a voxel's front weight is exactly 1 or
    0, so the fused value is the front or back camera's value and needs no arithmetic. Inside, the
    weight depends only on ``d = k - m`` (2B values), so each plane is blended as 2B groups of
    pixels, each with one scalar weight. The pixels whose zone meets the planes are sorted by
    transition plane once, which makes each group one contiguous range of the sorted indices.
    """

    def __init__(self, transition_map: np.ndarray, blending_range: int, planes: range) -> None:
        self.map = transition_map
        self.empty = transition_map == 0
        self.mapped = ~self.empty
        self.blending_range = blending_range
        self.hard_cut = blending_range == 1
        # plane k blends the pixels with k - B < m <= k + B
        self._low = max(1, planes.start - blending_range + 1)
        high = planes.stop - 1 + blending_range
        flat = transition_map.ravel()
        candidates = np.flatnonzero((flat >= self._low) & (flat <= high))
        values = flat[candidates]
        order = np.argsort(values, kind="stable")
        self._sorted = candidates[order]
        self._starts = np.searchsorted(values[order], np.arange(self._low, high + 2))
        self._front = np.empty(transition_map.shape, dtype=bool)
        self._back = np.empty(transition_map.shape, dtype=bool)

    def pixels(self, value: int) -> np.ndarray:
        """Flat indices of the pixels whose (1-based) transition plane is ``value`` (those the planes blend)."""
        index = value - self._low
        if index < 0 or index + 1 >= self._starts.size:
            return self._sorted[:0]
        return self._sorted[self._starts[index] : self._starts[index + 1]]

    def regions(self, plane: int) -> tuple[np.ndarray, np.ndarray]:
        """Masks of the pixels of ``plane`` that take the front view and of the other mapped pixels.

        Front: ``k < m - B`` (``k < m`` for a hard cut). The masks are scratch buffers,
        overwritten by the next call.
        """
        np.greater(self.map, plane + (0 if self.hard_cut else self.blending_range), out=self._front)
        np.less(self._front, self.mapped, out=self._back)  # mapped and not front
        return self._front, self._back


def _front_weight(offset: int, blending_range: int) -> np.float32:
    """Front weight of a voxel ``offset = k - m`` planes from its transition plane (§3.10 table), float32."""
    step = np.float32(0.5 / (blending_range - 1))
    if offset < 0:
        return min(np.float32(1), np.float32(1) - step * np.float32(offset + blending_range))
    return max(np.float32(0), np.float32(0.5) - step * np.float32(offset))


def _blend_zone(front: np.ndarray, back: np.ndarray, zones: _BlendZones, plane: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fused uint16 values of the blend-zone pixels of one (flattened) plane, per group of equal weight."""
    blended = []
    for offset in range(-zones.blending_range, zones.blending_range):
        pixels = zones.pixels(plane - offset)
        if pixels.size == 0:
            continue
        weight = _front_weight(offset, zones.blending_range)
        fused = front[pixels].astype(np.float32)
        fused *= weight
        rest = back[pixels].astype(np.float32)
        rest *= np.float32(1) - weight
        fused += rest
        blended.append((pixels, _to_u16_nonnegative(fused)))
    return blended


def _blend_plane(
    front: np.ndarray,
    back: np.ndarray,
    reference: np.ndarray,
    second: np.ndarray,
    zones: _BlendZones,
    *,
    plane: int,
    empty_mask_fill: EmptyMaskFill,
    out: np.ndarray,
) -> None:
    """Adaptive blend of one plane (absolute 0-based index ``plane``) into the uint16 plane ``out``.

    ``out`` may be any of the inputs: the blend zone is computed before anything is written, and
    every other pixel is written only from the same pixel of an input that is not changed before.
    """
    blended = [] if zones.hard_cut else _blend_zone(front.ravel(), back.ravel(), zones, plane)
    front_region, back_region = zones.regions(plane)
    np.copyto(out, back, where=back_region)
    np.copyto(out, front, where=front_region)
    flat_out = out.reshape(-1)  # a view: blend() takes C-contiguous outputs only
    for pixels, values in blended:
        flat_out[pixels] = values
    if empty_mask_fill == "zero":
        np.copyto(out, 0, where=zones.empty)
    elif empty_mask_fill == "reference":
        np.copyto(out, reference, where=zones.empty)
    else:
        np.maximum(reference, second, out=out, where=zones.empty)


def _average(reference: np.ndarray, second: np.ndarray, *, saturating: bool) -> np.ndarray:
    """``(V1 + V2) / 2`` in float32, or MATLAB's ``(V1 + V2) / 2`` on uint16 (sum saturates first)."""
    total = reference.astype(np.float32)
    total += second
    if saturating:
        np.minimum(total, np.float32(65535), out=total)
    total *= np.float32(0.5)
    return _to_u16_nonnegative(total)


def _to_u16_nonnegative(values: np.ndarray) -> np.ndarray:
    """``to_u16`` of non-negative float32 values, computed in place (several times faster).

    For ``0 <= v < 2**22`` the float32 sum ``v + 0.5`` is exact, so ``floor(v + 0.5)`` is exactly
    MATLAB's round half away; larger values saturate at 65535 either way.
    """
    values += np.float32(0.5)
    np.floor(values, out=values)
    np.clip(values, 0, 65535, out=values)
    return values.astype(np.uint16)


def _pywt() -> ModuleType:
    """PyWavelets, imported only when wavelet fusion is asked for (optional dependency)."""
    if importlib.util.find_spec("pywt") is None:
        raise ImportError("wavelet fusion needs PyWavelets, which is not installed (pip install PyWavelets)")
    import pywt

    return pywt


def _wavelet_plane(pywt: ModuleType, reference: np.ndarray, second: np.ndarray, name: str, level: int) -> np.ndarray:
    """One plane of wavelet fusion: mean approximation, larger-magnitude details (ties: reference)."""
    first = pywt.wavedec2(reference.astype(np.float64), name, mode="symmetric", level=level)
    other = pywt.wavedec2(second.astype(np.float64), name, mode="symmetric", level=level)
    fused = [(first[0] + other[0]) / 2]
    for details_a, details_b in zip(first[1:], other[1:]):
        fused.append(tuple(np.where(np.abs(a) >= np.abs(b), a, b) for a, b in zip(details_a, details_b)))
    image = pywt.waverec2(fused, name, mode="symmetric")
    rows, cols = reference.shape
    return to_u16(image[:rows, :cols])
