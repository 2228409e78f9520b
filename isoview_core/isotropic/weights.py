"""Per-voxel weights of a view in the fusion: border blending and content (local image information).

Both are evaluated on (a region of) the isotropic output grid, on the view as resampled there:

* **Border blending** fades a view to zero towards the faces of its own volume, with a raised-cosine ramp of
  ``width_um`` measured in the view's frame, so that where a view ends inside the output grid the fused volume
  passes smoothly to the other view instead of showing a seam.
* **Content** is the local variance of the view's detail, ``G(sigma_2) * (I - G(sigma_1) * I)^2``: Preibisch's
  fast approximation of the local image entropy. The sharper view of a region (its own lateral axes, or the side
  nearer its detection objective) has more high-frequency energy there and gets more weight.

References
----------
.. [1] Preibisch, S., Rohlfing, T., Hasak, M. P. & Tomancak, P. (2008). Mosaicing of single plane illumination
   microscopy images using groupwise registration and fast content-based image fusion. Proc. SPIE 6914,
   Medical Imaging 2008: Image Processing, 69140E.
.. [2] Preibisch, S. et al. (2014). Efficient Bayesian-based multiview deconvolution. Nat. Methods 11, 645-648.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from isoview_core.isotropic.geometry import IsotropicGrid, index_to_physical

__all__ = ["GAUSSIAN_TRUNCATE", "blending_weights", "content_weights", "content_weights_halo"]

GAUSSIAN_TRUNCATE = 4.0
"""Gaussian kernels of the content weights reach this many sigmas (``scipy.ndimage``'s default)."""


def blending_weights(
    view_shape: Sequence[int], view_voxel_um: Sequence[float], view_to_output: np.ndarray, grid: IsotropicGrid, *, width_um: float
) -> np.ndarray:
    """A view's border-blending weights on (a region of) the output grid.

    The view's volume spans half a voxel beyond its first and last samples on every axis. Along each of its axes
    ``a``, the weight rises as ``(1 - cos(pi d_a / width)) / 2`` with ``d_a`` the distance (um, in the view's
    frame) from the nearer face, and is 1 from ``width_um`` inwards; the weight is the product over the three
    axes, and 0 outside the volume.

    Parameters
    ----------
    view_shape, view_voxel_um : sequence
        Shape (z, y, x) and voxel size (um) of the view.
    view_to_output : ndarray
        4 x 4 affine from the view's frame to the output frame (identity for VW00, ``vw90_to_vw00`` for VW90).
    grid : IsotropicGrid
        The grid (or a block of it: ``origin_um`` places it) on which the weights are wanted.
    width_um : float
        Width of the ramp; it should exceed a few output voxels and the content weights' sigmas.

    Returns
    -------
    ndarray
        float32 weights in [0, 1] of ``grid.shape``; the samples on the view's outermost voxels keep a small
        positive weight (half a voxel from the face), so a view alone still fills the grid up to its edges.

    References
    ----------
    .. [1] Preibisch, S., Saalfeld, S. & Tomancak, P. (2009). Globally optimal stitching of tiled 3D microscopic
       image acquisitions. Bioinformatics 25(11), 1463-1465 (blending of overlapping views at their borders).
    """
    if width_um <= 0:
        raise ValueError(f"blending width {width_um} um: expected a positive distance")
    voxel = np.asarray(view_voxel_um, dtype=np.float64)
    to_input = np.linalg.inv(index_to_physical(voxel)) @ np.linalg.inv(view_to_output) @ grid.index_to_physical()
    indices = [np.arange(n, dtype=np.float64) for n in grid.shape]
    weights = np.ones(grid.shape, dtype=np.float32)
    for axis, (row, size) in enumerate(zip(to_input[:3], view_shape, strict=True)):
        position = row[0] * indices[0][:, None, None] + row[1] * indices[1][None, :, None] + row[2] * indices[2][None, None, :] + row[3]
        distance = np.minimum(position + 0.5, size - 0.5 - position) * voxel[axis]
        ramp = np.clip(distance / width_um, 0.0, 1.0)
        weights *= np.where(distance > 0, 0.5 - 0.5 * np.cos(math.pi * ramp), 0.0).astype(np.float32)
    return weights


def content_weights(values: np.ndarray, voxel_um: float, sigmas_um: tuple[float, float]) -> np.ndarray:
    """Preibisch's content-based (local entropy) weights of a resampled view, ``G(s2) * (I - G(s1) * I)^2``.

    Voxels outside the view's footprint (``nan``) carry no information: both Gaussian means are normalised
    convolutions over the footprint only, so the weight near the footprint's edge is the local variance of what
    the view does see, not of its jump to nothing. Beyond the array, the filters see zeros outside the
    footprint: a block of a larger grid gives the values of the whole grid's computation at every voxel at
    least :func:`content_weights_halo` voxels inside it, and on the whole grid's own faces.

    Parameters
    ----------
    values : ndarray
        (z, y, x) view resampled on an isotropic grid, ``nan`` outside its footprint.
    voxel_um : float
        The grid's voxel (um).
    sigmas_um : tuple of float
        ``(sigma_1, sigma_2)`` (um): the high-pass that separates detail from the local mean, and the
        neighbourhood over which its energy is averaged.

    Returns
    -------
    ndarray
        float32 local variance (the view's units squared), 0 outside the footprint.

    References
    ----------
    .. [1] Preibisch, S., Rohlfing, T., Hasak, M. P. & Tomancak, P. (2008). Mosaicing of single plane
       illumination microscopy images using groupwise registration and fast content-based image fusion.
       Proc. SPIE 6914, 69140E.
    """
    if values.ndim != 3:
        raise ValueError(f"values of shape {values.shape}: expected a (z, y, x) volume")
    if min(sigmas_um) <= 0:
        raise ValueError(f"content sigmas {sigmas_um} um: expected two positive Gaussian sigmas")
    footprint = np.isfinite(values)
    mask = footprint.astype(np.float32)
    signal = np.where(footprint, values, 0.0).astype(np.float32)
    local_mean = _masked_mean(signal, mask, sigmas_um[0] / voxel_um)
    detail = np.where(footprint, (signal - local_mean) ** 2, 0.0).astype(np.float32)
    return np.where(footprint, _masked_mean(detail, mask, sigmas_um[1] / voxel_um), 0.0).astype(np.float32)


def content_weights_halo(voxel_um: float, sigmas_um: tuple[float, float]) -> int:
    """Voxels a block needs on each side for :func:`content_weights` to equal the whole grid's computation."""
    return sum(int(GAUSSIAN_TRUNCATE * sigma / voxel_um + 0.5) for sigma in sigmas_um)


def _masked_mean(signal: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised convolution: the Gaussian mean of ``signal`` over the voxels where ``mask`` is 1 (0 where none)."""
    total = ndimage.gaussian_filter(signal, sigma, mode="constant", truncate=GAUSSIAN_TRUNCATE, output=np.float32)
    weight = ndimage.gaussian_filter(mask, sigma, mode="constant", truncate=GAUSSIAN_TRUNCATE, output=np.float32)
    return np.divide(total, weight, out=np.zeros_like(total), where=weight > 1e-6)
