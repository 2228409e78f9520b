"""Prefect task: archive one raw camera stack losslessly, verify it, optionally delete the raw stack.

A thin wrapper over :func:`isoview_core.archive.archive_stack` (passes paths, not volumes). Not
cached: the library skips stacks whose verified record still matches the raw file, and a rerun
must be able to re-verify (and then delete) when deletion is newly asked for.
"""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from isoview_core.acquisition import CameraStack
from isoview_core.archive import (
    ArchiveConfig,
    ArchiveRecord,
    archive_stack,
    finished_archive_record,
)
from isoview_core.config import ProcessingConfig
from isoview_core.service.journal import record_work
from tasks.retries import TRANSIENT_RETRIES


@task(
    name="archive-stack",
    task_run_name="archive SPM{stack.specimen:02d} TM{stack.timepoint:06d} CM{stack.camera:02d} CHN{stack.channel:02d}",
    **TRANSIENT_RETRIES,
)
def archive_stack_task(config: ProcessingConfig, archive: ArchiveConfig, stack: CameraStack) -> ArchiveRecord:
    """Archive the raw stack of one camera and channel, verify it bit for bit, and journal it.

    Raises :class:`~isoview_core.archive.ArchiveVerificationError` (raw stack kept, record written)
    when the archive does not reproduce the raw stack.
    """
    logger = get_run_logger()
    finished = finished_archive_record(stack, config.acquisition, archive)
    if finished is not None:  # journal only work done, like the other tasks
        logger.info("%s: already archived and verified in %s", stack.path, finished.archive_path)
        return finished
    record = archive_stack(stack, config.acquisition, archive)
    record_work(
        config,
        "archived",
        specimen=stack.specimen,
        timepoint=stack.timepoint,
        angle=stack.angle,
        camera=stack.camera,
        channel=stack.channel,
        archive=str(record.archive_path),
        sha256=record.sha256,
        verified=record.verified,
        deleted_raw=record.deleted_raw,
    )
    logger.info("%s", record.message)
    return record
