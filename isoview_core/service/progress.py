"""What is already done, read from the outputs themselves (complete OME-Zarr + records), never from memory."""

from __future__ import annotations

from isoview_core.acquisition import Acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.correction.timepoint import corrected_paths, is_stack_corrected
from isoview_core.errors import IsoviewError
from isoview_core.fusion.dataset import timepoint_pairs
from isoview_core.fusion.pair import FusedPaths


def is_timepoint_corrected(config: ProcessingConfig, acquisition: Acquisition, specimen: int, timepoint: int) -> bool:
    """Every camera stack of the timepoint has a complete corrected volume and record."""
    try:
        files = acquisition.timepoint(specimen, timepoint)
    except IsoviewError:
        return False
    root = config.resolved_corrected_dir()
    return bool(files.stacks) and not files.missing and all(
        is_stack_corrected(corrected_paths(root, specimen, timepoint, stack.camera, stack.channel, config.output.format))
        for stack in files.stacks
    )


def is_timepoint_fused(config: ProcessingConfig, acquisition: Acquisition, specimen: int, timepoint: int) -> bool:
    """Every camera pair of the timepoint has its ``fusion.json`` (written last, after the volume)."""
    try:
        pairs = timepoint_pairs(acquisition, config, specimen, timepoint)
    except IsoviewError:
        return False
    root = config.resolved_fused_dir()
    return bool(pairs) and all(FusedPaths(root, pair).record.is_file() for pair in pairs)
