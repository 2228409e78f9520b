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
from flows.submission import InProcessSubmitter
from flows.watcher import AcquisitionWatcher
from isoview_core.acquisition import discover_acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.formats.atomic import PARTIAL_MARKER
from isoview_core.formats.omezarr import OmeZarrWriter
from isoview_core.service.config import ServiceConfig, WatchConfig
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
