"""Live service: latency and throughput of the watcher following a microscope that writes in real time.

A simulated microscope (a thread) writes an acquisition at a fixed interval while the watcher, in
this process with Prefect's embedded server as ``isoview watch`` runs it, corrects each timepoint
and fuses each filled window, until its idle timeout ends it. From the simulator's times and the
modification times of the records written last, per timepoint:

* correction latency: the timepoint's last byte written -> its four corrected OME-Zarr complete;
* fusion latency: its window ``t-w .. t+w`` filled (all corrected) -> its fused pairs complete.

Tail timepoints, whose window reaches the end of the acquisition, are fused only after the idle
timeout: they are listed apart and left out of the percentiles. The first window's fusion estimates
``2w + 1`` timepoints at once, a start-up backlog the service then drains: the maximum over the second
half of the live timepoints and the backlog growth (slope of the correction latency over that half)
show the steady state. The target is latency below one acquisition interval with no growing backlog:
the service keeps up with the microscope indefinitely.

Peak memory: the resident memory of this process (the watcher and the simulated microscope) and its
children (Prefect's server), sampled every 0.5 s, also as a multiple of one camera stack.

The watcher runs with the service's defaults: its scan interval and settle time (``--scan-interval``,
``--settle``) and glibc's mmap threshold (``--mmap-threshold``); the JSON records the values used.

Rendering a full-size timepoint costs the simulated microscope minutes of CPU, which it would take from the
service: ``--replay DIR`` writes the planes of an acquisition simulated before instead (timepoint t is DIR's
t mod N), at the same pace.

Run: ``python benchmarks/bench_watcher.py [--timepoints 50] [--interval 25] [--shape 64 512 512]
[--window 2] [--scan-interval S] [--settle S] [--mmap-threshold BYTES|adaptive] [--no-diagnostics] [--replay DIR]
[--output benchmarks/results/watcher_latency.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from machine import machine_info

from flows.service_config import ExecutionConfig, ServiceConfig, WatchConfig
from isoview_core.acquisition import discover_acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.layout import FusedPaths, configured_corrected_paths
from isoview_core.pipeline.fusion import timepoint_pairs
from isoview_core.synthetic import SimulationConfig, simulate_acquisition
from isoview_core.temporal.config import TemporalConfig
from isoview_core.temporal.window import window_bounds

if TYPE_CHECKING:
    from flows.watcher import WatchEvent

# flows.* import prefect, which reads PREFECT_HOME once: they are imported after use_private_prefect().

SPECIMEN = 0
MIN_FIT_POINTS = 5
"""Fewest timepoints a backlog-growth slope is fitted on (shorter runs report none)."""


@dataclass
class Microscope:
    """The simulated microscope in its thread: when it started and when each timepoint's last byte was written."""

    started: float = 0.0
    written: dict[int, float] = field(default_factory=dict)
    error: BaseException | None = None


@dataclass
class Job:
    """One flow run the watcher submitted: what, and when it started and ended."""

    kind: str
    timepoints: list[int]
    start: float
    end: float


class TimedSubmitter:
    """The in-process submitter of ``isoview watch``, recording when each flow run starts and ends."""

    def __init__(self, config: ServiceConfig) -> None:
        from flows.submission import InProcessSubmitter

        self.inner = InProcessSubmitter(config)
        self.jobs: list[Job] = []

    def correct(self, specimen: int, timepoint: int) -> None:
        with self._timed("correct", [timepoint]):
            self.inner.correct(specimen, timepoint)

    def estimate(self, specimen: int, timepoint: int) -> None:
        with self._timed("estimate", [timepoint]):
            self.inner.estimate(specimen, timepoint)

    def fuse(self, specimen: int, timepoints: list[int], *, acquisition_finished: bool) -> None:
        with self._timed("fuse", list(timepoints)):
            self.inner.fuse(specimen, timepoints, acquisition_finished=acquisition_finished)

    def draw(self, specimen: int, timepoints: list[int]) -> None:
        with self._timed("draw", list(timepoints)):
            self.inner.draw(specimen, timepoints)

    @contextmanager
    def _timed(self, kind: str, timepoints: list[int]) -> Iterator[None]:
        start = time.time()
        try:
            yield
        finally:
            self.jobs.append(Job(kind, timepoints, start, time.time()))


class MemorySampler:
    """Samples the resident memory of this process and its children (Prefect's server) in a thread: the run's peak."""

    def __init__(self, interval_s: float = 0.5) -> None:
        import psutil

        self.process, self.interval_s = psutil.Process(), interval_s
        self.peak_bytes = self.peak_own_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="memory-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        import psutil

        while not self._stop.wait(self.interval_s):
            own = self.process.memory_info().rss
            total = own
            for child in self.process.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_own_bytes, self.peak_bytes = max(self.peak_own_bytes, own), max(self.peak_bytes, total)


def use_private_prefect(home: Path) -> None:
    """Point Prefect, before it is imported, at an empty home: its embedded server with a new SQLite database.

    Other ``PREFECT_*`` variables (an API URL, a profile) are dropped so that the user's Prefect is
    never used. Run logs go to the API as usual; the console shows warnings only, as ``isoview watch``.
    """
    for name in [name for name in os.environ if name.startswith("PREFECT_")]:
        del os.environ[name]
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "120"  # a busy 2-core machine may need more than 20 s
    os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"  # as isoview watch: no telemetry from an offline machine


def start_prefect() -> float:
    """Start Prefect's embedded server now, before the acquisition, so that it is not timed in TM0; returns its start-up seconds."""
    from prefect.client.orchestration import get_client

    tic = time.perf_counter()
    with get_client(sync_client=True) as client:
        client.hello()
    return time.perf_counter() - tic


def start_microscope(root: Path, simulation: SimulationConfig, interval_s: float, replay: Path | None = None) -> tuple[Microscope, threading.Thread]:
    """Write the acquisition in real time in a thread (rendered, or replayed from `replay`), recording the time of each
    timepoint's last byte."""
    microscope = Microscope(started=time.time())

    def write() -> None:
        try:
            simulate_acquisition(
                root, simulation, interval_s=interval_s, on_timepoint=lambda t: microscope.written.__setitem__(t, time.time()), replay=replay
            )
        except BaseException as error:  # noqa: BLE001 - re-raised in the main thread after the run
            microscope.error = error

    thread = threading.Thread(target=write, name="microscope", daemon=True)
    thread.start()
    return microscope, thread


def print_event(started: float) -> Callable[[WatchEvent], None]:
    """A watcher event callback printing progress lines to stderr, timed from the acquisition start."""

    def on_event(event: WatchEvent) -> None:
        if event.kind in ("corrected", "fused", "problem", "finished"):
            label = ",".join(str(t) for t in event.timepoints)
            print(f"{event.time - started:8.1f} s  {event.kind:9s} {label} {event.message}", file=sys.stderr)

    return on_event


def last_mtime(paths: list[Path]) -> float | None:
    """Latest modification time of `paths`; None if one is missing (that output never completed)."""
    if not paths or not all(path.is_file() for path in paths):
        return None
    return max(path.stat().st_mtime for path in paths)


def output_times(processing: ProcessingConfig) -> tuple[dict[int, float | None], dict[int, float | None]]:
    """When each timepoint's corrected records and fusion records (both written last) were all written."""
    acquisition = discover_acquisition(processing.acquisition, processing.layout)
    fused_root = processing.resolved_fused_dir()
    corrected, fused = {}, {}
    for t in acquisition.timepoints(SPECIMEN):
        stacks = acquisition.timepoint(SPECIMEN, t).stacks
        corrected[t] = last_mtime([configured_corrected_paths(processing, SPECIMEN, t, s.camera, s.channel).record for s in stacks])
        fused[t] = last_mtime([FusedPaths(fused_root, pair).record for pair in timepoint_pairs(acquisition, processing, SPECIMEN, t)])
    return corrected, fused


def difference(later: float | None, earlier: float | None) -> float | None:
    """``later - earlier``, None if either is unknown."""
    return None if later is None or earlier is None else later - earlier


def timepoint_rows(microscope: Microscope, jobs: list[Job], corrected: dict, fused: dict, interval_s: float, window: int) -> list[dict]:
    """Per timepoint: times (seconds from the acquisition start), window, latencies and whether it is a tail timepoint."""
    first, last = min(microscope.written), max(microscope.written)
    started = {job.timepoints[0]: job.start for job in jobs if job.kind == "correct"}
    drawn = {t: job.end for job in jobs if job.kind == "draw" for t in job.timepoints}
    rows = []
    for t in sorted(microscope.written):
        lo, hi, unclipped_hi = window_bounds(t, first, last, window)
        in_window = [corrected.get(s) for s in range(lo, hi + 1)]
        filled = None if None in in_window else max(in_window)
        written = microscope.written[t]
        rows.append({
            "timepoint": t,
            "tail": unclipped_hi > last,
            "window": [lo, hi],
            "written_s": written - microscope.started,
            "microscope_lag_s": written - (microscope.started + (t + 1) * interval_s),
            "correction_started_s": difference(started.get(t), microscope.started),
            "corrected_s": difference(corrected.get(t), microscope.started),
            "window_filled_s": difference(filled, microscope.started),
            "fused_s": difference(fused.get(t), microscope.started),
            "figures_drawn_s": difference(drawn.get(t), microscope.started),
            "correction_latency_s": difference(corrected.get(t), written),
            "fusion_latency_s": difference(fused.get(t), filled),
            "figures_lag_s": difference(drawn.get(t), fused.get(t)),
        })
    return rows


def spread(values: list[float | None]) -> dict[str, float | None]:
    """Median, 90th percentile and maximum of the known values (None when there are none)."""
    known = [value for value in values if value is not None]
    if not known:
        return {"median": None, "p90": None, "max": None}
    return {"median": float(np.median(known)), "p90": float(np.percentile(known, 90)), "max": float(max(known))}


def rate_mb_s(raw_bytes: int, times: list[tuple[int, float]]) -> float | None:
    """Raw MB per second between the first and the last of (timepoint, time) pairs."""
    if len(times) < 2 or times[-1][1] <= times[0][1]:
        return None
    return raw_bytes * (times[-1][0] - times[0][0]) / (times[-1][1] - times[0][1]) / 1e6


def summarize(rows: list[dict], jobs: list[Job], raw_bytes: int, interval_s: float, wall_s: float) -> dict:
    """Latencies of the live timepoints (all, and the second half once the start-up backlog has drained), backlog growth,
    throughputs and which targets are met."""
    from flows.watcher import LANE_OF  # estimates run in the fusion lane

    live = [row for row in rows if not row["tail"]]
    steady = live[len(live) // 2 :]
    latencies = {
        key: spread([row[key] for row in live]) | {"max_second_half": spread([row[key] for row in steady])["max"]}
        for key in ("correction_latency_s", "fusion_latency_s")
    }
    fit = [(row["timepoint"], row["correction_latency_s"]) for row in steady if row["correction_latency_s"] is not None]
    slope = float(np.polyfit(*zip(*fit), 1)[0]) if len(fit) >= MIN_FIT_POINTS else None
    growth = None if slope is None else slope * (len(rows) - 1)
    # every timepoint enters the service through the correction lane: its pace is the service's intake (the backlog of
    # the other lanes shows in their latencies)
    service = rate_mb_s(raw_bytes, [(row["timepoint"], row["corrected_s"]) for row in rows if row["corrected_s"] is not None])
    acquisition = rate_mb_s(raw_bytes, [(row["timepoint"], row["written_s"]) for row in rows])
    lane_busy_s = {lane: sum(job.end - job.start for job in jobs if LANE_OF[job.kind] == lane) for lane in sorted({LANE_OF[job.kind] for job in jobs})}
    busy_s = max(lane_busy_s.values(), default=0.0)  # the lanes run side by side: the busiest one bounds the service

    def below_interval(key: str) -> bool:
        return latencies[key]["max"] is not None and latencies[key]["max"] < interval_s

    return {
        "interval_s": interval_s,
        "live_timepoints": len(live),
        "tail_timepoints": [row["timepoint"] for row in rows if row["tail"]],
        **latencies,
        "tail_fusion_latency_s": spread([row["fusion_latency_s"] for row in rows if row["tail"]]),
        "figures_lag_s": spread([row["figures_lag_s"] for row in live]),
        "lane_busy_s": lane_busy_s,
        "backlog_growth_s_per_timepoint": slope,
        "backlog_growth_fitted_on": [fit[0][0], fit[-1][0]] if slope is not None else None,
        "backlog_growth_over_run_s": growth,
        "acquisition_mb_s_nominal": raw_bytes / interval_s / 1e6,
        "acquisition_mb_s": acquisition,
        "service_mb_s": service,
        "service_capacity_mb_s": raw_bytes * len(rows) / busy_s / 1e6 if busy_s else None,
        "microscope_max_lag_s": max(row["microscope_lag_s"] for row in rows),
        "wall_s": wall_s,
        "targets_met": {
            "correction_max_below_interval": below_interval("correction_latency_s"),
            "fusion_max_below_interval": below_interval("fusion_latency_s"),
            # None: too few live timepoints in the second half to fit a slope (fewer than MIN_FIT_POINTS)
            "backlog_growth_below_interval": None if growth is None else growth < interval_s,
            "service_keeps_up_within_1pct": None not in (service, acquisition) and service >= 0.99 * acquisition,
        },
    }


def plot(rows: list[dict], report: dict, path: Path) -> None:
    """Latencies against the timepoint, tail timepoints hollow, the acquisition interval as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(figsize=(8, 4.5), layout="constrained")
    series = [
        ("correction_latency_s", "correction: last byte -> corrected", "correction, tail timepoints", "tab:blue", "o"),
        ("fusion_latency_s", "fusion: window filled -> fused", "fusion, tail timepoints (after the idle timeout)", "tab:orange", "s"),
        ("figures_lag_s", "figures: fused -> drawn", "figures, tail timepoints", "tab:green", "^"),
    ]
    for key, label, tail_label, colour, marker in series:
        live = [(row["timepoint"], row[key]) for row in rows if not row["tail"] and row[key] is not None]
        tail = [(row["timepoint"], row[key]) for row in rows if row["tail"] and row[key] is not None]
        if live:
            axes.plot(*zip(*live), marker=marker, color=colour, label=label)
        if tail:
            axes.plot(*zip(*tail), marker=marker, linestyle="none", color=colour, markerfacecolor="none", label=tail_label)
    settings = report["settings"]
    axes.axhline(settings["interval_s"], color="black", linestyle="--", label=f"acquisition interval {settings['interval_s']:g} s")
    axes.set_xlabel("timepoint")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("latency (s)")
    axes.set_ylim(bottom=0)
    shape = " x ".join(str(n) for n in settings["shape"])
    axes.set_title(f"isoview watcher, 4 cameras x {shape}, window {settings['window']}, diagnostics {'on' if settings['diagnostics'] else 'off'}", fontsize=10)
    axes.legend(fontsize=8)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def print_table(report: dict) -> None:
    """The summary as markdown tables, with the target of each figure."""
    summary, settings, met = report["summary"], report["settings"], report["summary"]["targets_met"]
    interval = settings["interval_s"]

    def number(value: float | None, digits: int = 2) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    def verdict(key: str) -> str:
        if met[key] is None:
            return f"not measured (fewer than {MIN_FIT_POINTS} live timepoints to fit)"
        return "met" if met[key] else "**not met**"

    shape = " x ".join(str(n) for n in settings["shape"])
    print(
        f"\nWatcher: {settings['timepoints']} timepoints of 4 x {shape} uint16 ({report['raw_mb_per_timepoint']:.0f} MB raw) every {interval:g} s, "
        f"window {settings['window']}, diagnostics {'on' if settings['diagnostics'] else 'off'}, "
        f"{report['machine']['logical_cores']} x {report['machine']['cpu_model']}"
    )
    print("\n| latency of the live timepoints, s | median | p90 | max | max, 2nd half | target |\n|---|---:|---:|---:|---:|---|")
    for key, label, target in [
        ("correction_latency_s", "last byte written -> corrected OME-Zarr", "correction_max_below_interval"),
        ("fusion_latency_s", "window filled -> fused", "fusion_max_below_interval"),
    ]:
        values = summary[key]
        print(
            f"| {label} | {number(values['median'])} | {number(values['p90'])} | {number(values['max'])} | {number(values['max_second_half'])} "
            f"| max < {interval:g} s: {verdict(target)} |"
        )
    tail = summary["tail_fusion_latency_s"]
    print(f"| tail {summary['tail_timepoints']}: window filled -> fused after the idle timeout | {number(tail['median'])} | | {number(tail['max'])} | | |")
    lag = summary["figures_lag_s"]
    print(f"| fused -> its diagnostic figures drawn (they may lag) | {number(lag['median'])} | {number(lag['p90'])} | {number(lag['max'])} | | |")
    print("\n| | measured | target |\n|---|---:|---|")
    print(
        f"| backlog growth: slope of the correction latency (2nd half), s per timepoint (x run) | {number(summary['backlog_growth_s_per_timepoint'], 3)} "
        f"({number(summary['backlog_growth_over_run_s'], 1)} s) | ~0, < {interval:g} s over the run: {verdict('backlog_growth_below_interval')} |"
    )
    print(
        f"| service vs acquisition throughput, raw MB/s | {number(summary['service_mb_s'], 1)} vs {number(summary['acquisition_mb_s'], 1)} "
        f"| >= acquisition (within 1 %): {verdict('service_keeps_up_within_1pct')} |"
    )
    busy = ", ".join(f"{kind} {seconds:.0f}" for kind, seconds in summary["lane_busy_s"].items())
    print(f"| service capacity, raw MB per second of the busiest lane's flow runs (busy s: {busy}) | {number(summary['service_capacity_mb_s'], 1)} | |")
    print(f"| microscope behind its schedule, max s | {summary['microscope_max_lag_s']:.2f} | |")
    print(f"| wall time, s (Prefect server start-up before it: {report['prefect_startup_s']:.1f} s) | {summary['wall_s']:.0f} | |")
    print(f"| peak memory (watcher, simulated microscope and Prefect's server), GiB, x one camera stack | {report['peak_rss_bytes'] / 2**30:.2f}, {report['peak_rss_stacks']}x | |")
    if report["problems"]:
        print(f"\nproblems: {report['problems']}")


def add_acquisition_arguments(parser: argparse.ArgumentParser, *, timepoints: int, interval_s: float, shape: list[int], drift: list[float]) -> None:
    """The simulated acquisition's options, shared with ``soak.py`` (each with its own defaults)."""
    parser.add_argument("--timepoints", type=int, default=timepoints)
    parser.add_argument("--interval", type=float, default=interval_s, help="Seconds between timepoints (the acquisition interval).")
    parser.add_argument("--shape", type=int, nargs=3, default=shape, metavar=("Z", "Y", "X"), help="Stack shape of each of the 4 cameras.")
    parser.add_argument(
        "--drift", type=float, nargs=3, default=drift, metavar=("DZ", "DY", "DX"), help="Specimen drift per timepoint in view-0 voxels."
    )
    parser.add_argument("--window", type=int, default=2, help="Temporal window half-width w.")
    watch = WatchConfig()
    parser.add_argument("--scan-interval", type=float, default=watch.scan_interval_s, help="watch.scan_interval_s (default: the service's).")
    parser.add_argument("--settle", type=float, default=watch.settle_s, help="watch.settle_s (default: the service's).")
    parser.add_argument(
        "--mmap-threshold",
        type=lambda text: None if text == "adaptive" else int(text),
        default=ExecutionConfig().malloc_mmap_threshold_bytes,
        metavar="BYTES|adaptive",
        help="glibc's mmap threshold of the watcher (execution.malloc_mmap_threshold_bytes; default: the service's).",
    )


def run(args: argparse.Namespace, tmp: Path) -> dict:
    """Start Prefect, the microscope and the watcher; measure once the watcher has ended."""
    use_private_prefect(tmp / "prefect")
    from flows.memory import apply_mmap_threshold
    from flows.watcher import AcquisitionWatcher

    root = tmp / "acquisition"
    shape = tuple(args.shape)
    idle_timeout_s = max(args.interval, 5.0)  # the stacks grow plane by plane: a whole interval without a change is the end
    config = ServiceConfig(
        processing=ProcessingConfig(acquisition=root, temporal=TemporalConfig(window=args.window), save_diagnostics=not args.no_diagnostics),
        watch=WatchConfig(scan_interval_s=args.scan_interval, settle_s=args.settle, idle_timeout_s=idle_timeout_s),
        execution=ExecutionConfig(malloc_mmap_threshold_bytes=args.mmap_threshold),
    )
    mmap_threshold = apply_mmap_threshold(config.execution.malloc_mmap_threshold_bytes)  # as `isoview watch` does
    prefect_startup_s = start_prefect()
    submitter = TimedSubmitter(config)
    with MemorySampler() as memory:
        simulation = SimulationConfig(shape=shape, timepoints=args.timepoints, seed=0, drift_px_per_timepoint=tuple(args.drift))
        microscope, thread = start_microscope(root, simulation, args.interval, args.replay)
        summary = AcquisitionWatcher(config, submitter, on_event=print_event(microscope.started)).run()
    wall_s = time.time() - microscope.started
    thread.join()
    if microscope.error is not None:
        raise microscope.error
    raw_bytes = 4 * int(np.prod(shape)) * 2
    rows = timepoint_rows(microscope, submitter.jobs, *output_times(config.processing), args.interval, args.window)
    settings = {
        "timepoints": args.timepoints, "interval_s": args.interval, "shape": list(shape), "drift_px_per_timepoint": list(args.drift), "window": args.window, "diagnostics": not args.no_diagnostics,
        "scan_interval_s": config.watch.scan_interval_s, "settle_s": config.watch.settle_s, "idle_timeout_s": idle_timeout_s,
        "task_runner": config.execution.task_runner, "max_workers": submitter.inner.workers(),
        "replayed_from": str(args.replay) if args.replay else None,
        "malloc_mmap_threshold": {"bytes": mmap_threshold.bytes, "source": mmap_threshold.source},
    }
    return {
        "settings": settings,
        "acquisition_root": str(root),
        "started_unix": microscope.started,
        "raw_bytes_per_timepoint": raw_bytes,
        "raw_mb_per_timepoint": raw_bytes / 1e6,
        "prefect_startup_s": prefect_startup_s,
        "peak_rss_bytes": memory.peak_bytes,
        "peak_rss_watcher_bytes": memory.peak_own_bytes,
        "peak_rss_stacks": round(memory.peak_bytes / (raw_bytes / 4), 2),
        "summary": summarize(rows, submitter.jobs, raw_bytes, args.interval, wall_s),
        "problems": summary.problems,
        "timepoints": rows,
        "jobs": [{"kind": job.kind, "timepoints": job.timepoints, "start_s": job.start - microscope.started, "duration_s": job.end - job.start} for job in submitter.jobs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_acquisition_arguments(parser, timepoints=50, interval_s=25.0, shape=[64, 512, 512], drift=list(SimulationConfig().drift_px_per_timepoint))
    parser.add_argument("--no-diagnostics", action="store_true", help="Skip the fusion diagnostic PNGs (written by default, as for a user).")
    parser.add_argument(
        "--replay",
        type=Path,
        help=(
            "An acquisition simulated before with the same --shape (seed 0, e.g. one timepoint): its planes are written in real time "
            "instead of being rendered, so the microscope thread does not compete with the service for the CPU (full-size runs)."
        ),
    )
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "watcher_latency.json")
    args = parser.parse_args()

    # Prefect's embedded server, stopped only at exit, may still write in its home when the folder is removed
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP"), ignore_cleanup_errors=True) as tmp:
        report = run(args, Path(tmp))
    report["machine"] = machine_info()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    plot(report["timepoints"], report, args.output.with_suffix(".png"))
    print_table(report)
    print(f"results in {args.output} and {args.output.with_suffix('.png')}")


if __name__ == "__main__":
    main()
