"""End to end, as a user runs it: ``isoview correct``, ``isoview fuse`` and ``isoview watch`` with their defaults.

Simulates (or reuses) an acquisition of four cameras at a given size, then runs each command as a
subprocess, one after the other, and reports per command:

* raw MB per CPU-second (user + system time of the command and every process it started) and per wall-second;
* peak memory: the largest sum of the resident sets of the command's process tree (sampled every 0.05 s),
  as a multiple of one camera stack, with the budget the issue sets (1.5x per correction worker, 2x per
  fusion worker);
* the same with one worker (``--workers 1``), for the scaling from 1 to the machine's workers;
* the split of the time, from the records the commands write (``timings_s`` of the corrected stacks,
  estimates and fusion records); what the records do not cover is start-up, discovery and, for the
  watcher, Prefect's own work.

Before the measured commands, a small acquisition (16 full-size planes) is corrected and fused once, untimed: the measured runs load
numba's cached kernels, as every run after a user's first (the first compiles them: ``warm_up_s``). Before each ``correct``
the raw files are read once, untimed, so that it finds them in the page cache, as the service does. The settings record
the memory the page cache leaves unused (``unused_memory_gib``) and the CPU-seconds of a fixed workload before and
after the commands (``speed_probe_s``): on the development VM the same code took 20-35 % more CPU-seconds 20 minutes
later in one session, with the page cache full or emptied, as its host varied.

``--checkout DIR`` measures another commit's commands (a git worktree) beside this checkout's: every repetition runs
both sequences, this checkout's first in the first repetition and the other's first in the next, so that both meet the
same state of the machine (the VM's host varies within minutes); the other's figures go to ``--checkout-output``
(default ``end_to_end_at_<commit>.json``).

Run: ``python benchmarks/bench_end_to_end.py [--planes 64] [--size 2048] [--timepoints 1] [--data DIR]
[--commands correct fuse] [--variants defaults ...] [--repeat N] [--output benchmarks/results/end_to_end.json]
[--checkout DIR [--checkout-output FILE]]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from machine import machine_info, speed_probe_s

SAMPLE_S = 0.05
MEMORY_BUDGET = {"correct": 1.5, "fuse": 2.0, "watch": 2.0}
"""Peak memory allowed per parallel worker, in camera stacks (issue 14)."""
TARGET_MB_PER_CPU_S = {"correct": 300.0, "fuse": 200.0}
VARIANTS = {
    "defaults": {"correct": [], "fuse": []},
    "one worker": {"correct": ["--workers", "1"], "fuse": ["--workers", "1"]},
    "one worker, no diagnostics": {"fuse": ["--workers", "1", "--no-diagnostics"]},
}
"""Each command with its defaults (workers: every core the memory allows) and, side by side, with one worker, and
``fuse`` without its figures (the difference is what the diagnostics cost)."""


@dataclass(frozen=True)
class Isoview:
    """How to start ``isoview``: this environment's, or another checkout's commands with this environment's Python."""

    argv: tuple[str, ...] = (str(Path(sys.executable).with_name("isoview")),)
    environment: dict[str, str] | None = None
    cwd: Path | None = None

    @classmethod
    def of_checkout(cls, checkout: Path) -> Isoview:
        """The commands of `checkout` (e.g. a git worktree of an earlier commit), imported by every process they start."""
        return cls(
            (sys.executable, "-c", "import sys; sys.argv[0] = 'isoview'; from flows.cli import app; app()"),
            {**os.environ, "PYTHONPATH": str(checkout)},
            checkout,  # `python -c` puts the working folder first on the path
        )

    def run(self, *arguments: str) -> None:
        """Run a command to completion, untimed."""
        subprocess.run([*self.argv, *arguments], check=True, capture_output=True, env=self.environment, cwd=self.cwd)

    def measured(self, *arguments: str) -> Measurement:
        """Run a command, measured (:func:`run_measured`)."""
        return run_measured([*self.argv, *arguments], environment=self.environment, cwd=self.cwd)


@dataclass
class Measurement:
    """What one command cost: seconds, CPU-seconds of its whole process tree, peak tree RSS."""

    command: list[str]
    returncode: int
    wall_s: float
    cpu_s: float
    system_s: float
    peak_rss_bytes: int
    output_tail: str = ""
    samples: list[tuple[float, int]] = field(default_factory=list)


def sample_tree(process: psutil.Process, cpu_seen: dict[int, tuple[float, float]]) -> int:
    """Resident bytes of a process and all its descendants now; each one's own (user, system) seconds so far into `cpu_seen`."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            with member.oneshot():
                total += member.memory_info().rss
                times = member.cpu_times()
                cpu_seen[member.pid] = (times.user, times.system)
        except psutil.Error:
            pass
    return total


def run_measured(command: list[str], *, environment: dict[str, str] | None = None, cwd: Path | None = None) -> Measurement:
    """Run `command` to completion, sampling its process tree's RSS and CPU time.

    CPU-seconds: the larger of the command's own rusage (exact for it and every process it waited
    for) and the sum of the last CPU time sampled of every process of the tree (worker processes of
    a fork server are reaped by the server, not the command; each loses at most one sample interval).
    """
    tic = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment, cwd=cwd, text=True)
    process = psutil.Process(child.pid)
    peak, samples, cpu_seen = 0, [], {}
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(child.stdout), daemon=True)
    reader.start()
    while True:
        # reaped here, not by Popen, for the command's own rusage (RUSAGE_CHILDREN's peak is that of every earlier command)
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            break
        rss = sample_tree(process, cpu_seen)
        peak = max(peak, rss)
        samples.append((round(time.perf_counter() - tic, 2), rss))
        time.sleep(SAMPLE_S)
    wall = time.perf_counter() - tic
    reader.join()
    sampled_user, sampled_system = (sum(times) for times in zip(*cpu_seen.values())) if cpu_seen else (0.0, 0.0)
    cpu, system = max((usage.ru_utime + usage.ru_stime, usage.ru_stime), (sampled_user + sampled_system, sampled_system))
    # the command's own peak (and its waited children's): a floor for the sampled peak when it peaked between samples,
    # unless it is this process's own peak, which a child started with vfork (as Popen does) takes over when it execs
    if usage.ru_maxrss > resource.getrusage(resource.RUSAGE_SELF).ru_maxrss:
        peak = max(peak, usage.ru_maxrss * 1024)
    return Measurement(command, child.returncode, wall, cpu, system, peak, "".join(output)[-3000:], samples)


def simulate(isoview: Isoview, root: Path, planes: int, size: int, timepoints: int) -> float:
    """Write the acquisition with ``isoview simulate`` unless one of this shape is there; returns its seconds."""
    truth = root / "ground_truth.json"
    if truth.is_file():
        config = json.loads(truth.read_text()).get("config", {})
        if list(config.get("shape", [])) == [planes, size, size] and config.get("timepoints") == timepoints:
            return 0.0
    tic = time.perf_counter()
    isoview.run("simulate", str(root), "--timepoints", str(timepoints), "--shape", str(planes), str(size), str(size), "--overwrite")
    return time.perf_counter() - tic


def checkout_commit(checkout: Path) -> str:
    """The commit a checkout is at, with ``+changes`` when its files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True, check=True).stdout.strip()

    return git("rev-parse", "HEAD") + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


WARM_UP_SHAPE = (16, 2048, 2048)
"""Planes and plane size of the warm-up: full-size planes, so that it calls every kernel with the types the measured
runs do (the registration's coarse level, 1024 x 1024 float32, exists only for planes this large: a 64 x 64 warm-up
left its compilation to the first measured ``fuse``, 3-4 CPU-s and 0.9 stacks more than the runs after it)."""


def warm_up(isoview: Isoview, folder: Path) -> float:
    """Correct and fuse a small acquisition of full-size planes once, untimed, so that the measured commands load
    numba's cached kernels (as every run after a user's first; the first compiles them). Returns its seconds."""
    tic = time.perf_counter()
    planes, size, _ = WARM_UP_SHAPE
    simulate(isoview, folder, planes, size, 1)
    for outputs in (Path(f"{folder}.corrected"), Path(f"{folder}.fused")):  # of another shape when the warm-up's changed
        shutil.rmtree(outputs, ignore_errors=True)
    for kind in ("correct", "fuse"):
        isoview.run(kind, str(folder), "--overwrite")
    return time.perf_counter() - tic


def read_into_page_cache(acquisition: Path) -> None:
    """Read every file of the acquisition once, untimed, so that each measured ``correct`` finds its raw stacks in the
    page cache, as the service finds a timepoint the microscope has just written.

    A full-size timepoint is 17 GB: read from disk by the first ``correct`` of a run and from the cache by the next,
    the same code measured 48 s of wall time and 65 CPU-s (18.6 of them system time, its statistics pass 51 s for the
    four stacks) against 25 s and 45 CPU-s (statistics 16 s) a minute later.
    """
    for path in sorted(acquisition.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                while handle.read(1 << 24):
                    pass


def summed_timings(records: list[Path]) -> dict[str, float]:
    """The ``timings_s`` of JSON records summed by key."""
    totals: dict[str, float] = {}
    for path in records:
        for key, value in json.loads(path.read_text()).get("timings_s", {}).items():
            totals[key] = totals.get(key, 0.0) + value
    return {key: round(value, 2) for key, value in totals.items()}


def report(kind: str, measurement: Measurement, raw_bytes: int, stack_bytes: int, timings: dict[str, float], workers: int) -> dict:
    """One command's figures, with the issue's targets judged."""
    mb = raw_bytes / 1e6
    per_cpu = mb / measurement.cpu_s if measurement.cpu_s else float("nan")
    peak_stacks = measurement.peak_rss_bytes / stack_bytes
    budget = MEMORY_BUDGET[kind] * workers
    result = {
        "command": " ".join(["isoview", *measurement.command[1:]]),
        "returncode": measurement.returncode,
        "raw_mb": round(mb, 1),
        "wall_s": round(measurement.wall_s, 2),
        "cpu_s": round(measurement.cpu_s, 2),
        "system_s": round(measurement.system_s, 2),
        "mb_per_cpu_s": round(per_cpu, 1),
        "mb_per_wall_s": round(mb / measurement.wall_s, 1),
        "peak_rss_gib": round(measurement.peak_rss_bytes / 2**30, 3),
        "peak_rss_stacks": round(peak_stacks, 2),
        "workers": workers,
        "memory_budget_stacks": budget,
        "memory_within_budget": peak_stacks <= budget,
        "timings_s": timings,
        "rss_samples": measurement.samples[:: max(1, len(measurement.samples) // 200)],
    }
    if kind in TARGET_MB_PER_CPU_S:
        result["target_mb_per_cpu_s"] = TARGET_MB_PER_CPU_S[kind]
        result["throughput_met"] = per_cpu >= TARGET_MB_PER_CPU_S[kind]
    if measurement.returncode:
        result["output_tail"] = measurement.output_tail
    return result


def workers_used(output: str) -> int:
    """The worker count a command printed at its end (``... (N workers) -> ...``), 1 when it printed none."""
    found = re.findall(r"\((\d+) workers\)", output)
    return int(found[-1]) if found else 1


REPEAT_KEYS = ("wall_s", "cpu_s", "system_s", "mb_per_cpu_s", "peak_rss_stacks", "memory_within_budget")
"""What ``--repeat`` keeps of every run of a command."""


def run_commands(
    codes: list[Isoview], acquisition: Path, commands: dict[str, list[str]], stack_bytes: int, raw_bytes: int, repeat: int = 1
) -> list[dict]:
    """``isoview correct`` then ``isoview fuse`` on `acquisition` with the given extra options (fresh outputs), for each code.

    With `repeat` > 1 the whole sequence runs `repeat` times, each time for every code in turn, so that codes compared
    side by side meet the same state of the machine; the turn alternates (the first code first in the first repetition,
    second in the second, ...), since a code's commands measured faster when they ran first (the same `correct` of two
    checkouts: 348-358 against 321-343 MB per CPU-s, ``end_to_end_earlier.json`` at 0bb7ef9). Per code: the first
    repetition's figures in full and, under ``"repeats"``, the :data:`REPEAT_KEYS` of every run of each command (peak
    memory varies with how the workers' jobs overlap).
    """
    runs: list[list[dict]] = [[] for _ in codes]
    for repetition in range(repeat):
        turn = repetition % len(codes)
        for index in [*range(turn, len(codes)), *range(turn)]:
            runs[index].append(_run_once(codes[index], acquisition, commands, stack_bytes, raw_bytes))
    for code_runs in runs:
        if repeat > 1:
            code_runs[0]["repeats"] = {kind: [{key: run[kind][key] for key in REPEAT_KEYS} for run in code_runs] for kind in commands}
    return [code_runs[0] for code_runs in runs]


def _run_once(isoview: Isoview, acquisition: Path, commands: dict[str, list[str]], stack_bytes: int, raw_bytes: int) -> dict:
    """Each command once, on fresh outputs."""
    corrected, fused = Path(f"{acquisition}.corrected"), Path(f"{acquisition}.fused")
    results = {}
    for kind, extra in commands.items():
        shutil.rmtree(corrected if kind == "correct" else fused, ignore_errors=True)
        if kind == "correct":  # fuse reads what correct has just written, from the cache too
            read_into_page_cache(acquisition)
        measurement = isoview.measured(kind, str(acquisition), *extra)
        if kind == "correct":
            timings = summed_timings([path for path in corrected.rglob("SPM*.json")])
        else:
            timings = {f"{record}_{key}": value for record in ("estimate", "fusion") for key, value in summed_timings(list(fused.rglob(f"*.{record}.json"))).items()}
        results[kind] = report(kind, measurement, raw_bytes, stack_bytes, timings, workers_used(measurement.output_tail))
        print(f"{kind}: {results[kind]['mb_per_cpu_s']} MB/CPU-s, {results[kind]['mb_per_wall_s']} MB/wall-s, "
              f"peak {results[kind]['peak_rss_stacks']}x a stack", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--planes", type=int, default=64)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--timepoints", type=int, default=1)
    parser.add_argument("--data", type=Path, default=None, help="Folder for the acquisition (kept; reused when its shape matches).")
    parser.add_argument("--commands", nargs="*", default=["correct", "fuse"], choices=["correct", "fuse"])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS), help="Which variants to run (default: all).")
    parser.add_argument("--repeat", type=int, default=1, help="Run each variant this many times (figures of every run under 'repeats').")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "end_to_end.json")
    parser.add_argument(
        "--checkout",
        type=Path,
        default=None,
        help="Also run the commands of this checkout of isoview (e.g. a git worktree of an earlier commit), in every repetition "
        "beside this checkout's, each first in turn; its figures go to --checkout-output.",
    )
    parser.add_argument("--checkout-output", type=Path, default=None, help="JSON of the --checkout's figures (default: end_to_end_at_<commit>.json).")
    arguments = parser.parse_args()
    codes = [Isoview()]
    if arguments.checkout is not None:  # its commands run in the checkout's folder: paths given to them must be absolute
        codes.append(Isoview.of_checkout(arguments.checkout.resolve()))
        arguments.data = arguments.data.resolve() if arguments.data is not None else None

    scratch = None
    if arguments.data is None:
        scratch = tempfile.TemporaryDirectory(prefix="isoview-e2e-")
        arguments.data = Path(scratch.name)
    acquisition = arguments.data / "acquisition"
    simulate_s = simulate(codes[0], acquisition, arguments.planes, arguments.size, arguments.timepoints)
    warm_up_s = warm_up(codes[0], arguments.data / "warm-up")
    for isoview in codes[1:]:  # numba caches its kernels beside each checkout's modules
        warm_up(isoview, arguments.data / "warm-up")
    stack_bytes = arguments.planes * arguments.size * arguments.size * 2
    raw_bytes = 4 * arguments.timepoints * stack_bytes
    settings = {
        "planes": arguments.planes,
        "size": arguments.size,
        "timepoints": arguments.timepoints,
        "cameras": 4,
        "stack_bytes": stack_bytes,
        "raw_bytes": raw_bytes,
        "simulate_s": round(simulate_s, 1),
        "warm_up_s": round(warm_up_s, 1),
        "inputs": "in the page cache: the raw files read once before each correct, untimed",
        "repeat": arguments.repeat,
        "free_memory_gib": round(psutil.virtual_memory().available / 2**30, 1),
        "unused_memory_gib": round(psutil.virtual_memory().free / 2**30, 1),
        "speed_probe_s": {"before": speed_probe_s()},
    }
    measured = {
        name: run_commands(
            codes, acquisition, {kind: extra for kind, extra in commands.items() if kind in arguments.commands}, stack_bytes, raw_bytes, arguments.repeat
        )
        for name, commands in VARIANTS.items()
        if name in arguments.variants
    }
    settings["speed_probe_s"]["after"] = speed_probe_s()
    outputs = [arguments.output]
    if arguments.checkout is not None:
        other = checkout_commit(arguments.checkout)
        outputs.append(arguments.checkout_output or arguments.output.with_name(f"{arguments.output.stem}_at_{other[:7]}.json"))
    for index, output in enumerate(outputs):
        side_by_side = {"commands_of": "this checkout" if index == 0 else other}
        if len(outputs) > 1:
            side_by_side["beside"] = str(outputs[1 - index].name)
            side_by_side["order"] = "alternating: these commands ran first in repetitions " + ("1, 3, 5, ..." if index == 0 else "2, 4, 6, ...")
        results = {
            "machine": machine_info(),
            "settings": {**settings, **side_by_side},
            "variants": {name: per_code[index] for name, per_code in measured.items()},
        }
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {output}", file=sys.stderr)
    if scratch is not None:
        scratch.cleanup()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
