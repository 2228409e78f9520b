"""Foreground masks of unsegmented data and the camera-pair transition map (ALGORITHMS.md §3.5, §3.6).

The transition map ("average mask", saved as the pair's fusion mask) gives, per (y, x), the
**1-based** plane where the fused stack switches from the front to the back view; 0 marks a
column without a transition (excluded). It is built from the two cameras' 2-D mean-plane maps
(the correction stage's xy coordinate masks for segmented data, :func:`unsegmented_masks` for
unsegmented data), camera 2 already oriented and, for the final map, registered.

Stored values stay 1-based with 0 = empty (§0, §6 item 3); :func:`transition_plane_summary` is the
one place that converts to a 0-based plane (the ``transition_z`` of ``fusion.json``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage
from scipy.interpolate import griddata
from scipy.spatial import QhullError

from isoview_core.fusion.config import FusionConfig
from isoview_core.numerics.filters import anisotropic_gaussian, anisotropic_kernels
from isoview_core.numerics.percentiles import hazen_percentile, matlab_subsample
from isoview_core.numerics.rounding import coordinate_mean, round_half_away, to_u16
from isoview_core.numerics.slabs import row_slabs

logger = logging.getLogger(__name__)

MaskFusionMode = Literal["overlap", "union"]
PaddingMode = Literal["none", "centre", "smooth"]
FusionType = Literal["adaptive", "geometric", "average", "wavelet"]


@dataclass(frozen=True)
class FusionMasks:
    """Foreground of both cameras of a pair, recomputed inside fusion (unsegmented data, §3.5).

    Attributes
    ----------
    reference, second : ndarray
        (Z, Y, X) bool foreground masks of camera 1 and of (oriented) camera 2.
    reference_map, second_map : ndarray
        (Y, X) uint16 1-based mean plane of each mask, 0 where a column is empty.
    shared_minimum : float
        ``m = max(min_1, min_2)``, the pair's reference-minimum record; reuse it for the mask of
        the transformed camera 2 (:func:`unsegmented_mask`).
    levels : tuple of float
        Threshold of camera 1 and camera 2.
    """

    reference: np.ndarray
    second: np.ndarray
    reference_map: np.ndarray
    second_map: np.ndarray
    shared_minimum: float
    levels: tuple[float, float]


def filter_for_mask(
    volume: np.ndarray, *, kernel: float = 5, sigma: float = 2.0, scaling: float = 1.0, splitting: int = 10, precise: bool = True
) -> np.ndarray:
    """Anisotropic Gaussian of a corrected stack for the fusion masks (§3.5 step 1, §2.6).

    Parameters
    ----------
    volume : ndarray
        (Z, Y, X) corrected stack (no background subtracted).
    kernel, sigma : float
        In-plane kernel size and sigma (``fusion_gauss_kernel``, ``fusion_gauss_sigma``); the axial
        ones are divided by ``scaling`` (minimum 1).
    scaling : float
        Axial step / lateral pixel size.
    splitting : int
        Row slabs (memory bound); the result does not depend on it.
    precise : bool
        True (``precise_gauss``): filter in float64, round once. False: the original's native
        uint16 filtering, each separable pass rounded to uint16.

    Returns
    -------
    ndarray
        (Z, Y, X) uint16 filtered stack.

    References
    ----------
    .. [1] Amat, F., Höckendorf, B., Wan, Y., Lemon, W. C., McDole, K., Keller, P. J. (2015).
       Efficient processing and analysis of large-scale light-sheet microscopy data.
       Nature Protocols 10, 1679-1696 (``imgaussianAnisotropy``, ``multiFuse``).
    """
    if precise:
        return anisotropic_gaussian(volume, kernel=kernel, sigma=sigma, scaling=scaling, splitting=splitting)
    axial, lateral = anisotropic_kernels(kernel, sigma, scaling)
    out = np.empty(volume.shape, dtype=np.uint16)
    for (start, stop), (lo, hi) in row_slabs(volume.shape[1], splitting, margin=int(2 * kernel)):
        block = volume[:, lo:hi]
        block = to_u16(ndimage.correlate1d(block.astype(np.float64), lateral, axis=1, mode="nearest"))
        block = to_u16(ndimage.correlate1d(block.astype(np.float64), lateral, axis=2, mode="nearest"))
        if volume.shape[0] >= 4:
            block = to_u16(ndimage.correlate1d(block.astype(np.float64), axial, axis=0, mode="nearest"))
        out[:, start:stop] = block[:, start - lo : stop - lo]
    return out


def mask_minimum(filtered: np.ndarray, *, percentile: float = 1.0, subsample: int = 100) -> float:
    """Per-camera minimum of a filtered stack (§3.5 step 2).

    Parameters
    ----------
    filtered : ndarray
        (Z, Y, X) output of :func:`filter_for_mask`.
    percentile : float
        ``fusion_mask_percentile``; 0 means the true minimum of the whole stack.
    subsample : int
        ``fusion_subsample_stacks``: every n-th voxel in MATLAB linear order, zeros kept.

    Returns
    -------
    float
        The minimum ``min_k``.
    """
    if percentile == 0:
        return float(filtered.min())
    return hazen_percentile(matlab_subsample(filtered, subsample), percentile)


def threshold_mask(filtered: np.ndarray, minimum: float, *, mask_factor: float = 1.0) -> tuple[np.ndarray, float]:
    """Foreground of one camera from the shared minimum (§3.5 step 4).

    ``level = m + mask_factor * (mean(G[G > m]) - m)`` and ``mask = G > level``.

    Parameters
    ----------
    filtered : ndarray
        (Z, Y, X) filtered stack ``G``.
    minimum : float
        Shared minimum ``m`` of the pair.
    mask_factor : float
        ``maskFactor`` (1.0: threshold at the foreground mean).

    Returns
    -------
    mask : ndarray
        (Z, Y, X) bool.
    level : float
        The threshold; ``m`` when no voxel exceeds ``m`` (the mask is then empty).
    """
    above = filtered[filtered > minimum]
    mean = float(above.mean(dtype=np.float64)) if above.size else minimum
    level = minimum + mask_factor * (mean - minimum)
    return filtered > level, level


def remove_small_components(mask: np.ndarray, *, min_fraction: float) -> np.ndarray:
    """MATLAB ``bwareaopen`` with 26-connectivity: drop 3-D components below a volume fraction (§3.5 step 5).

    Parameters
    ----------
    mask : ndarray
        (Z, Y, X) bool.
    min_fraction : float
        ``fusion_mask_min_object_fraction``; components with fewer than
        ``round_half_away(Z * Y * X * min_fraction)`` voxels are removed. 0 returns ``mask``.

    Returns
    -------
    ndarray
        (Z, Y, X) bool.

    Raises
    ------
    ValueError
        If ``min_fraction`` is negative or ``mask`` is not 3-D.
    """
    if min_fraction < 0:
        raise ValueError(f"min_fraction must be >= 0, got {min_fraction}")
    if mask.ndim != 3:
        raise ValueError(f"expected a (Z, Y, X) mask, got shape {mask.shape}")
    min_size = int(round_half_away(mask.size * min_fraction))
    if min_size <= 1:
        return mask
    labels, count = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_size
    keep[0] = False
    return keep[labels]


def mean_plane_map(mask: np.ndarray) -> np.ndarray:
    """1-based mean plane of a 3-D mask per (y, x), rounded half away, 0 where empty (§3.5 step 6, §2.7).

    Parameters
    ----------
    mask : ndarray
        (Z, Y, X) bool.

    Returns
    -------
    ndarray
        (Y, X) uint16.
    """
    planes = mask.shape[0]
    count = np.zeros(mask.shape[1:], dtype=np.int64)
    total = np.zeros(mask.shape[1:], dtype=np.float64)
    for plane in range(planes):
        count += mask[plane]
        total += (plane + 1) * mask[plane]
    return coordinate_mean(total, count)


def unsegmented_mask(
    volume: np.ndarray,
    shared_minimum: float,
    config: FusionConfig | None = None,
    *,
    scaling: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Mask and mean-plane map of one stack with a given minimum (§3.5 steps 1, 4-6).

    This is the recomputation for the *transformed* camera 2 when the final transition map is
    built (§3.6), with the shared minimum of the first pass.

    Parameters
    ----------
    volume : ndarray
        (Z, Y, X) corrected stack.
    shared_minimum : float
        ``FusionMasks.shared_minimum`` (0 in 4-view mode after channel intensity correction).
    config : FusionConfig, optional
        Kernel, sigma, ``precise_gauss``, ``splitting``, ``mask_factor``,
        ``fusion_mask_min_object_fraction``; defaults when omitted.
    scaling : float
        Axial step / lateral pixel size.

    Returns
    -------
    mask : ndarray
        (Z, Y, X) bool.
    plane_map : ndarray
        (Y, X) uint16, 1-based, 0 = empty.
    """
    config = config or FusionConfig()
    filtered = _filter(volume, config, scaling)
    mask, _ = threshold_mask(filtered, shared_minimum, mask_factor=config.mask_factor)
    mask = remove_small_components(mask, min_fraction=config.fusion_mask_min_object_fraction)
    return mask, mean_plane_map(mask)


def unsegmented_masks(
    reference: np.ndarray, second: np.ndarray, config: FusionConfig | None = None, *, scaling: float = 1.0
) -> FusionMasks:
    """Foreground masks and mean-plane maps of both cameras of a pair (§3.5, unsegmented data).

    Both cameras are thresholded relative to the **shared** minimum ``max(min_1, min_2)``.

    Parameters
    ----------
    reference, second : ndarray
        (Z, Y, X) corrected stacks of camera 1 and camera 2 (camera 2 oriented, §3.4), same shape.
    config : FusionConfig, optional
        Mask parameters (``fusion_gauss_kernel``, ``fusion_gauss_sigma``, ``precise_gauss``,
        ``splitting``, ``fusion_mask_percentile``, ``fusion_subsample_stacks``, ``mask_factor``,
        ``fusion_mask_min_object_fraction``); defaults when omitted.
    scaling : float
        Axial step / lateral pixel size.

    Returns
    -------
    FusionMasks
        Masks, 1-based maps, shared minimum and levels.

    Raises
    ------
    ValueError
        If the stacks differ in shape or are not 3-D.

    References
    ----------
    .. [1] Chhetri, R. K., Amat, F., Wan, Y., Höckendorf, B., Lemon, W. C., Keller, P. J. (2015).
       Whole-animal functional and developmental imaging with isotropic spatial resolution.
       Nature Methods 12, 1171-1178.
    """
    if reference.ndim != 3 or reference.shape != second.shape:
        raise ValueError(f"camera stacks must be 3-D and of equal shape, got {reference.shape} and {second.shape}")
    config = config or FusionConfig()
    filtered = [_filter(volume, config, scaling) for volume in (reference, second)]
    minima = [mask_minimum(item, percentile=config.fusion_mask_percentile, subsample=config.fusion_subsample_stacks) for item in filtered]
    shared = max(minima)
    masks, levels = [], []
    for item in filtered:
        mask, level = threshold_mask(item, shared, mask_factor=config.mask_factor)
        masks.append(remove_small_components(mask, min_fraction=config.fusion_mask_min_object_fraction))
        levels.append(level)
    return FusionMasks(
        reference=masks[0],
        second=masks[1],
        reference_map=mean_plane_map(masks[0]),
        second_map=mean_plane_map(masks[1]),
        shared_minimum=shared,
        levels=(levels[0], levels[1]),
    )


def effective_blending_range(blending_range: int, planes: int) -> int:
    """Blending range that fits the stack: ``min(B, (Z - 1) // 2)`` (§3.6 step 5, port robustness).

    Use the same value for the transition map and the blending.

    Parameters
    ----------
    blending_range : int
        Configured ``B`` (>= 1).
    planes : int
        ``Z``.

    Returns
    -------
    int
        ``B``, reduced with a warning when both blend zones cannot fit.

    Raises
    ------
    ValueError
        If ``blending_range < 1`` or the stack has fewer than 3 planes.
    """
    if blending_range < 1:
        raise ValueError(f"blending range must be >= 1, got {blending_range}")
    if planes < 3:
        raise ValueError(f"a transition needs at least 3 planes, got {planes}")
    limit = (planes - 1) // 2
    if blending_range > limit:
        logger.warning("blending range %d does not fit %d planes; using %d", blending_range, planes, limit)
        return limit
    return blending_range


def centre_plane(planes: int) -> int:
    """1-based centre plane ``round_half_away(Z / 2)`` (padding, geometric default)."""
    return int(round_half_away(planes / 2))


def transition_map(
    s1: np.ndarray,
    s2: np.ndarray,
    *,
    planes: int,
    blending_range: int = 4,
    mask_fusion_mode: MaskFusionMode = "union",
    fusion_type: FusionType = "adaptive",
    transition_plane: int | None = None,
    padding: PaddingMode = "none",
    padding_radius: int = 50,
) -> np.ndarray:
    """Transition map of a camera pair from the two mean-plane maps (§3.6).

    Steps: (1) mask fusion, (2) anomaly removal to ``[B, Z - B]``, (3) geometric override,
    (4) padding; with the port's robustness additions (step 5): ``B`` reduced to
    ``(Z - 1) // 2`` when too large, and a map left empty by step 2 filled with the centre plane
    (both logged as warnings). For the pre-registration map ``avg0`` pass ``padding="none"``.

    Parameters
    ----------
    s1, s2 : ndarray
        (Y, X) 1-based mean-plane maps (0 = empty) of camera 1 and of camera 2 in the same frame.
    planes : int
        ``Z``, the number of planes of the stacks.
    blending_range : int
        Camera blending range ``B`` (``blending_range_cameras``).
    mask_fusion_mode : {"union", "overlap"}
        ``overlap``: ``to_u16((s1 + s2) / 2)`` where both are non-zero, else 0. ``union``: the
        same, then the non-zero one of ``s1``, ``s2`` where only one is.
    fusion_type : {"adaptive", "geometric", "average", "wavelet"}
        ``geometric`` replaces every non-zero value by ``transition_plane`` (not checked against
        the bounds, as in the original) or ``round_half_away(Z / 2)``.
    transition_plane : int, optional
        1-based plane for geometric fusion; None or 0 = centre.
    padding : {"none", "centre", "smooth"}
        Fill of the remaining zeros. ``centre``: ``round_half_away(Z / 2)``. ``smooth``: pixels
        farther than ``padding_radius`` from the map get the centre plane, the ring in between is
        interpolated linearly (Delaunay triangulation of the ring's bordering pixels, nearest
        value outside their convex hull) and clamped to ``[B, Z - B]``.
    padding_radius : int
        Disk radius in pixels of smooth padding (Euclidean disk).

    Returns
    -------
    ndarray
        (Y, X) uint16, 1-based transition plane, 0 = excluded.

    Raises
    ------
    ValueError
        On shape mismatch, non-2-D maps, unknown modes or invalid sizes.

    Notes
    -----
    Smooth padding approximates the original's natural-neighbour ``scatteredInterpolant`` with
    linear extrapolation by linear interpolation (``scipy.interpolate.griddata``) plus nearest
    values outside the hull, and MATLAB's line-decomposed ``strel('disk')`` by an exact
    Euclidean disk; differences are confined to the padded ring (§8). Only non-zero pixels that
    border a zero are used as interpolation nodes: the ring's values are determined by its edges,
    and this keeps the triangulation small on 2048 x 2048 maps.

    References
    ----------
    .. [1] Chhetri, R. K. et al. (2015). Whole-animal functional and developmental imaging with
       isotropic spatial resolution. Nature Methods 12, 1171-1178 (``multiFuse``).
    """
    s1, s2 = np.asarray(s1), np.asarray(s2)
    if s1.ndim != 2 or s1.shape != s2.shape:
        raise ValueError(f"mean-plane maps must be 2-D and of equal shape, got {s1.shape} and {s2.shape}")
    if mask_fusion_mode not in ("overlap", "union"):
        raise ValueError(f"mask_fusion_mode must be 'overlap' or 'union', got {mask_fusion_mode!r}")
    if padding not in ("none", "centre", "smooth"):
        raise ValueError(f"padding must be 'none', 'centre' or 'smooth', got {padding!r}")
    if fusion_type not in ("adaptive", "geometric", "average", "wavelet"):
        raise ValueError(f"unknown fusion_type {fusion_type!r}")
    if padding_radius < 1:
        raise ValueError(f"padding_radius must be >= 1, got {padding_radius}")
    blend = effective_blending_range(blending_range, planes)
    centre = centre_plane(planes)

    a = s1.astype(np.float64)
    b = s2.astype(np.float64)
    both = (a > 0) & (b > 0)
    avg = np.where(both, to_u16((a + b) / 2), 0).astype(np.uint16)
    if mask_fusion_mode == "union":
        only = ~both
        avg[only] = to_u16(np.maximum(a, b)[only])  # one of them is 0 there
    avg[(avg < blend) | (avg > planes - blend)] = 0

    if not avg.any():
        logger.warning("transition map is empty after anomaly removal; using the centre plane %d everywhere", centre)
        avg[...] = centre
    if fusion_type == "geometric":
        avg[avg > 0] = transition_plane or centre
    if padding == "centre":
        avg[avg == 0] = centre
    elif padding == "smooth":
        avg = _smooth_padding(avg, radius=padding_radius, centre=centre, low=blend, high=planes - blend)
    return avg


def transition_plane_summary(transition: np.ndarray) -> float:
    """Median transition plane of a map, **0-based** (``transition_z`` of ``fusion.json``).

    Parameters
    ----------
    transition : ndarray
        (Y, X) 1-based transition map, 0 = excluded.

    Returns
    -------
    float
        ``median(map[map > 0]) - 1``: a plane index in the 0-based (Z, Y, X) convention of the
        Python arrays (a half value when the median falls between two planes).

    Raises
    ------
    ValueError
        If the map has no non-zero value.
    """
    values = np.asarray(transition)[np.asarray(transition) > 0]
    if values.size == 0:
        raise ValueError("the transition map is empty: no plane to summarise")
    return float(np.median(values.astype(np.float64))) - 1.0


def _filter(volume: np.ndarray, config: FusionConfig, scaling: float) -> np.ndarray:
    return filter_for_mask(
        volume,
        kernel=config.fusion_gauss_kernel,
        sigma=config.fusion_gauss_sigma,
        scaling=scaling,
        splitting=config.splitting,
        precise=config.precise_gauss,
    )


def _smooth_padding(avg: np.ndarray, *, radius: int, centre: int, low: int, high: int) -> np.ndarray:
    """Padding mode 2: centre plane beyond ``radius`` of the map, interpolated ring, clamp to [low, high]."""
    foreground = avg > 0
    if foreground.all():
        return avg
    grown = ndimage.distance_transform_edt(~foreground) <= radius
    filled = avg.astype(np.float64)
    filled[~grown] = centre
    ring = filled == 0
    if not ring.any():
        return to_u16(np.clip(filled, low, high))
    known = filled > 0
    nodes = known & ndimage.binary_dilation(ring, structure=np.ones((3, 3), dtype=bool))
    node_rows, node_cols = np.nonzero(nodes)
    points = np.column_stack([node_rows, node_cols]).astype(np.float64)
    values = filled[node_rows, node_cols]
    targets = np.column_stack(np.nonzero(ring)).astype(np.float64)
    nearest = griddata(points, values, targets, method="nearest")
    try:
        linear = griddata(points, values, targets, method="linear")
    except QhullError:  # fewer than 3 nodes or all collinear: no triangulation
        linear = nearest
    filled[ring] = np.where(np.isnan(linear), nearest, linear)
    return to_u16(np.clip(filled, low, high))
