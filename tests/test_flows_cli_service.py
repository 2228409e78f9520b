import os

import yaml
from typer.testing import CliRunner

from flows.cli import app
from isoview_core.config import ProcessingConfig
from isoview_core.service.journal import read_journal

runner = CliRunner()


def test_config_example_prints_a_config_that_check_accepts(tmp_path):
    result = runner.invoke(app, ["config", "--example"])
    assert result.exit_code == 0, result.output
    example = yaml.safe_load(result.output)
    example["processing"]["acquisition"] = str(tmp_path)
    path = tmp_path / "service.yaml"
    path.write_text(yaml.safe_dump(example))
    result = runner.invoke(app, ["config", "--check", str(path)])
    assert result.exit_code == 0 and "valid" in result.output


def test_config_check_names_the_bad_field(tmp_path):
    path = tmp_path / "service.yaml"
    path.write_text("processing: {acquisition: /a, fusion: {blending_range_cameras: -3}}")
    result = runner.invoke(app, ["config", "--check", str(path)])
    assert result.exit_code == 2 and "processing.fusion.blending_range_cameras" in result.output


def test_watch_without_an_acquisition_says_what_to_give():
    result = runner.invoke(app, ["watch"])
    assert result.exit_code == 2 and "give the acquisition folder" in result.output


def test_run_corrects_and_fuses_then_skips_finished_work(prefect_harness, small_acquisition, tmp_path):
    options = ["--window", "1", "--no-diagnostics"]
    config = yaml.safe_dump({"processing": {"acquisition": str(small_acquisition), "corrected_dir": str(tmp_path / "c"), "fused_dir": str(tmp_path / "f")}})
    (tmp_path / "service.yaml").write_text(config)
    result = runner.invoke(app, ["run", "--config", str(tmp_path / "service.yaml"), *options])
    assert result.exit_code == 0, result.output
    assert "corrected 2 timepoints, fused 4 pairs" in result.output
    result = runner.invoke(app, ["run", "--config", str(tmp_path / "service.yaml"), *options])
    assert result.exit_code == 0 and "fused 0 pairs" in result.output
    journal = read_journal(ProcessingConfig(acquisition=small_acquisition, fused_dir=tmp_path / "f"))
    assert sorted(e["event"] for e in journal).count("corrected") == 8


def test_run_with_archive_verifies_each_raw_stack_and_deletes_only_then(prefect_harness, acquisition_copy, tmp_path):
    import json

    stacks = sorted(acquisition_copy.rglob("*.stack"))
    result = runner.invoke(app, ["run", str(acquisition_copy), "--no-fusion", "--archive-raw", "--delete-raw-after-verify"])
    assert result.exit_code == 0, result.output
    assert not [stack for stack in stacks if stack.exists()]  # every raw stack archived, verified, then deleted
    records = [json.loads(path.read_text()) for path in (tmp_path / "acquisition.archive").rglob("*.archive.json")]
    assert len(records) == len(stacks) and all(r["verified"] and r["deleted_raw"] for r in records)


def test_delete_raw_without_archive_is_refused(small_acquisition):
    result = runner.invoke(app, ["run", str(small_acquisition), "--delete-raw-after-verify"])
    assert result.exit_code == 2 and "needs --archive-raw" in result.output


def test_prefect_defaults_turn_telemetry_off_unless_the_user_chose(monkeypatch):
    from flows.cli.service import _prefect_defaults

    for name in ("PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"):
        monkeypatch.setenv(name, "")  # restored (or removed) after the test
        monkeypatch.delenv(name)
    _prefect_defaults()
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "true")
    _prefect_defaults()
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "true"


def test_watch_refuses_a_file_or_a_folder_whose_parent_is_missing_at_once(tmp_path, monkeypatch):
    import flows.cli.service

    def never(*args, **kwargs):
        raise AssertionError("the watcher started")

    monkeypatch.setattr(flows.cli.service, "_run_watcher", never)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not an acquisition")
    result = runner.invoke(app, ["watch", str(a_file), "--idle-timeout", "60"])
    assert result.exit_code == 2 and f"{a_file}: not a folder" in result.output
    typo = tmp_path / "no-such-day" / "acq"
    result = runner.invoke(app, ["watch", str(typo), "--idle-timeout", "60"])
    assert result.exit_code == 2 and "its parent folder" in result.output and "does not exist" in result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]  # nothing created


def test_watch_waits_for_an_acquisition_not_there_yet_in_one_line_until_the_idle_timeout(tmp_path, monkeypatch):
    import flows.memory

    thresholds = []
    monkeypatch.setattr(flows.memory, "apply_mmap_threshold", thresholds.append)
    acquisition = tmp_path / "acq"
    result = runner.invoke(app, ["watch", str(acquisition), "--idle-timeout", "1"])
    assert result.exit_code == 2, result.output
    assert result.output.count("acquisition folder does not exist; waiting for the microscope to write it") == 1
    assert "no acquisition appeared within the idle timeout (1 s)" in result.output
    assert not (tmp_path / "acq.fused" / "service" / "watcher.lock").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == []  # the folders made for the lock are gone too
    assert thresholds == [131072]  # the service's memory setting is applied before it waits


def test_run_on_an_empty_or_missing_folder_prints_only_the_error(tmp_path):
    (tmp_path / "empty").mkdir()
    for folder in ("empty", "missing"):
        result = runner.invoke(app, ["run", str(tmp_path / folder)])
        assert result.exit_code == 2, result.output
        [line] = result.output.strip().splitlines()
        assert line.startswith(f"error: {tmp_path / folder}")


def test_prefects_reports_of_failed_runs_stay_out_of_the_terminal(monkeypatch):
    import logging

    from rich.logging import RichHandler

    from flows.cli.service import _prefect_defaults

    terminal = RichHandler()
    monkeypatch.setattr(logging.getLogger(), "handlers", [terminal])
    _prefect_defaults()

    def shown(name: str, level: int) -> bool:
        return terminal.filter(logging.LogRecord(name, level, __file__, 1, "a report", None, None))

    assert not shown("prefect.flow_runs", logging.ERROR) and not shown("prefect.task_runs", logging.ERROR)
    assert shown("prefect.flow_runs", logging.WARNING)  # warnings still reach the terminal
    assert shown("isoview_core.correction", logging.ERROR)  # and so do isoview's own errors


def test_the_flags_given_override_the_config_file_and_the_others_keep_its_values(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import flows.cli.service
    from isoview_core.formats.atomic import FSYNC_VARIABLE

    monkeypatch.setenv(FSYNC_VARIABLE, "1")  # --no-fsync below turns it off for the process: restored after the test
    seen = []
    monkeypatch.setattr(flows.cli.service, "_run_watcher", lambda config: seen.append(config) or SimpleNamespace(corrected=[], fused=[], problems=[]))
    file_settings = {
        "processing": {
            "acquisition": str(tmp_path / "acq"),
            "temporal": {"window": 3, "smoothing_window": 9},
            "output": {"pyramid_levels": 1},
            "archive": {"root": str(tmp_path / "archive")},
        },
        "watch": {"polling": True, "settle_s": 4.0},
    }
    (tmp_path / "service.yaml").write_text(yaml.safe_dump(file_settings))
    flags = ["--window", "1", "--no-fsync", "--archive-raw", "--idle-timeout", "30", "--task-runner", "dask"]
    result = runner.invoke(app, ["watch", "--config", str(tmp_path / "service.yaml"), *flags])
    assert result.exit_code == 0, result.output
    [config] = seen
    assert config.processing.temporal.window == 1 and config.processing.temporal.smoothing_window == 9
    assert not config.processing.output.fsync and config.processing.output.pyramid_levels == 1
    assert config.processing.archive.enabled and config.processing.archive.root == tmp_path / "archive"
    assert config.watch.polling and config.watch.settle_s == 4.0 and config.watch.idle_timeout_s == 30.0
    assert config.execution.task_runner == "dask" and config.processing.save_diagnostics  # --no-diagnostics not given


def test_a_bad_flag_is_one_line_naming_the_command_line(tmp_path):
    (tmp_path / "service.yaml").write_text(yaml.safe_dump({"processing": {"acquisition": str(tmp_path)}}))
    result = runner.invoke(app, ["run", "--config", str(tmp_path / "service.yaml"), "--window", "-2"])
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: command line: processing.temporal.window")
