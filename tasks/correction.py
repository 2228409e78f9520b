"""Prefect task: correct one camera stack (a thin wrapper over ``isoview_core``; passes paths, not volumes)."""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from isoview_core.acquisition import discover_acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.correction.timepoint import CorrectedStackRecord, correct_camera_stack


@task(name="correct-stack", task_run_name="correct SPM{specimen:02d} TM{timepoint:06d} CM{camera:02d} CHN{channel:02d}", retries=1, retry_delay_seconds=5)
def correct_stack_task(config: ProcessingConfig, specimen: int, timepoint: int, camera: int, channel: int) -> CorrectedStackRecord:
    """Correct the raw stack of one camera and channel and write its OME-Zarr, projections and record."""
    acquisition = discover_acquisition(config.acquisition, config.layout)
    files = acquisition.timepoint(specimen, timepoint)
    [stack] = [s for s in files.stacks if s.camera == camera and s.channel == channel]
    record = correct_camera_stack(acquisition, stack, config)
    get_run_logger().info(
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
