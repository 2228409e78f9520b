"""Correction of one camera stack, streamed slab by slab through memory (the clusterPT inner loop).

Order of operations (ALGORITHMS.md §2.1): orient (crop / rotate / flip) -> dead-pixel correction
-> segmentation (of the dead-pixel corrected stack, as the original) -> background subtraction
-> min-intensity record -> masking -> projections -> write. Segmenting before the subtraction keeps
the adaptive threshold away from the zeros that clipping creates in the dark background.

The raw stack is read twice, from maps of the page cache (never copied as read): pass 1 gathers per-pixel statistics
and the block means of the reduced-resolution segmentation, slab by slab (corrected afterwards for the defective pixels
found, from a sparse read of just those pixels); pass 2 corrects, masks, projects and writes a few planes at a time,
straight from the maps into a buffer of those planes. Peak memory is a mapped slab plus 2-D maps and the small reduced
volume, never a float copy of the stack.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from isoview_core.correction.background import (
    check_frame_shape,
    scalar_background,
)
from isoview_core.correction.config import CorrectionConfig
from isoview_core.correction.kernels import correct_and_project
from isoview_core.correction.dead_pixels import (
    DefectivePixels,
    ZStatistics,
    detect_defective_pixels,
    replace_defective_pixels,
    replacements,
)
from isoview_core.correction.orientation import Orientation
from isoview_core.correction.projections import CoordinateMasks
from isoview_core.correction.segmentation import (
    ReducedSegmentation,
    ThresholdLevel,
    segment_full_resolution,
)
from isoview_core.errors import StackContentError
from isoview_core.numerics.percentiles import (
    hazen_percentile,
    hazen_percentile_of_counts,
    matlab_subsample,
)
from isoview_core.numerics.projections import MaxProjections
from isoview_core.numerics.rounding import round_half_away

logger = logging.getLogger(__name__)


class PlaneSource(Protocol):
    """Anything that reads planes of a raw (Z, Y, X) uint16 stack: ``StackFile`` or ``ArraySource``."""

    @property
    def shape(self) -> tuple[int, int, int]: ...

    def read_planes(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray: ...

    def read_pixels(self, start: int, stop: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray: ...

    def mapped_planes(self, start: int, stop: int) -> AbstractContextManager[np.ndarray]: ...


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

    def read_planes(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            return np.array(self.volume[start:stop], dtype=np.uint16)
        out[...] = self.volume[start:stop]
        return out

    def read_pixels(self, start: int, stop: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return np.array(self.volume[start:stop, rows, cols], dtype=np.uint16)

    @contextmanager
    def mapped_planes(self, start: int, stop: int) -> Iterator[np.ndarray]:
        yield np.asarray(self.volume[start:stop], dtype=np.uint16)


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


STREAMED_PLANES = 4
"""Planes the correcting pass maps, corrects and hands to the sink at a time (the sink stores whole shards as they fill:
``OmeZarrWriter``); mapped pages count as resident memory while mapped."""


def _slab_starts(planes: int, slab_planes: int) -> Iterator[tuple[int, int]]:
    for start in range(0, planes, slab_planes):
        yield start, min(planes, start + slab_planes)


def correction_passes(config: CorrectionConfig) -> int:
    """How many times :func:`correct_stack` streams a stack: statistics, then correct-and-write, plus one to segment
    at full resolution (``segmentation_downsample=1``; the reduced segmentation works on the statistics pass)."""
    return 3 if config.segment and config.segmentation_downsample == 1 else 2


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
        Called with the number of raw planes processed in each pass step (:func:`correction_passes` passes over the stack).

    Returns
    -------
    StackCorrection
        Background, defects, min intensity, threshold, projections, coordinate masks, timings.
    """
    config = config or CorrectionConfig()
    orientation = orientation or Orientation()
    timings: dict[str, float] = {}
    first, _ = orientation.plane_range(source.shape[0])
    shape = orientation.output_shape(source.shape)
    planes = shape[0]
    if planes == 0:
        raise ValueError("stack has no planes to correct")
    kernel = config.median_kernel

    def oriented_slabs(writable: bool = True) -> Iterator[tuple[int, np.ndarray]]:
        """Oriented slabs in plane order: private copies when ``writable``, else read-only views.

        The copies share one buffer (a fresh 100+ MB array per slab costs more in page faults than the arithmetic
        done on it): consumers must not keep references to slabs.
        """
        read_buffer = np.empty((min(config.slab_planes, planes), *source.shape[1:]), dtype=np.uint16) if writable else None
        for start, stop in _slab_starts(planes, config.slab_planes):
            if writable:
                yield start, orientation.apply(source.read_planes(first + start, first + stop, out=read_buffer[: stop - start]))
            else:
                with source.mapped_planes(first + start, first + stop) as mapped:
                    yield start, orientation.apply(mapped)
            if progress is not None:
                progress(stop - start)

    frame = None
    if background_frame is not None and config.background_subtraction != "none" or config.background_subtraction == "image":
        if background_frame is None:
            raise ValueError(f"background_subtraction='image' needs a background frame ({background_path or 'none given'})")
        frame = orientation.apply(background_frame[None])[0]
        check_frame_shape(frame, shape[1:], background_path)

    # Pass 1: per-pixel statistics over z, raw samples for a background estimate, and the block
    # means that the reduced-resolution segmentation works on.
    tic = time.perf_counter()
    statistics = ZStatistics(shape[1:])
    reduced = ReducedSegmentation(shape, config.segmentation_downsample) if config.segment and config.segmentation_downsample > 1 else None
    raw_samples = []
    for start, slab in oriented_slabs(writable=False):
        statistics.add(slab)
        if reduced is not None:
            reduced.add(start, slab)
        statistics.advance(slab.shape[0])
        if background_frame is None:
            samples = matlab_subsample(slab, config.subsample_factor, start)
            raw_samples.append(samples[samples > 0])
    if not statistics.any():
        name = getattr(source, "path", "stack")
        raise StackContentError(f"{name}: every pixel of all {planes} planes is 0 (camera off, or no exposure?): nothing to correct")
    if background_frame is not None:
        background_value, background_source = scalar_background(background_frame, config.background_file_percentile), "image"
    else:
        background_value, background_source = hazen_percentile(np.concatenate(raw_samples), config.background_percentile), "estimate"
    maps = (statistics.std(), statistics.mean()) if kernel is not None else None
    counted_planes = statistics.count
    del statistics  # its sums (2 x 8 bytes per pixel), before the detection makes its maps
    defects = None
    if maps is not None:
        defects = detect_defective_pixels(
            *maps,
            background_value,
            planes=counted_planes,
            kernel=kernel,
            method=config.defect_detection,
            std_sigmas=config.defect_std_sigmas,
            overwrite_maps=True,
        )
        logger.info("%d defective pixels (%.4f %%)", defects.count, 100 * defects.fraction)
        if frame is not None:
            frame = frame.copy()
            replace_defective_pixels(frame[None], defects, kernel=kernel)
        del maps
    timings["statistics"] = time.perf_counter() - tic

    if config.background_subtraction == "none":
        subtraction = np.zeros(shape[1:], dtype=np.uint16)
    elif frame is not None:
        subtraction = frame.astype(np.uint16, copy=False)
    else:
        subtraction = np.full(shape[1:], round_half_away(background_value), dtype=np.uint16)

    def corrected_slabs() -> Iterator[tuple[int, np.ndarray]]:
        """Dead-pixel corrected slabs, not yet background-subtracted (what the original segments)."""
        for start, slab in oriented_slabs():
            if defects is not None:
                replace_defective_pixels(slab, defects, kernel=kernel)
            yield start, slab

    # Segmentation: of the dead-pixel corrected stack, before background subtraction, as the original.
    tic = time.perf_counter()
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
        if defects is not None and defects.count:
            rows, cols = defects.coordinates
            raw_rows, raw_cols = orientation.raw_coordinates(rows, cols, source.shape[1:])
            reduced.correct_defects(rows, cols, source.read_pixels(first, first + planes, raw_rows, raw_cols))
        threshold = reduced.compute(**segmentation_options)
    elif config.segment:
        full_volume = np.empty(shape, dtype=np.uint16)
        for start, slab in corrected_slabs():
            full_volume[start : start + slab.shape[0]] = slab
        full_mask, threshold = segment_full_resolution(full_volume, splitting=config.splitting, **segmentation_options)
        del full_volume
    timings["segmentation"] = time.perf_counter() - tic

    # Pass 2: correct, subtract, mask, project and write, a few planes at a time from maps of the raw planes.
    tic = time.perf_counter()
    projections = MaxProjections(shape)
    streamed_shape = (min(STREAMED_PLANES, planes), *shape[1:])
    slab_buffer, label_buffer = np.empty(streamed_shape, dtype=np.uint16), np.empty(streamed_shape, dtype=np.uint8)
    sample_counts = np.zeros(np.iinfo(np.uint16).max + 1, dtype=np.int64)
    apply_mask = threshold is not None and config.apply_segmentation_mask
    for start, stop in _slab_starts(planes, STREAMED_PLANES):
        slab, labels = slab_buffer[: stop - start], label_buffer[: stop - start]
        if threshold is not None:
            if reduced is not None:
                reduced.fill_labels(start, labels)
            else:
                labels[...] = full_mask[start:stop]
        with source.mapped_planes(first + start, first + stop) as mapped:
            raw = orientation.apply(mapped)
            correct_and_project(
                raw,
                replacements(raw, defects, kernel=kernel),
                subtraction,
                labels,
                apply_mask,
                (projections.xy, projections.xz, projections.yz),
                start,
                config.subsample_factor,
                sample_counts,
                slab,
            )
        if progress is not None:
            progress(stop - start)
        if sink is not None:
            sink.write(start, slab, labels if threshold is not None else None)
    min_intensity = hazen_percentile_of_counts(sample_counts, config.background_percentile)

    mask_projections: dict[str, np.ndarray] = {}
    coordinate_masks: dict[str, np.ndarray] = {}
    foreground_fraction = 1.0
    if reduced is not None:
        mask_projections, coordinate_masks = reduced.mask_projections(), reduced.coordinate_masks()
        foreground_fraction = reduced.foreground_voxels() / float(np.prod(shape))
    elif full_mask is not None:
        mask_projections, coordinate_masks = _full_mask_summaries(full_mask)
        foreground_fraction = float(np.count_nonzero(full_mask)) / full_mask.size
    timings["write"] = time.perf_counter() - tic

    return StackCorrection(
        shape=shape,
        background_value=background_value,
        background_source=background_source,
        defects=defects,
        min_intensity=min_intensity,
        threshold=threshold,
        foreground_fraction=foreground_fraction,
        projections=projections.as_dict(),
        mask_projections=mask_projections,
        coordinate_masks=coordinate_masks,
        timings_s=timings,
    )


def _full_mask_summaries(mask: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Projections and coordinate masks of a full-resolution mask."""
    projections = MaxProjections(mask.shape, dtype=np.dtype(np.uint8))
    projections.add(0, mask.view(np.uint8))
    coordinates = CoordinateMasks(mask.shape)
    coordinates.add(0, mask)
    return projections.as_dict(), {"xy": coordinates.xy, "xz": coordinates.xz}
