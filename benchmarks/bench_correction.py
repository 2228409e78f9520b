"""Correction + compression throughput and peak memory on a realistic camera stack.

Renders synthetic IsoView camera stacks (2048 x 2048 uint16, 64 and 256 planes, sCMOS noise, defects)
to a raw ``.stack`` file with its dark frame, then corrects it into OME-Zarr in fresh, single-threaded
child processes (one per variant, all in this run) and reports:

* throughput: MB of raw input per second on one core (raw MB / max(wall, CPU seconds)), for the
  first correction in a fresh process (cold) and the next one (steady state of a worker);
* peak memory: growth of the child's peak RSS during the correction, as a multiple of the stack size;
* the reduced-resolution segmentation's agreement (Dice) with the full-resolution original;
* read-back: MB of corrected planes per second read back in shard-deep slabs with
  ``read_ome_zarr_planes`` (what fusion does).

Every variant fsyncs its output before publishing it (the default, ``OutputConfig.fsync``) except
"default without fsync", which measures what durability costs on the disk of the temporary folder
(``BENCH_TMP``, recorded in the JSON).

"default through zarr's sharding codec" writes and reads the same bytes through zarr's own sharded path
instead of :mod:`isoview_core.formats.shards` (the hand-written whole-shard writer and reader are switched off
in its child): the comparison that keeps ``formats/shards.py`` in production (see its docstring).

Run: ``python benchmarks/bench_correction.py [--planes 64 256] [--size 2048] [--variants NAME ...]
[--output benchmarks/results/correction.json]``
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

import numpy as np  # noqa: E402
from machine import child_environment, machine_info, process_memory_mb  # noqa: E402

VARIANTS = {
    "default (blosc-zstd:1:shuffle)": {"codec": "blosc-zstd:1:shuffle", "pyramid": 0, "downsample": 4},
    "with 2 pyramid levels": {"codec": "blosc-zstd:1:shuffle", "pyramid": 2, "downsample": 4},
    "blosc-zstd:3:bitshuffle": {"codec": "blosc-zstd:3:bitshuffle", "pyramid": 0, "downsample": 4},
    "segmentation at 1/2 resolution": {"codec": "blosc-zstd:1:shuffle", "pyramid": 0, "downsample": 2},
    "default, fixed 128 KiB mmap threshold": {
        "codec": "blosc-zstd:1:shuffle", "pyramid": 0, "downsample": 4, "mmap_threshold_bytes": 128 * 1024,
    },
    # zarr's own sharded write and read path (zarr 3.1's BatchedCodecPipeline), the hand-written shard files off
    "default through zarr's sharding codec": {
        "codec": "blosc-zstd:1:shuffle", "pyramid": 0, "downsample": 4, "shard_path": "zarr",
    },
    # last: the data it leaves unwritten in the page cache must not slow the variants that fsync
    "default without fsync": {"codec": "blosc-zstd:1:shuffle", "pyramid": 0, "downsample": 4, "fsync": False},
}
"""Each variant's child runs with glibc's adaptive mmap threshold unless it names ``mmap_threshold_bytes``, and fsyncs
its outputs unless it says ``"fsync": False``: "default, fixed 128 KiB mmap threshold" measures what the soak's memory
setting costs (README), "default without fsync" what durable publishing costs. ``"shard_path": "zarr"`` writes and
reads through zarr's sharding codec rather than :mod:`isoview_core.formats.shards`."""


def run_child(stack: Path, frame: Path, output: Path, shape: tuple[int, int, int], variant: dict) -> dict:
    """Correct ``stack`` once, in this (fresh) process, and measure it."""
    import tifffile

    from isoview_core.correction.config import CorrectionConfig
    from isoview_core.correction.stack_correction import correct_stack
    from isoview_core.formats import StackFile
    from isoview_core.formats.atomic import set_fsync
    from isoview_core.formats.codecs import CodecConfig
    from isoview_core.formats.omezarr import OmeZarrWriter, read_ome_zarr_planes
    from isoview_core.formats.shards import PlaneShardReader, PlaneShardWriter

    set_fsync(variant.get("fsync", True))
    if variant.get("shard_path") == "zarr":
        # No array qualifies for the direct shard files: the writer and the reader fall back to zarr.
        PlaneShardWriter.for_array = classmethod(lambda cls, *args, **kwargs: None)
        PlaneShardReader.for_array = classmethod(lambda cls, *args, **kwargs: None)
    background = tifffile.imread(frame)
    source = StackFile(stack, shape[2], shape[1], expected_depth=shape[0])
    config = CorrectionConfig(segmentation_downsample=variant["downsample"])
    baseline_mb = process_memory_mb("VmRSS")
    runs = []
    for repetition in range(2):  # a fresh process first (cold), then the steady state of a long-running worker
        target = output.with_name(f"{output.name}.{repetition}")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        with OmeZarrWriter(
            target, shape, voxel_size_um=(2.0, 0.40625, 0.40625), codec=CodecConfig.parse(variant["codec"]),
            pyramid_levels=variant["pyramid"], label_name="segmentation",
        ) as writer:
            result = correct_stack(source, config=config, scaling=4.923, background_frame=background, sink=writer)
            closing = time.perf_counter()
        end = time.perf_counter()
        # publish: closing the writer and publishing its output (the fsyncs, when on)
        runs.append({"wall_s": end - wall0, "cpu_s": time.process_time() - cpu0, "timings_s": {**result.timings_s, "publish": end - closing}})
    peak_mb = process_memory_mb("VmHWM")
    stored = sum(path.stat().st_size for path in target.rglob("*") if path.is_file())
    planes = np.empty((writer.slab_depth, *shape[1:]), dtype=np.uint16)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for z in range(0, shape[0], writer.slab_depth):
        count = min(writer.slab_depth, shape[0] - z)
        read_ome_zarr_planes(target, z, z + count, out=planes[:count])
    read = {"wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0}
    return {
        "cold": runs[0],
        "steady": runs[1],
        "read": read,
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


def measure_depth(planes: int, size: int, variants: dict[str, dict], tmp_path: Path, *, agreement: bool) -> dict:
    """Render one stack of ``planes`` x ``size`` x ``size`` and correct it with every variant in child processes."""
    import tifffile

    from isoview_core.formats.stack import write_stack
    from isoview_core.synthetic import SimulationConfig
    from isoview_core.synthetic.camera import dark_frame, render_camera_stack

    shape = (planes, size, size)
    config = SimulationConfig(shape=shape, timepoints=1)
    tic = time.perf_counter()
    raw = render_camera_stack(config, 0, 0)
    print(f"rendered {shape} in {time.perf_counter() - tic:.1f} s", file=sys.stderr)
    stack, frame = tmp_path / f"raw_{planes}.stack", tmp_path / f"Background_{planes}.tif"
    write_stack(stack, raw)
    tifffile.imwrite(frame, dark_frame(config, 0))
    stack_mb = raw.nbytes / 1e6
    del raw
    rows = {}
    for name, variant in variants.items():
        output = tmp_path / f"{planes}_{len(rows)}.ome.zarr"
        child = subprocess.run(
            [sys.executable, __file__, "--planes", str(planes), "--size", str(size), "--child", str(stack), str(frame), str(output), json.dumps(variant)],
            check=True, capture_output=True, text=True, env=child_environment(variant.get("mmap_threshold_bytes")),
        )
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        for run in ("cold", "steady", "read"):
            measured[run]["throughput_mb_s_per_core"] = stack_mb / max(measured[run]["wall_s"], measured[run]["cpu_s"])
        measured["peak_memory_x_stack"] = (measured["peak_rss_mb"] - measured["baseline_rss_mb"]) * 1.048576 / stack_mb
        measured["compression_ratio"] = stack_mb * 1e6 / measured["stored_bytes"]
        rows[name] = {"fsync": True, **variant, **measured}
    result = {"shape": shape, "stack_mb": stack_mb, "variants": rows}
    if agreement:
        result["segmentation_agreement"] = segmentation_agreement(stack, frame, shape)
    stack.unlink()
    return result


def disk_of(path: Path) -> dict:
    """Device, file system and mount options of the folder the outputs are written to (Linux), else empty."""
    mounts = Path("/proc/mounts")
    if not mounts.is_file():
        return {}
    resolved = str(path.resolve())
    entries = [line.split()[:4] for line in mounts.read_text().splitlines()]
    inside = [entry for entry in entries if resolved == entry[1] or resolved.startswith(entry[1].rstrip("/") + "/")]
    device, mount_point, file_system, options = max(inside, key=lambda entry: len(entry[1]))
    return {"device": device, "mount_point": mount_point, "file_system": file_system, "options": options}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planes", type=int, nargs="+", default=[64, 256], help="Stack depths to measure (the first runs every variant).")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS), metavar="NAME", help="Variants to run at the first depth (default: all)."
    )
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "correction.json")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        stack, frame, output, variant = args.child
        shape = (args.planes[0], args.size, args.size)
        print(json.dumps(run_child(Path(stack), Path(frame), Path(output), shape, json.loads(variant))))
        return

    default_name = next(iter(VARIANTS))
    selected = {name: VARIANTS[name] for name in args.variants}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        disk = disk_of(Path(tmp))
        depths = [
            measure_depth(planes, args.size, selected if index == 0 else {default_name: VARIANTS[default_name]}, Path(tmp), agreement=index == 0)
            for index, planes in enumerate(args.planes)
        ]
    report = {"machine": machine_info(), "output_disk": disk, "depths": depths}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"\nCorrection + OME-Zarr write of one 2048 x 2048 uint16 camera stack, one core, {report['machine']['cpu_model']}")
    print(f"outputs on {disk.get('device', '?')} ({disk.get('file_system', '?')}, mounted on {disk.get('mount_point', '?')})")
    print(f"{'planes':>6s} {'variant':38s} {'MB/s/core':>9s} {'(cold)':>7s} {'cpu s':>6s} {'wall s':>7s} {'publish s':>9s} {'peak xstack':>12s} {'ratio':>6s} {'read MB/s':>9s}")
    for depth in depths:
        for name, row in depth["variants"].items():
            steady, cold = row["steady"], row["cold"]
            print(
                f"{depth['shape'][0]:6d} {name:38s} {steady['throughput_mb_s_per_core']:9.0f} {cold['throughput_mb_s_per_core']:7.0f} "
                f"{steady['cpu_s']:6.2f} {steady['wall_s']:7.2f} {steady['timings_s']['publish']:9.3f} {row['peak_memory_x_stack']:12.2f} {row['compression_ratio']:6.2f} "
                f"{row['read']['throughput_mb_s_per_core']:9.0f}"
            )
    agreement = depths[0]["segmentation_agreement"]
    print("segmentation Dice vs full resolution: " + ", ".join(f"{k}={v:.4f}" for k, v in agreement.items()))
    print("MB/s/core = raw MB / max(wall, CPU) seconds, steady state (second stack in the process); (cold) = first stack;")
    print("publish s = closing the writer and publishing its output (with its fsyncs), steady state.")
    print("read MB/s = the corrected planes read back in shard-deep slabs (read_ome_zarr_planes), MB / max(wall, CPU) s.")
    print(f"targets: >= 200 MB/s per core, peak memory <= 1.5x stack; results in {args.output}")


if __name__ == "__main__":
    main()
