"""Correction + compression throughput and peak memory on a realistic camera stack.

Renders one synthetic IsoView camera stack (default 64 x 2048 x 2048 uint16, sCMOS noise, defects)
to a raw ``.stack`` file with its dark frame, then corrects it into OME-Zarr in fresh, single-threaded
child processes (one per variant, all in this run) and reports:

* throughput: MB of raw input per second of wall time on one core (CPU time is reported too), for
  the first correction in a fresh process (cold) and the next one (steady state of a worker);
* peak memory: growth of the child's peak RSS during the correction, as a multiple of the stack size;
* the reduced-resolution segmentation's agreement (Dice) with the full-resolution original.

Run: ``python benchmarks/bench_correction.py [--planes 64 --size 2048] [--output benchmarks/results/correction.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

VARIANTS = {
    "default (blosc-zstd:1:shuffle)": {"codec": "blosc-zstd:1:shuffle", "pyramid": 0, "downsample": 4},
    "with 2 pyramid levels": {"codec": "blosc-zstd:1:shuffle", "pyramid": 2, "downsample": 4},
    "blosc-zstd:3:bitshuffle": {"codec": "blosc-zstd:3:bitshuffle", "pyramid": 0, "downsample": 4},
    "segmentation at 1/2 resolution": {"codec": "blosc-zstd:1:shuffle", "pyramid": 0, "downsample": 2},
}


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_child(stack: Path, frame: Path, output: Path, shape: tuple[int, int, int], variant: dict) -> dict:
    """Correct ``stack`` once, in this (fresh) process, and measure it."""
    import tifffile

    from isoview_core.correction.config import CorrectionConfig
    from isoview_core.correction.stack_correction import correct_stack
    from isoview_core.formats import StackFile
    from isoview_core.formats.codecs import CodecConfig
    from isoview_core.formats.omezarr import OmeZarrWriter

    background = tifffile.imread(frame)
    source = StackFile(stack, shape[2], shape[1], expected_depth=shape[0])
    config = CorrectionConfig(segmentation_downsample=variant["downsample"])
    baseline_mb = _rss_mb()
    runs = []
    for repetition in range(2):  # a fresh process first (cold), then the steady state of a long-running worker
        target = output.with_name(f"{output.name}.{repetition}")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        with OmeZarrWriter(
            target, shape, voxel_size_um=(2.0, 0.40625, 0.40625), codec=CodecConfig.parse(variant["codec"]),
            pyramid_levels=variant["pyramid"], label_name="segmentation",
        ) as writer:
            result = correct_stack(source, config=config, scaling=4.923, background_frame=background, sink=writer)
        runs.append({"wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0, "timings_s": result.timings_s})
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stored = sum(path.stat().st_size for path in target.rglob("*") if path.is_file())
    return {
        "cold": runs[0],
        "steady": runs[1],
        "baseline_rss_mb": baseline_mb,
        "peak_rss_mb": peak_mb,
        "stored_bytes": stored,
        "defective_pixels": result.defects.count,
        "foreground_fraction": result.foreground_fraction,
    }


def segmentation_agreement(stack: Path, frame: Path, shape: tuple[int, int, int]) -> dict:
    """Dice of the reduced-resolution masks against the full-resolution original on the same stack."""
    import tifffile

    from isoview_core.correction.config import CorrectionConfig
    from isoview_core.correction.stack_correction import correct_stack
    from isoview_core.formats import StackFile

    class MaskSink:
        def __init__(self) -> None:
            self.mask = np.zeros(shape, dtype=bool)

        def write(self, first_plane, slab, labels=None):
            self.mask[first_plane : first_plane + slab.shape[0]] = labels.astype(bool)

    background = tifffile.imread(frame)
    masks = {}
    for factor in (1, 2, 4):
        sink = MaskSink()
        source = StackFile(stack, shape[2], shape[1], expected_depth=shape[0])
        correct_stack(source, config=CorrectionConfig(segmentation_downsample=factor), scaling=4.923, background_frame=background, sink=sink)
        masks[factor] = sink.mask
    full = masks[1]
    return {
        f"dice_downsample_{factor}": float(2 * np.count_nonzero(masks[factor] & full) / (np.count_nonzero(masks[factor]) + np.count_nonzero(full)))
        for factor in (2, 4)
    }


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planes", type=int, default=64)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "correction.json")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = (args.planes, args.size, args.size)
    if args.child:
        stack, frame, output, variant = args.child
        print(json.dumps(run_child(Path(stack), Path(frame), Path(output), shape, json.loads(variant))))
        return

    import tifffile

    from isoview_core.formats.stack import write_stack
    from isoview_core.synthetic import SimulationConfig
    from isoview_core.synthetic.camera import dark_frame, render_camera_stack

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        tmp_path = Path(tmp)
        config = SimulationConfig(shape=shape, timepoints=1)
        tic = time.perf_counter()
        raw = render_camera_stack(config, 0, 0)
        print(f"rendered {shape} in {time.perf_counter() - tic:.1f} s", file=sys.stderr)
        stack, frame = tmp_path / "raw.stack", tmp_path / "Background_0.tif"
        write_stack(stack, raw)
        tifffile.imwrite(frame, dark_frame(config, 0))
        stack_mb = raw.nbytes / 1e6
        del raw
        rows = {}
        for name, variant in VARIANTS.items():
            output = tmp_path / f"{len(rows)}.ome.zarr"
            child = subprocess.run(
                [sys.executable, __file__, "--planes", str(args.planes), "--size", str(args.size), "--child", str(stack), str(frame), str(output), json.dumps(variant)],
                check=True, capture_output=True, text=True,
            )
            measured = json.loads(child.stdout.strip().splitlines()[-1])
            for run in ("cold", "steady"):
                measured[run]["throughput_mb_s_per_core"] = stack_mb / measured[run]["wall_s"]
            measured["peak_memory_x_stack"] = (measured["peak_rss_mb"] - measured["baseline_rss_mb"]) * 1.048576 / stack_mb
            measured["compression_ratio"] = stack_mb * 1e6 / measured["stored_bytes"]
            rows[name] = {**variant, **measured}
        agreement = segmentation_agreement(stack, frame, shape)

    report = {"machine": machine(), "shape": shape, "stack_mb": stack_mb, "variants": rows, "segmentation_agreement": agreement}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"\nCorrection + OME-Zarr write of one {shape[0]}x{shape[1]}x{shape[2]} uint16 stack ({stack_mb:.0f} MB), one core, {report['machine']['cpu']}")
    print(f"{'variant':38s} {'MB/s/core steady':>17s} {'(cold)':>7s} {'cpu s':>6s} {'wall s':>7s} {'peak xstack':>12s} {'ratio':>6s}")
    for name, row in rows.items():
        steady, cold = row["steady"], row["cold"]
        print(
            f"{name:38s} {steady['throughput_mb_s_per_core']:17.0f} {cold['throughput_mb_s_per_core']:7.0f} "
            f"{steady['cpu_s']:6.2f} {steady['wall_s']:7.2f} {row['peak_memory_x_stack']:12.2f} {row['compression_ratio']:6.2f}"
        )
    print("segmentation Dice vs full resolution: " + ", ".join(f"{k}={v:.4f}" for k, v in agreement.items()))
    print(f"targets: >= 200 MB/s per core, peak memory <= 1.5x stack; results in {args.output}")


if __name__ == "__main__":
    main()
