"""Prefect flow: correct every camera stack of one timepoint, in parallel, skipping finished stacks."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from isoview_core.acquisition import discover_acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.correction.timepoint import CorrectedStackRecord, corrected_paths, is_stack_corrected, load_record
from tasks.correction import correct_stack_task


@flow(name="correct-timepoint", flow_run_name="correct SPM{specimen:02d} TM{timepoint:06d}")
def correct_timepoint(acquisition: Path, specimen: int, timepoint: int, config: ProcessingConfig | None = None) -> list[CorrectedStackRecord]:
    """Correct and compress the camera stacks of one timepoint; already finished stacks are read back."""
    config = config or ProcessingConfig(acquisition=acquisition)
    files = discover_acquisition(config.acquisition, config.layout).timepoint(specimen, timepoint)
    if files.missing:
        raise FileNotFoundError("; ".join(files.missing))
    records, futures = [], []
    for stack in files.stacks:
        paths = corrected_paths(config.resolved_corrected_dir(), specimen, timepoint, stack.camera, stack.channel, config.output.format)
        if not config.overwrite and is_stack_corrected(paths):
            records.append(load_record(paths.record))
        else:
            futures.append(correct_stack_task.submit(config, specimen, timepoint, stack.camera, stack.channel))
    records += [future.result() for future in futures]
    return sorted(records, key=lambda record: (record.camera, record.channel))
