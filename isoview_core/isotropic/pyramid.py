"""A view brought to a common, roughly isotropic resolution on a coarser grid of its own frame (one pyramid level).

The two views have different PSFs: each is sharp along its own y and x and blurred along its own z (its
detection axis), and VW90's z is VW00's x. Compared as they are, a bead is a rod along z in one view and
along x in the other. So before they are compared, each view is blurred along its own axes to the same
isotropic Gaussian resolution ``sigma`` (um): by ``sigma`` along its sharp axes (their PSF is much narrower)
and by ``sqrt(sigma^2 - sigma_axial^2)`` along its detection axis, whose PSF already has about
``sigma_axial``. Blurring in the view's own frame, before any resampling, keeps the blur aligned with the
PSF also when the views are rotated, and doubles as the anti-alias filter of a coarse level.

A coarse level does not need every input voxel: blocks of ``b`` voxels per axis are first averaged
(a box of variance ``(b^2 - 1) d^2 / 12``, taken off the Gaussian's), plane slab by plane slab, so a full-size
view is read once per level and never copied whole in floating point. ``b d <= sigma / 2``: a box average
aliases the detail it does not suppress; the samples of a spot of sigma one pixel, averaged in blocks of 2,
keep its centroid within 0.01 pixel, in blocks of 4 only within 0.4 pixel.

Optionally the view's slowly varying part (a much wider Gaussian) is subtracted: the views are lit and
attenuated differently, and a specimen's bright envelope would otherwise dominate their correlation (two
different specimens of the same size and place would correlate).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["SampledView", "view_at_resolution"]


@dataclass(frozen=True)
class SampledView:
    """Samples of a view in its own frame: voxel ``(k, j, i)`` at ``origin_um + voxel_um * (k, j, i)``."""

    values: np.ndarray
    voxel_um: tuple[float, float, float]
    origin_um: tuple[float, float, float]


def view_at_resolution(
    volume: np.ndarray,
    voxel_um: Sequence[float],
    sigma_um: float,
    *,
    axial_sigma_um: float,
    background_sigma_um: float | None = None,
) -> SampledView:
    """Blur a view to an isotropic Gaussian resolution ``sigma_um``, on a grid binned as far as that allows.

    Parameters
    ----------
    volume : ndarray
        The view, (z, y, x), z its detection axis.
    voxel_um : sequence of float
        Its voxel size (um).
    sigma_um : float
        Target resolution, Gaussian sigma (um), the same along every axis.
    axial_sigma_um : float
        Sigma the view's PSF already has along its z axis (its y and x are taken as sharp).
    background_sigma_um : float, optional
        When given, the blurred view minus its blur by this isotropic Gaussian (um) is returned: a band-pass that
        removes the slowly varying background (illumination, attenuation, the specimen's envelope).

    Returns
    -------
    SampledView
        float32 samples on the binned grid (voxel ``b d`` with ``b = max(1, floor(sigma / 2d))``, origin
        ``(b - 1) d / 2``, trailing incomplete blocks dropped), blurred per axis by the Gaussian that the PSF and
        the binning leave to reach ``sigma_um`` (and band-passed with ``background_sigma_um``).

    References
    ----------
    .. [1] Burt, P. J. & Adelson, E. H. (1983). The Laplacian pyramid as a compact image code. IEEE Transactions
       on Communications 31(4), 532-540 (blur, then subsample).
    """
    voxel = np.asarray(voxel_um, dtype=np.float64)
    if volume.ndim != 3 or voxel.shape != (3,):
        raise ValueError(f"view of shape {volume.shape}, voxel {tuple(voxel_um)}: expected a (z, y, x) volume and three sizes")
    if sigma_um <= 0:
        raise ValueError(f"target resolution {sigma_um} um: expected a positive Gaussian sigma")
    bins = [max(1, min(n, math.floor(sigma_um / (2 * d) + 1e-9))) for n, d in zip(volume.shape, voxel, strict=True)]
    binned = _block_means(volume, bins)
    coarse = voxel * np.asarray(bins)
    present = np.array([axial_sigma_um**2, 0.0, 0.0]) + (np.asarray(bins, dtype=np.float64) ** 2 - 1.0) / 12.0 * voxel**2
    residual = np.sqrt(np.maximum(sigma_um**2 - present, 0.0)) / coarse
    smoothed = ndimage.gaussian_filter(binned, residual, mode="nearest", output=np.float32)
    if background_sigma_um is not None:
        smoothed -= ndimage.gaussian_filter(smoothed, background_sigma_um / coarse, mode="nearest", output=np.float32)
    origin = (np.asarray(bins) - 1.0) / 2.0 * voxel
    return SampledView(smoothed, tuple(float(v) for v in coarse), tuple(float(o) for o in origin))


def _block_means(volume: np.ndarray, bins: Sequence[int]) -> np.ndarray:
    """float32 means of ``bins`` blocks, computed one slab of ``bins[0]`` planes at a time."""
    bz, by, bx = bins
    counts = [n // b for n, b in zip(volume.shape, bins, strict=True)]
    out = np.empty(counts, dtype=np.float32)
    for plane in range(counts[0]):
        slab = volume[plane * bz : (plane + 1) * bz, : counts[1] * by, : counts[2] * bx].astype(np.float32)
        out[plane] = slab.reshape(bz, counts[1], by, counts[2], bx).mean(axis=(0, 2, 4))
    return out
