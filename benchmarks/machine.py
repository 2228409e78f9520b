"""The machine a benchmark ran on, recorded in every benchmark's JSON (figures quote it), and the allocator setting
of the child processes that benchmarks compare."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else what platform reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


MEASURED_SOURCES = ("isoview_core", "flows", "tasks", "benchmarks", "pyproject.toml")
"""What a benchmark measures: the code whose last commit its results must not predate."""


def source_revision() -> dict:
    """The git commit measured, and the files of :data:`MEASURED_SOURCES` that differ from it (uncommitted)."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout

    changed = [line[3:] for line in git("status", "--porcelain", "--", *MEASURED_SOURCES).splitlines()]
    return {
        "commit": git("rev-parse", "HEAD").strip(),
        "uncommitted_changes": [path for path in changed if not path.startswith("benchmarks/results/")],
    }


def machine_info() -> dict:
    """CPU, cores, memory, platform, the versions that matter for the numbers, and the commit measured."""
    memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    return {
        **source_revision(),
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "memory_gib": round(memory_bytes / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def speed_probe_s() -> float:
    """CPU-seconds this process takes to sort the same 4 million float32 values ten times, one thread.

    The development VM's host varies: the same commands took 20-35 % more user time 20 minutes later in one session.
    A fixed workload timed before and after a benchmark says whether the host was slow at the time.
    """
    values = np.random.default_rng(0).random(4_000_000, dtype=np.float32)
    tic = time.process_time()
    for _ in range(10):
        np.sort(values, kind="quicksort")
    return round(time.process_time() - tic, 3)


MMAP_THRESHOLD_VARIABLE = "MALLOC_MMAP_THRESHOLD_"
"""glibc reads it at start-up: a fixed threshold gives every larger block its own memory mapping (README, "Soak test")."""


def child_environment(mmap_threshold_bytes: int | None) -> dict[str, str]:
    """This process's environment for a child, with glibc's mmap threshold fixed, or adaptive (its default) for None.

    An inherited ``MALLOC_MMAP_THRESHOLD_`` is dropped, so that a side-by-side comparison compares what it says.
    """
    environment = {name: value for name, value in os.environ.items() if name != MMAP_THRESHOLD_VARIABLE}
    if mmap_threshold_bytes is not None:
        environment[MMAP_THRESHOLD_VARIABLE] = str(mmap_threshold_bytes)
    return environment


def process_memory_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process from ``/proc/self/status``, in MiB.

    The peak counts from the start of this process's program: its ``ru_maxrss`` would start at its parent's peak, which
    a child started with vfork (as ``subprocess`` does) takes over when it execs.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")
