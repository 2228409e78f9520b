"""The doctor's checks of the raw acquisition, from discovery's findings: layout, channel XMLs, stacks, background frames."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from isoview_core.acquisition import (
    Acquisition,
    CameraStack,
    TimepointFiles,
    UnexpectedEntry,
)
from isoview_core.config import ProcessingConfig
from isoview_core.correction.background import check_frame_shape, read_background_frame
from isoview_core.doctor.outputs import resolved_path
from isoview_core.doctor.report import Findings, one_line
from isoview_core.errors import IsoviewError
from isoview_core.formats.stack import STACK_DTYPE, StackFile
from isoview_core.naming import background_name, specimen_dir_name

__all__ = ["SAMPLE_PLANES", "RawChecks"]

SAMPLE_PLANES = 3
"""Planes of each stack sampled for all-zero / constant content (first, middle, last)."""

_SAMPLE_BYTES_PER_PLANE = 256 * 1024
"""Size of the band of central rows read from each sampled plane (whole plane when smaller)."""


def _subject(message: str, fallback: Path) -> str:
    """The path a ``"<path>: <problem>"`` message starts with, else ``fallback``."""
    head, separator, _ = message.partition(": ")
    return head if separator and head else str(fallback)


class RawChecks:
    """The checks of one raw acquisition: findings go to ``findings``; stack counts and sizes are summed here."""

    def __init__(self, config: ProcessingConfig, findings: Findings, sample_planes: int) -> None:
        self.config = config
        self.root = Path(config.acquisition)
        self.findings = findings
        self.sample_planes = sample_planes
        self.paired_cameras = {camera for pair in config.camera_pairs for camera in pair}
        self.stacks = 0
        self.raw_bytes = 0
        self.paired_raw_bytes = 0
        self.stack_problems = 0
        self.plane_shapes: dict[tuple[int, int], dict[tuple[int, int], Path]] = {}
        """(specimen, camera) -> (height, width) -> first stack with that plane shape."""

    def check_acquisition(
        self, acquisition: Acquisition, specimens: list[int], selection: list[tuple[int, int]], outputs_inside: set[Path]
    ) -> None:
        """Every check of the selected specimens and timepoints, in the report's order.

        Parameters
        ----------
        acquisition : Acquisition
            The discovered acquisition.
        specimens : list of int
            Selected specimens, sorted.
        selection : list of (int, int)
            Selected (specimen, timepoint) pairs.
        outputs_inside : set of Path
            Resolved output roots inside the acquisition (already reported; not strays).
        """
        timepoints = self.check_layout(acquisition, specimens, selection, outputs_inside)
        for (specimen, timepoint), files in zip(selection, timepoints, strict=True):
            self.check_timepoint(acquisition, specimen, timepoint, files)
        if self.stacks and not self.stack_problems:
            self.findings.add("ok", self.root, f"{self.root}: all {self.stacks} stacks match the sizes their XMLs declare")
        self.check_backgrounds(acquisition)

    # --- layout ---------------------------------------------------------------------------------

    def check_layout(
        self, acquisition: Acquisition, specimens: list[int], selection: list[tuple[int, int]], outputs_inside: set[Path]
    ) -> list[TimepointFiles | IsoviewError]:
        """Report what discovery found outside the layout (the run ignores it); returns each selected timepoint's files.

        The root, then each selected ``SPM##`` folder, then each selected timepoint's folders.
        """
        for entry in acquisition.unexpected():
            if entry.problem == "unlistable" or resolved_path(entry.path) not in outputs_inside:
                self._report(entry)
        for specimen in specimens:
            for entry in acquisition.unexpected(specimen):
                self._report(entry)
        timepoints: list[TimepointFiles | IsoviewError] = []
        for specimen, timepoint in selection:
            try:
                files = acquisition.timepoint(specimen, timepoint)
            except IsoviewError as error:
                timepoints.append(error)
                continue
            for entry in files.unexpected:
                self._report(entry)
            timepoints.append(files)
        return timepoints

    def _report(self, entry: UnexpectedEntry) -> None:
        """A folder that cannot be listed is an error; anything else outside the layout a warning."""
        self.findings.add("error" if entry.problem == "unlistable" else "warning", entry.path, entry.message)

    # --- timepoints and stacks ------------------------------------------------------------------

    def check_timepoint(self, acquisition: Acquisition, specimen: int, timepoint: int, files: TimepointFiles | IsoviewError) -> None:
        """Channel XMLs readable, declared stacks present, each stack's size and content (``files``: discovery's, or its error)."""
        folder = acquisition.timepoint_folder(specimen, timepoint)
        if isinstance(files, IsoviewError):
            message = one_line(files)
            self.findings.add("error", _subject(message, folder), message)
            self.stack_problems += 1
            return
        for message in files.missing:  # relative to the root: "SPM00/TM00003/ANG000/...CM1...stack: camera 1 of ch0.xml not on disk"
            self.findings.add("error", self.root / _subject(message, folder), message)
            self.stack_problems += 1
        for channel in files.unreadable:  # its stacks cannot be checked (nor corrected); the other channels still are
            self.findings.add("error", channel.xml, channel.message)
            self.stack_problems += 1
        if not files.stacks and not files.missing and not files.unreadable:
            self.findings.add("warning", folder, f"{folder}: no raw stacks and no channel XML declaring any")
        for stack in files.stacks:
            self.check_stack(stack)

    def check_stack(self, stack: CameraStack) -> None:
        """Size against the XML (through :class:`StackFile`), then a few sampled planes."""
        dims = stack.dimensions
        try:
            size = os.stat(stack.path).st_size
        except OSError as error:
            self.findings.add("error", stack.path, f"{stack.path}: cannot read raw stack ({error.strerror or error})")
            self.stack_problems += 1
            return
        self.stacks += 1
        self.raw_bytes += size
        if stack.camera in self.paired_cameras:
            self.paired_raw_bytes += size
        try:
            source = StackFile(stack.path, dims.width, dims.height, expected_depth=dims.depth, xml_name=stack.xml_name)
        except IsoviewError as error:
            message = one_line(error) + (" (the file is empty)" if size == 0 else "")
            self.findings.add("error", stack.path, message)
            self.stack_problems += 1
            return
        # Only stacks that fit their XML: a plane size the stack contradicts would also fail the background.
        self.plane_shapes.setdefault((stack.specimen, stack.camera), {}).setdefault((dims.height, dims.width), stack.path)
        if size > stack.expected_bytes:
            self.findings.add(
                "warning",
                stack.path,
                f"{stack.path}: {size} bytes, {source.depth} planes on disk but {dims.depth} declared in "
                f"{stack.xml_name}; all {source.depth} planes will be processed",
            )
            self.stack_problems += 1
        self.check_content(source)

    def check_content(self, source: StackFile) -> None:
        """Warn when the central rows of a few planes (first, middle, last) are all 0 or one value."""
        if self.sample_planes <= 0:
            return
        depth, height, width = source.shape
        planes = sorted({int(z) for z in np.linspace(0, depth - 1, min(self.sample_planes, depth)).round()})
        rows = max(1, min(height, _SAMPLE_BYTES_PER_PLANE // (STACK_DTYPE.itemsize * width)))
        first_row = (height - rows) // 2
        low, high = np.iinfo(STACK_DTYPE).max, 0
        try:
            for z in planes:
                with source.mapped_planes(z, z + 1) as mapped:
                    band = mapped[0, first_row : first_row + rows]
                    low, high = min(low, int(band.min())), max(high, int(band.max()))
        except (OSError, ValueError) as error:
            self.findings.add("error", source.path, f"{source.path}: cannot read its planes ({error})")
            self.stack_problems += 1
            return
        sampled = f"planes {', '.join(map(str, planes))}, rows {first_row}-{first_row + rows - 1}"
        if high == 0:
            self.findings.add("warning", source.path, f"{source.path}: all-zero data in every sampled plane ({sampled}): the camera recorded nothing?")
            self.stack_problems += 1
        elif low == high:
            self.findings.add("warning", source.path, f"{source.path}: every sampled pixel is {low} ({sampled}): constant data, the camera recorded nothing?")
            self.stack_problems += 1

    # --- background frames ----------------------------------------------------------------------

    def check_backgrounds(self, acquisition: Acquisition) -> None:
        """Each camera's ``Background_<k>.tif``: present when required, readable, matching the planes."""
        correction = self.config.correction
        if correction.background_subtraction == "none" and correction.median_kernel is None:
            return  # the correction reads no background frame at all
        cameras = sorted(self.paired_cameras)
        checked = 0
        for (specimen, camera), shapes in sorted(self.plane_shapes.items()):
            first_stack = next(iter(shapes.values()))
            if correction.background_index_mode == "camera_id":
                index = camera
            elif camera in cameras:
                index = cameras.index(camera)
            else:
                self.findings.add(
                    "error",
                    first_stack,
                    f"{first_stack}: camera {camera} is in none of the camera pairs {self.config.camera_pairs}, "
                    "so background_index_mode='position' gives it no Background_<k>.tif",
                )
                continue
            path = acquisition.background_path(specimen, index)
            if path is None:
                folder = self.root / specimen_dir_name(specimen) if acquisition.layout == "nested" else self.root
                expected = folder / background_name(index)
                if correction.background_subtraction == "image":
                    self.findings.add("error", expected, f"{expected}: background frame of camera {camera} not found, and background_subtraction='image' requires it")
                else:
                    self.findings.add("warning", expected, f"{expected}: background frame of camera {camera} not found; the background is estimated from each stack")
                continue
            try:
                frame = read_background_frame(path)
                for plane_shape in shapes:
                    check_frame_shape(frame, plane_shape, path)
            except IsoviewError as error:
                self.findings.add("error", path, one_line(error))
                continue
            checked += 1
        if checked:
            self.findings.add("ok", self.root, f"{self.root}: {checked} background frame(s) read, matching their cameras' planes")
