"""``isoview export bigstitcher`` writes dataset.xml and prints its path; ``isoview export series`` builds the time series; bad roots fail in one line."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from isoview_core.config import ProcessingConfig
from isoview_core.layout import series_files
from isoview_core.pipeline.correction import process_dataset
from isoview_core.pipeline.fusion import fuse
from isoview_core.results.series import published_timepoints
from test_results_bigstitcher import write_series

runner = CliRunner()


def test_export_bigstitcher_writes_the_dataset_and_prints_its_path(tmp_path: Path) -> None:
    fused = tmp_path / "acq.fused"
    write_series(fused, view=0, channel=0, timepoints=[0, 1])
    write_series(fused, view=90, channel=1, timepoints=[0, 1])
    result = runner.invoke(app, ["export", "bigstitcher", str(fused)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(fused / "dataset.xml")
    tree = ET.parse(fused / "dataset.xml").getroot()
    assert len(tree.findall("SequenceDescription/ViewSetups/ViewSetup")) == 2
    assert tree.findtext("SequenceDescription/Timepoints/integerpattern") == "0-1"


def test_export_bigstitcher_without_series_fails_with_one_line_naming_the_root(tmp_path: Path) -> None:
    empty = tmp_path / "acq.fused"
    empty.mkdir()
    result = runner.invoke(app, ["export", "bigstitcher", str(empty)])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(empty) in errors[0] and "no fused time series" in errors[0]
    assert not (empty / "dataset.xml").exists()


def test_export_is_listed_with_its_commands() -> None:
    result = runner.invoke(app, ["export", "--help"])
    assert result.exit_code == 0 and "bigstitcher" in result.output and "series" in result.output


def test_export_series_builds_the_time_series_of_fused_volumes(small_acquisition, tmp_path: Path) -> None:
    config = ProcessingConfig(acquisition=small_acquisition, corrected_dir=tmp_path / "acq.corrected", fused_dir=tmp_path / "acq.fused", timepoints=[1], save_diagnostics=False)
    process_dataset(config)
    fuse(config)
    for path in series_files(config.resolved_fused_dir()):
        shutil.rmtree(path)
    result = runner.invoke(app, ["export", "series", str(config.resolved_fused_dir())])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"{config.resolved_fused_dir() / name}: 1 timepoints added" for name in ("SPM00_VW00_CHN00.ome.zarr", "SPM00_VW90_CHN01.ome.zarr")]
    assert published_timepoints(config.resolved_fused_dir() / "SPM00_VW00_CHN00.ome.zarr").keys() == {1}
    again = runner.invoke(app, ["export", "series", str(config.resolved_fused_dir())])
    assert again.stdout.splitlines()[0].endswith(": 0 timepoints added")


def test_export_series_of_a_root_without_fused_volumes_fails_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "acq.fused").mkdir()
    result = runner.invoke(app, ["export", "series", str(tmp_path / "acq.fused")])
    assert result.exit_code == 2
    assert [line for line in result.output.splitlines() if line.startswith("error:")] == [f"error: {tmp_path / 'acq.fused'}: no fused volumes to make time series of"]
