"""Check a raw acquisition before a run: say what is wrong, file by file (``isoview doctor``).

The checks reuse the readers the processing itself uses (acquisition discovery, channel XMLs, the
stack size check of :class:`~isoview_core.formats.stack.StackFile`, the background reader), so a
problem is reported here with the same one-line message the run would fail with, but for every
file at once and before hours of processing. They are cheap: directory listings, ``stat``, the
channel XMLs, the background TIFFs, and a band of rows from a few planes of each stack.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, computed_field

from isoview_core.acquisition import Acquisition, CameraStack, discover_acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.correction.background import check_frame_shape, read_background_frame
from isoview_core.errors import IsoviewError
from isoview_core.formats.stack import STACK_DTYPE, StackFile
from isoview_core.naming import (
    ANGLE_DIR_PATTERN,
    BACKGROUND_PATTERN,
    CHANNEL_XML_PATTERN,
    SPECIMEN_DIR_PATTERN,
    TIMEPOINT_DIR_PATTERN,
    background_name,
    parse_raw_stack_name,
    specimen_dir_name,
)
from isoview_core.pipeline.correction import selected_timepoints

__all__ = [
    "FREE_SPACE_MARGIN",
    "SAMPLE_PLANES",
    "TYPICAL_COMPRESSION_RATIO",
    "DoctorReport",
    "Finding",
    "OutputSpace",
    "diagnose_acquisition",
    "size_text",
]

TYPICAL_COMPRESSION_RATIO = 3.0
"""Raw bytes per written byte assumed when estimating the size of the outputs.

Measured with ``benchmarks/bench_codecs.py`` (``benchmarks/results/codecs.json``, one synthetic
64 x 2048 x 2048 stack, the default codec blosc-zstd 1, byte shuffle, 1 MiB blocks): 11.2 on the
corrected stack, whose background outside the foreground mask is 0 (80 % of its voxels), and 3.8
on the raw stack, where nothing is masked (KLB: 4.1). The README's correction table gives 10.9 for
the whole corrected output. A specimen that fills the field of view leaves little to mask, so the
estimate takes the unmasked case, rounded down to 3 to leave room for the projections, masks and
labels written beside each volume: corrected ~ raw / 3, fused ~ raw / 2 / 3 (one volume per
camera pair). Pyramid levels add a quarter of the level above each.
"""

FREE_SPACE_MARGIN = 2.0
"""Free space below this multiple of the expected outputs is a warning (below 1x, an error)."""

SAMPLE_PLANES = 3
"""Planes of each stack sampled for all-zero / constant content (first, middle, last)."""

_SAMPLE_BYTES_PER_PLANE = 256 * 1024
"""Size of the band of central rows read from each sampled plane (whole plane when smaller)."""

_IGNORED_NAMES = frozenset({"Thumbs.db", "desktop.ini"})
"""Files operating systems leave in folders; hidden names (``.DS_Store``...) are ignored too."""

Level = Literal["ok", "warning", "error"]


class Finding(BaseModel):
    """One result of the checks: a level, the file or folder it is about, and a one-line message."""

    model_config = ConfigDict(frozen=True)

    level: Level
    subject: str
    """The file or folder concerned."""
    message: str
    """One line that names the file and the problem, e.g. ``.../CM1...stack: 4096 bytes, expected 12288 ...``."""


class OutputSpace(BaseModel):
    """Free space of one filesystem that outputs will be written to."""

    model_config = ConfigDict(frozen=True)

    path: Path
    """The nearest existing folder of the output root(s), where the space was measured."""
    outputs: list[Path]
    """Output roots on this filesystem (corrected, fused, or both)."""
    free_bytes: int
    expected_bytes: int
    """Estimated size of the outputs written there."""


class DoctorReport(BaseModel):
    """What :func:`diagnose_acquisition` found, with the size of the acquisition and its outputs."""

    model_config = ConfigDict(frozen=True)

    acquisition: Path
    layout: Literal["nested", "flat"] | None = None
    """Layout found, ``None`` when the folder is not an IsoView acquisition."""
    checks: list[Finding]
    specimens: int = 0
    timepoints: int = 0
    """Timepoints checked (all, or the config's selection), over all specimens."""
    stacks: int = 0
    """Raw stacks on disk in those timepoints."""
    raw_bytes: int = 0
    expected_corrected_bytes: int = 0
    expected_fused_bytes: int = 0
    compression_ratio: float = TYPICAL_COMPRESSION_RATIO
    """Ratio the output estimates assume (:data:`TYPICAL_COMPRESSION_RATIO`)."""
    output_space: list[OutputSpace] = []
    """One entry per filesystem the outputs go to."""

    @computed_field
    @property
    def expected_output_bytes(self) -> int:
        """Estimated size of all outputs, corrected plus fused."""
        return self.expected_corrected_bytes + self.expected_fused_bytes

    @property
    def errors(self) -> list[Finding]:
        """Findings that will make the run fail (for the files concerned) or make it impossible."""
        return [finding for finding in self.checks if finding.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """Findings worth a look that do not stop the run."""
        return [finding for finding in self.checks if finding.level == "warning"]

    @property
    def ok(self) -> bool:
        """Whether no check found an error."""
        return not self.errors


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
    * folders and files that are not part of the layout (warnings: they are ignored by the run);
    * every timepoint's channel XMLs can be read (:attr:`TimepointFiles.unreadable`; the stacks of
      the other channels are still checked), and every stack they declare is on disk
      (:attr:`TimepointFiles.missing`);
    * every stack is a whole number of planes and at least as long as its XML declares
      (:class:`~isoview_core.formats.stack.StackFile`; longer is a warning), and is not empty;
      sampled planes that are all zero or constant are a warning;
    * each camera's ``Background_<k>.tif`` can be read and matches the camera's planes (skipped
      when the correction does not use it; missing is an error only with
      ``background_subtraction="image"``);
    * free space where each output root will be, against the estimated output size
      (:data:`TYPICAL_COMPRESSION_RATIO`): below the estimate an error, below
      :data:`FREE_SPACE_MARGIN` times it a warning. Outputs already written are not subtracted,
      so a rerun over finished work is estimated as a fresh run (on the safe side).
    """
    return _Examination(config, sample_planes).run()


def _one_line(error: BaseException) -> str:
    """First line of an error message (the project's messages are one line; XML parse errors may not be)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _subject(message: str, fallback: Path) -> str:
    """The path a ``"<path>: <problem>"`` message starts with, else ``fallback``."""
    head, separator, _ = message.partition(": ")
    return head if separator and head else str(fallback)


def _resolved(path: Path) -> Path:
    """Absolute path with symlinks and ``..`` resolved, as far as it exists."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError, ValueError):
        return Path(os.path.abspath(path))


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest existing parent folder."""
    current = path
    while not current.exists() and current.parent != current:
        current = current.parent
    return current


def _ignored(name: str) -> bool:
    """Hidden files and the operating systems' folder clutter."""
    return name.startswith(".") or name in _IGNORED_NAMES


def size_text(nbytes: float) -> str:
    """Bytes for people: ``512 bytes``, ``12.0 MiB``, ``1.50 TiB``."""
    if nbytes < 1024:
        return f"{int(nbytes)} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        nbytes /= 1024
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}" if nbytes < 100 else f"{nbytes:.0f} {unit}"
    raise AssertionError("unreachable")


class _Examination:
    """One run of the checks: collects findings and sizes, then builds the report."""

    def __init__(self, config: ProcessingConfig, sample_planes: int) -> None:
        self.config = config
        self.root = Path(config.acquisition)
        self.sample_planes = sample_planes
        self.outputs = {"corrected": config.resolved_corrected_dir(), "fused": config.resolved_fused_dir()}
        self.paired_cameras = {camera for pair in config.camera_pairs for camera in pair}
        self.findings: list[Finding] = []
        self.stacks = 0
        self.raw_bytes = 0
        self.paired_raw_bytes = 0
        self.stack_problems = 0
        self.plane_shapes: dict[tuple[int, int], dict[tuple[int, int], Path]] = {}
        """(specimen, camera) -> (height, width) -> first stack with that plane shape."""

    def add(self, level: Level, subject: Path | str, message: str) -> None:
        self.findings.append(Finding(level=level, subject=str(subject), message=message))

    def run(self) -> DoctorReport:
        outputs_inside = self.check_output_locations()
        try:
            acquisition = discover_acquisition(self.root, self.config.layout)
        except IsoviewError as error:
            self.add("error", self.root, _one_line(error))
            return DoctorReport(acquisition=self.root, checks=self.findings)
        try:
            selection = list(selected_timepoints(self.config, acquisition))
            selection_error = False
        except IsoviewError as error:  # a selected specimen that does not exist
            self.add("error", self.root, _one_line(error))
            selection, selection_error = [], True
        specimens = sorted({specimen for specimen, _ in selection})
        if selection:
            self.add(
                "ok",
                self.root,
                f"{self.root}: {acquisition.layout} IsoView layout, {len(specimens)} specimen(s), {len(selection)} timepoint(s)",
            )
        elif not selection_error:
            self.add("warning", self.root, f"{self.root}: {acquisition.layout} layout but no timepoints to process")
        self.check_tree(acquisition, specimens, selection, outputs_inside)
        for specimen, timepoint in selection:
            self.check_timepoint(acquisition, specimen, timepoint)
        if self.stacks and not self.stack_problems:
            self.add("ok", self.root, f"{self.root}: all {self.stacks} stacks match the sizes their XMLs declare")
        self.check_backgrounds(acquisition)

        pyramid = sum(0.25**level for level in range(self.config.output.pyramid_levels + 1))
        corrected = int(self.raw_bytes * pyramid / TYPICAL_COMPRESSION_RATIO)
        fused = int(self.paired_raw_bytes / 2 * pyramid / TYPICAL_COMPRESSION_RATIO)
        space = self.check_space({"corrected": corrected, "fused": fused})
        return DoctorReport(
            acquisition=self.root,
            layout=acquisition.layout,
            checks=self.findings,
            specimens=len(specimens),
            timepoints=len(selection),
            stacks=self.stacks,
            raw_bytes=self.raw_bytes,
            expected_corrected_bytes=corrected,
            expected_fused_bytes=fused,
            output_space=space,
        )

    # --- output roots -------------------------------------------------------------------------

    def check_output_locations(self) -> set[Path]:
        """Output roots inside the raw acquisition (errors), or existing as files; returns those inside."""
        root = _resolved(self.root)
        inside: set[Path] = set()
        for what, folder in self.outputs.items():
            resolved = _resolved(folder)
            if resolved.is_relative_to(root):
                inside.add(resolved)
                self.add(
                    "error",
                    folder,
                    f"{folder}: the {what} output folder lies inside the raw acquisition {self.root}; "
                    "write the outputs outside the raw data",
                )
            elif folder.exists() and not folder.is_dir():
                self.add("error", folder, f"{folder}: the {what} output root exists but is not a folder")
        return inside

    # --- layout ---------------------------------------------------------------------------------

    def check_tree(
        self, acquisition: Acquisition, specimens: list[int], selection: list[tuple[int, int]], outputs_inside: set[Path]
    ) -> None:
        """Warn about folders and files that the layout does not account for (the run ignores them)."""
        expected = "SPM## specimen folders" if acquisition.layout == "nested" else "raw stacks, channel XMLs and Background_<k>.tif"

        def root_dir(name: str, path: Path) -> bool:
            nested_specimen = acquisition.layout == "nested" and SPECIMEN_DIR_PATTERN.match(name) is not None
            return nested_specimen or _resolved(path) in outputs_inside

        self._scan(self.root, expected, is_expected_dir=root_dir, is_expected_file=lambda name: True)
        if acquisition.layout == "flat":
            return
        for specimen in specimens:
            folder = self.root / specimen_dir_name(specimen)
            chosen = {acquisition.timepoint_folder(specimen, t).name for t in acquisition.timepoints(specimen)}
            self._scan(
                folder,
                "TM##### timepoint folders and Background_<k>.tif",
                is_expected_dir=lambda name, path, chosen=chosen: name in chosen,
                is_expected_file=lambda name: BACKGROUND_PATTERN.match(name) is not None,
                duplicate=lambda name: TIMEPOINT_DIR_PATTERN.match(name) is not None,
            )
        for specimen, timepoint in selection:
            folder = acquisition.timepoint_folder(specimen, timepoint)
            angles = self._scan(
                folder,
                "channel XMLs and ANG### folders",
                is_expected_dir=lambda name, path: ANGLE_DIR_PATTERN.match(name) is not None,
                is_expected_file=lambda name: CHANNEL_XML_PATTERN.match(name) is not None,
            )
            for angle_folder in angles:
                self._scan_angle(angle_folder, specimen, timepoint)

    def _scan(
        self,
        folder: Path,
        expected: str,
        *,
        is_expected_dir: Callable[[str, Path], bool],
        is_expected_file: Callable[[str], bool],
        duplicate: Callable[[str], bool] | None = None,
    ) -> list[Path]:
        """One listing: a warning per unexpected entry; returns the expected sub-folders."""
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as error:
            self.add("error", folder, f"{folder}: cannot list the folder ({error.strerror or error})")
            return []
        folders = []
        for entry in entries:
            path = Path(entry.path)
            if _ignored(entry.name):
                continue
            if entry.is_dir():
                if is_expected_dir(entry.name, path):
                    folders.append(path)
                elif duplicate is not None and duplicate(entry.name):
                    self.add("warning", path, f"{path}: another folder with the same number is used; this one is ignored")
                else:
                    self.add("warning", path, f"{path}: folder is not part of the IsoView layout (expected {expected}); it is ignored")
            elif not is_expected_file(entry.name):
                self.add("warning", path, f"{path}: unexpected file (expected {expected}); it is ignored")
        return folders

    def _scan_angle(self, folder: Path, specimen: int, timepoint: int) -> None:
        """Warn about anything in an ``ANG###`` folder that is not a raw stack of its timepoint."""
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as error:
            self.add("error", folder, f"{folder}: cannot list the folder ({error.strerror or error})")
            return
        for entry in entries:
            path = Path(entry.path)
            if _ignored(entry.name):
                continue
            tokens = None if entry.is_dir() else parse_raw_stack_name(entry.name)
            if tokens is None:
                kind = "folder" if entry.is_dir() else "file"
                self.add("warning", path, f"{path}: unexpected {kind} (expected SPC##_TM#####_ANG###_CM#_CHN##_PH#.stack); it is ignored")
            elif (tokens.specimen, tokens.timepoint) != (specimen, timepoint):
                self.add(
                    "warning",
                    path,
                    f"{path}: name does not match specimen {specimen} timepoint {timepoint} of its folder; it is ignored",
                )

    # --- timepoints and stacks ------------------------------------------------------------------

    def check_timepoint(self, acquisition: Acquisition, specimen: int, timepoint: int) -> None:
        """Channel XMLs readable, declared stacks present, each stack's size and content."""
        folder = acquisition.timepoint_folder(specimen, timepoint)
        try:
            files = acquisition.timepoint(specimen, timepoint)
        except IsoviewError as error:
            message = _one_line(error)
            self.add("error", _subject(message, folder), message)
            self.stack_problems += 1
            return
        for message in files.missing:  # relative to the root: "SPM00/TM00003/ANG000/...CM1...stack: camera 1 of ch0.xml not on disk"
            self.add("error", self.root / _subject(message, folder), message)
            self.stack_problems += 1
        for channel in files.unreadable:  # its stacks cannot be checked (nor corrected); the other channels still are
            self.add("error", channel.xml, channel.message)
            self.stack_problems += 1
        if not files.stacks and not files.missing and not files.unreadable:
            self.add("warning", folder, f"{folder}: no raw stacks and no channel XML declaring any")
        for stack in files.stacks:
            self.check_stack(stack)

    def check_stack(self, stack: CameraStack) -> None:
        """Size against the XML (through :class:`StackFile`), then a few sampled planes."""
        dims = stack.dimensions
        try:
            size = os.stat(stack.path).st_size
        except OSError as error:
            self.add("error", stack.path, f"{stack.path}: cannot read raw stack ({error.strerror or error})")
            self.stack_problems += 1
            return
        self.stacks += 1
        self.raw_bytes += size
        if stack.camera in self.paired_cameras:
            self.paired_raw_bytes += size
        try:
            source = StackFile(stack.path, dims.width, dims.height, expected_depth=dims.depth, xml_name=stack.xml_name)
        except IsoviewError as error:
            message = _one_line(error) + (" (the file is empty)" if size == 0 else "")
            self.add("error", stack.path, message)
            self.stack_problems += 1
            return
        # Only stacks that fit their XML: a plane size the stack contradicts would also fail the background.
        self.plane_shapes.setdefault((stack.specimen, stack.camera), {}).setdefault((dims.height, dims.width), stack.path)
        if size > stack.expected_bytes:
            self.add(
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
            self.add("error", source.path, f"{source.path}: cannot read its planes ({error})")
            self.stack_problems += 1
            return
        sampled = f"planes {', '.join(map(str, planes))}, rows {first_row}-{first_row + rows - 1}"
        if high == 0:
            self.add("warning", source.path, f"{source.path}: all-zero data in every sampled plane ({sampled}): the camera recorded nothing?")
            self.stack_problems += 1
        elif low == high:
            self.add("warning", source.path, f"{source.path}: every sampled pixel is {low} ({sampled}): constant data, the camera recorded nothing?")
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
                self.add(
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
                    self.add("error", expected, f"{expected}: background frame of camera {camera} not found, and background_subtraction='image' requires it")
                else:
                    self.add("warning", expected, f"{expected}: background frame of camera {camera} not found; the background is estimated from each stack")
                continue
            try:
                frame = read_background_frame(path)
                for plane_shape in shapes:
                    check_frame_shape(frame, plane_shape, path)
            except IsoviewError as error:
                self.add("error", path, _one_line(error))
                continue
            checked += 1
        if checked:
            self.add("ok", self.root, f"{self.root}: {checked} background frame(s) read, matching their cameras' planes")

    # --- free space -----------------------------------------------------------------------------

    def check_space(self, expected: dict[str, int]) -> list[OutputSpace]:
        """Free space on each output filesystem against the outputs written there."""
        groups: dict[object, tuple[Path, list[Path], int]] = {}
        for what, folder in self.outputs.items():
            existing = _nearest_existing(_resolved(folder))
            try:
                device: object = os.stat(existing).st_dev
            except OSError:
                device = existing
            path, outputs, needed = groups.get(device, (existing, [], 0))
            groups[device] = (path, [*outputs, folder], needed + expected[what])
        spaces = []
        for path, outputs, needed in groups.values():
            names = " and ".join(str(output) for output in outputs)
            try:
                free = int(shutil.disk_usage(path).free)
            except OSError as error:
                self.add("warning", path, f"{path}: cannot measure the free space for {names} ({error.strerror or error})")
                continue
            spaces.append(OutputSpace(path=path, outputs=outputs, free_bytes=free, expected_bytes=needed))
            if not os.access(path, os.W_OK):
                self.add("error", path, f"{path}: not writable, so {names} cannot be created there")
            estimate = f"{size_text(free)} free, the outputs ({names}) need about {size_text(needed)} (estimated at {TYPICAL_COMPRESSION_RATIO:g}x compression)"
            if free < needed:
                self.add("error", path, f"{path}: not enough disk space: {estimate}")
            elif free < FREE_SPACE_MARGIN * needed:
                self.add("warning", path, f"{path}: little disk space: {estimate}, less than {FREE_SPACE_MARGIN:g}x")
            else:
                self.add("ok", path, f"{path}: {estimate}")
        return spaces
