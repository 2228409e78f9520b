"""What is already done, read from the outputs themselves (complete OME-Zarr + records), never from memory;
and how far a run has come (steps succeeded and failed), for its progress display."""

from __future__ import annotations

from dataclasses import dataclass

from isoview_core.acquisition import Acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.layout import (
    FusedPaths,
    IsotropicPaths,
    configured_corrected_paths,
    is_stack_corrected,
)
from isoview_core.pipeline.fusion import timepoint_pairs
from isoview_core.pipeline.isotropic import timepoint_views


def is_timepoint_corrected(config: ProcessingConfig, acquisition: Acquisition, specimen: int, timepoint: int) -> bool:
    """Every camera stack of the timepoint has a complete corrected volume and record, and every channel XML was read."""
    try:
        files = acquisition.timepoint(specimen, timepoint)
    except IsoviewError:
        return False
    return bool(files.stacks) and not files.missing and not files.unreadable and all(
        is_stack_corrected(configured_corrected_paths(config, specimen, timepoint, stack.camera, stack.channel))
        for stack in files.stacks
    )


def is_timepoint_fused(config: ProcessingConfig, acquisition: Acquisition, specimen: int, timepoint: int) -> bool:
    """Every camera pair of the timepoint has its ``fusion.json`` (written last, after the volume), and, when the
    isotropic stage is enabled, every isotropic volume of its fused views has its ``isotropic.json``."""
    try:
        pairs = timepoint_pairs(acquisition, config, specimen, timepoint)
    except IsoviewError:
        return False
    root = config.resolved_fused_dir()
    if not pairs or not all(FusedPaths(root, pair).record.is_file() for pair in pairs):
        return False
    isotropic_root = config.resolved_isotropic_dir()
    return not config.isotropic.enabled or all(
        IsotropicPaths(isotropic_root, inputs.volume_id).record.is_file() for inputs in timepoint_views(root, specimen, timepoint)
    )


@dataclass
class StepCounts:
    """How far a run of several steps has come, for a progress display: the steps that succeeded and those that failed.

    Attributes
    ----------
    total : int
        Steps the run has.
    succeeded, failed : int
        Steps finished either way so far.
    """

    total: int
    succeeded: int = 0
    failed: int = 0

    def record(self, succeeded: bool) -> None:
        """Count one finished step."""
        if succeeded:
            self.succeeded += 1
        else:
            self.failed += 1

    @property
    def percent(self) -> float:
        """The share of the steps that succeeded, in percent: a run with a failed step never shows 100 %."""
        return 100.0 * self.succeeded / self.total if self.total else 100.0

    def describe(self) -> str:
        """``3 of 4 steps done, 1 failed``."""
        return f"{self.succeeded} of {self.total} steps done" + (f", {self.failed} failed" if self.failed else "")
