"""Foreground masks of unsegmented data, recomputed inside fusion (ALGORITHMS.md §3.5).

Unsegmented data carry no xy coordinate masks from the correction stage; :func:`unsegmented_masks`
thresholds the filtered stacks of both cameras with a shared minimum and gives the 1-based
mean-plane maps the transition map (:mod:`isoview_core.fusion.transition`) is built from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from isoview_core.fusion.config import FusionConfig
from isoview_core.numerics.filters import anisotropic_gaussian, anisotropic_kernels
from isoview_core.numerics.percentiles import hazen_percentile, matlab_subsample
from isoview_core.numerics.rounding import coordinate_mean, round_half_away, to_u16
from isoview_core.numerics.slabs import row_slabs


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


def _filter(volume: np.ndarray, config: FusionConfig, scaling: float) -> np.ndarray:
    return filter_for_mask(
        volume,
        kernel=config.fusion_gauss_kernel,
        sigma=config.fusion_gauss_sigma,
        scaling=scaling,
        splitting=config.splitting,
        precise=config.precise_gauss,
    )
