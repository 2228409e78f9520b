"""Quality alerts in the service: the watcher turns each new alert into a problem line, the ``isoview-alerts`` table
and a notification, once (a rerun repeats none); an unreachable notifier is only logged."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from prefect.artifacts import Artifact
from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.system import Secret

from flows.alerts import ALERTS_ARTIFACT_KEY, publish_alerts, report_alerts
from flows.service_config import ServiceConfig, WatchConfig
from flows.watcher import AcquisitionWatcher
from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.layout import ESTIMATE_SUFFIX, alerts_path, corrected_paths, output_timepoint_folder, service_dir
from isoview_core.pipeline.correction import process_dataset
from isoview_core.pipeline.fusion import fuse
from isoview_core.quality.alerts import QualityAlert, read_alerts
from isoview_core.service.journal import read_problems
from isoview_core.synthetic import DarkCamera, OffsetJump, SimulationConfig, simulate_acquisition
from isoview_core.temporal.config import TemporalConfig

WINDOW = 1
FAULTY = SimulationConfig(
    shape=(48, 192, 160),
    timepoints=6,
    seed=3,
    offset_jumps=(OffsetJump(timepoint=4, pair=0, offset_x_px=3.0),),
    dark_cameras=(DarkCamera(camera=3, from_timepoint=3),),
)
DARK_ALERT = "SPM00 TM000003 CHN01 camera 3: signal dropped to "
JUMP_ALERT = "SPM00 TM000004 CHN00 cameras 0/1: offset jumped 3.0 px from the previous timepoints"


class RecordingNotification(NotificationBlock):
    """A notification block that appends what it is sent to a file: a webhook's stand-in."""

    _block_type_name = "Isoview Test Recording"
    _block_type_slug = "isoview-test-recording"

    path: str

    def notify(self, body: str, subject: str | None = None) -> None:
        with open(self.path, "a") as sent:
            sent.write(json.dumps({"subject": subject, "body": body}) + "\n")


def _sent(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _config(acquisition: Path, outputs: Path) -> ProcessingConfig:
    return ProcessingConfig(
        acquisition=acquisition,
        corrected_dir=outputs / "corrected",
        fused_dir=outputs / "fused",
        temporal=TemporalConfig(window=WINDOW),
        save_diagnostics=False,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> ProcessingConfig:
    """An acquisition with camera 3 dark from TM3 and cameras 0/1's offset 3 px off at TM4, processed once."""
    root = tmp_path_factory.mktemp("alerts")
    simulate_acquisition(root / "acquisition", FAULTY)
    config = _config(root / "acquisition", root / "reference")
    process_dataset(config)
    assert not fuse(config).errors
    return config


class CopyingSubmitter:
    """Stands in for the flows: a timepoint is "corrected" or "fused" by copying the reference's outputs of it (the
    quality checks read only what is on disk), so that the test times the watcher's checks, not the processing."""

    def __init__(self, reference: ProcessingConfig, target: ProcessingConfig) -> None:
        self.reference, self.target = reference, target

    def correct(self, specimen: int, timepoint: int) -> None:
        self._copy(ProcessingConfig.resolved_corrected_dir, specimen, timepoint)

    def fuse(self, specimen: int, timepoints: list[int], *, acquisition_finished: bool) -> None:
        for timepoint in timepoints:
            self._copy(ProcessingConfig.resolved_fused_dir, specimen, timepoint)
        for timepoint in range(max(timepoints) + 1, max(timepoints) + WINDOW + 1):  # the estimates the window needed
            source = output_timepoint_folder(self.reference.resolved_fused_dir(), specimen, timepoint)
            target = output_timepoint_folder(self.target.resolved_fused_dir(), specimen, timepoint)
            for estimate in source.glob(f"*{ESTIMATE_SUFFIX}"):
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(estimate, target)

    def estimate(self, specimen: int, timepoint: int) -> None:
        """Left to the fusion, which copies the estimates its window needed."""

    def draw(self, specimen: int, timepoints: list[int]) -> None:
        """The figures are no part of the quality checks."""

    def _copy(self, root_of, specimen: int, timepoint: int) -> None:
        source = output_timepoint_folder(root_of(self.reference), specimen, timepoint)
        shutil.copytree(source, output_timepoint_folder(root_of(self.target), specimen, timepoint), dirs_exist_ok=True)


def _watch(reference: ProcessingConfig, config: ProcessingConfig, alert_block: str | None = None) -> AcquisitionWatcher:
    service = ServiceConfig(processing=config, watch=WatchConfig(scan_interval_s=0.05, settle_s=0.0, alert_block=alert_block))
    watcher = AcquisitionWatcher(service, CopyingSubmitter(reference, config))
    watcher.end_acquisition()  # the acquisition is on disk already: process it and stop
    return watcher


def test_the_watcher_raises_each_alert_once_as_a_problem_in_the_ui_and_as_a_notification(prefect_harness, reference, tmp_path):
    RecordingNotification(path=str(tmp_path / "sent.jsonl")).save("watcher", overwrite=True)
    config = _config(reference.acquisition, tmp_path / "live")

    summary = _watch(reference, config, "isoview-test-recording/watcher").run()

    assert len(summary.corrected) == 6 and len(summary.fused) == 6
    assert len(summary.problems) == 2
    dark, jump = summary.problems  # the dark camera after TM3's correction, the jump after a fusion
    assert dark.startswith(DARK_ALERT) and jump.startswith(JUMP_ALERT)
    assert [(entry["timepoints"], entry["message"]) for entry in read_problems(config)] == [([3], dark), ([4], jump)]
    rows = Artifact.get(ALERTS_ARTIFACT_KEY).data
    rows = json.loads(rows) if isinstance(rows, str) else rows
    assert [row["alert"] for row in rows] == [jump, dark]  # newest first
    assert [message["body"] for message in _sent(tmp_path / "sent.jsonl")] == [dark, jump]
    assert _sent(tmp_path / "sent.jsonl")[0]["subject"] == "isoview: 1 quality alert in acquisition"

    # a rerun over the same outputs folder (a restart that redoes every timepoint) repeats no alert
    for folder in [config.resolved_corrected_dir(), *config.resolved_fused_dir().iterdir()]:
        if folder != service_dir(config.resolved_fused_dir()):
            shutil.rmtree(folder)
    rerun = _watch(reference, config, "isoview-test-recording/watcher").run()

    assert len(rerun.corrected) == 6 and rerun.problems == []
    assert len(read_alerts(config.resolved_fused_dir())) == 2 and len(read_problems(config)) == 2
    assert len(_sent(tmp_path / "sent.jsonl")) == 2


class FailingSubmitter(CopyingSubmitter):
    """Camera 1's correction fails at TM4: the flow's error, and no corrected stack of it."""

    def correct(self, specimen: int, timepoint: int) -> None:
        super().correct(specimen, timepoint)
        if timepoint == 4:
            corrected_paths(self.target.resolved_corrected_dir(), specimen, timepoint, 1, 0).record.unlink()
            raise IsoviewError("SPM00 TM000004: 1 error(s): SPC00_TM00004_ANG000_CM1_CHN00_PH0.stack: truncated")


def test_a_failed_correction_is_one_problem_and_raises_no_missing_camera_alert(prefect_harness, reference, tmp_path):
    config = _config(reference.acquisition, tmp_path / "live")
    service = ServiceConfig(processing=config, watch=WatchConfig(fusion=False, scan_interval_s=0.05, settle_s=0.0))
    watcher = AcquisitionWatcher(service, FailingSubmitter(reference, config))
    watcher.end_acquisition()

    summary = watcher.run()

    assert [message.split(":")[0] for message in summary.problems] == ["SPM00 TM000003 CHN01 camera 3", "SPM00 TM000004"]
    assert [alert.kind for alert in read_alerts(config.resolved_fused_dir())] == ["signal"]


def _recorded(config: ProcessingConfig, *messages: str) -> list[QualityAlert]:
    alerts = [
        QualityAlert(kind="missing", specimen=0, timepoint=t, channel=0, cameras=(1,), message=message, value=4, bound=0, time=1.0e9 + t)
        for t, message in enumerate(messages)
    ]
    alerts_path(config.resolved_fused_dir()).parent.mkdir(parents=True)
    alerts_path(config.resolved_fused_dir()).write_text("".join(alert.model_dump_json() + "\n" for alert in alerts))
    return alerts


def test_the_alert_table_lists_the_latest_alerts_newest_first(prefect_harness, tmp_path):
    config = _config(tmp_path / "acquisition", tmp_path)
    _recorded(config, "SPM00 TM000000 CHN00 camera 1: first", "SPM00 TM000001 CHN00 camera 1: second")

    assert report_alerts(config) == 2

    rows = Artifact.get(ALERTS_ARTIFACT_KEY).data
    rows = json.loads(rows) if isinstance(rows, str) else rows
    assert [(row["timepoint"], row["cameras"], row["kind"], row["alert"]) for row in rows] == [
        (1, "1", "missing", "SPM00 TM000001 CHN00 camera 1: second"),
        (0, "1", "missing", "SPM00 TM000000 CHN00 camera 1: first"),
    ]


@pytest.mark.parametrize(
    ("block", "logged"),
    [("secret/isoview-not-a-notifier", "a Secret block cannot send notifications"), ("isoview-test-recording/nobody", "nobody")],
)
def test_a_block_that_cannot_notify_is_logged_and_the_alerts_stay_listed(prefect_harness, tmp_path, caplog, block, logged):
    Secret(value="not a webhook").save("isoview-not-a-notifier", overwrite=True)
    config = _config(tmp_path / "acquisition", tmp_path)
    alerts = _recorded(config, "SPM00 TM000000 CHN00 camera 1: missing")

    with caplog.at_level(logging.WARNING, logger="flows.alerts"):
        publish_alerts(config, alerts, alert_block=block)

    assert f"could not send 1 quality alert(s) through {block}" in caplog.text and logged in caplog.text
    rows = Artifact.get(ALERTS_ARTIFACT_KEY).data
    assert "SPM00 TM000000 CHN00 camera 1: missing" in str(rows)


def test_the_service_config_takes_a_notification_block_as_type_and_name():
    assert WatchConfig(alert_block="slack-webhook/lab").alert_block == "slack-webhook/lab"
    with pytest.raises(ValueError, match="alert_block"):
        WatchConfig(alert_block="lab")
