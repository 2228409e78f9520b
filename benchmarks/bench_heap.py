"""Memory of a process running the flows timepoint after timepoint, with glibc's adaptive and a fixed mmap threshold.

The watcher runs every flow inside its own process, for days. This isolates that part, without the watcher or the
simulator: one acquisition is written first, then two child processes, side by side in this run, each with its
own Prefect home and output folders, correct timepoint t and fuse timepoint t - w, as the watcher does once the
window is filled. One child has glibc's default, adaptive threshold; the other ``MALLOC_MMAP_THRESHOLD_=131072``
(the README soak's setting). After every timepoint each records its resident memory (RSS), the part of it in
the main heap (``[heap]`` in ``/proc/self/smaps``), the bytes malloc has handed out and holds free (``mallinfo2``)
and the interpreter's count of Python memory blocks. Reported: the growth per 100 timepoints, a linear fit over
the second half.

Run: ``python benchmarks/bench_heap.py [--timepoints 60] [--shape 16 96 80] [--output benchmarks/results/heap.json]``
(also writes ``heap.png``).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import child_environment, machine_info

WINDOW = 2
MODES = {"adaptive (glibc default)": None, "fixed at 128 KiB": 128 * 1024}
"""glibc's mmap threshold of each child, in bytes (None: glibc's adaptive default)."""
MB = 1e6


def heap_kib() -> int:
    """Resident KiB of the main heap (``[heap]``), 0 where there is none."""
    in_heap = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if not fields[0].endswith(":"):  # a mapping's first line: address range, ..., name
            in_heap = fields[-1] == "[heap]"
        elif in_heap and fields[0] == "Rss:":
            return int(fields[1])
    return 0


class MallocInfo(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (glibc 2.33 and later): byte counts over all of malloc's arenas."""

    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def malloc_bytes() -> dict[str, int]:
    """Bytes malloc has handed out and not had back (``malloc_in_use``) and holds free in its arenas (``malloc_free``).

    Python's small objects live in pymalloc's own mmapped arenas and are not counted; its large objects, NumPy's
    buffers and C libraries' allocations are. Growth of ``free`` with flat ``in_use`` is fragmentation, not a leak.
    """
    mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    mallinfo2.restype = MallocInfo
    info = mallinfo2()
    return {"malloc_in_use": info.uordblks + info.hblkhd, "malloc_free": info.fordblks}


def run_child(acquisition: Path, output: Path, timepoints: int) -> None:
    """Correct and fuse every timepoint in this process, printing one JSON line of memory figures after each."""
    import psutil
    from bench_watcher import start_prefect, use_private_prefect

    (output / "prefect").mkdir(parents=True)  # Prefect creates its home but not the folders above it
    use_private_prefect(output / "prefect")
    from flows.service_config import ServiceConfig
    from flows.submission import InProcessSubmitter
    from isoview_core.config import ProcessingConfig
    from isoview_core.temporal.config import TemporalConfig

    processing = ProcessingConfig(
        acquisition=acquisition, corrected_dir=output / "corrected", fused_dir=output / "fused",
        temporal=TemporalConfig(window=WINDOW), save_diagnostics=False,
    )
    start_prefect()
    submitter = InProcessSubmitter(ServiceConfig(processing=processing))
    process = psutil.Process()
    for t in range(timepoints):
        submitter.correct(0, t)
        if t >= 2 * WINDOW:  # the first filled window fuses its first w + 1 timepoints at once
            submitter.fuse(0, list(range(WINDOW + 1)) if t == 2 * WINDOW else [t - WINDOW], acquisition_finished=False)
        row = {"timepoint": t, "rss": process.memory_info().rss, "heap_kib": heap_kib(), "python_blocks": sys.getallocatedblocks(), **malloc_bytes()}
        print(json.dumps(row), flush=True)


def growth(rows: list[dict], key: str, scale: float) -> float:
    """Slope of `key` against the timepoint over the second half, per 100 timepoints, in units of `scale`."""
    half = rows[len(rows) // 2 :]
    slope = np.polyfit([row["timepoint"] for row in half], [row[key] for row in half], 1)[0]
    return float(slope * 100 / scale)


def plot(report: dict, path: Path) -> None:
    """RSS (left) and malloc's bytes in use and free (right) against the timepoint, one colour per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (rss_axes, malloc_axes) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained", sharex=True)
    for (mode, result), colour in zip(report["modes"].items(), ("tab:blue", "tab:orange")):
        timepoints = [row["timepoint"] for row in result["rows"]]
        rss_axes.plot(timepoints, [row["rss"] / MB for row in result["rows"]], color=colour, label=f"{mode}: {result['rss_mb_per_100_timepoints']:+.1f} MB / 100 tp")
        malloc_axes.plot(timepoints, [row["malloc_in_use"] / MB for row in result["rows"]], color=colour, label=f"{mode}, in use: {result['malloc_in_use_mb_per_100_timepoints']:+.1f} MB / 100 tp")
        malloc_axes.plot(timepoints, [row["malloc_free"] / MB for row in result["rows"]], color=colour, linestyle="--", label=f"{mode}, free: {result['malloc_free_mb_per_100_timepoints']:+.1f} MB / 100 tp")
    for axes, label in ((rss_axes, "RSS, MB"), (malloc_axes, "malloc (mallinfo2), MB")):
        axes.axvspan(report["timepoints"] // 2, report["timepoints"] - 1, color="0.92", zorder=0)
        axes.set_xlabel("timepoint (shaded: fitted half)")
        axes.set_ylabel(label)
        axes.legend(fontsize=8)
    shape = " x ".join(str(n) for n in report["shape"])
    figure.suptitle(f"flows of {report['timepoints']} timepoints of 4 x {shape} in one process: glibc's mmap threshold", fontsize=10)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timepoints", type=int, default=60)
    parser.add_argument("--shape", type=int, nargs=3, default=[16, 96, 80], metavar=("Z", "Y", "X"))
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "heap.json")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(*args.child, args.timepoints)
        return

    from isoview_core.synthetic import SimulationConfig, simulate_acquisition

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP"), ignore_cleanup_errors=True) as tmp:
        acquisition = Path(tmp) / "acquisition"
        simulate_acquisition(acquisition, SimulationConfig(shape=tuple(args.shape), timepoints=args.timepoints, seed=0, drift_px_per_timepoint=(0.0, 0.05, 0.05)))
        tic = time.perf_counter()
        children = {
            mode: subprocess.Popen(
                [sys.executable, __file__, "--timepoints", str(args.timepoints), "--child", str(acquisition), str(Path(tmp) / f"mode{index}")],
                stdout=subprocess.PIPE, text=True, env=child_environment(threshold),
            )
            for index, (mode, threshold) in enumerate(MODES.items())
        }
        outputs = {mode: child.communicate()[0] for mode, child in children.items()}
        if any(child.returncode for child in children.values()):
            sys.exit(f"a child failed: {({mode: child.returncode for mode, child in children.items()})}")
    modes = {}
    for mode, output in outputs.items():
        rows = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        modes[mode] = {
            "rss_mb_per_100_timepoints": growth(rows, "rss", MB),
            "heap_mb_per_100_timepoints": growth(rows, "heap_kib", 1e3),
            "python_blocks_per_100_timepoints": growth(rows, "python_blocks", 1.0),
            "malloc_in_use_mb_per_100_timepoints": growth(rows, "malloc_in_use", MB),
            "malloc_free_mb_per_100_timepoints": growth(rows, "malloc_free", MB),
            "rss_mb_last": rows[-1]["rss"] / MB,
            "rows": rows,
        }
    report = {"machine": machine_info(), "timepoints": args.timepoints, "shape": args.shape, "window": WINDOW, "wall_s": time.perf_counter() - tic, "modes": modes}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    plot(report, args.output.with_suffix(".png"))
    print(f"\nFlows of {args.timepoints} timepoints in one process, side by side; growth per 100 timepoints, fitted over the second half")
    print("\n| glibc mmap threshold | RSS, MB | main heap, MB | malloc in use, MB | malloc free, MB | Python memory blocks | RSS at the end, MB |\n|---|---:|---:|---:|---:|---:|---:|")
    for mode, result in modes.items():
        print(
            f"| {mode} | {result['rss_mb_per_100_timepoints']:+.2f} | {result['heap_mb_per_100_timepoints']:+.2f} "
            f"| {result['malloc_in_use_mb_per_100_timepoints']:+.2f} | {result['malloc_free_mb_per_100_timepoints']:+.2f} "
            f"| {result['python_blocks_per_100_timepoints']:+.0f} | {result['rss_mb_last']:.1f} |"
        )
    print(f"results in {args.output} and {args.output.with_suffix('.png')}")


if __name__ == "__main__":
    main()
