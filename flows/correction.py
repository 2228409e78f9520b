"""Prefect flow: correct every camera stack of one timepoint, in parallel; finished stacks are skipped."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, tags

from flows.artifacts import publish_correction_table
from flows.inputs import flow_config
from flows.outcomes import failure_message, settled_states
from flows.runners import execution_from_environment, make_task_runner
from isoview_core.acquisition import discover_acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.pipeline.correction import copy_channel_xmls, timepoint_file_errors
from isoview_core.records import CorrectedStackRecord
from tasks.archive import archive_stack_task
from tasks.correction import correct_stack_task


@flow(
    name="correct-timepoint",
    flow_run_name="correct SPM{specimen:02d} TM{timepoint:06d}",
    task_runner=make_task_runner(execution_from_environment()),
)
def correct_timepoint(acquisition: Path, specimen: int, timepoint: int, config: ProcessingConfig | None = None) -> list[CorrectedStackRecord]:
    """Correct and compress the camera stacks of one timepoint to OME-Zarr.

    Every stack is a task (retried once on I/O errors, cached from its input's identity). A bad
    stack fails its task with a one-line error, a channel whose XML is missing or unreadable is one
    error for all its stacks; the others still finish, then the flow fails with all the errors, so
    the UI shows exactly which files are wrong. With ``config.archive`` enabled,
    each corrected raw stack is then archived losslessly and verified (and, only if asked, deleted).
    """
    config = flow_config(acquisition, config)
    files = discover_acquisition(config.acquisition, config.layout).timepoint(specimen, timepoint)
    copy_channel_xmls(config, files)
    # tags from a bounded set only (specimen, camera, channel): Prefect 3.8 keeps one concurrency-lease
    # thread alive per distinct tag set, so a tag per timepoint leaks threads; the TM is in the run names
    with tags(f"SPM{specimen:02d}"):
        futures = [
            correct_stack_task.with_options(tags={f"CM{stack.camera:02d}", f"CHN{stack.channel:02d}"}).submit(config, stack)
            for stack in files.stacks
        ]
    states = settled_states(futures)
    records = [state.result() for state in states if state.is_completed()]
    errors = timepoint_file_errors(files) + [failure_message(state) for state in states if not state.is_completed()]
    if config.archive.enabled:  # after the correction: with deletion on, the raw stack must have been read first
        corrected = [stack for stack, state in zip(files.stacks, states, strict=True) if state.is_completed()]
        archives = [archive_stack_task.submit(config, config.archive, stack) for stack in corrected]
        errors += [failure_message(state) for state in settled_states(archives) if not state.is_completed()]
    publish_correction_table(specimen, timepoint, records, errors)
    if errors:
        raise IsoviewError(f"SPM{specimen:02d} TM{timepoint:06d}: {len(errors)} error(s): " + " | ".join(errors))
    return sorted(records, key=lambda record: (record.camera, record.channel))
