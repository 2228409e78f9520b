"""Blending of the two corrected, registered camera stacks into one volume (ALGORITHMS.md §3.10).

Every fused voxel is computed in float32 from the two input voxels and cast once with
:func:`~isoview_core.numerics.rounding.to_u16` (MATLAB ``uint16``: round half away, saturate), so
nothing wraps around or clips at the seam. Voxels depend only on the same voxel of the inputs and
on the absolute plane index, so a stack can be fused slab by slab (``first_plane``) and the
output may overwrite one of the inputs: streaming through the stacks needs at most the two inputs
in memory (or mapped) plus a few planes of float32 scratch. Adaptive and geometric blending, with
the intensity correction of both cameras, is one compiled pass per plane
(:func:`~isoview_core.fusion.kernels.blend_plane`: 9.6 ms per 2048 x 2048 plane instead of 13.5 ms
for the lookups, masks and copies in numpy).
"""

from __future__ import annotations

import importlib.util
import logging
from types import ModuleType
from typing import Literal

import numpy as np

from isoview_core.fusion.intensity import IntensityCorrection, apply_intensity_correction, camera_correction
from isoview_core.fusion.kernels import EMPTY_MAX, EMPTY_REFERENCE, EMPTY_ZERO, ZONE_BACK, ZONE_BLEND, ZONE_FRONT, blend_plane
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
    intensity: IntensityCorrection | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Fuse the two corrected camera stacks of a pair, or a slab of planes of them (§3.10).

    Parameters
    ----------
    reference, second : ndarray
        (Z, Y, X) uint16 planes ``first_plane .. first_plane + Z - 1`` of camera 1 (``V1``) and of
        the registered camera 2 (``V2``), both background-subtracted and intensity-corrected
        (or corrected here, see ``intensity``). NumPy memory maps work: each plane is read once.
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
    intensity : IntensityCorrection, optional
        Background and intensity correction (:func:`~isoview_core.fusion.intensity.apply_intensity_correction`)
        applied to both stacks first, in place (they must be writable); for adaptive and
        geometric fusion in the same pass as the blend.
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
    if fusion_type not in ("adaptive", "geometric", "average", "wavelet"):
        raise ValueError(f"unknown fusion_type {fusion_type!r}: adaptive, geometric, average or wavelet")
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
        _blend_adaptive(reference, second, transition_map, blending_range, front_flag, empty_mask_fill, first_plane, intensity, out)
        return out
    if intensity is not None:
        apply_intensity_correction(reference, intensity, camera=1, out=reference)
        apply_intensity_correction(second, intensity, camera=2, out=second)
    if fusion_type == "average":
        for start, stop in _chunks(reference.shape):
            out[start:stop] = _average(reference[start:stop], second[start:stop], saturating=matlab_saturating_average)
    else:
        wavelets = _pywt()
        for plane in range(reference.shape[0]):
            out[plane] = _wavelet_plane(wavelets, reference[plane], second[plane], wavelet_name, wavelet_level)
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
        step = _weight_step(blending_range)
        before = np.minimum(np.float32(1), np.float32(1) - step * (offset + blending_range).astype(np.float32))
        after = np.maximum(np.float32(0), np.float32(0.5) - step * offset.astype(np.float32))
        weights = np.where(offset < 0, before, after)
    weights[:, m == 0] = np.nan
    return weights


def _weight_step(blending_range: int) -> np.float32:
    """Change of the front weight per plane in the blend zone, ``0.5 / (B - 1)`` in float32 (``B > 1``)."""
    return np.float32(0.5 / (blending_range - 1))


def _blend_adaptive(
    reference: np.ndarray,
    second: np.ndarray,
    transition_map: np.ndarray,
    blending_range: int,
    front_flag: int,
    empty_mask_fill: EmptyMaskFill,
    first_plane: int,
    intensity: IntensityCorrection | None,
    out: np.ndarray,
) -> None:
    """Adaptive / geometric blend plane by plane, the intensity correction in the same compiled pass (:mod:`.kernels`)."""
    if blending_range == 1:
        step = at_transition = np.float32(0)  # weights 1 before the transition plane, 0 from it on
    else:
        step, at_transition = _weight_step(blending_range), np.float32(0.5)
    empty_fill = {"zero": EMPTY_ZERO, "reference": EMPTY_REFERENCE, "max": EMPTY_MAX}[empty_mask_fill]
    corrections = [(0, 1.0) if intensity is None else camera_correction(intensity, camera) for camera in (1, 2)]
    # shifts beyond ±65535 saturate every value alike: clipped so that they fit the kernel's int32
    shifts = np.clip([shift for shift, _ in corrections], -65536, 65535)
    factors = np.array([factor for _, factor in corrections])
    nothing = np.empty((0, 0), np.uint16)
    zones = blend_zones(transition_map, first_plane, reference.shape[0], blending_range)
    for index in range(reference.shape[0]):
        corrected = (nothing, nothing) if intensity is None else (reference[index], second[index])
        blend_plane(
            reference[index],
            second[index],
            transition_map,
            first_plane + index,
            blending_range,
            step,
            at_transition,
            front_flag == 1,
            zones[index],
            empty_fill,
            shifts,
            factors,
            *corrected,
            out[index],
        )


def blend_zones(transition_map: np.ndarray, first_plane: int, planes: int, blending_range: int) -> list[int]:
    """For planes ``first_plane .. first_plane + planes - 1``, whether every mapped pixel takes the front value, the back
    value, or is blended (:data:`~isoview_core.fusion.kernels.ZONE_FRONT`, ``ZONE_BACK``, ``ZONE_BLEND``).

    Parameters
    ----------
    transition_map : ndarray
        (Y, X) 1-based transition planes, 0 = excluded.
    first_plane, planes : int
        Absolute 0-based index of the first plane, and the number of planes.
    blending_range : int
        ``B``.

    Returns
    -------
    list of int
        One zone per plane. The front weight (:func:`blending_weights`, the same float32 arithmetic as the
        kernel) does not increase with ``k - m``, so a plane is all front when it is exactly 1 at the smallest
        mapped ``m`` and all back when it is exactly 0 at the largest. A map with nothing mapped is all front
        (every pixel is the empty fill).
    """
    highest = int(transition_map.max(initial=0))
    if highest == 0:
        return [ZONE_FRONT] * planes
    lowest = int(transition_map.min(where=transition_map > 0, initial=highest))
    extremes = np.array([[lowest, highest]], dtype=np.int32)
    weights = _front_weights(np.arange(first_plane, first_plane + planes), extremes, blending_range)[:, 0]
    return [ZONE_FRONT if at_lowest == 1 else ZONE_BACK if at_highest == 0 else ZONE_BLEND for at_lowest, at_highest in weights]


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
