"""Correction of one camera stack, streamed slab by slab through memory (the clusterPT inner loop).

Order of operations (ALGORITHMS.md §2.1): orient (crop / rotate / flip) -> dead-pixel correction
-> segmentation (of the dead-pixel corrected stack, as the original) -> background subtraction
-> min-intensity record -> masking -> projections -> write. Segmenting before the subtraction keeps
the adaptive threshold away from the zeros that clipping creates in the dark background.
The raw stack is read three times in slabs (statistics, segmentation input, output), so peak
memory is a few slabs plus 2-D maps, never a float copy of the volume.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from isoview_core.correction.background import check_frame_shape, scalar_background, subtract_background
from isoview_core.correction.config import CorrectionConfig
from isoview_core.correction.dead_pixels import (
    DefectivePixels,
    ZStatistics,
    detect_defective_pixels,
    replace_defective_pixels,
)
from isoview_core.correction.orientation import Orientation
from isoview_core.correction.projections import CoordinateMasks, MaxProjections
from isoview_core.correction.segmentation import ReducedSegmentation, ThresholdLevel, segment_full_resolution
from isoview_core.correction.stats import hazen_percentile, matlab_subsample

logger = logging.getLogger(__name__)


class PlaneSource(Protocol):
    """Anything that reads planes of a raw (Z, Y, X) uint16 stack: ``StackFile`` or ``ArraySource``."""

    @property
    def shape(self) -> tuple[int, int, int]: ...

    def read_planes(self, start: int, stop: int) -> np.ndarray: ...


class VolumeSink(Protocol):
    """Receives the corrected stack (and its mask) slab by slab, in plane order."""

    def write(self, first_plane: int, slab: np.ndarray, labels: np.ndarray | None = None) -> None: ...


class ArraySource:
    """A ``PlaneSource`` over an in-memory array (tests, notebooks, non-``.stack`` inputs)."""

    def __init__(self, volume: np.ndarray) -> None:
        self.volume = volume

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.volume.shape

    def read_planes(self, start: int, stop: int) -> np.ndarray:
        return np.array(self.volume[start:stop], dtype=np.uint16)


@dataclass
class StackCorrection:
    """Everything the correction of one stack measured, except the volume itself (it went to the sink)."""

    shape: tuple[int, int, int]
    background_value: float
    background_source: str
    defects: DefectivePixels | None
    min_intensity: float
    threshold: ThresholdLevel | None
    foreground_fraction: float
    projections: dict[str, np.ndarray]
    mask_projections: dict[str, np.ndarray]
    coordinate_masks: dict[str, np.ndarray]
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def min_intensity_record(self) -> list[float]:
        """``[mask_min, stack_background]`` when segmented, else ``[stack_background]``; last = background (§2.5)."""
        if self.threshold is None:
            return [self.min_intensity]
        return [self.threshold.mask_min, self.min_intensity]


def _slab_starts(planes: int, slab_planes: int) -> Iterator[tuple[int, int]]:
    for start in range(0, planes, slab_planes):
        yield start, min(planes, start + slab_planes)


def correct_stack(
    source: PlaneSource,
    *,
    config: CorrectionConfig | None = None,
    scaling: float = 1.0,
    background_frame: np.ndarray | None = None,
    background_path: Path | None = None,
    orientation: Orientation | None = None,
    sink: VolumeSink | None = None,
    progress: Callable[[int], None] | None = None,
) -> StackCorrection:
    """Correct one raw camera stack and stream the result to ``sink``.

    Parameters
    ----------
    source : PlaneSource
        The raw stack (``StackFile`` for ``.stack`` files, ``ArraySource`` for arrays).
    config : CorrectionConfig
        Correction parameters (spec defaults when omitted).
    scaling : float
        Axial step / lateral pixel size, for the anisotropic Gaussian.
    background_frame : ndarray, optional
        The camera's dark frame (raw orientation); when absent the background is estimated.
    background_path : Path, optional
        Where the dark frame came from, for error messages.
    orientation : Orientation, optional
        Read-time crop / rotation / flip.
    sink : VolumeSink, optional
        Receives corrected slabs and mask slabs (uint8) in order; nothing is written when None.
    progress : callable, optional
        Called with the number of raw planes processed in each pass step (3 passes over the stack).

    Returns
    -------
    StackCorrection
        Background, defects, min intensity, threshold, projections, coordinate masks, timings.
    """
    config = config or CorrectionConfig()
    orientation = orientation or Orientation()
    timings: dict[str, float] = {}
    first, last = orientation.plane_range(source.shape[0])
    shape = orientation.output_shape(source.shape)
    planes = shape[0]
    if planes == 0:
        raise ValueError("stack has no planes to correct")

    def oriented_slabs() -> Iterator[tuple[int, np.ndarray]]:
        for start, stop in _slab_starts(planes, config.slab_planes):
            yield start, orientation.apply(source.read_planes(first + start, first + stop))
            if progress is not None:
                progress(stop - start)

    frame = None
    if background_frame is not None and config.background_subtraction != "none" or config.background_subtraction == "image":
        if background_frame is None:
            raise ValueError(f"background_subtraction='image' needs a background frame ({background_path or 'none given'})")
        frame = orientation.apply(background_frame[None])[0]
        check_frame_shape(frame, shape[1:], background_path)

    # Pass 1: per-pixel statistics over z (and raw samples for a background estimate).
    tic = time.perf_counter()
    statistics = ZStatistics(shape[1:])
    raw_samples = []
    for start, slab in oriented_slabs():
        statistics.add(slab)
        if background_frame is None:
            samples = matlab_subsample(slab, config.subsample_factor, start)
            raw_samples.append(samples[samples > 0])
    if background_frame is not None:
        background_value, background_source = scalar_background(background_frame, config.background_file_percentile), "image"
    else:
        background_value, background_source = hazen_percentile(np.concatenate(raw_samples), config.background_percentile), "estimate"
    defects = None
    if config.median_kernel is not None:
        defects = detect_defective_pixels(
            statistics.std(),
            statistics.mean(),
            background_value,
            planes=statistics.count,
            kernel=config.median_kernel,
            method=config.defect_detection,
            std_sigmas=config.defect_std_sigmas,
        )
        logger.info("%d defective pixels (%.4f %%)", defects.count, 100 * defects.fraction)
        if frame is not None:
            frame = frame.copy()
            replace_defective_pixels(frame[None], defects, kernel=config.median_kernel)
    del statistics
    timings["statistics"] = time.perf_counter() - tic

    subtraction: np.ndarray | float | None
    if config.background_subtraction == "none":
        subtraction = None
    elif frame is not None:
        subtraction = frame
    else:
        subtraction = background_value

    def corrected_slabs() -> Iterator[tuple[int, np.ndarray]]:
        """Dead-pixel corrected slabs, not yet background-subtracted (what the original segments)."""
        for start, slab in oriented_slabs():
            if defects is not None:
                replace_defective_pixels(slab, defects, kernel=config.median_kernel)
            yield start, slab

    def subtract(slab: np.ndarray) -> None:
        if subtraction is not None:
            subtract_background(slab, subtraction)

    # Pass 2: min-intensity record and the segmentation input.
    tic = time.perf_counter()
    corrected_samples = []
    reduced = ReducedSegmentation(shape, config.segmentation_downsample) if config.segment and config.segmentation_downsample > 1 else None
    full_volume = np.empty(shape, dtype=np.uint16) if config.segment and reduced is None else None
    for start, slab in corrected_slabs():
        if reduced is not None:
            reduced.add(start, slab)
        elif full_volume is not None:
            full_volume[start : start + slab.shape[0]] = slab
        subtract(slab)
        samples = matlab_subsample(slab, config.subsample_factor, start)
        corrected_samples.append(samples[samples > 0])
    min_intensity = hazen_percentile(np.concatenate(corrected_samples), config.background_percentile)
    segmentation_options = dict(
        kernel=config.gauss_kernel,
        sigma=config.gauss_sigma,
        scaling=scaling,
        threshold=config.segment_threshold,
        mask_percentile=config.mask_percentile,
        subsample_factor=config.subsample_factor,
    )
    threshold = None
    full_mask = None
    if reduced is not None:
        threshold = reduced.compute(**segmentation_options)
    elif full_volume is not None:
        full_mask, threshold = segment_full_resolution(full_volume, splitting=config.splitting, **segmentation_options)
        del full_volume
    timings["segmentation"] = time.perf_counter() - tic

    # Pass 3: mask, project and write.
    tic = time.perf_counter()
    projections = MaxProjections(shape)
    mask_projections = MaxProjections(shape, dtype=np.dtype(np.uint8))
    coordinates = CoordinateMasks(shape)
    foreground = 0
    for start, slab in corrected_slabs():
        subtract(slab)
        mask = None
        if reduced is not None:
            mask = reduced.mask_slab(start, slab.shape[0])
        elif full_mask is not None:
            mask = full_mask[start : start + slab.shape[0]]
        labels = None
        if mask is not None:
            foreground += int(np.count_nonzero(mask))
            coordinates.add(start, mask)
            labels = mask.view(np.uint8)
            mask_projections.add(start, labels)
            if config.apply_segmentation_mask:
                slab *= mask
        projections.add(start, slab)
        if sink is not None:
            sink.write(start, slab, labels)
    timings["write"] = time.perf_counter() - tic

    segmented = threshold is not None
    return StackCorrection(
        shape=shape,
        background_value=background_value,
        background_source=background_source,
        defects=defects,
        min_intensity=min_intensity,
        threshold=threshold,
        foreground_fraction=foreground / float(np.prod(shape)) if segmented else 1.0,
        projections=projections.as_dict(),
        mask_projections=mask_projections.as_dict() if segmented else {},
        coordinate_masks={"xy": coordinates.xy, "xz": coordinates.xz} if segmented else {},
        timings_s=timings,
    )
