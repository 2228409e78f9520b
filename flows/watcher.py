"""The watcher: notices timepoints as the microscope writes them and submits their processing.

It decides *when* and never computes images. File-system events (watchdog) only wake it up: the
truth is a reconciliation scan of the folder (stack sizes from the XML, modification times) and
of the outputs (complete OME-Zarr + records), repeated every ``scan_interval_s``. So dropped
events, duplicate or out-of-order events and restarts never cause missed or double processing.

Work runs in three lanes, each a worker thread taking its jobs in timepoint order: the correction of
``t``; the fusion of a timepoint as soon as the correction of the last timepoint of its window is
done; and the diagnostic figures of each fusion, drawn after it. So the correction of a new timepoint
does not wait for the fusion of an earlier one, a fusion does not wait for the figures of the one
before, and fusions never overlap each other (two windows would estimate the same pairs twice).
A corrected timepoint that fills no window (the first ones of an acquisition, or after a gap) has its
fusion parameters estimated at once, in the fusion lane, so that the first fusions find them made.
Figures may lag: fusions that finish while figures wait are drawn by one job. The submitter is
started before the lanes (Prefect's local server, which two threads must not start at once).
After each correction that succeeded, and each fusion, its timepoints are checked for quality alerts (``isoview_core.quality``).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from flows.alerts import publish_alerts
from flows.problems import publish_problems
from flows.service_config import ServiceConfig
from flows.submission import ServerUnavailable, Submitter
from isoview_core.acquisition import Acquisition, discover_acquisition
from isoview_core.errors import IsoviewError
from isoview_core.formats.atomic import remove_stale_partials
from isoview_core.layout import timepoint_output_folders, watcher_lock_path
from isoview_core.pipeline.previews import pending_preview_timepoints
from isoview_core.pipeline.series import update_all_corrected_series, update_all_fused_series, update_all_isotropic_series
from isoview_core.quality.alerts import raise_alerts
from isoview_core.service.journal import reconcile_journal, record_problem
from isoview_core.service.lock import WatcherLock
from isoview_core.service.paths import require_watchable_acquisition
from isoview_core.service.progress import is_timepoint_corrected, is_timepoint_fused
from isoview_core.service.readiness import timepoint_readiness
from isoview_core.service.schedule import FusionSchedule

logger = logging.getLogger(__name__)

DISK_FULL_MARKERS = ("No space left on device", "[Errno 28]", "There is not enough space on the disk")
"""How a full disk shows in an error message (Linux/macOS errno 28, Windows)."""


def is_disk_full(message: str) -> bool:
    """Whether a job failed because its output disk was full (worth retrying once space is back)."""
    return any(marker in message for marker in DISK_FULL_MARKERS)


LANES = ("correct", "fuse", "draw")
"""The watcher's job lanes, each worked through by a thread of its own."""

JobKind = Literal["correct", "estimate", "fuse", "draw"]

LANE_OF: dict[JobKind, str] = {"correct": "correct", "estimate": "fuse", "fuse": "fuse", "draw": "draw"}
"""The lane of each kind of job: estimates go before the fusions that need them, never beside one."""

EventKind = Literal["waiting_for_acquisition", "waiting", "queued", "corrected", "fused", "problem", "skipped", "finished"]


@dataclass(frozen=True)
class WatchEvent:
    """Something the watcher did or saw, for progress displays and logs."""

    kind: EventKind
    specimen: int
    timepoints: tuple[int, ...]
    message: str = ""
    time: float = field(default_factory=time.time)


@dataclass(order=True)
class _Job:
    """One unit of work, ordered by the timepoint it waits for, corrections and estimates before fusions."""

    order: tuple[int, int, int]
    kind: JobKind = field(compare=False)
    specimen: int = field(compare=False)
    timepoints: tuple[int, ...] = field(compare=False)
    acquisition_finished: bool = field(default=False, compare=False)


@dataclass
class WatchSummary:
    """What a watcher run did, counted from its own events."""

    corrected: list[tuple[int, int]] = field(default_factory=list)
    fused: list[tuple[int, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _Wake(FileSystemEventHandler):
    """Any change under the acquisition wakes the main loop (the scan decides what it means)."""

    def __init__(self, inbox: queue.Queue) -> None:
        self.inbox = inbox

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.inbox.put(("wake", None))


def silence_duplicate_watch_warnings() -> None:
    """Hide watchdog's warning that a new folder was watched twice: harmless, but it prints every watched folder.

    Its inotify backend warns when a folder's creation event arrives after the recursive scan of the new parent
    has already added it (a ``TM``/``ANG`` pair made at once); the message grows with the acquisition.
    """
    warnings.filterwarnings("ignore", message="Callback with id .* already exists for watch", category=RuntimeWarning, module="watchdog")


class AcquisitionWatcher:
    """Watch one acquisition folder, correct each complete timepoint and fuse each filled window.

    Parameters
    ----------
    config : ServiceConfig
        Processing settings (paths, correction, fusion, window) and watch settings.
    submitter : Submitter
        Runs the flows (in-process or through deployments).
    on_event : callable, optional
        Called with every :class:`WatchEvent` (from the watcher's threads).
    """

    def __init__(self, config: ServiceConfig, submitter: Submitter, *, on_event: Callable[[WatchEvent], None] | None = None) -> None:
        self.config = config
        self.processing = config.processing
        self.submitter = submitter
        self.on_event = on_event or (lambda event: None)
        self.summary = WatchSummary()
        self._inbox: queue.Queue = queue.Queue()
        # a fusion only reads timepoints corrected before it was queued, so the lanes never wait for each other
        self._lanes: dict[str, queue.PriorityQueue[_Job]] = {kind: queue.PriorityQueue() for kind in LANES}
        self._sequence = itertools.count()
        self._figures_waiting: dict[int, _Job] = {}  # per specimen, the figure job not started yet (later fusions join it)
        self._figures_lock = threading.Lock()
        self._schedules: dict[int, FusionSchedule] = {}
        self._queued: set[tuple[int, int]] = set()
        self._waiting: dict[tuple[int, int], str] = {}
        self._cleaned: set[tuple[int, int]] = set()
        self._first_seen: dict[tuple[int, int], float] = {}
        self._busy: Counter[str] = Counter()  # jobs queued or running, per lane
        self._retries: list[tuple[float, _Job]] = []  # (time.monotonic() when due, job)
        self._last_change = time.monotonic()  # intervals and timeouts on the monotonic clock; file times are wall-clock
        self._stop = threading.Event()
        self._ended = threading.Event()

    # ---------------------------------------------------------------- running

    def run(self) -> WatchSummary:
        """Catch up with what is on disk, then follow the acquisition until idle timeout, :meth:`end_acquisition` or :meth:`stop`.

        An acquisition folder that does not exist yet, or holds no stack yet, is waited for (said once, as a
        ``waiting_for_acquisition`` event), at most ``watch.idle_timeout_s``.

        Raises
        ------
        IsoviewError
            The path is a file or its parent folder does not exist; another watcher holds the acquisition; no
            acquisition appeared within the idle timeout.
        """
        root = Path(self.processing.acquisition)
        require_watchable_acquisition(root)
        with WatcherLock(watcher_lock_path(self.processing.resolved_fused_dir()), root):
            acquisition = self._wait_for_acquisition(root)
            if acquisition is None:
                return self.summary
            recovered = reconcile_journal(self.processing)  # outputs a killed watcher published but did not journal
            if recovered:
                logger.info("%s: journaled %d outputs a stopped run had finished", root, recovered)
            self._repair_series()
            self._start_submitter()
            self._queue_leftover_figures(acquisition)
            observer = self._start_observer(root)
            workers = [threading.Thread(target=self._work, args=(kind,), name=f"isoview-{kind}", daemon=True) for kind in LANES]
            for worker in workers:
                worker.start()
            try:
                self._follow(acquisition)
            finally:
                self._stop.set()
                for kind, lane in self._lanes.items():
                    lane.put(_Job((2**62, 0, 0), kind, -1, ()))  # wakes the lane's worker so it sees the stop
                observer.stop()
                observer.join(timeout=5)
                for worker in workers:
                    worker.join()
        return self.summary

    def _start_submitter(self) -> None:
        """Let the submitter get ready before the lanes run flows side by side (e.g. start Prefect's local server
        once: Prefect 3.8 starts one per thread that gets there first, and loses all but one, see
        :func:`~flows.submission.start_local_prefect_server`). A failure is only logged: each job tries again."""
        start = getattr(self.submitter, "start", None)  # optional: a submitter may need nothing
        if start is None:
            return
        try:
            start()
        except Exception as failure:  # noqa: BLE001 - the jobs report it if it lasts
            logger.warning("could not prepare the flows: %s", failure)

    def stop(self) -> None:
        """Ask the watcher to stop after the job in progress (no tail fusion)."""
        self._stop.set()
        self._inbox.put(("wake", None))

    def end_acquisition(self) -> None:
        """The microscope has finished: process what it wrote, fuse the tail and stop, without waiting for the idle timeout.

        Every stack written at full size counts as complete at once (no settling), and a timepoint still incomplete
        is reported as a problem.
        """
        self._ended.set()
        self._inbox.put(("wake", None))

    def _wait_for_acquisition(self, root: Path) -> Acquisition | None:
        """The acquisition once its folder holds a stack; None when stopped first.

        Raises
        ------
        IsoviewError
            No acquisition appeared within ``watch.idle_timeout_s``.
        """
        idle_timeout = self.config.watch.idle_timeout_s
        deadline = None if idle_timeout is None else time.monotonic() + idle_timeout
        said = False
        while not self._stop.is_set():
            try:
                return discover_acquisition(root, self.processing.layout)
            except IsoviewError as error:
                if deadline is not None and time.monotonic() >= deadline:
                    raise IsoviewError(f"{error}; no acquisition appeared within the idle timeout ({idle_timeout:g} s)") from error
                if not said:
                    limit = "" if deadline is None else f" (for at most {idle_timeout:g} s, the idle timeout)"
                    self._emit("waiting_for_acquisition", -1, (), f"{error}; waiting for the microscope to write it{limit}")
                    said = True
                logger.info("waiting for the acquisition: %s", error)
                wait_s = self.config.watch.scan_interval_s if deadline is None else min(self.config.watch.scan_interval_s, deadline - time.monotonic())
                self._stop.wait(max(wait_s, 0.0))
        return None

    def _start_observer(self, root: Path):
        silence_duplicate_watch_warnings()
        observer = PollingObserver(timeout=self.config.watch.scan_interval_s) if self.config.watch.polling else Observer()
        observer.schedule(_Wake(self._inbox), str(root), recursive=True)
        observer.daemon = True
        observer.start()
        return observer

    def _follow(self, acquisition: Acquisition) -> None:
        idle_timeout = self.config.watch.idle_timeout_s
        while not self._stop.is_set():
            ended = self._ended.is_set()  # before the scan: a scan that follows the end has seen every file
            self._reconcile(acquisition, ended=ended)
            self._resubmit_due()
            # and the scan found nothing to do (queued jobs count as busy); figures do not hold up the tail
            idle = self._busy["correct"] + self._busy["fuse"] == 0 and not self._retries
            timed_out = idle_timeout is not None and time.monotonic() - self._last_change > idle_timeout
            if idle and (ended or timed_out):
                self._finish(acquisition)
                return
            self._drain_inbox(timeout=self.config.watch.scan_interval_s)

    def _drain_inbox(self, timeout: float) -> None:
        """Wait for a wake-up or a finished job, then take everything else already there."""
        try:
            message = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            self._handle(message)
            try:
                message = self._inbox.get_nowait()
            except queue.Empty:
                return

    def _handle(self, message: tuple) -> None:
        kind, payload = message
        if kind != "done":
            return
        job, error = payload
        self._busy[LANE_OF[job.kind]] -= 1
        self._last_change = time.monotonic()
        if error is not None and is_disk_full(error):
            self._retry_later(job, error)
            return
        if job.kind == "draw":  # the volumes are fine: a figure that failed is a warning
            if error is not None:
                logger.warning("SPM%02d %s: diagnostic figures not drawn: %s", job.specimen, job.timepoints, error)
            return
        if job.kind == "estimate":  # the fusion that needs it estimates again what failed, and reports it
            if error is not None:
                logger.warning("SPM%02d %s: estimated with the fusion instead: %s", job.specimen, job.timepoints, error)
            return
        if job.kind == "correct":
            [t] = job.timepoints
            self._queued.discard((job.specimen, t))
            self._schedules[job.specimen].settle(t)
            if error is None:
                self.summary.corrected.append((job.specimen, t))
                self._emit("corrected", job.specimen, job.timepoints)
                self._queue_estimate(job.specimen, t)
        else:
            self._queue_figures(job.specimen, job.timepoints)  # a failed fusion may have published some of its pairs
            if error is None:
                self.summary.fused += [(job.specimen, t) for t in job.timepoints]
                self._emit("fused", job.specimen, job.timepoints)
        if error is not None:
            self._problem(job.specimen, job.timepoints, error)
        if error is None or job.kind == "fuse":  # a failed correction is a problem already: its missing stacks raise no alert
            self._check_quality(job)

    # ---------------------------------------------------------------- deciding

    def _reconcile(self, acquisition: Acquisition, *, ended: bool) -> None:
        """Compare the folder and the outputs with what is known; queue what became possible.

        ``ended``: the microscope has finished (:meth:`end_acquisition`), so no stack is still being written.
        """
        try:
            acquisition.refresh()
        except IsoviewError as error:
            logger.warning("%s", error)
            return
        now = time.time()  # wall clock: compared with the stacks' modification times
        for specimen in self._specimens(acquisition):
            timepoints = acquisition.timepoints(specimen)
            schedule = self._schedules.setdefault(specimen, FusionSchedule(self.processing.temporal, timepoints[0]))
            for t in timepoints:
                if t in schedule.settled or (specimen, t) in self._queued:
                    continue
                self._consider(acquisition, schedule, specimen, t, later_started=ended or t < timepoints[-1], now=now)
            self._queue_fusions(acquisition, specimen, schedule.ready(), acquisition_finished=False)

    def _specimens(self, acquisition: Acquisition) -> list[int]:
        wanted = self.processing.specimens
        return [s for s in acquisition.specimens() if wanted is None or s in wanted]

    def _consider(self, acquisition: Acquisition, schedule: FusionSchedule, specimen: int, t: int, *, later_started: bool, now: float) -> None:
        """Settle a timepoint corrected earlier, queue a complete one, or note what it waits for."""
        selected = self.processing.timepoints is None or t in self.processing.timepoints
        if not selected or is_timepoint_corrected(self.processing, acquisition, specimen, t):
            schedule.settle(t)
            self._waiting.pop((specimen, t), None)
            return
        readiness = timepoint_readiness(
            acquisition, specimen, t, now=now, settle_s=self.config.watch.settle_s, next_timepoint_started=later_started
        )
        if readiness.complete:
            self._waiting.pop((specimen, t), None)
            self._clean_partials(specimen, t)
            self._queued.add((specimen, t))
            self._submit(_Job((t, 0, next(self._sequence)), "correct", specimen, (t,)))
            self._emit("queued", specimen, (t,))
            return
        if self._waiting.get((specimen, t)) != readiness.reason:
            self._waiting[(specimen, t)] = readiness.reason
            self._last_change = time.monotonic()
            self._emit("waiting", specimen, (t,), readiness.reason)
        since = readiness.last_write or self._first_seen.setdefault((specimen, t), now)  # no size yet (e.g. a bad XML): since first seen
        stalled = later_started and now - since > self.config.watch.stalled_after_s
        if stalled:
            self._waiting.pop((specimen, t), None)
            schedule.settle(t)
            self._problem(specimen, (t,), f"given up after {self.config.watch.stalled_after_s:.0f} s: {readiness.reason}")

    def _queue_fusions(self, acquisition: Acquisition, specimen: int, ready: list[int], *, acquisition_finished: bool) -> None:
        """Submit the timepoints whose window is filled; those already fused on disk only count as done."""
        if not self.config.watch.fusion:
            return
        schedule = self._schedules[specimen]
        if not acquisition_finished:
            done = [t for t in ready if is_timepoint_fused(self.processing, acquisition, specimen, t)]
            schedule.submit(done)
            ready = [t for t in ready if t not in set(done)]
        if not ready:
            return
        for t in ready:
            self._clean_partials(specimen, t)
        schedule.submit(ready)
        last_needed = max(ready) + (0 if acquisition_finished else self.processing.temporal.window)
        self._submit(_Job((last_needed, 1, next(self._sequence)), "fuse", specimen, tuple(ready), acquisition_finished))

    def _finish(self, acquisition: Acquisition) -> None:
        """End of acquisition: give up incomplete timepoints, fuse the tail with one-sided windows, wait."""
        acquisition.refresh()
        for specimen in self._specimens(acquisition):
            timepoints = acquisition.timepoints(specimen)
            schedule = self._schedules[specimen]
            for t in timepoints:
                if t not in schedule.settled:
                    schedule.settle(t)
                    self._problem(specimen, (t,), f"incomplete when the acquisition ended: {self._waiting.pop((specimen, t), 'not written')}")
            self._queue_fusions(acquisition, specimen, schedule.ready(last_timepoint=timepoints[-1]), acquisition_finished=True)
        while self._busy.total():
            self._drain_inbox(timeout=1.0)
        self._emit("finished", -1, ())

    def _clean_partials(self, specimen: int, t: int) -> None:
        """Remove half-written outputs a killed run left for this timepoint (this watcher holds the lock)."""
        if (specimen, t) in self._cleaned:
            return
        self._cleaned.add((specimen, t))
        roots = self.processing.resolved_corrected_dir(), self.processing.resolved_fused_dir(), self.processing.resolved_isotropic_dir()
        for folder in timepoint_output_folders(*roots, specimen, t):
            for removed in remove_stale_partials(folder, older_than_s=0):
                logger.info("removed the partial output %s of an interrupted run", removed)

    def _retry_later(self, job: _Job, error: str) -> None:
        """A full disk is transient: report it, keep the job and submit it again after ``disk_full_retry_s``."""
        delay = self.config.watch.disk_full_retry_s
        self._problem(job.specimen, job.timepoints, f"{error} (retrying in {delay:.0f} s)")
        self._retries.append((time.monotonic() + delay, job))

    def _resubmit_due(self) -> None:
        now = time.monotonic()
        due = [job for when, job in self._retries if when <= now]
        self._retries = [(when, job) for when, job in self._retries if when > now]
        for job in due:
            self._submit(job)

    # ---------------------------------------------------------------- working

    def _submit(self, job: _Job) -> None:
        self._busy[LANE_OF[job.kind]] += 1
        self._lanes[LANE_OF[job.kind]].put(job)

    def _queue_estimate(self, specimen: int, t: int) -> None:
        """Estimate corrected timepoint `t` now when its correction fills no window: no fusion is about to estimate it."""
        if not self.config.watch.fusion or self.processing.overwrite or self._schedules[specimen].ready():
            return
        self._submit(_Job((t, 0, next(self._sequence)), "estimate", specimen, (t,)))

    def _queue_figures(self, specimen: int, timepoints: tuple[int, ...]) -> None:
        """Queue the drawing of fused timepoints' figures, or add them to the figure job still waiting."""
        if not self.processing.save_diagnostics or not timepoints:
            return
        with self._figures_lock:
            waiting = self._figures_waiting.get(specimen)
            if waiting is not None:
                waiting.timepoints = tuple(sorted(set(waiting.timepoints) | set(timepoints)))
                return
            job = _Job((max(timepoints), 2, next(self._sequence)), "draw", specimen, tuple(sorted(timepoints)))
            self._figures_waiting[specimen] = job
        self._submit(job)

    def _queue_leftover_figures(self, acquisition: Acquisition) -> None:
        """Figures a stopped run left undrawn (their previews are on disk): queued before any new work."""
        leftover = pending_preview_timepoints(self.processing.resolved_fused_dir())
        for specimen in self._specimens(acquisition):
            self._queue_figures(specimen, tuple(t for t in leftover if t in set(acquisition.timepoints(specimen))))

    def _work(self, kind: str) -> None:
        """Worker thread of one lane: run its jobs in order; a server outage keeps the job and retries."""
        while True:
            job = self._lanes[kind].get()
            if self._stop.is_set():
                return
            if job.kind == "draw":
                with self._figures_lock:  # started: later fusions queue a job of their own
                    if self._figures_waiting.get(job.specimen) is job:
                        del self._figures_waiting[job.specimen]
            while True:
                try:
                    if job.kind == "correct":
                        self.submitter.correct(job.specimen, job.timepoints[0])
                    elif job.kind == "estimate":
                        self.submitter.estimate(job.specimen, job.timepoints[0])
                    elif job.kind == "fuse":
                        self.submitter.fuse(job.specimen, list(job.timepoints), acquisition_finished=job.acquisition_finished)
                    else:
                        self.submitter.draw(job.specimen, list(job.timepoints))
                    error = None
                except ServerUnavailable as unavailable:
                    logger.warning("%s; retrying in %.0f s", unavailable, self.config.watch.scan_interval_s * 5)
                    if self._stop.wait(self.config.watch.scan_interval_s * 5):
                        return
                    continue
                except Exception as failure:  # noqa: BLE001 - any failure of a job is reported, the service goes on
                    error = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
                break
            self._inbox.put(("done", (job, error)))

    # ---------------------------------------------------------------- reporting

    def _repair_series(self) -> None:
        """Publish in the fused views' time series what a killed run fused but did not append (the next fusion would,
        but the last timepoints of an acquisition have no next fusion)."""
        try:
            repaired = update_all_fused_series(self.processing.resolved_fused_dir(), corrected_root=self.processing.resolved_corrected_dir())
            if self.processing.output.corrected_series and self.processing.output.format == "zarr":
                repaired |= update_all_corrected_series(self.processing.resolved_corrected_dir())
            if self.processing.isotropic.enabled:
                repaired |= update_all_isotropic_series(self.processing.resolved_isotropic_dir())
        except IsoviewError as error:  # the next fusion of the view tries again
            logger.warning("time series not repaired: %s", error)
            return
        for series, timepoints in repaired.items():
            if timepoints:
                logger.info("%s: appended timepoints %s a stopped run had fused", series.name, timepoints)

    def _check_quality(self, job: _Job) -> None:
        """Check the timepoints of a finished job for quality alerts; each new one is a problem, in the UI and notified.

        After a correction its cameras are checked, after a fusion its pairs, up to ``window`` timepoints past the
        fused ones: the estimates the windows needed.
        """
        if not self.processing.alerts.enabled:
            return
        correction = job.kind == "correct"
        timepoints = job.timepoints if correction else range(min(job.timepoints), max(job.timepoints) + self.processing.temporal.window + 1)
        roots = self.processing.resolved_corrected_dir(), self.processing.resolved_fused_dir()
        try:
            alerts = raise_alerts(*roots, job.specimen, timepoints, self.processing.alerts, cameras=correction, pairs=not correction)
        except Exception as failure:  # noqa: BLE001 - a quality check that fails must not stop the processing
            logger.warning("SPM%02d TM%06d..TM%06d: quality check failed: %s", job.specimen, min(timepoints), max(timepoints), failure)
            return
        for alert in alerts:
            self._problem(job.specimen, (alert.timepoint,), alert.message)
        publish_alerts(self.processing, alerts, alert_block=self.config.watch.alert_block)

    def _problem(self, specimen: int, timepoints: tuple[int, ...], message: str) -> None:
        """Keep the problem in the summary, ``service/problems.jsonl`` and the UI's problem table."""
        self.summary.problems.append(message)
        logger.error("%s", message)
        record_problem(self.processing, specimen, list(timepoints), message)
        publish_problems(self.processing)
        self._emit("problem", specimen, timepoints, message)

    def _emit(self, kind: EventKind, specimen: int, timepoints: tuple[int, ...], message: str = "") -> None:
        self.on_event(WatchEvent(kind, specimen, timepoints, message))
