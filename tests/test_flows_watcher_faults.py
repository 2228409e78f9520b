"""The watcher on bad input and faults: each problem is one line naming the file, the other
timepoints are processed, a full disk is retried, raw data is never touched."""

from __future__ import annotations

import errno
import hashlib
import shutil
import threading
from pathlib import Path

import pytest
from prefect.artifacts import Artifact

import flows.correction
from flows.service_config import ServiceConfig, WatchConfig
from flows.submission import InProcessSubmitter
from flows.watcher import AcquisitionWatcher
from isoview_core.acquisition import discover_acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.formats.atomic import PARTIAL_MARKER
from isoview_core.formats.omezarr import OmeZarrWriter
from isoview_core.service.journal import read_problems
from isoview_core.synthetic import SimulationConfig, simulate_acquisition
from tasks.correction import correct_stack_task

TINY = SimulationConfig(shape=(24, 96, 80), timepoints=6, seed=11)


@pytest.fixture(scope="module")
def tiny_acquisition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny") / "acquisition"
    simulate_acquisition(root, TINY)
    return root


def _stack(root: Path, timepoint: int, camera: int) -> Path:
    return next(s.path for s in discover_acquisition(root).timepoint(0, timepoint).stacks if s.camera == camera)


def _checksums(root: Path) -> dict[str, str]:
    return {str(path): hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(root.rglob("*")) if path.is_file()}


def _watch(root: Path, **watch: float) -> tuple[ServiceConfig, AcquisitionWatcher]:
    config = ServiceConfig(
        processing=ProcessingConfig(acquisition=root),
        watch=WatchConfig(fusion=False, scan_interval_s=0.1, settle_s=0.2, idle_timeout_s=2.0, **watch),
    )
    return config, AcquisitionWatcher(config, InProcessSubmitter(config))


def test_each_bad_timepoint_is_one_problem_naming_its_file_and_the_others_are_processed(prefect_harness, tiny_acquisition, tmp_path):
    root = tmp_path / "acquisition"
    shutil.copytree(tiny_acquisition, root)
    truncated = _stack(root, 1, 2)
    with open(truncated, "r+b") as handle:
        handle.truncate(truncated.stat().st_size - 1000)
    malformed = root / "SPM00" / "TM00002" / "ch0.xml"
    malformed.write_text("<push_config><info dimensions=")
    all_zero = _stack(root, 3, 1)
    all_zero.write_bytes(bytes(all_zero.stat().st_size))
    too_long = _stack(root, 4, 3)
    with open(too_long, "ab") as handle:
        handle.write(bytes(1000))
    (root / "SPM00" / "TM00005" / "notes.txt").write_text("specimen looked fine")  # unexpected file: ignored
    (root / "scratch").mkdir()  # not part of the acquisition: ignored
    (root / "scratch" / "analysis.csv").write_text("a,b\n")
    before = _checksums(root)

    config, watcher = _watch(root, stalled_after_s=1.0)
    summary = watcher.run()

    assert sorted(summary.corrected) == [(0, 0), (0, 5)]
    problems = {tuple(entry["timepoints"]): entry["message"] for entry in read_problems(config.processing)}
    assert problems.keys() == {(1,), (2,), (3,), (4,)} and len(summary.problems) == 4
    assert truncated.name in problems[(1,)] and "bytes written" in problems[(1,)]
    assert str(malformed) in problems[(2,)] and "malformed" in problems[(2,)].lower()
    assert all_zero.name in problems[(3,)] and "every pixel" in problems[(3,)]
    assert too_long.name in problems[(4,)] and "bytes" in problems[(4,)]
    assert all("\n" not in message for message in problems.values())
    shown = Artifact.get("isoview-problems").data
    assert all(message in str(shown) for message in problems.values())  # the UI lists them
    assert _checksums(root) == before  # raw data untouched


def test_a_full_disk_fails_cleanly_and_is_retried_once_space_is_back(prefect_harness, tiny_acquisition, tmp_path, monkeypatch):
    root = tmp_path / "acquisition"
    shutil.copytree(tiny_acquisition, root)
    for timepoint in range(2, TINY.timepoints):
        shutil.rmtree(root / "SPM00" / f"TM{timepoint:05d}")
    before = _checksums(root)
    disk_full = threading.Event()
    disk_full.set()
    original_write = OmeZarrWriter.write

    def write_or_fail(self, *args, **kwargs):
        if disk_full.is_set():
            threading.Timer(1.0, disk_full.clear).start()  # space comes back a second later
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return original_write(self, *args, **kwargs)

    monkeypatch.setattr(OmeZarrWriter, "write", write_or_fail)
    monkeypatch.setattr(flows.correction, "correct_stack_task", correct_stack_task.with_options(retries=0))
    config, watcher = _watch(root, disk_full_retry_s=0.5)
    summary = watcher.run()

    assert sorted(summary.corrected) == [(0, 0), (0, 1)]
    assert summary.problems and all("No space left on device" in p and "retrying" in p for p in summary.problems)
    outputs = config.processing.resolved_corrected_dir()
    assert not list(outputs.rglob(f"*{PARTIAL_MARKER}*"))  # the failed write left nothing behind
    assert len(list(outputs.glob("SPM00/TM*/*.ome.zarr"))) == 8
    assert _checksums(root) == before


class FlakyServerSubmitter:
    """A Prefect server that is down for the first `outages` submissions, then accepts them."""

    def __init__(self, outages: int) -> None:
        self.outages = outages
        self.done: list[tuple] = []

    def _submit(self, job: tuple) -> None:
        from flows.submission import ServerUnavailable

        if self.outages:
            self.outages -= 1
            raise ServerUnavailable("correct-timepoint/isoview: cannot reach the Prefect server ([Errno 111] Connection refused)")
        self.done.append(job)

    def correct(self, specimen: int, timepoint: int) -> None:
        self._submit(("correct", timepoint))

    def fuse(self, specimen: int, timepoints: list[int], *, acquisition_finished: bool) -> None:
        self._submit(("fuse", tuple(timepoints)))


def test_a_server_outage_keeps_the_queue_and_submits_when_it_is_back(tiny_acquisition):
    config = ServiceConfig(
        processing=ProcessingConfig(acquisition=tiny_acquisition, fused_dir=tiny_acquisition.parent / "outage.fused"),
        watch=WatchConfig(scan_interval_s=0.05, settle_s=0.0, idle_timeout_s=1.0),
    )
    submitter = FlakyServerSubmitter(outages=3)
    summary = AcquisitionWatcher(config, submitter).run()
    corrections = [job[1] for job in submitter.done if job[0] == "correct"]
    fused = sorted(t for job in submitter.done if job[0] == "fuse" for t in job[1])
    assert corrections == list(range(TINY.timepoints)) and fused == list(range(TINY.timepoints))
    assert summary.problems == [] and submitter.outages == 0


def test_the_deployment_submitter_reports_a_dead_server_or_falls_back_to_in_process(tmp_path, monkeypatch):
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_CLIENT_MAX_RETRIES,
        temporary_settings,
    )

    import flows.submission
    from flows.submission import DeploymentSubmitter, ServerUnavailable

    ran: list[tuple] = []

    class RecordingInProcess:
        def __init__(self, config: ServiceConfig) -> None:
            pass

        def correct(self, specimen: int, timepoint: int) -> None:
            from prefect.settings import PREFECT_API_URL

            ran.append((timepoint, PREFECT_API_URL.value()))  # the fallback runs embedded, not on the dead server

    monkeypatch.setattr(flows.submission, "InProcessSubmitter", RecordingInProcess)
    processing = ProcessingConfig(acquisition=tmp_path)
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api", PREFECT_CLIENT_MAX_RETRIES: 0}):
        down = ServiceConfig(processing=processing, execution={"deployment": "isoview"})
        with pytest.raises(ServerUnavailable, match="correct-timepoint/isoview: cannot reach the Prefect server"):
            DeploymentSubmitter(down, "isoview").correct(0, 3)
        fallback = ServiceConfig(processing=processing, execution={"deployment": "isoview", "fallback_in_process": True})
        DeploymentSubmitter(fallback, "isoview").correct(0, 3)
    assert ran == [(3, None)]
