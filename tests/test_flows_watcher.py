"""The watcher against a simulated microscope: live processing equals the batch flow, bit for bit,
every timepoint exactly once, and a SIGKILL in the middle of a timepoint loses and repeats nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zarr
from waiting import wait_until

from flows.acquisition import process_acquisition
from flows.service_config import ServiceConfig, WatchConfig
from flows.submission import InProcessSubmitter, start_local_prefect_server
from flows.watcher import (
    AcquisitionWatcher,
    WatchSummary,
    silence_duplicate_watch_warnings,
)
from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.formats.atomic import PARTIAL_MARKER
from isoview_core.isotropic import rotation_angle_deg
from isoview_core.isotropic.records import load_isotropic_record
from isoview_core.isotropic.settings import IsotropicStageConfig
from isoview_core.layout import FUSION_RECORD_SUFFIX, ISOTROPIC_RECORD_SUFFIX, FusedPaths, PairId, output_files, series_files
from isoview_core.results.series import published_timepoints, record_fingerprint
from isoview_core.service.journal import read_journal
from isoview_core.synthetic import SimulationConfig, simulate_acquisition, view90_to_view0_um
from isoview_core.temporal.config import TemporalConfig

LIVE = SimulationConfig(shape=(32, 160, 160), timepoints=4, seed=7, view90_geometry="rotation")
"""View 90 turned, not mirrored (a stack as deep in um as it is wide), so that the isotropic volumes register."""
WINDOW = 1
TIMEPOINTS = list(range(LIVE.timepoints))


def processing_config(root: Path) -> ProcessingConfig:
    """Window 1, the isotropic volumes on; no diagnostic PNGs (tested in test_diagnostics): the tests time the service,
    not matplotlib."""
    return ProcessingConfig(
        acquisition=root, temporal=TemporalConfig(window=WINDOW), isotropic=IsotropicStageConfig(enabled=True), save_diagnostics=False
    )


@pytest.fixture(scope="module")
def batch_reference(tmp_path_factory: pytest.TempPathFactory, prefect_harness) -> ProcessingConfig:
    """The same acquisition processed by the batch ``process_acquisition`` flow."""
    root = tmp_path_factory.mktemp("batch") / "acquisition"
    simulate_acquisition(root, LIVE)
    config = processing_config(root)
    process_acquisition(root, config=config)
    return config


def _arrays(root: Path) -> dict[str, np.ndarray]:
    """Every array of every OME-Zarr under `root`, by path relative to it."""
    arrays = {}
    for volume in sorted(output_files(root)):
        group = zarr.open_group(volume, mode="r")
        for name, array in group.arrays():
            arrays[f"{volume.relative_to(root)}/{name}"] = array[:]
        if "labels" in group:
            for label_name, label in group["labels"].groups():
                arrays[f"{volume.relative_to(root)}/labels/{label_name}"] = label["0"][:]
    return arrays


def assert_same_outputs(live: ProcessingConfig, batch: ProcessingConfig) -> None:
    """Corrected and fused volumes equal bit for bit; fusion records (but their timings) and estimated parameters equal."""
    for root_of in (ProcessingConfig.resolved_corrected_dir, ProcessingConfig.resolved_fused_dir, ProcessingConfig.resolved_isotropic_dir):
        live_arrays, batch_arrays = _arrays(root_of(live)), _arrays(root_of(batch))
        assert live_arrays.keys() == batch_arrays.keys() and live_arrays
        for name, array in live_arrays.items():
            np.testing.assert_array_equal(array, batch_arrays[name], err_msg=name)
    live_fused, batch_fused = live.resolved_fused_dir(), batch.resolved_fused_dir()
    records = sorted(path.relative_to(live_fused) for path in output_files(live_fused, FUSION_RECORD_SUFFIX))
    assert len(records) == 2 * LIVE.timepoints
    for relative in records:
        live_record, batch_record = (json.loads((root / relative).read_text()) for root in (live_fused, batch_fused))
        assert live_record.pop("timings_s").keys() == batch_record.pop("timings_s").keys()
        assert live_record == batch_record
    for path in live_fused.glob("SPM*/TM*/*.estimate.json"):
        batch_estimate = json.loads((batch_fused / path.relative_to(live_fused)).read_text())
        assert json.loads(path.read_text())["parameters"] == batch_estimate["parameters"]
    live_isotropic, batch_isotropic = live.resolved_isotropic_dir(), batch.resolved_isotropic_dir()
    records = sorted(path.relative_to(live_isotropic) for path in output_files(live_isotropic, ISOTROPIC_RECORD_SUFFIX))
    assert len(records) == LIVE.timepoints
    for relative in records:
        live_record, batch_record = (json.loads((root / relative).read_text()) for root in (live_isotropic, batch_isotropic))
        assert live_record.pop("timings_s").keys() == batch_record.pop("timings_s").keys()
        assert live_record == batch_record


def assert_series_follow_the_volumes(config: ProcessingConfig) -> None:
    """Each fused view's live time series holds every fused timepoint, equal to its volume, published with its record;
    the isotropic series every isotropic volume."""
    root = config.resolved_fused_dir()
    series = series_files(root)
    assert [path.name for path in series] == ["SPM00_VW00_CHN00.ome.zarr", "SPM00_VW90_CHN01.ome.zarr"]
    for path in series:
        movie = zarr.open_array(path / "0", mode="r")
        assert movie.shape[0] == LIVE.timepoints
        records = {}
        for t in TIMEPOINTS:
            volume = next((root / f"SPM00/TM{t:06d}").glob(f"*_{path.name.split('_', 1)[1]}"))
            np.testing.assert_array_equal(movie[t], zarr.open_array(volume / "0", mode="r")[:], err_msg=f"{path.name} TM{t}")
            records[t] = record_fingerprint(volume.with_name(volume.name.replace(".ome.zarr", FUSION_RECORD_SUFFIX)))
        assert published_timepoints(path) == records
    isotropic = config.resolved_isotropic_dir()
    assert [path.name for path in series_files(isotropic)] == ["SPM00_CHN00_CHN01.ome.zarr"]
    made = sorted(output_files(isotropic, ISOTROPIC_RECORD_SUFFIX))
    assert published_timepoints(series_files(isotropic)[0]) == {load_isotropic_record(path).timepoint: record_fingerprint(path) for path in made}


def assert_each_step_done_once(config: ProcessingConfig) -> None:
    """The journal lists every stack corrected, every pair estimated and fused, every timepoint's views registered and
    made isotropic, each exactly once."""
    journal = read_journal(config)
    corrected = Counter((e["timepoint"], e["camera"]) for e in journal if e["event"] == "corrected")
    estimated = Counter((e["timepoint"], tuple(e["cameras"])) for e in journal if e["event"] == "estimated")
    fused = Counter((e["timepoint"], tuple(e["cameras"])) for e in journal if e["event"] == "fused")
    assert corrected == {(t, camera): 1 for t in TIMEPOINTS for camera in range(4)}
    pairs = {(t, cameras): 1 for t in TIMEPOINTS for cameras in [(0, 1), (2, 3)]}
    assert estimated == pairs and fused == pairs
    for event in ("registered", "isotropic"):
        assert Counter(e["timepoint"] for e in journal if e["event"] == event) == dict.fromkeys(TIMEPOINTS, 1), event


def assert_no_partial_outputs(config: ProcessingConfig) -> None:
    for root in (config.resolved_corrected_dir(), config.resolved_fused_dir(), config.resolved_isotropic_dir()):
        assert not [path for path in root.rglob(f"*{PARTIAL_MARKER}*")]


def _run_with_microscope(watcher: AcquisitionWatcher, write: Callable[[], object], limit_s: float = 300) -> WatchSummary:
    """Run the watcher while a thread writes the acquisition and then tells the watcher it has ended, as the microscope's
    software could: no idle timeout, which a busy machine can outlast between two timepoints. After `limit_s` the
    watcher is stopped, so that a watcher that never ends fails its test instead of hanging it."""

    def record() -> None:
        try:
            write()
        finally:
            watcher.end_acquisition()

    microscope = threading.Thread(target=record, name="microscope")
    safety = threading.Timer(limit_s, watcher.stop)
    microscope.start()
    safety.start()
    try:
        return watcher.run()
    finally:
        safety.cancel()
        microscope.join()


def test_watcher_processes_a_live_acquisition_exactly_once_like_the_batch_flow(prefect_harness, batch_reference, tmp_path):
    root = tmp_path / "acquisition"
    config = ServiceConfig(processing=processing_config(root), watch=WatchConfig(scan_interval_s=0.3, settle_s=0.5))
    events = []
    watcher = AcquisitionWatcher(config, InProcessSubmitter(config), on_event=events.append)
    summary = _run_with_microscope(watcher, lambda: simulate_acquisition(root, LIVE, interval_s=1.5))

    assert summary.problems == []
    assert sorted(summary.corrected) == [(0, t) for t in TIMEPOINTS]
    assert sorted(summary.fused) == [(0, t) for t in TIMEPOINTS]
    assert_each_step_done_once(config.processing)
    assert_same_outputs(config.processing, batch_reference)
    assert_series_follow_the_volumes(config.processing)
    assert_no_partial_outputs(config.processing)
    # fusion ran live, as soon as a window was filled: TM0 (window 0..2) before the end of the acquisition
    finished = next(i for i, event in enumerate(events) if event.kind == "finished")
    first_fused = next(i for i, event in enumerate(events) if event.kind == "fused")
    assert 0 in events[first_fused].timepoints and first_fused < finished
    windows = {t: json.loads(next((config.processing.resolved_fused_dir() / f"SPM00/TM{t:06d}").glob("*.fusion.json")).read_text())["window"] for t in TIMEPOINTS}
    assert windows == {0: [0, 2], 1: [0, 2], 2: [1, 3], 3: [1, 3]}
    assert_isotropic_volumes_registered(config.processing)


def assert_isotropic_volumes_registered(config: ProcessingConfig) -> None:
    """Each isotropic volume applied a smoothed registration close to the simulator's truth.

    Measured on this acquisition (32 planes, a blur that grows with depth in each camera): 0.08 voxel and 0.3
    degrees, a bias the same at every timepoint; the issue's 0.3 voxel / 0.1 degree are met on the orthogonal
    simulator (test_pipeline_isotropic), whose views differ by their PSFs only.
    """
    truth = view90_to_view0_um(LIVE)
    centre = np.append(np.asarray(LIVE.shape) * np.asarray(LIVE.voxel_size_um) / 2, 1.0)
    for path in output_files(config.resolved_isotropic_dir(), ISOTROPIC_RECORD_SUFFIX):
        record = load_isotropic_record(path)
        applied = record.applied_matrix()
        at_centre = applied @ np.linalg.solve(truth, centre)
        assert record.source == "smoothed", path.name
        assert np.linalg.norm(at_centre[:3] - centre[:3]) / record.voxel_um <= 0.3, path.name
        assert rotation_angle_deg(applied[:3, :3].T @ truth[:3, :3]) <= 0.5, path.name


def _start_watcher(root: Path, prefect_home: Path, log: Path) -> subprocess.Popen:
    """``isoview watch`` in its own process group (so a SIGKILL takes its Prefect server down too), its output in `log`
    (a file, not a pipe: a process it leaves behind would keep a pipe open, and a reader waiting for its end, for ever)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    environment |= {"PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}
    command = [sys.executable, "-c", "from flows.cli import app; app()", "watch", str(root), "--window", str(WINDOW), "--idle-timeout", "3", "--no-diagnostics", "--isotropic"]
    with open(log, "w") as output:
        return subprocess.Popen(command, env=environment, start_new_session=True, stdout=output, stderr=subprocess.STDOUT)


def _wait_for(condition: Callable[[], bool], watcher: subprocess.Popen, log: Path, what: str, timeout_s: float = 300) -> None:
    """Wait for `condition()` while the watcher runs."""

    def reached() -> bool:
        if condition():
            return True
        assert watcher.poll() is None, f"the watcher ended before {what}: {log.read_text()}"
        return False

    wait_until(reached, timeout_s, what)


def _left_running(group: int) -> list[str]:
    """The processes still running in an ended watcher's process group, killed: none when it stopped everything it
    started (its Prefect server). Their command lines where /proc tells them (zombies, which hold nothing, aside)."""
    if Path("/proc/self/stat").is_file():
        left = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                state, _, process_group = stat.read_text().rsplit(")", 1)[1].split()[:3]
                if int(process_group) == group and state != "Z":
                    left.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip())
            except (OSError, ValueError):
                continue
    else:
        try:
            os.killpg(group, 0)
            left = [f"process group {group}"]
        except ProcessLookupError:
            left = []
    if left:
        os.killpg(group, signal.SIGKILL)
    return left


def _journal_counts(config: ProcessingConfig, event: str) -> Counter:
    return Counter(e["timepoint"] for e in read_journal(config) if e["event"] == event)


def test_watcher_killed_in_catch_up_correction_and_fusion_resumes_with_nothing_missing_or_repeated(prefect_harness, batch_reference, tmp_path):
    root = tmp_path / "acquisition"
    simulate_acquisition(root, LIVE)
    config = processing_config(root)
    lock = config.resolved_fused_dir() / "service" / "watcher.lock"
    kill_points = {
        "the catch-up scan": lambda: lock.is_file() and lock.stat().st_size > 0,
        "the middle of a timepoint's correction": lambda: any(0 < n < 4 for t, n in _journal_counts(config, "corrected").items() if t > 0),
        "the middle of a fusion": lambda: 0 < sum(_journal_counts(config, "fused").values()) < 2 * LIVE.timepoints,
        "the middle of the isotropic volumes": lambda: 0 < sum(_journal_counts(config, "isotropic").values()) < LIVE.timepoints,
    }
    log = tmp_path / "watcher.log"
    for what, reached in kill_points.items():
        watcher = _start_watcher(root, tmp_path / "prefect", log)
        _wait_for(reached, watcher, log, what)
        os.killpg(watcher.pid, signal.SIGKILL)
        watcher.wait()

    last = _start_watcher(root, tmp_path / "prefect", log)
    try:
        last.wait(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(last.pid, signal.SIGKILL)
        raise
    assert _left_running(last.pid) == [], "the watcher left processes running (a Prefect server it never stopped?)"
    assert last.returncode == 0, log.read_text()

    assert_each_step_done_once(config)
    assert_same_outputs(config, batch_reference)
    assert_series_follow_the_volumes(config)
    assert_no_partial_outputs(config)
    assert_isotropic_volumes_registered(config)


class RecordingSubmitter:
    """Records the jobs the watcher submits, in order, and does no work (scheduling only)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def of(self, kind: str) -> list[tuple]:
        """The calls of one kind ("correct", "estimate", "fuse", "draw"), in order."""
        return [call for call in self.calls if call[0] == kind]

    def correct(self, specimen: int, timepoint: int) -> None:
        self.calls.append(("correct", timepoint))

    def estimate(self, specimen: int, timepoint: int) -> None:
        self.calls.append(("estimate", timepoint))

    def fuse(self, specimen: int, timepoints: list[int], *, acquisition_finished: bool) -> None:
        self.calls.append(("fuse", tuple(timepoints), acquisition_finished))

    def draw(self, specimen: int, timepoints: list[int]) -> None:
        self.calls.append(("draw", tuple(timepoints)))


def _write_flat_timepoints(root: Path, count: int, interval_s: float, flood: AcquisitionWatcher) -> None:
    """A flat-layout acquisition growing one timepoint per interval (the microscope's pace), stacks written in two
    halves; every write also floods the watcher with duplicate wake-ups."""
    from isoview_core.metadata import write_channel_xml
    from isoview_core.naming import raw_stack_name

    shape = (4, 16, 12)
    for channel, cameras in {0: (0, 1), 1: (2, 3)}.items():
        attributes = {"dimensions": ",".join([f"{shape[2]}x{shape[1]}x{shape[0]}"] * 2), "z_step": "2.0", "camera": "".join(map(str, cameras))}
        write_channel_xml(root / f"ch{channel:02d}_spec00.xml", {**attributes, "stack_direction": "Z" if channel == 0 else "Y"})
    plane = np.zeros(shape[1:], "<u2").tobytes()
    for t in range(count):
        for half in range(2):
            for camera in range(4):
                with open(root / raw_stack_name(0, t, camera, camera // 2), "ab") as stack:
                    stack.write(plane * (shape[0] // 2))
                for _ in range(5):
                    flood._inbox.put(("wake", None))
            time.sleep(interval_s / 2)


def _flat_acquisition_config(tmp_path: Path) -> tuple[Path, ServiceConfig]:
    """An empty folder for a flat-layout acquisition, and a quick watcher's settings for it (window 1)."""
    root = tmp_path / "flat"
    root.mkdir()
    config = ServiceConfig(
        processing=ProcessingConfig(acquisition=root, temporal=TemporalConfig(window=1)),
        watch=WatchConfig(scan_interval_s=0.05, settle_s=0.2),
    )
    return root, config


def _watch_growing_flat_acquisition(tmp_path: Path, submitter: RecordingSubmitter, timepoints: int, interval_s: float) -> WatchSummary:
    """A watcher with `submitter` following a flat acquisition written one timepoint per `interval_s`, to its end."""
    root, config = _flat_acquisition_config(tmp_path)
    watcher = AcquisitionWatcher(config, submitter)
    return _run_with_microscope(watcher, lambda: _write_flat_timepoints(root, timepoints, interval_s, watcher), limit_s=60)


def test_watcher_schedules_each_timepoint_once_in_order_on_a_growing_flat_acquisition(tmp_path):
    submitter = RecordingSubmitter()
    summary = _watch_growing_flat_acquisition(tmp_path, submitter, 6, 0.4)

    corrections = [call[1] for call in submitter.of("correct")]
    assert corrections == list(range(6))
    fusions = submitter.of("fuse")
    fused = [t for call in fusions for t in call[1]]
    assert sorted(fused) == list(range(6))  # every timepoint fused exactly once
    assert [call[2] for call in fusions].count(True) == 1 and fusions[-1][1] == (5,)  # only the tail waits for the end
    for call in fusions[:-1]:  # a live fusion comes after the correction of the last timepoint of its windows
        last_in_window = min(max(call[1]) + 1, 5)
        assert submitter.calls.index(call) > submitter.calls.index(("correct", last_in_window))
    # timepoints 0 and 1, corrected before the first window (0..2) filled, are estimated at once, before the first
    # fusion; a later timepoint is estimated by the fusion its correction makes ready
    estimates = submitter.of("estimate")
    assert [call[1] for call in estimates] == [0, 1]
    for call in estimates:
        assert submitter.calls.index(("correct", call[1])) < submitter.calls.index(call) < submitter.calls.index(fusions[0])
    assert summary.problems == []


class HeldFusionSubmitter(RecordingSubmitter):
    """Its first fusion holds until the correction of timepoint `later` has started (at most 10 s)."""

    def __init__(self, later: int) -> None:
        super().__init__()
        self.later = later
        self.later_started = threading.Event()
        self.released: bool | None = None

    def correct(self, specimen: int, timepoint: int) -> None:
        super().correct(specimen, timepoint)
        if timepoint == self.later:
            self.later_started.set()

    def fuse(self, specimen: int, timepoints: list[int], *, acquisition_finished: bool) -> None:
        if self.released is None:
            self.released = self.later_started.wait(10)
        super().fuse(specimen, timepoints, acquisition_finished=acquisition_finished)


def test_a_new_timepoint_is_corrected_while_an_earlier_one_is_fused(tmp_path):
    submitter = HeldFusionSubmitter(later=4)
    summary = _watch_growing_flat_acquisition(tmp_path, submitter, 5, 0.4)

    first_fusion = submitter.of("fuse")[0]
    assert first_fusion[1] == (0, 1) and submitter.released  # timepoint 4 was corrected while the window of 0 and 1 was fused
    assert submitter.calls.index(("correct", 4)) < submitter.calls.index(first_fusion)
    assert [call[1] for call in submitter.of("correct")] == list(range(5))
    assert summary.problems == []


class HeldFiguresSubmitter(RecordingSubmitter):
    """Its first drawing of figures holds until the tail has been fused (at most 10 s)."""

    def __init__(self) -> None:
        super().__init__()
        self.tail_fused = threading.Event()
        self.released: bool | None = None

    def fuse(self, specimen: int, timepoints: list[int], *, acquisition_finished: bool) -> None:
        super().fuse(specimen, timepoints, acquisition_finished=acquisition_finished)
        if acquisition_finished:
            self.tail_fused.set()

    def draw(self, specimen: int, timepoints: list[int]) -> None:
        if self.released is None:
            self.released = self.tail_fused.wait(10)
        super().draw(specimen, timepoints)


def test_figures_lag_behind_the_fusions_without_delaying_them_and_each_timepoint_is_drawn_once(tmp_path):
    submitter = HeldFiguresSubmitter()
    summary = _watch_growing_flat_acquisition(tmp_path, submitter, 6, 0.4)

    fusions = [call[1] for call in submitter.of("fuse")]
    drawings = [call[1] for call in submitter.of("draw")]
    assert submitter.released  # every fusion, the tail's included, ran while the first figures were held
    assert drawings[0] == fusions[0]
    assert sorted(t for drawn in drawings for t in drawn) == list(range(6))  # every fused timepoint drawn, once
    assert len(fusions) >= 4 and len(drawings) <= 3  # the fusions that ended while figures were held: one drawing
    assert summary.problems == []


def test_figures_a_stopped_run_left_undrawn_are_drawn_first(tmp_path):
    root, config = _flat_acquisition_config(tmp_path)
    _write_flat_timepoints(root, 3, 0.0, AcquisitionWatcher(config, RecordingSubmitter()))
    preview = FusedPaths(config.processing.resolved_fused_dir(), PairId(0, 1, (0, 1), 0, 0)).preview("fusion")
    preview.parent.mkdir(parents=True)
    preview.write_bytes(b"")
    submitter = RecordingSubmitter()
    watcher = AcquisitionWatcher(config, submitter)
    watcher.end_acquisition()

    summary = watcher.run()

    drawings = [call[1] for call in submitter.of("draw")]
    assert 1 in drawings[0] and sorted(t for drawn in drawings for t in drawn) == [0, 1, 1, 2]
    assert summary.problems == []


class StartedSubmitter(RecordingSubmitter):
    """Records its start too, and the threads its jobs ran in."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def start(self) -> None:
        self.calls.append(("start",))

    def correct(self, specimen: int, timepoint: int) -> None:
        self.threads.add(threading.current_thread().name)
        super().correct(specimen, timepoint)


def test_the_watcher_starts_its_submitter_before_its_lanes_run_a_job(tmp_path):
    submitter = StartedSubmitter()
    summary = _watch_growing_flat_acquisition(tmp_path, submitter, 2, 0.2)
    assert submitter.calls[0] == ("start",) and submitter.calls.count(("start",)) == 1
    assert submitter.threads == {"isoview-correct"} and summary.problems == []


class RacyServer:
    """Prefect 3.8's ``SubprocessASGIServer.start`` in miniature: is it running? no: start one (slowly), mark it running."""

    started: list[str] = []
    running = False

    def __init__(self, port: int | None = None) -> None:
        pass

    def start(self) -> None:
        if not RacyServer.running:
            time.sleep(0.1)
            RacyServer.started.append(threading.current_thread().name)
            RacyServer.running = True


class NoApiUrl:
    @staticmethod
    def value() -> None:
        return None


def test_prefect_s_local_server_is_started_once_when_both_lanes_run_their_first_flow_at_once(monkeypatch):
    import prefect.server.api.server
    import prefect.settings

    monkeypatch.setattr(prefect.server.api.server, "SubprocessASGIServer", RacyServer)
    monkeypatch.setattr(prefect.settings, "PREFECT_API_URL", NoApiUrl)  # the watcher's own temporary server, not the tests'
    monkeypatch.setattr(RacyServer, "started", [])
    lanes = [threading.Thread(target=start_local_prefect_server, name=f"isoview-{kind}") for kind in ("correct", "fuse")]
    for lane in lanes:
        lane.start()
    for lane in lanes:
        lane.join()
    assert len(RacyServer.started) == 1  # unlocked, both lanes start one: the server whose handle is lost outlives the watcher


def test_watchdogs_duplicate_watch_warning_is_hidden_and_its_other_warnings_are_not():
    duplicate = "Callback with id '140470965642000' already exists for watch <Watch(wd=306, ...)>. It will be Overwritten."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        silence_duplicate_watch_warnings()
        for message, module in [(duplicate, "watchdog.observers.inotify"), ("inotify watch limit reached", "watchdog.observers.inotify"), (duplicate, "isoview_core")]:
            warnings.warn_explicit(message, RuntimeWarning, "inotify.py", 365, module=module)
    assert [(str(w.message)[:14], w.filename) for w in caught] == [("inotify watch ", "inotify.py"), ("Callback with ", "inotify.py")]


def test_a_watcher_waits_for_a_missing_acquisition_says_so_once_and_leaves_nothing_when_it_never_comes(tmp_path):
    root = tmp_path / "not_yet"
    config = ServiceConfig(processing=ProcessingConfig(acquisition=root), watch=WatchConfig(scan_interval_s=0.05, idle_timeout_s=0.5))
    events = []
    watcher = AcquisitionWatcher(config, RecordingSubmitter(), on_event=events.append)
    safety = threading.Timer(60, watcher.stop)  # a watcher that waits for ever fails the test instead of hanging it
    safety.start()
    try:
        with pytest.raises(IsoviewError, match="acquisition folder does not exist; no acquisition appeared within the idle timeout"):
            watcher.run()
    finally:
        safety.cancel()
    waiting = [event.message for event in events if event.kind == "waiting_for_acquisition"]
    assert len(waiting) == 1 and str(root) in waiting[0] and "waiting for the microscope" in waiting[0] and "\n" not in waiting[0]
    assert list(tmp_path.iterdir()) == []  # neither the lock nor the not_yet.fused/service folders it was made in


def test_a_watcher_started_before_the_microscope_processes_the_acquisition_once_it_appears(tmp_path):
    root = tmp_path / "later"
    config = ServiceConfig(processing=ProcessingConfig(acquisition=root, temporal=TemporalConfig(window=1)), watch=WatchConfig(scan_interval_s=0.05, settle_s=0.2))
    events = []
    submitter = RecordingSubmitter()
    watcher = AcquisitionWatcher(config, submitter, on_event=events.append)

    def start_later() -> None:
        wait_until(lambda: any(event.kind == "waiting_for_acquisition" for event in events), 60, "the watcher waiting")
        root.mkdir()
        _write_flat_timepoints(root, 2, 0.2, watcher)

    summary = _run_with_microscope(watcher, start_later, limit_s=60)
    assert submitter.of("correct") == [("correct", 0), ("correct", 1)]
    assert summary.problems == [] and not (tmp_path / "later.fused" / "service" / "watcher.lock").exists()
