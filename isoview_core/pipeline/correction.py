"""Drivers of the correction: correct one camera stack, a timepoint, a whole acquisition (selection, reports).

Reads the raw stacks and their backgrounds, runs the correction stage (``isoview_core.correction``)
and writes the volume, mask, projections and record where :mod:`isoview_core.layout` says; the
record is written last and marks a stack done, so finished stacks are skipped and a bad stack is one
error of its timepoint.
"""

from __future__ import annotations

import logging
import shutil
import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from pydantic import BaseModel

from isoview_core.acquisition import (
    Acquisition,
    CameraStack,
    TimepointFiles,
    discover_acquisition,
)
from isoview_core.config import ProcessingConfig
from isoview_core.correction.background import read_background_frame
from isoview_core.correction.config import CorrectionConfig
from isoview_core.correction.orientation import correction_orientation
from isoview_core.correction.stack_correction import (
    StackCorrection,
    correct_stack,
    correction_passes,
)
from isoview_core.errors import IsoviewError
from isoview_core.formats import StackFile, write_volume
from isoview_core.formats.atomic import atomic_output, write_text_atomically
from isoview_core.formats.omezarr import OmeZarrWriter
from isoview_core.formats.tiff import write_tiff
from isoview_core.layout import (
    CorrectedPaths,
    configured_corrected_paths,
    corrected_channel_xml,
    is_stack_corrected,
    output_timepoint_folder,
)
from isoview_core.pipeline.heap import heap_kept_for_run, releases_free_memory
from isoview_core.pipeline.parallel import CORRECTION_STACKS_PER_WORKER, InlineExecutor, worker_count, worker_pool
from isoview_core.pipeline.series import update_corrected_series
from isoview_core.records import CorrectedStackRecord

logger = logging.getLogger(__name__)


class _ArraySink:
    """Collects the corrected stack in memory for formats written in one go (KLB, TIFF)."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.volume = np.empty(shape, dtype=np.uint16)
        self.labels: np.ndarray | None = None

    def write(self, first_plane: int, slab: np.ndarray, labels: np.ndarray | None = None) -> None:
        self.volume[first_plane : first_plane + slab.shape[0]] = slab
        if labels is not None:
            if self.labels is None:
                self.labels = np.zeros(self.volume.shape, dtype=np.uint8)
            self.labels[first_plane : first_plane + labels.shape[0]] = labels


def _stored_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())


def _background_frame(acquisition: Acquisition, stack: CameraStack, config: ProcessingConfig, cameras: list[int]) -> tuple[np.ndarray | None, Path | None]:
    index = stack.camera if config.correction.background_index_mode == "camera_id" else cameras.index(stack.camera)
    path = acquisition.background_path(stack.specimen, index)
    if path is None or config.correction.background_subtraction == "none" and config.correction.median_kernel is None:
        return None, path
    return read_background_frame(path), path


@releases_free_memory
def correct_camera_stack(
    acquisition: Acquisition,
    stack: CameraStack,
    config: ProcessingConfig,
    *,
    cameras: list[int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> CorrectedStackRecord:
    """Correct one raw camera stack and write its volume, mask, projections and record.

    Parameters
    ----------
    acquisition : Acquisition
        The raw acquisition the stack belongs to (for its background frame).
    stack : CameraStack
        The raw stack and its XML metadata.
    config : ProcessingConfig
        Correction and output settings.
    cameras : list of int, optional
        Cameras processed together (for ``background_index_mode="position"``); default: all pairs.
    progress : callable, optional
        Called with numbers of raw planes processed (:func:`correction_passes` passes per stack).

    Returns
    -------
    CorrectedStackRecord
        Also written as ``<stem>.json`` beside the volume, last, once everything else is complete.
    """
    tic = time.perf_counter()
    paths = configured_corrected_paths(config, stack.specimen, stack.timepoint, stack.camera, stack.channel)
    dims = stack.dimensions
    source = StackFile(stack.path, dims.width, dims.height, expected_depth=dims.depth, xml_name=stack.xml_name)
    cameras = cameras or sorted({camera for pair in config.camera_pairs for camera in pair})
    frame, frame_path = _background_frame(acquisition, stack, config, cameras)
    correction = config.correction
    orientation = correction_orientation(correction, stack.camera, flip=stack.camera in config.last_cameras())
    shape = orientation.output_shape(source.shape)
    voxel_size = stack.metadata.voxel_size_um
    attributes = {
        "specimen": stack.specimen,
        "timepoint": stack.timepoint,
        "camera": stack.camera,
        "channel": stack.channel,
        "source": str(stack.path),
        "xml": stack.metadata.attributes,
    }
    paths.folder.mkdir(parents=True, exist_ok=True)
    options = dict(config=correction, scaling=stack.metadata.scaling, background_frame=frame, background_path=frame_path, orientation=orientation, progress=progress)
    if config.output.format == "zarr":
        label_name = "segmentation" if correction.segment else None
        with OmeZarrWriter(
            paths.volume,
            shape,
            voxel_size_um=voxel_size,
            codec=config.output.codec,
            pyramid_levels=config.output.pyramid_levels,
            label_name=label_name,
            attributes=attributes,
            # the record is written last: a volume without one was left by an interrupted run and is replaced
            overwrite=config.overwrite or not paths.record.is_file(),
        ) as writer:
            result = correct_stack(source, sink=writer, **options)
    else:
        sink = _ArraySink(shape)
        result = correct_stack(source, sink=sink, **options)
        write_volume(paths.volume, sink.volume, voxel_size_um=voxel_size, attributes=attributes, overwrite=True)
        if sink.labels is not None:
            write_volume(paths.mask, sink.labels, voxel_size_um=voxel_size, overwrite=True)
    _write_side_outputs(paths, result, voxel_size)
    stored = _stored_bytes(paths.volume)
    raw_bytes = int(np.prod(source.shape)) * 2
    result.timings_s["total"] = time.perf_counter() - tic
    record = _record(stack, paths, result, voxel_size, raw_bytes, stored)
    write_text_atomically(paths.record, record.model_dump_json(indent=2))
    if config.output.corrected_series and config.output.format == "zarr":
        update_corrected_series(config.resolved_corrected_dir(), stack.specimen, stack.camera, stack.channel)
    return record


def _write_side_outputs(paths: CorrectedPaths, result: StackCorrection, voxel_size: tuple[float, float, float]) -> None:
    for name, image in result.projections.items():
        write_tiff(paths.projection(name), image, overwrite=True)
    for name, image in result.mask_projections.items():
        write_tiff(paths.projection(name, mask=True), image, overwrite=True)
    for name, image in result.coordinate_masks.items():
        write_tiff(paths.coordinate_mask(name), image, overwrite=True)


def _record(stack: CameraStack, paths: CorrectedPaths, result: StackCorrection, voxel_size, raw_bytes: int, stored: int) -> CorrectedStackRecord:
    defects = result.defects
    return CorrectedStackRecord(
        specimen=stack.specimen,
        timepoint=stack.timepoint,
        camera=stack.camera,
        channel=stack.channel,
        source=str(stack.path),
        volume=paths.volume.name,
        format=paths.format,
        shape=result.shape,
        voxel_size_um=voxel_size,
        background_value=result.background_value,
        background_source=result.background_source,
        defective_pixels=defects.count if defects else 0,
        defective_fraction=defects.fraction if defects else 0.0,
        std_threshold=defects.std_threshold if defects else None,
        mean_threshold=defects.mean_threshold if defects else None,
        min_intensity=result.min_intensity_record,
        threshold_level=result.threshold.level if result.threshold else None,
        foreground_fraction=result.foreground_fraction,
        raw_bytes=raw_bytes,
        stored_bytes=stored,
        compression_ratio=raw_bytes / max(stored, 1),
        timings_s={key: round(value, 4) for key, value in result.timings_s.items()},
    )


class TimepointReport(BaseModel):
    """Outcome of correcting one timepoint: records of what was done, what was skipped, what failed."""

    specimen: int
    timepoint: int
    records: list[CorrectedStackRecord] = []
    skipped: list[str] = []
    errors: list[str] = []


def correct_timepoint(
    config: ProcessingConfig,
    specimen: int,
    timepoint: int,
    *,
    acquisition: Acquisition | None = None,
    progress: Callable[[int], None] | None = None,
) -> TimepointReport:
    """Correct every camera stack of one timepoint; finished stacks are skipped unless ``overwrite``.

    A bad stack (truncated, wrong size, unreadable background...) becomes a one-line entry in
    ``errors`` and the other stacks are still processed. Missing stacks declared by the XML are
    errors too, and so is a channel whose XML is missing or unreadable (one line for all its
    stacks; the other channels are corrected). Raises only when the timepoint itself cannot be
    found (unknown layout, specimen or timepoint).
    """
    acquisition = acquisition or discover_acquisition(config.acquisition, config.layout)
    return _collect(_submit_timepoint(InlineExecutor(), config, acquisition, specimen, timepoint, progress=progress))


@dataclass
class _SubmittedTimepoint:
    """A timepoint whose stacks are submitted: its report so far and one future per stack to correct."""

    report: TimepointReport
    jobs: list[Future]


def _submit_timepoint(
    pool: Executor,
    config: ProcessingConfig,
    acquisition: Acquisition,
    specimen: int,
    timepoint: int,
    *,
    progress: Callable[[int], None] | None = None,
) -> _SubmittedTimepoint:
    """Report the timepoint's file errors and finished stacks, and submit its other stacks to `pool`.

    Each stack streams its planes to `progress`, from the thread that corrects it.
    """
    files = acquisition.timepoint(specimen, timepoint)
    report = TimepointReport(specimen=specimen, timepoint=timepoint, errors=timepoint_file_errors(files))
    for error in report.errors:
        logger.error("%s", error)
    copy_channel_xmls(config, files)
    jobs = []
    for stack in files.stacks:
        paths = configured_corrected_paths(config, specimen, timepoint, stack.camera, stack.channel)
        planes = correction_passes(config.correction) * stack.dimensions.depth
        if not config.overwrite and is_stack_corrected(paths):
            report.skipped.append(paths.stem)
            if progress is not None:
                progress(planes)
        else:
            jobs.append(pool.submit(correct_camera_stack, acquisition, stack, config, progress=progress))
    return _SubmittedTimepoint(report, jobs)


def _collect(submitted: _SubmittedTimepoint) -> TimepointReport:
    """Wait for a submitted timepoint's stacks: records in order, a bad stack one line of ``errors``."""
    report = submitted.report
    for future in submitted.jobs:
        try:
            report.records.append(future.result())
        except IsoviewError as error:
            logger.error("%s", error)
            report.errors.append(str(error))
    return report


def timepoint_file_errors(files: TimepointFiles) -> list[str]:
    """The problems of a timepoint's files, one line each, found before any stack is read.

    Each stack the XMLs declare but the disk lacks, and each channel whose XML is missing or
    unreadable with the cameras it leaves uncorrected, e.g.
    ``.../TM00001/ch0.xml: malformed XML (...); CM00, CM01 of CHN00 not corrected``.
    """
    errors = list(files.missing)
    for channel in files.unreadable:
        cameras = ", ".join(f"CM{camera:02d}" for camera in channel.cameras)
        errors.append(f"{channel.message}; {cameras} of CHN{channel.channel:02d} not corrected" if cameras else channel.message)
    return errors


def copy_channel_xmls(config: ProcessingConfig, files: TimepointFiles) -> None:
    """Copy the timepoint's channel XMLs beside its corrected volumes (``SPM00_TM000000_CHN00.xml``)."""
    root = config.resolved_corrected_dir()
    output_timepoint_folder(root, files.specimen, files.timepoint).mkdir(parents=True, exist_ok=True)
    for channel, xml in files.channel_xmls.items():
        with atomic_output(corrected_channel_xml(root, files.specimen, files.timepoint, channel), overwrite=True) as partial:
            shutil.copyfile(xml, partial)


def selected_timepoints(config: ProcessingConfig, acquisition: Acquisition) -> Iterator[tuple[int, int]]:
    """(specimen, timepoint) pairs selected by the config, in acquisition order."""
    specimens = config.specimens if config.specimens is not None else acquisition.specimens()
    for specimen in specimens:
        available = acquisition.timepoints(specimen)
        wanted = available if config.timepoints is None else [t for t in config.timepoints if t in set(available)]
        for timepoint in wanted:
            yield specimen, timepoint


def planned_planes(acquisition: Acquisition, selection: list[tuple[int, int]], correction: CorrectionConfig) -> int:
    """Raw planes the correction will stream (:func:`correction_passes` passes per stack), for progress bars."""
    total = 0
    for specimen, timepoint in selection:
        try:
            files: TimepointFiles = acquisition.timepoint(specimen, timepoint)
        except IsoviewError:
            continue
        total += sum(correction_passes(correction) * stack.dimensions.depth for stack in files.stacks)
    return total


def process_dataset(
    config: ProcessingConfig,
    *,
    workers: int | None = 1,
    progress: Callable[[int], None] | None = None,
    on_timepoint: Callable[[TimepointReport], None] | None = None,
) -> list[TimepointReport]:
    """Correct every selected timepoint of an acquisition to its output folder.

    Parameters
    ----------
    config : ProcessingConfig
        Acquisition, selection, correction and output settings.
    workers : int or None
        Stacks corrected at once, in worker threads (1: in this process; None: as many as the
        cores and the memory allow, :func:`~isoview_core.pipeline.parallel.worker_count`).
    progress : callable, optional
        Called with numbers of raw planes processed (a stack's at once when it ran in a worker).
    on_timepoint : callable, optional
        Called with each timepoint's report as soon as it is done.

    Returns
    -------
    list of TimepointReport
        One per timepoint; a timepoint that cannot be read at all (its folder vanished...) gets a
        report whose ``errors`` says why, and the others are still processed. A channel whose XML
        is missing or unreadable is one error of its timepoint, whose other channels are corrected.
    """
    acquisition = discover_acquisition(config.acquisition, config.layout)
    selection = list(selected_timepoints(config, acquisition))
    count = worker_count(workers, stack_bytes=largest_stack_bytes(acquisition, selection), stacks_per_worker=CORRECTION_STACKS_PER_WORKER)
    logger.info("correcting %d timepoints with %d workers", len(selection), count)
    reports = []
    # the jobs reuse the memory earlier jobs freed (the workers' together when heap.share_main_heap was called)
    with heap_kept_for_run(), worker_pool(count) as pool:
        submitted = []
        for specimen, timepoint in selection:
            try:
                submitted.append(_submit_timepoint(pool, config, acquisition, specimen, timepoint, progress=progress))
            except IsoviewError as error:
                logger.error("%s", error)
                submitted.append(_SubmittedTimepoint(TimepointReport(specimen=specimen, timepoint=timepoint, errors=[str(error)]), []))
        for timepoint in submitted:
            reports.append(_collect(timepoint))
            if on_timepoint is not None:
                on_timepoint(reports[-1])
    return reports


def largest_stack_bytes(acquisition: Acquisition, selection: list[tuple[int, int]]) -> int:
    """Bytes of the largest raw stack of the selected timepoints (what a worker's memory scales with)."""
    largest = 0
    for specimen, timepoint in selection:
        try:
            stacks = acquisition.timepoint(specimen, timepoint).stacks
        except IsoviewError:
            continue
        largest = max([largest, *(stack.expected_bytes for stack in stacks)])
    return largest
