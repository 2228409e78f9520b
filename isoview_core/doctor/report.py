"""What ``isoview doctor`` reports: findings, the output filesystems' space, the sizes of an acquisition and its outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, computed_field

__all__ = ["TYPICAL_COMPRESSION_RATIO", "DoctorReport", "Finding", "Findings", "Level", "OutputSpace", "one_line", "size_text"]

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



class Findings:
    """The findings of one run of the checks, in the order they are made."""

    def __init__(self) -> None:
        self.items: list[Finding] = []

    def add(self, level: Level, subject: Path | str, message: str) -> None:
        """Record one finding about ``subject`` (a file or folder)."""
        self.items.append(Finding(level=level, subject=str(subject), message=message))


def one_line(error: BaseException) -> str:
    """First line of an error message (the project's messages are one line; XML parse errors may not be)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def size_text(nbytes: float) -> str:
    """Bytes for people: ``512 bytes``, ``12.0 MiB``, ``1.50 TiB``."""
    if nbytes < 1024:
        return f"{int(nbytes)} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        nbytes /= 1024
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}" if nbytes < 100 else f"{nbytes:.0f} {unit}"
    raise AssertionError("unreachable")
