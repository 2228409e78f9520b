"""Adaptive slab around the transition surface, the data both registration methods start from (§3.7 steps 1-3)."""

from __future__ import annotations

import logging

import numpy as np

from isoview_core.numerics.percentiles import hazen_percentile, matlab_subsample

__all__ = ["extract_slab", "slab_background_offset", "slab_half_widths"]

logger = logging.getLogger(__name__)


def slab_half_widths(transition_map: np.ndarray, planes: int, half_width: int) -> tuple[int, int]:
    """Slab extent ``(L, U)`` below and above the transition plane (§3.7 step 1).

    ``L = min(K, m_min - 1)``, ``U = min(K, Z - m_max)`` with ``m_min`` / ``m_max`` the smallest
    non-zero and the largest value of the map, so that every slab plane exists.

    Parameters
    ----------
    transition_map : ndarray
        (Y, X) 1-based transition planes, 0 = empty; at least one non-zero.
    planes : int
        ``Z``.
    half_width : int
        ``K`` (``registration_slab_cameras``; 0 = the surface plane only).

    Returns
    -------
    tuple of int
        ``(L, U)``; the slab has ``L + U + 1`` planes.
    """
    values = transition_map[transition_map > 0]
    if values.size == 0:
        raise ValueError("the transition map is empty: no slab to extract")
    return min(half_width, int(values.min()) - 1), min(half_width, planes - int(values.max()))


def extract_slab(volume: np.ndarray, transition_map: np.ndarray, lower: int, upper: int) -> np.ndarray:
    """Voxels around the transition surface: ``S[j, y, x] = V[avg(y, x) - 1 - L + j, y, x]`` (§3.7 step 2).

    Parameters
    ----------
    volume : ndarray
        (Z, Y, X) stack.
    transition_map : ndarray
        (Y, X) 1-based transition planes ``avg``, 0 = empty.
    lower, upper : int
        ``L`` and ``U`` from :func:`slab_half_widths`.

    Returns
    -------
    ndarray
        (L + U + 1, Y, X), ``volume``'s dtype, zero where the map is 0.
    """
    empty = transition_map == 0
    first = np.where(empty, 0, transition_map.astype(np.intp) - 1 - lower)
    if int(first[~empty].min(initial=0)) < 0 or int(first.max()) + lower + upper >= volume.shape[0]:
        raise ValueError(f"slab [-{lower}, +{upper}] around the transition map leaves the {volume.shape[0]} planes")
    slab = np.empty((lower + upper + 1, *transition_map.shape), dtype=volume.dtype)
    rows, cols = np.indices(transition_map.shape, sparse=True)
    for j in range(slab.shape[0]):
        slab[j] = volume[first + j, rows, cols]
        slab[j][empty] = 0
    return slab


def slab_background_offset(reference_slab: np.ndarray, second_slab: np.ndarray, *, percentile: float, subsample: int) -> float:
    """Common background of the two slabs (§3.7 step 3).

    ``prctile`` (Hazen rule) of the non-zero values of every ``subsample``-th voxel of each slab
    in MATLAB linear order, pooled. 0.0 when both slabs are empty.
    """
    pooled = np.concatenate(
        [values[values > 0] for values in (matlab_subsample(reference_slab, subsample), matlab_subsample(second_slab, subsample))]
    )
    if pooled.size == 0:
        logger.warning("registration slabs hold no non-zero voxel; slab background offset 0")
        return 0.0
    return hazen_percentile(pooled, percentile)
