"""A channel XML that cannot be read fails only its own channel's stacks: the batch correction
(``process_dataset``, ``isoview correct``) still corrects the other channel of the timepoint, the
batch fusion fuses its pair, and the XML is one error line naming the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from isoview_core.acquisition import discover_acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.layout import (
    corrected_paths,
    is_stack_corrected,
    output_timepoint_folder,
)
from isoview_core.pipeline.correction import process_dataset
from isoview_core.pipeline.fusion import fuse
from isoview_core.service.progress import is_timepoint_corrected

CAMERA_CHANNELS = [(0, 0), (1, 0), (2, 1), (3, 1)]
"""The simulator's cameras and channels: CM0, CM1 in CHN00 and CM2, CM3 in CHN01."""


def corrupt_channel_xml(root: Path, timepoint: int = 1, channel: int = 0) -> Path:
    """Cut a timepoint's channel XML short, as an interrupted copy would; returns its path."""
    xml = root / "SPM00" / f"TM{timepoint:05d}" / f"ch{channel}.xml"
    xml.write_text(xml.read_text()[:300])
    return xml


def corrected_stacks(config: ProcessingConfig, timepoints: range) -> list[tuple[int, int, int]]:
    """(timepoint, camera, channel) of every stack with a complete corrected volume and record."""
    root = config.resolved_corrected_dir()
    return [
        (t, camera, channel)
        for t in timepoints
        for camera, channel in CAMERA_CHANNELS
        if is_stack_corrected(corrected_paths(root, 0, t, camera, channel))
    ]


@pytest.fixture(scope="module")
def corrected(small_acquisition: Path, tmp_path_factory: pytest.TempPathFactory):
    """The 2-timepoint acquisition with TM1's ch0.xml corrupted, corrected once: config, reports, bad XML."""
    root = tmp_path_factory.mktemp("bad_xml") / "acquisition"
    shutil.copytree(small_acquisition, root)
    xml = corrupt_channel_xml(root)
    config = ProcessingConfig(acquisition=root, save_diagnostics=False)
    return config, process_dataset(config), xml


def test_a_corrupted_channel_xml_fails_only_its_channel_with_one_error_naming_it(corrected):
    config, reports, xml = corrected

    assert corrected_stacks(config, range(2)) == [(0, 0, 0), (0, 1, 0), (0, 2, 1), (0, 3, 1), (1, 2, 1), (1, 3, 1)]
    [error] = [error for report in reports for error in report.errors]
    assert error.startswith(f"{xml}: malformed XML (") and error.endswith("; CM00, CM01 of CHN00 not corrected")
    assert "\n" not in error
    copied = sorted(path.name for path in output_timepoint_folder(config.resolved_corrected_dir(), 0, 1).glob("*.xml"))
    assert copied == ["SPM00_TM000001_CHN01.xml"]  # only the XML that was read goes beside the volumes


def test_the_timepoint_does_not_count_as_corrected_while_a_channel_xml_is_unreadable(corrected):
    config, _, _ = corrected
    acquisition = discover_acquisition(config.acquisition)

    assert is_timepoint_corrected(config, acquisition, 0, 0)
    assert not is_timepoint_corrected(config, acquisition, 0, 1)  # a restarted watcher tries it again


def test_the_batch_fusion_fuses_the_good_pair_and_names_the_xml_of_the_other(corrected):
    config, _, xml = corrected

    report = fuse(config)

    assert sorted((record.timepoint, record.cameras) for record in report.fused) == [(0, (0, 1)), (0, (2, 3)), (1, (2, 3))]
    [error] = report.errors
    assert error.startswith(f"SPM00 TM000001 cameras 0+1: not fused, {xml}: malformed XML")


def test_isoview_correct_exits_1_with_one_error_line_naming_the_xml(acquisition_copy: Path, tmp_path: Path):
    xml = corrupt_channel_xml(acquisition_copy)

    result = CliRunner().invoke(app, ["correct", str(acquisition_copy), "--output", str(tmp_path / "corrected")])

    assert result.exit_code == 1, result.output
    assert "corrected 6 stacks" in result.output
    [line] = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: {xml}: malformed XML")
