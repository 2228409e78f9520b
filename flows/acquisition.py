"""Prefect flow: process a whole acquisition or a range of it (manual reruns and backfill)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.logging import get_run_logger
from pydantic import BaseModel

from flows.artifacts import RunProgressArtifact
from flows.correction import correct_timepoint
from flows.fusion import fuse_window
from flows.inputs import flow_config
from flows.outcomes import failure_message
from flows.runners import make_task_runner, resolved_execution
from flows.service_config import ExecutionConfig
from isoview_core.acquisition import discover_acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.pipeline.correction import selected_timepoints


class AcquisitionSummary(BaseModel):
    """What a ``process-acquisition`` run did."""

    corrected_timepoints: int
    fused_pairs: int


@flow(name="process-acquisition", flow_run_name="process {acquisition}")
def process_acquisition(
    acquisition: Path,
    timepoints: list[int] | None = None,
    config: ProcessingConfig | None = None,
    fuse: bool = True,
    execution: ExecutionConfig | None = None,
) -> AcquisitionSummary:
    """Correct every selected timepoint, then fuse them with windowed temporal smoothing.

    The same flows as the live service run here, one timepoint after the other, so a backfill
    gives the same outputs as the watcher; finished work is skipped unless ``config.overwrite``.
    A timepoint that fails is reported and the others are still processed. ``execution`` chooses
    the task runner of the subflows, whose tasks do the work (threads, a Dask cluster); without
    it they keep theirs, from the ``ISOVIEW_*`` environment (:mod:`flows.runners`).
    """
    logger = get_run_logger()
    config = flow_config(acquisition, config)
    if timepoints is not None:
        config = config.model_copy(update={"timepoints": timepoints})
    acquisition_files = discover_acquisition(config.acquisition, config.layout)
    selection = list(selected_timepoints(config, acquisition_files))
    specimens = sorted({specimen for specimen, _ in selection})
    steps = len(selection) + (len(specimens) if fuse else 0)
    progress = RunProgressArtifact(f"{config.acquisition}: {len(selection)} timepoints", steps)
    errors: list[str] = []
    corrected = fused = 0
    correct, fuse_flow = correct_timepoint, fuse_window
    if execution is not None:  # one runner's settings for both: each subflow run starts a copy of its own
        runner = make_task_runner(resolved_execution(execution, acquisition_files, selection))
        correct, fuse_flow = correct_timepoint.with_options(task_runner=runner), fuse_window.with_options(task_runner=runner)
    for specimen, timepoint in selection:
        state = correct(config.acquisition, specimen, timepoint, config, return_state=True)
        if state.is_completed():
            corrected += 1
        else:
            errors.append(failure_message(state))
        progress.record(state.is_completed())
    for specimen in specimens if fuse else []:
        chosen = [t for s, t in selection if s == specimen]
        state = fuse_flow(config.acquisition, specimen, chosen, config, acquisition_finished=True, return_state=True)
        if state.is_completed():
            fused += len(state.result())
        else:
            errors.append(failure_message(state))
        progress.record(state.is_completed())
    logger.info("%d timepoints corrected, %d pairs fused, %d errors", corrected, fused, len(errors))
    if errors:
        raise IsoviewError(f"{config.acquisition}: {len(errors)} error(s): " + " | ".join(errors))
    return AcquisitionSummary(corrected_timepoints=corrected, fused_pairs=fused)
