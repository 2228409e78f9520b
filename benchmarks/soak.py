"""Soak test of the live service: many small timepoints at a high rate, watching for leaks and double work.

Not run in CI. The simulated microscope writes ``--timepoints`` small timepoints (200 of 4 x 16 x 96 x 80 by
default) while the watcher follows them, exactly as ``benchmarks/bench_watcher.py`` runs it (its ``run()``
is reused: Prefect's embedded server in a private home, the in-process submitter, the same latency and
throughput measures). Beside it a sampler thread records every second:

* the resident memory (RSS) of this process (watcher, flows, simulator) and, apart, of its children (Prefect's
  embedded server);
* their open file descriptors, and this process's threads;
* the size of Prefect's SQLite database (``$PREFECT_HOME/prefect.db`` with its write-ahead log): the server's
  memory is judged against it, as SQLite keeps the pages it reads and writes in its page cache (Prefect sets
  20000 pages per connection), which grows with the run history up to that cap.

At the end:

* memory and descriptors: a linear fit over the second half of the live phase (acquisition start -> last
  timepoint corrected), as growth per hour and per 100 timepoints, and a verdict against stated tolerances:
  RSS (this process, and the children apart) below ``--rss-tolerance-mb`` (5 MB) per 100 timepoints -- a leak
  of one raw camera stack (98 kB at the default shape) per timepoint would be ~10 MB -- and descriptors and
  threads below 1 per 100 timepoints (none leaked); the children's RSS also passes when it grew no faster than
  the database (its page cache). Fits over fewer than 20 timepoints give no verdict;
* exactly once: the service journal (``<fused>/service/journal.jsonl``) holds every (timepoint, camera) stack
  corrected once and every (timepoint, pair) estimated once and fused once, nothing missing, twice or extra,
  and the watcher reported no problem;
* throughput and latency percentiles (p50, p90, p99, max) of the live timepoints, and a verdict: every live
  timepoint corrected (last byte written -> corrected) and fused (window filled -> fused) within one acquisition
  interval, start-up included.

The default interval, 12 s, leaves room for the ~9.3 s of work per timepoint the first 200-timepoint run
measured at 4 x 16 x 64 x 48 (two flow runs, mostly Prefect's overhead at this size; 8 s fell behind). The
default drift, 0.05 px per timepoint (a sixth of the generator's), keeps the synthetic specimen inside the
16-plane view-90 stacks for 200 timepoints: at 0.3 px it leaves them after about 85 timepoints, and the late
fusions run on featureless slabs (a second run showed it). The summary prints the busy seconds per timepoint
to choose another interval.

The watcher fixes glibc's mmap threshold itself, as the service does (``execution.malloc_mmap_threshold_bytes``,
128 KiB), which keeps its memory lower than glibc's adaptive default; ``--mmap-threshold adaptive`` runs it with the
default instead (a ``MALLOC_MMAP_THRESHOLD_`` in the environment wins over both). The report records the threshold
the watcher used and where it came from (``settings.malloc_mmap_threshold``).

Run: ``python benchmarks/soak.py [--timepoints 200] [--interval 12] [--shape 16 96 80] [--drift 0 0.05 0.05]
[--window 2] [--mmap-threshold BYTES|adaptive] [--diagnostics] [--output benchmarks/results/soak.json]`` (also writes
``soak.png``: memory, descriptors and latency over time).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Self

import bench_watcher
import numpy as np
import psutil
from bench_watcher import SPECIMEN, add_acquisition_arguments, print_table
from machine import machine_info

from isoview_core.acquisition import discover_acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.pipeline.fusion import timepoint_pairs
from isoview_core.service.journal import read_journal

SAMPLE_PERIOD_S = 1.0
MIN_VERDICT_TIMEPOINTS = 20
"""Fewest timepoints in the fitted half for a growth verdict (shorter runs report the slopes only)."""
COUNT_TOLERANCE_PER_100 = 1.0
"""Descriptors and threads: growth below one per 100 timepoints (a fit of integer counts; none leaked)."""
MB = 1e6
STARTUP_S, TAIL_S = 30.0, 20.0
"""For the expected duration: imports and Prefect's start-up; the tail fusions after the idle timeout."""


class Sampler:
    """A thread sampling, every `period_s`, RSS and descriptors of this process and of its children, and its threads.

    The samples go to a JSON-lines file as they are taken (one descriptor, open throughout), not to a list: the
    measured process must not grow with its own measurements.
    """

    def __init__(self, path: Path, period_s: float = SAMPLE_PERIOD_S) -> None:
        self.path = path
        self.period_s = period_s
        self.process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="soak-sampler", daemon=True)

    def __enter__(self) -> Self:
        self._file = self.path.open("w")
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self._record()
        self._file.close()

    def samples(self) -> list[dict]:
        """Every sample taken, in order."""
        return [json.loads(line) for line in self.path.read_text().splitlines()]

    def _record(self) -> None:
        self._file.write(json.dumps(self.sample()) + "\n")
        self._file.flush()

    def _loop(self) -> None:
        start = time.monotonic()
        for tick in range(1, sys.maxsize):
            self._record()
            if self._stop.wait(max(0.0, start + tick * self.period_s - time.monotonic())):
                return

    @staticmethod
    def prefect_database_bytes() -> int:
        """Bytes of Prefect's SQLite database and its write-ahead log in ``$PREFECT_HOME`` (0 before it exists)."""
        home = os.environ.get("PREFECT_HOME")
        if home is None:
            return 0
        total = 0
        for path in Path(home).glob("prefect.db*"):
            try:
                total += path.stat().st_size
            except FileNotFoundError:  # the write-ahead log removed between the listing and the reading
                continue
        return total

    def sample(self) -> dict:
        children_rss = children_fds = 0
        children = self.process.children(recursive=True)
        for child in children:
            try:
                with child.oneshot():
                    children_rss += child.memory_info().rss
                    children_fds += child.num_fds()
            except psutil.Error:  # ended between the listing and the reading
                continue
        with self.process.oneshot():
            return {
                "time": time.time(),
                "rss": self.process.memory_info().rss,
                "fds": self.process.num_fds(),
                "threads": self.process.num_threads(),
                "children": len(children),
                "children_rss": children_rss,
                "children_fds": children_fds,
                "prefect_db": self.prefect_database_bytes(),
            }


def check_journal(root: Path, timepoints: int) -> dict:
    """Every stack of the acquisition corrected once, every pair estimated and fused once: nothing missing, twice or extra."""
    processing = ProcessingConfig(acquisition=root)  # bench_watcher.run() keeps the default output folders beside the acquisition
    acquisition = discover_acquisition(root, processing.layout)
    found = acquisition.timepoints(SPECIMEN)
    expected = {
        "corrected": {(t, stack.camera, stack.channel) for t in found for stack in acquisition.timepoint(SPECIMEN, t).stacks},
        "estimated": {(pair.timepoint, *pair.cameras) for t in found for pair in timepoint_pairs(acquisition, processing, SPECIMEN, t)},
    }
    expected["fused"] = expected["estimated"]
    counts: dict[str, Counter] = {event: Counter() for event in expected}
    other: Counter = Counter()
    entries = read_journal(processing)
    for entry in entries:
        event = entry.get("event")
        if event == "corrected":
            key = (entry["timepoint"], entry["camera"], entry["channel"])
        elif event in ("estimated", "fused"):
            key = (entry["timepoint"], *entry["cameras"])
        else:
            other[str(event)] += 1
            continue
        counts[event][key if entry.get("specimen") == SPECIMEN else ("specimen", entry.get("specimen"), *key)] += 1
    events = {}
    for event, wanted in expected.items():
        seen = counts[event]
        events[event] = {
            "expected": len(wanted),
            "entries": sum(seen.values()),
            "missing": sorted(wanted - set(seen)),
            "more_than_once": {str(key): n for key, n in sorted(seen.items()) if n > 1},
            "unexpected": [str(key) for key in sorted(set(seen) - wanted, key=str)],
        }
    bad = {key[0] for event, result in events.items() for key in result["missing"]}
    bad |= {key[0] for event, seen in counts.items() for key, n in seen.items() if n > 1 or key not in expected[event]}
    exactly_once = [t for t in found if t not in bad]
    return {
        "timepoints_expected": timepoints,
        "timepoints_found": len(found),
        "timepoints_finished_exactly_once": len(exactly_once),
        "entries": len(entries),
        "other_events": dict(other),
        "events": events,
        "ok": len(found) == timepoints == len(exactly_once) and not other,
    }


def fit(samples: list[dict], key: str, start_s: float, end_s: float, seconds_per_timepoint: float) -> dict:
    """Linear fit of `key` against time over ``start_s .. end_s``: growth per hour and per 100 timepoints, spread."""
    points = [(sample["t_s"], sample[key]) for sample in samples if start_s <= sample["t_s"] <= end_s]
    if len(points) < 3:
        return {"samples": len(points), "per_hour": None, "per_100_timepoints": None}
    t, y = np.array(points, dtype=float).T
    slope, intercept = np.polyfit(t, y, 1)
    return {
        "samples": len(points),
        "slope_per_s": float(slope),
        "intercept": float(intercept),
        "per_hour": float(slope * 3600),
        "per_100_timepoints": float(slope * seconds_per_timepoint * 100),
        "first": float(y[0]),
        "last": float(y[-1]),
        "min": float(y.min()),
        "max": float(y.max()),
        "residual_std": float(np.std(y - (slope * t + intercept))),
    }


def growth(samples: list[dict], rows: list[dict], rss_tolerance_mb: float) -> dict:
    """Fits over the second half of the live phase (acquisition start -> last timepoint corrected) and verdicts."""
    written = [row["written_s"] for row in rows]
    corrected = [row["corrected_s"] for row in rows if row["corrected_s"] is not None]
    live_end_s = max(corrected) if corrected else max(written)
    start_s, end_s = live_end_s / 2, live_end_s
    seconds_per_timepoint = (max(written) - min(written)) / (len(written) - 1) if len(written) > 1 else max(written)
    fitted_timepoints = [row["timepoint"] for row in rows if start_s <= row["written_s"] <= end_s]
    judged = len(fitted_timepoints) >= MIN_VERDICT_TIMEPOINTS
    tolerances = {"rss": rss_tolerance_mb * MB, "children_rss": rss_tolerance_mb * MB}
    tolerances |= dict.fromkeys(("fds", "children_fds", "threads"), COUNT_TOLERANCE_PER_100)
    database = fit(samples, "prefect_db", start_s, end_s, seconds_per_timepoint)
    fits = {}
    for key, tolerance in tolerances.items():
        result = fit(samples, key, start_s, end_s, seconds_per_timepoint)
        per_100 = result["per_100_timepoints"]
        result["tolerance_per_100_timepoints"] = tolerance
        result["no_growth"] = None if not judged or per_100 is None else per_100 < tolerance
        if key == "children_rss" and result["no_growth"] is False and database["per_100_timepoints"] is not None:
            result["within_database_growth"] = per_100 <= database["per_100_timepoints"]
            result["no_growth"] = result["within_database_growth"]
        fits[key] = result
    verdicts = [result["no_growth"] for result in fits.values()]
    fits["prefect_db"] = database
    return {
        "fitted_s": [start_s, end_s],
        "fitted_timepoints": [fitted_timepoints[0], fitted_timepoints[-1]] if fitted_timepoints else None,
        "seconds_per_timepoint": seconds_per_timepoint,
        "judged": judged,
        "fits": fits,
        "no_growth": None if None in verdicts else all(verdicts),
    }


def percentiles(values: list[float | None]) -> dict[str, float | int | None]:
    """p50, p90, p99 and maximum of the known values (None when there are none)."""
    known = [value for value in values if value is not None]
    if not known:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None}
    p50, p90, p99 = (float(value) for value in np.percentile(known, [50, 90, 99]))
    return {"n": len(known), "p50": p50, "p90": p90, "p99": p99, "max": float(max(known))}


def per_minute(times: list[float | None]) -> float | None:
    """Timepoints per minute between the first and the last of these times."""
    known = sorted(moment for moment in times if moment is not None)
    return None if len(known) < 2 or known[-1] <= known[0] else 60 * (len(known) - 1) / (known[-1] - known[0])


def busy_per_timepoint(jobs: list[dict]) -> dict[str, float | None]:
    """Median duration of a correction and of a one-timepoint fusion flow run: the service's seconds per timepoint."""
    correct = [job["duration_s"] for job in jobs if job["kind"] == "correct"]
    fuse = [job["duration_s"] for job in jobs if job["kind"] == "fuse" and len(job["timepoints"]) == 1]
    medians = {"correct_s": float(np.median(correct)) if correct else None, "fuse_s": float(np.median(fuse)) if fuse else None}
    return medians | {"total_s": None if None in medians.values() else sum(medians.values())}


def soak_summary(report: dict, samples: list[dict], journal: dict, rss_tolerance_mb: float) -> dict:
    """Throughput, latency percentiles, growth and exactly-once checks, and the overall verdict."""
    rows, interval = report["timepoints"], report["settings"]["interval_s"]
    live = [row for row in rows if not row["tail"]]
    steady = live[len(live) // 2 :]
    busy = busy_per_timepoint(report["jobs"])
    grown = growth(samples, rows, rss_tolerance_mb)
    no_problems = not report["problems"]
    latency = {
        key: {"all": percentiles([row[key] for row in live]), "second_half": percentiles([row[key] for row in steady])}
        for key in ("correction_latency_s", "fusion_latency_s")
    }
    # every live timepoint corrected, and fused, within one acquisition interval of becoming ready
    worst = [latency[key]["all"]["max"] for key in latency]
    within_interval = None if None in worst else max(worst) < interval
    checks = [journal["ok"], no_problems, grown["no_growth"], within_interval]
    return {
        "throughput_timepoints_per_min": {
            "written": per_minute([row["written_s"] for row in rows]),
            "corrected": per_minute([row["corrected_s"] for row in rows]),
            "fused_live": per_minute([row["fused_s"] for row in live]),
            "nominal": 60 / interval,
        },
        "latency_s": latency,
        "latency_within_interval": within_interval,
        "busy_per_timepoint_s": busy,
        "utilisation": None if busy["total_s"] is None else busy["total_s"] / interval,
        "growth": grown,
        "exactly_once": journal,
        "no_problems": no_problems,
        "passed": False if False in checks else None if None in checks else True,
    }


def allocator(settings: dict) -> str:
    """glibc's mmap threshold in the run: adaptive (glibc's default) or fixed, and by what."""
    threshold = settings["malloc_mmap_threshold"]
    if threshold["bytes"] is None:
        return "adaptive mmap threshold"
    by = "MALLOC_MMAP_THRESHOLD_" if threshold["source"] == "environment" else "the service config"
    return f"mmap threshold fixed at {threshold['bytes'] // 1024} KiB ({by})"


def plot(report: dict, path: Path) -> None:
    """Memory, descriptors and threads, and latencies, against the time from the acquisition start; the fitted half shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    soak, samples, rows, settings = report["soak"], report["samples"], report["timepoints"], report["settings"]
    grown = soak["growth"]
    t = np.array([sample["t_s"] for sample in samples])
    figure, (memory, handles, latency) = plt.subplots(3, 1, figsize=(9, 9), sharex=True, layout="constrained")
    for axes in (memory, handles, latency):
        axes.axvspan(*grown["fitted_s"], color="0.92", zorder=0)
        axes.axvline(max(row["written_s"] for row in rows), color="0.5", linestyle=":", linewidth=1)

    def fitted(axes, key: str, scale: float, colour: str) -> None:
        result = grown["fits"][key]
        if result["per_hour"] is not None:
            span = np.array(grown["fitted_s"])
            axes.plot(span, (result["slope_per_s"] * span + result["intercept"]) / scale, color=colour, linestyle="--", linewidth=1)

    for key, label, colour in [
        ("rss", "RSS, this process (watcher, flows, simulator)", "tab:blue"),
        ("children_rss", "RSS, children (Prefect server)", "tab:green"),
        ("prefect_db", "Prefect's SQLite database, file size", "tab:gray"),
    ]:
        per_100 = grown["fits"][key]["per_100_timepoints"]
        slope = "" if per_100 is None else f", fit {per_100 / MB:+.2f} MB / 100 timepoints"
        memory.plot(t, [sample[key] / MB for sample in samples], color=colour, linewidth=1, label=f"{label}{slope}")
        fitted(memory, key, MB, colour)
    memory.set_ylabel("MB")
    memory.set_ylim(bottom=0)
    memory.legend(fontsize=8, loc="lower right")

    for key, label, colour in [("fds", "open files, this process", "tab:blue"), ("children_fds", "open files, children", "tab:green"), ("threads", "threads, this process", "tab:red")]:
        handles.plot(t, [sample[key] for sample in samples], color=colour, linewidth=1, label=f"{label}, fit {grown['fits'][key]['per_100_timepoints'] or 0:+.2f} / 100 tp")
        fitted(handles, key, 1.0, colour)
    handles.set_ylabel("count")
    handles.set_ylim(bottom=0)
    handles.legend(fontsize=8, loc="lower right")

    for key, label, colour, marker in [("correction_latency_s", "correction: last byte -> corrected", "tab:blue", "o"), ("fusion_latency_s", "fusion: window filled -> fused", "tab:orange", "s")]:
        live = [(row["written_s"], row[key]) for row in rows if not row["tail"] and row[key] is not None]
        tail = [(row["written_s"], row[key]) for row in rows if row["tail"] and row[key] is not None]
        if live:
            latency.plot(*zip(*live), marker=marker, markersize=3, linewidth=1, color=colour, label=label)
        if tail:
            tail_label = "fusion, tail timepoints (after the idle timeout)" if key == "fusion_latency_s" else "correction, tail timepoints"
            latency.plot(*zip(*tail), marker=marker, markersize=3, linestyle="none", color=colour, markerfacecolor="none", label=tail_label)
    latency.axhline(settings["interval_s"], color="black", linestyle="--", linewidth=1, label=f"acquisition interval {settings['interval_s']:g} s")
    latency.set_ylabel("latency (s), at the time written")
    latency.set_xlabel("seconds from the acquisition start (shaded: fitted half of the live phase; dotted: last timepoint written)")
    latency.set_ylim(bottom=0)
    latency.legend(fontsize=8, loc="upper left")

    shape = " x ".join(str(n) for n in settings["shape"])
    verdict = {True: "passed", False: "FAILED", None: "not judged"}[soak["passed"]]
    memory.set_title(
        f"isoview soak: {settings['timepoints']} timepoints of 4 x {shape} every {settings['interval_s']:g} s, window {settings['window']}, "
        f"diagnostics {'on' if settings['diagnostics'] else 'off'}\nglibc's {allocator(settings)}: {verdict}",
        fontsize=10,
    )
    figure.savefig(path, dpi=120)
    plt.close(figure)


def print_soak_table(report: dict) -> None:
    """The soak figures as markdown tables, after bench_watcher's."""
    soak = report["soak"]
    grown, once, throughput = soak["growth"], soak["exactly_once"], soak["throughput_timepoints_per_min"]

    def number(value: float | None, digits: int = 2) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    def verdict(value: bool | None) -> str:
        return {True: "yes", False: "**no**", None: "not judged"}[value]

    print("\n| throughput, timepoints per minute | written | corrected | fused (live) | nominal |\n|---|---:|---:|---:|---:|")
    print(f"| | {number(throughput['written'])} | {number(throughput['corrected'])} | {number(throughput['fused_live'])} | {number(throughput['nominal'])} |")
    busy = soak["busy_per_timepoint_s"]
    print(
        f"\nservice busy per timepoint: correction {number(busy['correct_s'])} s + fusion {number(busy['fuse_s'])} s = {number(busy['total_s'])} s "
        f"(utilisation {number(soak['utilisation'])} of the interval)"
    )
    print("\n| latency of the live timepoints, s | n | p50 | p90 | p99 | max | max, 2nd half |\n|---|---:|---:|---:|---:|---:|---:|")
    for key, label in [("correction_latency_s", "last byte written -> corrected"), ("fusion_latency_s", "window filled -> fused")]:
        all_, half = soak["latency_s"][key]["all"], soak["latency_s"][key]["second_half"]
        print(f"| {label} | {all_['n']} | {number(all_['p50'])} | {number(all_['p90'])} | {number(all_['p99'])} | {number(all_['max'])} | {number(half['max'])} |")

    lo, hi = grown["fitted_s"]
    span = "none" if grown["fitted_timepoints"] is None else "{}..{}".format(*grown["fitted_timepoints"])
    print(
        f"\nGrowth: linear fit over {lo:.0f}..{hi:.0f} s from the acquisition start (timepoints {span}, "
        f"{grown['seconds_per_timepoint']:.2f} s per timepoint; glibc's {allocator(report['settings'])})"
        + ("" if grown["judged"] else f"; fewer than {MIN_VERDICT_TIMEPOINTS} timepoints: no verdict")
    )
    print("\n| | first | last | min | max | residual std | per hour | per 100 timepoints | tolerance per 100 tp | no growth |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for key, label, scale, unit in [
        ("rss", "RSS, this process", MB, " MB"),
        ("children_rss", "RSS, children (Prefect server)", MB, " MB"),
        ("fds", "open files, this process", 1.0, ""),
        ("children_fds", "open files, children", 1.0, ""),
        ("threads", "threads, this process", 1.0, ""),
        ("prefect_db", "Prefect's database file", MB, " MB"),
    ]:
        result = grown["fits"][key]
        tolerance = result.get("tolerance_per_100_timepoints")
        bound = "" if tolerance is None else f"< {tolerance / scale:g}{unit}" + (" or the database's" if key == "children_rss" else "")
        judged = "" if tolerance is None else verdict(result["no_growth"]) + (" (no faster than the database)" if result.get("within_database_growth") else "")
        if result["per_hour"] is None:
            print(f"| {label} | | | | | | n/a | n/a | {bound} | {'' if tolerance is None else 'not judged'} |")
            continue
        values = [number(result[name] / scale, 1) for name in ("first", "last", "min", "max", "residual_std")]
        print(
            f"| {label} | {' | '.join(values)} | {result['per_hour'] / scale:+.2f}{unit} | {result['per_100_timepoints'] / scale:+.2f}{unit} "
            f"| {bound} | {judged} |"
        )

    print("\n| exactly once (service journal) | expected | entries | missing | more than once | unexpected |\n|---|---:|---:|---:|---:|---:|")
    for event, label in [("corrected", "corrected (timepoint, camera)"), ("estimated", "estimated (timepoint, pair)"), ("fused", "fused (timepoint, pair)")]:
        result = once["events"][event]
        print(f"| {label} | {result['expected']} | {result['entries']} | {len(result['missing'])} | {len(result['more_than_once'])} | {len(result['unexpected'])} |")
    other = f", other journal events {once['other_events']}" if once["other_events"] else ""
    print(
        f"\ntimepoints finished exactly once: {once['timepoints_finished_exactly_once']} of {once['timepoints_expected']} "
        f"({once['timepoints_found']} found){other}; watcher problems: {len(report['problems'])}"
    )
    print(
        f"\n**soak {'passed' if soak['passed'] else 'FAILED' if soak['passed'] is False else 'not judged'}**: exactly once {verdict(once['ok'])}, "
        f"no problems {verdict(soak['no_problems'])}, no growth {verdict(grown['no_growth'])}, "
        f"latency within one interval {verdict(soak['latency_within_interval'])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_acquisition_arguments(parser, timepoints=200, interval_s=12.0, shape=[16, 96, 80], drift=[0.0, 0.05, 0.05])
    parser.add_argument("--diagnostics", action="store_true", help="Write the fusion diagnostic PNGs (off by default here).")
    parser.add_argument("--rss-tolerance-mb", type=float, default=5.0, help="Largest RSS growth per 100 timepoints that counts as none.")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "soak.json")
    args = parser.parse_args()
    args.no_diagnostics = not args.diagnostics  # what bench_watcher.run() reads
    expected_s = STARTUP_S + args.timepoints * args.interval + max(args.interval, 5.0) + TAIL_S  # bench_watcher's idle timeout
    print(f"soak: {args.timepoints} timepoints every {args.interval:g} s, expected ~{expected_s / 60:.1f} min", file=sys.stderr)

    # as bench_watcher: Prefect's embedded server, stopped only at exit, may still write in its home when the folder is removed
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP"), ignore_cleanup_errors=True) as tmp:
        with Sampler(Path(tmp) / "samples.jsonl") as sampler:
            report = bench_watcher.run(args, Path(tmp))
        journal = check_journal(Path(report["acquisition_root"]), args.timepoints)
        recorded = sampler.samples()
    started = report["started_unix"]
    samples = [{"t_s": sample["time"] - started} | sample for sample in recorded]
    report["machine"] = machine_info()
    report["settings"] |= {
        "sample_period_s": SAMPLE_PERIOD_S,
        "rss_tolerance_mb_per_100_timepoints": args.rss_tolerance_mb,
    }
    report["soak"] = soak_summary(report, samples, journal, args.rss_tolerance_mb)
    report["samples"] = samples
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    plot(report, args.output.with_suffix(".png"))
    print_table(report)
    print_soak_table(report)
    print(f"results in {args.output} and {args.output.with_suffix('.png')}")


if __name__ == "__main__":
    main()
