"""Prefect task: correct one camera stack (a thin wrapper over ``isoview_core``; passes paths, not volumes)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.logging import get_run_logger

from isoview_core.acquisition import CameraStack, discover_acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.layout import (
    CorrectedPaths,
    configured_corrected_paths,
    is_stack_corrected,
)
from isoview_core.pipeline.correction import correct_camera_stack
from isoview_core.records import CorrectedStackRecord, load_record
from isoview_core.service.journal import record_work
from tasks.caching import finished_output_cache_key
from tasks.retries import TRANSIENT_RETRIES


def _stack_paths(config: ProcessingConfig, stack: CameraStack) -> CorrectedPaths:
    """Where the corrected outputs of `stack` go."""
    return configured_corrected_paths(config, stack.specimen, stack.timepoint, stack.camera, stack.channel)


def _stack_files(config: ProcessingConfig, stack: CameraStack) -> tuple[list[Path], list[Path]]:
    """The cache key's files: the raw stack in; the corrected volume and its record (written last) out."""
    paths = _stack_paths(config, stack)
    return [stack.path], [paths.volume, paths.record]


@task(
    name="correct-stack",
    task_run_name="correct SPM{stack.specimen:02d} TM{stack.timepoint:06d} CM{stack.camera:02d} CHN{stack.channel:02d}",
    **TRANSIENT_RETRIES,
    persist_result=True,
    cache_key_fn=finished_output_cache_key(_stack_files),
)
def correct_stack_task(config: ProcessingConfig, stack: CameraStack) -> CorrectedStackRecord:
    """Correct the raw stack of one camera and channel and write its OME-Zarr, projections and record."""
    logger = get_run_logger()
    paths = _stack_paths(config, stack)
    if not config.overwrite and is_stack_corrected(paths):
        logger.info("%s: already corrected", paths.volume)
        return load_record(paths.record)
    acquisition = discover_acquisition(config.acquisition, config.layout)
    record = correct_camera_stack(acquisition, stack, config)
    record_work(config, "corrected", specimen=stack.specimen, timepoint=stack.timepoint, camera=stack.camera, channel=stack.channel)
    logger.info(
        "%s: %d defective pixels, background %.1f (%s), foreground %.1f %%, ratio %.2f, %.1f s",
        record.volume,
        record.defective_pixels,
        record.background_value,
        record.background_source,
        100 * record.foreground_fraction,
        record.compression_ratio,
        record.timings_s["total"],
    )
    return record
