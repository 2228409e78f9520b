"""Backgrounds subtracted from the two cameras of a pair before blending (ALGORITHMS.md §3.8).

Segmented data take each camera's stack background from its min-intensity record; unsegmented data
pool a percentile of both stacks. The intensity correction (:mod:`isoview_core.fusion.intensity`)
subtracts them before it compares and scales the cameras.
"""

from __future__ import annotations

import numpy as np

from isoview_core.fusion.config import FusionConfig
from isoview_core.numerics.percentiles import hazen_percentile, matlab_subsample


def subtracts_background(config: FusionConfig) -> bool:
    """Whether the stacks are background-subtracted before blending (§3.8, §6 item 22).

    The original couples the subtraction to the intensity correction: only when the mode is not
    ``"none"``. ``config.subtract_background`` True / False overrides the coupling.
    """
    if config.subtract_background is not None:
        return config.subtract_background
    return config.intensity_correction_mode != "none"


def pooled_background(reference: np.ndarray, second: np.ndarray, *, percentile: float = 5.0, subsample: int = 100) -> float:
    """Pooled background of unsegmented data (§3.8, ``dataType = 0``).

    Parameters
    ----------
    reference, second : ndarray
        (Z, Y, X) camera 1 and the *transformed* camera 2 (its zero fill drops out).
    percentile : float
        ``fusion_background_percentile`` (MATLAB ``prctile``, Hazen rule).
    subsample : int
        ``fusion_subsample_stacks``: every n-th voxel in MATLAB linear order.

    Returns
    -------
    float
        Percentile of the non-zero sub-samples of both stacks together.
    """
    samples = [matlab_subsample(volume, subsample) for volume in (reference, second)]
    pooled = np.concatenate([item[item > 0] for item in samples])
    return hazen_percentile(pooled, percentile)


def fusion_backgrounds(
    config: FusionConfig,
    *,
    min_intensity_records: tuple[list[float], list[float]] | None = None,
    reference: np.ndarray | None = None,
    second: np.ndarray | None = None,
) -> tuple[float, float]:
    """Backgrounds ``(bg1, bg2)`` subtracted from the two cameras before blending (§3.8).

    Parameters
    ----------
    config : FusionConfig
        ``data_type``, ``intensity_correction_mode``, ``subtract_background``,
        ``fusion_background_percentile``, ``fusion_subsample_stacks``.
    min_intensity_records : tuple of list of float, optional
        Segmented data: the min-intensity records of camera 1 and camera 2 of the fused
        timepoint; each camera uses the record's last element (the stack background, §2.5).
    reference, second : ndarray, optional
        Unsegmented data: camera 1 and the transformed camera 2, for the pooled percentile.

    Returns
    -------
    tuple of float
        ``(0.0, 0.0)`` when no background is subtracted (:func:`subtracts_background`).

    Raises
    ------
    ValueError
        If the inputs that ``data_type`` needs are missing.
    """
    if not subtracts_background(config):
        return 0.0, 0.0
    if config.data_type == "segmented":
        if min_intensity_records is None or not all(min_intensity_records):
            raise ValueError("segmented data: the backgrounds come from both cameras' min-intensity records, which are missing")
        return float(min_intensity_records[0][-1]), float(min_intensity_records[1][-1])
    if reference is None or second is None:
        raise ValueError("unsegmented data: the pooled background needs both camera stacks")
    background = pooled_background(
        reference, second, percentile=config.fusion_background_percentile, subsample=config.fusion_subsample_stacks
    )
    return background, background
