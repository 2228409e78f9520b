"""The doctor's entry point: run the checks of the outputs and the raw acquisition in order, and build the report."""

from __future__ import annotations

from pathlib import Path

from isoview_core.acquisition import discover_acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.doctor.outputs import check_output_locations, check_space
from isoview_core.doctor.raw import SAMPLE_PLANES, RawChecks
from isoview_core.doctor.report import (
    TYPICAL_COMPRESSION_RATIO,
    DoctorReport,
    Findings,
    one_line,
)
from isoview_core.errors import IsoviewError
from isoview_core.pipeline.correction import selected_timepoints

__all__ = ["diagnose_acquisition"]


def diagnose_acquisition(config: ProcessingConfig, *, sample_planes: int = SAMPLE_PLANES) -> DoctorReport:
    """Check an acquisition folder and its output locations before a run.

    Parameters
    ----------
    config : ProcessingConfig
        The acquisition, its layout, the timepoint / specimen selection, the output roots and the
        settings that decide which files are needed (background subtraction, camera pairs,
        pyramid levels).
    sample_planes : int, optional
        Planes of each stack whose central rows are read to detect all-zero or constant data
        (0: ``stat`` only).

    Returns
    -------
    DoctorReport
        Every finding (``error``: the run fails for that file or cannot start; ``warning``: worth a
        look; ``ok``: a check that passed), and the sizes: raw bytes, estimated outputs, free space.

    Notes
    -----
    Checks, in order:

    * the output roots lie outside the raw acquisition, and are folders where they exist;
    * the folder is an IsoView acquisition (:func:`~isoview_core.acquisition.discover_acquisition`);
    * folders and files that are not part of the layout (warnings: they are ignored by the run),
      as discovery found them (:class:`~isoview_core.acquisition.UnexpectedEntry`);
    * every timepoint's channel XMLs can be read (:attr:`~isoview_core.acquisition.TimepointFiles.unreadable`; the stacks of
      the other channels are still checked), and every stack they declare is on disk
      (:attr:`~isoview_core.acquisition.TimepointFiles.missing`);
    * every stack is a whole number of planes and at least as long as its XML declares
      (:class:`~isoview_core.formats.stack.StackFile`; longer is a warning), and is not empty;
      sampled planes that are all zero or constant are a warning;
    * each camera's ``Background_<k>.tif`` can be read and matches the camera's planes (skipped
      when the correction does not use it; missing is an error only with
      ``background_subtraction="image"``);
    * free space where each output root will be, against the estimated output size
      (:data:`~isoview_core.doctor.report.TYPICAL_COMPRESSION_RATIO`): below the estimate an error, below
      :data:`~isoview_core.doctor.outputs.FREE_SPACE_MARGIN` times it a warning. Outputs already written are not subtracted,
      so a rerun over finished work is estimated as a fresh run (on the safe side).
    """
    root = Path(config.acquisition)
    findings = Findings()
    outputs = {"corrected": config.resolved_corrected_dir(), "fused": config.resolved_fused_dir()}
    outputs_inside = check_output_locations(findings, root, outputs)
    try:
        acquisition = discover_acquisition(root, config.layout)
    except IsoviewError as error:
        findings.add("error", root, one_line(error))
        return DoctorReport(acquisition=root, checks=findings.items)
    try:
        selection = list(selected_timepoints(config, acquisition))
        selection_error = False
    except IsoviewError as error:  # a selected specimen that does not exist
        findings.add("error", root, one_line(error))
        selection, selection_error = [], True
    specimens = sorted({specimen for specimen, _ in selection})
    if selection:
        findings.add(
            "ok",
            root,
            f"{root}: {acquisition.layout} IsoView layout, {len(specimens)} specimen(s), {len(selection)} timepoint(s)",
        )
    elif not selection_error:
        findings.add("warning", root, f"{root}: {acquisition.layout} layout but no timepoints to process")
    raw = RawChecks(config, findings, sample_planes)
    raw.check_acquisition(acquisition, specimens, selection, outputs_inside)

    pyramid = sum(0.25**level for level in range(config.output.pyramid_levels + 1))
    corrected = int(raw.raw_bytes * pyramid / TYPICAL_COMPRESSION_RATIO)
    fused = int(raw.paired_raw_bytes / 2 * pyramid / TYPICAL_COMPRESSION_RATIO)
    space = check_space(findings, outputs, {"corrected": corrected, "fused": fused})
    return DoctorReport(
        acquisition=root,
        layout=acquisition.layout,
        checks=findings.items,
        specimens=len(specimens),
        timepoints=len(selection),
        stacks=raw.stacks,
        raw_bytes=raw.raw_bytes,
        expected_corrected_bytes=corrected,
        expected_fused_bytes=fused,
        output_space=space,
    )
