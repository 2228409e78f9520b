"""Durable publishing in the pipeline: the record of a corrected stack is published only once its
data is on disk, a raw stack is deleted only once its archive is, and ``--no-fsync`` turns fsync off."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from durability_log import DurabilityLog
from typer.testing import CliRunner

import isoview_core.archive as archive_module
from flows.cli import app
from isoview_core.acquisition import discover_acquisition
from isoview_core.archive import (
    ArchiveConfig,
    ArchiveRecord,
    archive_paths,
    archive_stack,
)
from isoview_core.config import ProcessingConfig
from isoview_core.formats.atomic import FSYNC_VARIABLE, fsync_enabled, set_fsync
from isoview_core.layout import corrected_paths, journal_path
from isoview_core.pipeline.correction import copy_channel_xmls, correct_camera_stack
from isoview_core.service.journal import record_work

runner = CliRunner()


@pytest.fixture()
def log(monkeypatch: pytest.MonkeyPatch) -> DurabilityLog:
    """fsync on (whatever the environment says; restored after the test), every fsync and rename logged."""
    monkeypatch.setenv(FSYNC_VARIABLE, "1")
    return DurabilityLog.install(monkeypatch)


def test_a_corrected_stack_is_on_disk_before_its_record_is_published(log, small_acquisition, tmp_path):
    config = ProcessingConfig(acquisition=small_acquisition, corrected_dir=tmp_path / "corrected")
    acquisition = discover_acquisition(small_acquisition)
    stack = acquisition.timepoint(0, 0).stacks[0]
    correct_camera_stack(acquisition, stack, config)
    record_work(config, "corrected", camera=stack.camera)

    paths = corrected_paths(config.resolved_corrected_dir(), stack.specimen, stack.timepoint, stack.camera, stack.channel)
    record_published, record_durable = log.assert_durably_published(paths.record)
    outputs = [path for path in paths.folder.iterdir() if path != paths.record]
    assert paths.volume in outputs and len(outputs) > 5  # the volume, its projections and coordinate masks
    for output in outputs:
        _, durable = log.assert_durably_published(output)
        assert durable < record_published, f"{paths.record.name} published before {output.name} was on disk"
    journal = journal_path(config.resolved_fused_dir())
    assert any(i > record_durable for i in log.fsynced_at(journal))  # the line saying it is done comes after, fsync'ed


def test_the_channel_xml_copies_are_published_durably(log, small_acquisition, tmp_path):
    config = ProcessingConfig(acquisition=small_acquisition, corrected_dir=tmp_path / "corrected")
    files = discover_acquisition(small_acquisition).timepoint(0, 0)
    copy_channel_xmls(config, files)
    copies = sorted(corrected_paths(config.resolved_corrected_dir(), 0, 0, 0, 0).folder.glob("*.xml"))
    assert len(copies) == len(files.channel_xmls) == 2
    for copy in copies:
        log.assert_durably_published(copy)


def test_a_raw_stack_is_deleted_only_once_its_archive_is_on_disk_even_without_fsync(log, acquisition_copy, monkeypatch):
    set_fsync(False)  # an earlier run, or this one, wrote the archive without fsync
    stack = discover_acquisition(acquisition_copy).timepoint(0, 0).stacks[0]
    config = ArchiveConfig(enabled=True, delete_raw_after_verify=True)
    paths = archive_paths(stack, acquisition_copy, config)
    folders = paths.archive.parents[: paths.archive.parents.index(config.resolved_root(acquisition_copy).parent) + 1]
    delete = archive_module._delete_verified_raw

    def delete_once_durable(stack_path: Path, record: ArchiveRecord) -> ArchiveRecord:
        for entry in [*paths.archive.rglob("*"), *paths, *folders]:
            assert log.fsynced_at(entry), f"{entry} not fsync'ed before the raw stack is deleted"
        return delete(stack_path, record)

    monkeypatch.setattr(archive_module, "_delete_verified_raw", delete_once_durable)
    assert archive_stack(stack, acquisition_copy, config).deleted_raw and not stack.path.exists()


def test_no_fsync_on_the_command_line_corrects_without_any_fsync(log, small_acquisition, tmp_path):
    output = tmp_path / "corrected"
    result = runner.invoke(app, ["correct", str(small_acquisition), "--output", str(output), "--timepoints", "0", "--no-fsync"])
    assert result.exit_code == 0, result.output
    assert log.fsyncs() == 0 and not fsync_enabled()
    assert len(list(output.rglob("*.json"))) > 4  # records written all the same


@pytest.mark.parametrize("command", ["fuse", "watch", "run"])
def test_no_fsync_reaches_the_work_of_every_command_and_keeps_the_config_files_output(command, monkeypatch, small_acquisition, tmp_path):
    monkeypatch.setenv(FSYNC_VARIABLE, "1")
    seen = {}

    def work(config: ProcessingConfig) -> SimpleNamespace:
        seen.update(fsync=fsync_enabled(), output=config.output)
        return SimpleNamespace(estimated=[], fused=[], skipped=[], errors=[], corrected=[], problems=[], corrected_timepoints=0, fused_pairs=0)

    monkeypatch.setattr("isoview_core.pipeline.fusion.fuse", lambda config, **_: work(config))
    monkeypatch.setattr("flows.cli.service._run_watcher", lambda config: work(config.processing))
    monkeypatch.setattr("flows.acquisition.process_acquisition", lambda acquisition, timepoints, config, **_: work(config))
    config_file = tmp_path / "service.yaml"
    config_file.write_text(yaml.safe_dump({"processing": {"acquisition": str(small_acquisition), "output": {"pyramid_levels": 2}}}))
    arguments = [command, str(small_acquisition)] if command == "fuse" else [command, "--config", str(config_file)]
    for no_fsync in (True, False):
        result = runner.invoke(app, [*arguments, *(["--no-fsync"] if no_fsync else [])])
        assert result.exit_code == 0, result.output
        assert seen["fsync"] is seen["output"].fsync is (not no_fsync)
        assert seen["output"].pyramid_levels == (0 if command == "fuse" else 2)


def test_the_output_config_fsyncs_by_default():
    assert ProcessingConfig(acquisition=Path("acquisition")).output.fsync is True
