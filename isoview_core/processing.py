"""Notebook-level API: process a whole acquisition (or a selection of timepoints) with one call."""

from __future__ import annotations

import logging
from typing import Callable, Iterator

from isoview_core.acquisition import Acquisition, TimepointFiles, discover_acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.correction.config import CorrectionConfig
from isoview_core.correction.stack_correction import correction_passes
from isoview_core.correction.timepoint import TimepointReport, correct_timepoint
from isoview_core.errors import IsoviewError

logger = logging.getLogger(__name__)


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
    progress: Callable[[int], None] | None = None,
    on_timepoint: Callable[[TimepointReport], None] | None = None,
) -> list[TimepointReport]:
    """Correct every selected timepoint of an acquisition to its output folder.

    Parameters
    ----------
    config : ProcessingConfig
        Acquisition, selection, correction and output settings.
    progress : callable, optional
        Called with numbers of raw planes processed.
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
    reports = []
    for specimen, timepoint in selected_timepoints(config, acquisition):
        try:
            report = correct_timepoint(config, specimen, timepoint, acquisition=acquisition, progress=progress)
        except IsoviewError as error:
            logger.error("%s", error)
            report = TimepointReport(specimen=specimen, timepoint=timepoint, errors=[str(error)])
        reports.append(report)
        if on_timepoint is not None:
            on_timepoint(report)
    return reports
