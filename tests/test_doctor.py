"""Tests of ``isoview doctor``: each damage of a small synthetic acquisition gives one finding that names the file."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from flows.cli import app
from isoview_core.config import OutputConfig, ProcessingConfig
from isoview_core.correction.config import CorrectionConfig
from isoview_core.doctor import (
    TYPICAL_COMPRESSION_RATIO,
    DoctorReport,
    Finding,
    diagnose_acquisition,
)

STACK = "SPM00/TM00000/ANG000/SPC00_TM00000_ANG000_CM1_CHN00_PH0.stack"
XML = "SPM00/TM00000/ch0.xml"

runner = CliRunner()


def _diagnose(root: Path, **options) -> DoctorReport:
    return diagnose_acquisition(ProcessingConfig(acquisition=root, **options))


def _finding(report: DoctorReport, level: str, path: Path, problem: str) -> Finding:
    """The one finding of ``level`` about ``path``; its message is one line naming the file and ``problem``."""
    found = [finding for finding in report.checks if finding.level == level and Path(finding.subject) == path]
    assert len(found) == 1, report.checks
    finding = found[0]
    assert "\n" not in finding.message
    assert path.name in finding.message and problem in finding.message, finding.message
    return finding


def _set_dimensions(xml: Path, dimensions: str) -> None:
    text = xml.read_text()
    start = text.index('dimensions="') + len('dimensions="')
    xml.write_text(text[:start] + dimensions + text[text.index('"', start) :])


def test_a_healthy_acquisition_has_no_errors_and_its_sizes_are_summed(small_acquisition, small_config):
    report = _diagnose(small_acquisition)
    assert report.ok and report.errors == [] and report.warnings == [], report.checks
    assert {finding.level for finding in report.checks} == {"ok"}
    assert (report.layout, report.specimens, report.timepoints, report.stacks) == ("nested", 1, 2, 8)
    raw = 8 * 2 * int(np.prod(small_config.shape))
    assert report.raw_bytes == raw
    assert report.expected_corrected_bytes == int(raw / TYPICAL_COMPRESSION_RATIO)
    assert report.expected_fused_bytes == int(raw / 2 / TYPICAL_COMPRESSION_RATIO)
    assert report.expected_output_bytes == report.expected_corrected_bytes + report.expected_fused_bytes
    [space] = report.output_space  # both default outputs sit beside the acquisition: one filesystem
    assert space.path == small_acquisition.parent.resolve() and space.expected_bytes == report.expected_output_bytes


def test_a_selection_and_pyramid_levels_change_the_estimate(small_acquisition):
    report = _diagnose(small_acquisition, timepoints=[1], output=OutputConfig(pyramid_levels=1))
    assert (report.timepoints, report.stacks) == (1, 4)
    assert report.expected_corrected_bytes == int(report.raw_bytes * 1.25 / TYPICAL_COMPRESSION_RATIO)


def test_a_truncated_stack_is_an_error_naming_its_size_and_the_xml(acquisition_copy):
    stack = acquisition_copy / STACK
    size = stack.stat().st_size
    with open(stack, "r+b") as handle:
        handle.truncate(size // 2)
    report = _diagnose(acquisition_copy)
    finding = _finding(report, "error", stack, f"{size // 2} bytes, expected {size} for 160x192x48 uint16 from ch0.xml")
    assert finding in report.errors and len(report.errors) == 1
    assert report.stacks == 8  # the other stacks are still checked


def test_an_empty_stack_is_an_error(acquisition_copy):
    stack = acquisition_copy / STACK
    stack.write_bytes(b"")
    _finding(_diagnose(acquisition_copy), "error", stack, "the file is empty")


def test_a_stack_that_is_not_whole_planes_is_an_error(acquisition_copy):
    stack = acquisition_copy / STACK
    with open(stack, "ab") as handle:
        handle.write(b"\0" * 10)
    _finding(_diagnose(acquisition_copy), "error", stack, "is not a whole number of 160x192 uint16 planes")


def test_a_stack_longer_than_declared_is_a_warning(acquisition_copy):
    stack = acquisition_copy / STACK
    with open(stack, "ab") as handle:
        handle.write(np.full((2, 192, 160), 100, dtype="<u2").tobytes())
    report = _diagnose(acquisition_copy)
    _finding(report, "warning", stack, "50 planes on disk but 48 declared in ch0.xml")
    assert report.ok


def test_a_deleted_camera_stack_is_an_error(acquisition_copy):
    stack = acquisition_copy / STACK
    stack.unlink()
    report = _diagnose(acquisition_copy)
    _finding(report, "error", stack, "camera 1 of ch0.xml not on disk")
    assert report.stacks == 7


def test_a_malformed_xml_is_an_error_and_only_its_channel_is_not_checked(acquisition_copy):
    xml = acquisition_copy / XML
    xml.write_text(xml.read_text()[:-30])
    report = _diagnose(acquisition_copy)
    _finding(report, "error", xml, "malformed XML")
    assert report.stacks == 6  # CHN00 of TM00000 cannot be read without its XML (as in a run); CHN01 and TM00001 still are


def test_a_missing_xml_is_an_error(acquisition_copy):
    xml = acquisition_copy / XML
    xml.unlink()
    _finding(_diagnose(acquisition_copy), "error", xml, "channel XML not found")


@pytest.mark.parametrize(
    ("dimensions", "problem"),
    [
        ("160x192x50,160x192x50", "expected 3072000 for 160x192x50 uint16 from ch0.xml"),
        ("160x190x48,160x190x48", "is not a whole number of 160x190 uint16 planes"),
    ],
)
def test_xml_dimensions_that_disagree_with_the_file_size_are_errors(acquisition_copy, dimensions, problem):
    _set_dimensions(acquisition_copy / XML, dimensions)
    report = _diagnose(acquisition_copy)
    _finding(report, "error", acquisition_copy / STACK, problem)
    assert len(report.errors) == 2  # both cameras of the channel


def test_a_background_of_the_wrong_shape_is_an_error(acquisition_copy):
    background = acquisition_copy / "SPM00" / "Background_2.tif"
    tifffile.imwrite(background, np.full((10, 12), 100, dtype=np.uint16))
    report = _diagnose(acquisition_copy)
    _finding(report, "error", background, "shape 10x12 does not match the camera planes 192x160")
    assert len(report.errors) == 1


def test_an_unreadable_background_is_an_error(acquisition_copy):
    background = acquisition_copy / "SPM00" / "Background_0.tif"
    background.write_bytes(b"not a tiff at all")
    _finding(_diagnose(acquisition_copy), "error", background, "unreadable background TIFF")


def test_a_missing_background_is_a_warning_unless_the_correction_requires_it(acquisition_copy):
    background = acquisition_copy / "SPM00" / "Background_3.tif"
    background.unlink()
    report = _diagnose(acquisition_copy)
    _finding(report, "warning", background, "background frame of camera 3 not found")
    assert report.ok
    report = _diagnose(acquisition_copy, correction=CorrectionConfig(background_subtraction="image"))
    _finding(report, "error", background, "background_subtraction='image' requires it")


def test_backgrounds_are_not_checked_when_the_correction_does_not_read_them(acquisition_copy):
    (acquisition_copy / "SPM00" / "Background_1.tif").write_bytes(b"broken")
    report = _diagnose(acquisition_copy, correction=CorrectionConfig(background_subtraction="none", median_kernel=None))
    assert report.ok and report.warnings == []


def test_an_unexpected_file_in_a_timepoint_folder_is_a_warning(acquisition_copy):
    stray = acquisition_copy / "SPM00" / "TM00001" / "notes.txt"
    stray.write_text("laser 2 was off")
    report = _diagnose(acquisition_copy)
    _finding(report, "warning", stray, "unexpected file")
    assert report.ok


def test_a_stack_named_for_another_timepoint_is_a_warning(acquisition_copy):
    stray = acquisition_copy / "SPM00" / "TM00001" / "ANG000" / "SPC00_TM00000_ANG000_CM0_CHN00_PH0.stack"
    shutil.copy(acquisition_copy / "SPM00/TM00000/ANG000/SPC00_TM00000_ANG000_CM0_CHN00_PH0.stack", stray)
    _finding(_diagnose(acquisition_copy), "warning", stray, "does not match specimen 0 timepoint 1 of its folder")


def test_an_all_zero_stack_is_a_warning(acquisition_copy):
    stack = acquisition_copy / STACK
    stack.write_bytes(bytes(stack.stat().st_size))
    report = _diagnose(acquisition_copy)
    _finding(report, "warning", stack, "all-zero data in every sampled plane (planes 0, 24, 47")
    assert report.ok


def test_a_constant_stack_is_a_warning(acquisition_copy):
    stack = acquisition_copy / STACK
    np.full((48, 192, 160), 65535, dtype="<u2").tofile(stack)
    _finding(_diagnose(acquisition_copy), "warning", stack, "every sampled pixel is 65535")


def test_a_non_isoview_folder_beside_the_specimen_is_a_warning(acquisition_copy):
    folder = acquisition_copy / "old_run"
    folder.mkdir()
    report = _diagnose(acquisition_copy)
    _finding(report, "warning", folder, "folder is not part of the IsoView layout (expected SPM## specimen folders)")
    assert report.ok


def test_a_folder_that_is_not_an_acquisition_is_an_error(tmp_path):
    (tmp_path / "photos").mkdir()
    _finding(_diagnose(tmp_path / "photos"), "error", tmp_path / "photos", "no IsoView acquisition found")
    report = _diagnose(tmp_path / "missing")
    _finding(report, "error", tmp_path / "missing", "acquisition folder does not exist")
    assert report.layout is None and report.stacks == 0


def test_an_output_inside_the_raw_acquisition_is_an_error(acquisition_copy, tmp_path):
    inside = acquisition_copy / "processed"
    report = _diagnose(acquisition_copy, corrected_dir=inside, fused_dir=tmp_path / "fused")
    _finding(report, "error", inside, "the corrected output folder lies inside the raw acquisition")
    inside.mkdir()
    report = _diagnose(acquisition_copy, corrected_dir=inside, fused_dir=tmp_path / "fused")
    assert len(report.errors) == 1 and report.warnings == []  # not reported again as a stray folder


@pytest.mark.parametrize(("free_factor", "level", "problem"), [(0.5, "error", "not enough disk space"), (1.5, "warning", "little disk space")])
def test_free_disk_space_below_the_expected_outputs(small_acquisition, tmp_path, monkeypatch, free_factor, level, problem):
    measured = []
    expected = _diagnose(small_acquisition).expected_output_bytes

    def disk_usage(path):
        measured.append(Path(path))
        return SimpleNamespace(total=10**12, used=10**12, free=int(free_factor * expected))

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)
    report = _diagnose(small_acquisition, corrected_dir=tmp_path / "out" / "c", fused_dir=tmp_path / "out" / "f")
    assert measured == [tmp_path.resolve()]  # the nearest existing parent of both (not yet created) outputs
    finding = _finding(report, level, tmp_path.resolve(), problem)
    assert "/out/c" in finding.message.replace("\\", "/") and "/out/f" in finding.message.replace("\\", "/")
    assert report.output_space[0].free_bytes == int(free_factor * expected)


def test_cli_doctor_exits_1_and_names_the_file_on_a_damaged_acquisition(acquisition_copy, tmp_path):
    (acquisition_copy / STACK).unlink()
    result = runner.invoke(app, ["doctor", str(acquisition_copy), "--corrected", str(tmp_path / "c"), "--output", str(tmp_path / "f")])
    assert result.exit_code == 1, result.output
    assert Path(STACK).name in result.output and "not on disk" in result.output
    assert "1 error(s)" in result.output


def test_cli_doctor_exits_0_on_a_healthy_acquisition(small_acquisition):
    result = runner.invoke(app, ["doctor", str(small_acquisition)])
    assert result.exit_code == 0, result.output
    assert "8 stacks" in result.output and "0 error(s), 0 warning(s)" in result.output
