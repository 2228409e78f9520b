"""What a process pays to touch memory for the first time on this machine: the system time of filling 512 MiB.

Each of ``--processes`` fresh Python processes fills a new 512 MiB array three times (freed in between) and reports
the system CPU-seconds of each fill. On a workstation every fill costs the kernel's page zeroing (~0.06 s); a VM whose
host takes freed memory back (free-page reporting) charges the first fill of each process far more, and that cost is
part of every command's CPU time in ``bench_end_to_end.py`` (``docs/performance.md``).

Run: ``python benchmarks/bench_first_touch.py [--processes 5] [--output benchmarks/results/first_touch.json]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from machine import machine_info

FILL_BYTES = 512 * 2**20
FILLS = 3
CHILD = f"""
import json, resource, numpy as np
seconds = []
for _ in range({FILLS}):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    block = np.ones({FILL_BYTES} // 4, np.float32)
    seconds.append(resource.getrusage(resource.RUSAGE_SELF).ru_stime - before)
    del block
print(json.dumps(seconds))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "first_touch.json")
    arguments = parser.parse_args()
    runs = [json.loads(subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout) for _ in range(arguments.processes)]
    first, later = [run[0] for run in runs], [value for run in runs for value in run[1:]]
    results = {
        "machine": machine_info(),
        "settings": {"fill_bytes": FILL_BYTES, "fills_per_process": FILLS, "processes": arguments.processes},
        "system_seconds_per_fill": runs,
        "first_fill_s": {"min": round(min(first), 3), "max": round(max(first), 3)},
        "later_fills_s": {"min": round(min(later), 3), "max": round(max(later), 3)},
    }
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"first fill of 512 MiB: {results['first_fill_s']} s of system time; later fills: {results['later_fills_s']} s", file=sys.stderr)


if __name__ == "__main__":
    main()
