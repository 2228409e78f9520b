"""Camera-pair fusion: parameter estimation time, fusion throughput and peak memory.

Simulates one timepoint of a four-camera acquisition at a realistic size (default
64 x 2048 x 2048 per camera), corrects it, then, in a fresh single-threaded child process,
estimates the parameters of the pair (0, 1) and fuses it (twice: the first time in the process
and the steady state), reporting:

* parameter estimation: seconds per pair (reading both corrected stacks included);
* fusion: MB of corrected input (both cameras) per second on one core;
* peak memory: growth of the child's peak RSS, as a multiple of one camera stack;
* the estimated parameters next to the simulator's ground truth.

Run: ``python benchmarks/bench_fusion.py [--planes 64] [--size 2048] [--output benchmarks/results/fusion.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from machine import machine_info, process_memory_mb  # noqa: E402


def run_child(acquisition: Path) -> dict:
    """Estimate and fuse pair (0, 1) of timepoint 0, in this (fresh) process, and measure it."""
    from isoview_core.config import ProcessingConfig
    from isoview_core.layout import PairId
    from isoview_core.pipeline.pair import estimate_pair_parameters, fuse_pair

    config = ProcessingConfig(acquisition=acquisition, save_diagnostics=False)
    pair = PairId(0, 0, (0, 1), 0, 0)
    corrected, fused = config.resolved_corrected_dir(), config.resolved_fused_dir()
    baseline_mb = process_memory_mb("VmRSS")
    runs = []
    for repetition in range(2):
        tic = time.perf_counter()
        cpu = time.process_time()
        estimate = estimate_pair_parameters(corrected, pair, config.fusion, output_root=fused, save_diagnostics=False)
        estimate_s, estimate_cpu = time.perf_counter() - tic, time.process_time() - cpu
        tic, cpu = time.perf_counter(), time.process_time()
        fuse_pair(
            corrected, pair, config.fusion, output_root=fused, estimated=estimate.parameters, applied=estimate.parameters,
            window=(0, 0), overwrite=True, save_diagnostics=False,
        )
        runs.append({
            "estimate_s": max(estimate_s, estimate_cpu), "estimate_timings_s": estimate.timings_s,
            "fuse_s": max(time.perf_counter() - tic, time.process_time() - cpu),
        })
    return {
        "cold": runs[0],
        "steady": runs[1],
        "baseline_rss_mb": baseline_mb,
        "peak_rss_mb": process_memory_mb("VmHWM"),
        "estimated": estimate.parameters.model_dump(),
        "registration_method": estimate.registration.method,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planes", type=int, default=64)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "fusion.json")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child)))
        return

    from isoview_core.config import ProcessingConfig
    from isoview_core.pipeline.correction import process_dataset
    from isoview_core.synthetic import SimulationConfig, simulate_acquisition

    shape = (args.planes, args.size, args.size)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        acquisition = Path(tmp) / "acquisition"
        tic = time.perf_counter()
        truth = simulate_acquisition(acquisition, SimulationConfig(shape=shape, timepoints=1))
        print(f"simulated {shape} x 4 cameras in {time.perf_counter() - tic:.0f} s", file=sys.stderr)
        process_dataset(ProcessingConfig(acquisition=acquisition))
        child = subprocess.run([sys.executable, __file__, "--child", str(acquisition)], check=True, capture_output=True, text=True)
        measured = json.loads(child.stdout.strip().splitlines()[-1])
    stack_mb = shape[0] * shape[1] * shape[2] * 2 / 1e6
    pair_truth = truth.pairs[0]
    report = {
        "shape": shape,
        "stack_mb": stack_mb,
        **measured,
        "fusion_mb_s_per_core": {run: 2 * stack_mb / measured[run]["fuse_s"] for run in ("cold", "steady")},
        "peak_memory_x_stack": (measured["peak_rss_mb"] - measured["baseline_rss_mb"]) * 1.048576 / stack_mb,
        "truth": {"offset_x_px": pair_truth.offset_x_px, "offset_y_px": pair_truth.offset_y_px, "intensity_ratio": pair_truth.intensity_ratio},
    }
    report["machine"] = machine_info()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    steady, cold = measured["steady"], measured["cold"]
    print(f"\nFusion of camera pair (0, 1), {shape[0]} x {shape[1]} x {shape[2]} uint16 per camera, one core, {report['machine']['cpu_model']}")
    print(f"{'':28s} {'steady':>10s} {'(cold)':>10s}  target")
    print(f"{'parameter estimation, s':28s} {steady['estimate_s']:10.2f} {cold['estimate_s']:10.2f}  < 10 s per pair")
    print(f"{'fusion, MB/s per core':28s} {report['fusion_mb_s_per_core']['steady']:10.0f} {report['fusion_mb_s_per_core']['cold']:10.0f}  >= 150")
    print(f"{'peak memory, x one stack':28s} {report['peak_memory_x_stack']:10.2f} {'':10s}  <= 2")
    estimated = measured["estimated"]
    print(
        "estimated offsets x %.3f y %.3f px, ratio %.4f (truth x %.3f y %.3f, ratio %.4f), method %s"
        % (estimated["offset_x_px"], estimated["offset_y_px"], estimated["intensity_ratio"], pair_truth.offset_x_px, pair_truth.offset_y_px, pair_truth.intensity_ratio, measured["registration_method"])
    )
    print(f"results in {args.output}")


if __name__ == "__main__":
    main()
