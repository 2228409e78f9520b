"""Lossless codec comparison on realistic IsoView camera data, against the KLB (bzip2) baseline.

What it measures
----------------
One simulated camera stack (``isoview_core.synthetic``, camera 0, timepoint 0, default shape
(64, 2048, 2048)) is benchmarked as two inputs, each in its own table:

* ``raw``: the uint16 camera stack (sCMOS offset, photon and read noise, defective pixels);
* ``corrected``: the same stack after ``correct_stack`` (dark-frame subtraction, dead-pixel
  correction, segmentation mask applied), i.e. what the pipeline writes;
* ``labels``: that correction's uint8 segmentation mask (the OME-Zarr's label image), with the
  lz4 codecs the label image could use only (byte, bit and no shuffle, the pipeline's 1 MiB blocks).

Every chunk codec encodes each (Y, X) plane independently (the pipeline's one-plane chunks),
single-threaded: blosc (zstd / lz4 / lz4hc with byte or bit shuffle; automatic and 1 MiB blocks), delta + zstd, pcodec,
JPEG-LS and lossless JPEG-XL. KLB (bzip2, one thread) writes and reads the whole stack as a
file in a temporary directory; its size is the file size and its times include the file I/O.

For each codec: compression ratio (raw bytes / compressed bytes), write (encode) and read
(decode) throughput in MB/s (10^6 bytes of raw uint16 per second, one core, best of
``--repeats`` passes over all planes timed with ``time.perf_counter``), and a bit-exact check
of the decoded planes. ``--jpegxl-planes N`` measures the slowest codec, JPEG-XL effort 3, on N
evenly spaced planes only and extrapolates (marked in the table and the JSON); by default it
runs on all planes, since a sample misjudges the ratio of stacks whose content varies with z.

Each codec is then compared with KLB and checked against the project's targets:

* fast default: ratio within 10 % of KLB's while writing >= 10x faster;
* archival: ratio >= KLB's while writing >= 5x and reading >= 2x faster.

Run from the repository root::

    python benchmarks/bench_codecs.py --quick             # smoke run, (16, 512, 512)
    python benchmarks/bench_codecs.py                     # (64, 2048, 2048), ~7 min (2-core VM)
    python benchmarks/bench_codecs.py --planes 32 --size 1024 --output /tmp/codecs.json

Results are printed as tables and written to ``benchmarks/results/codecs.json`` (machine,
data shape, per-codec numbers, comparison with KLB, codecs meeting each target).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import imagecodecs
import numcodecs
import numcodecs.blosc
import numpy as np
import psutil
import pyklb
from machine import machine_info as base_machine_info
from numcodecs import Blosc, Delta, PCodec, Zstd
from rich.console import Console
from rich.table import Table

from isoview_core.correction.stack_correction import ArraySource, correct_stack
from isoview_core.synthetic import SimulationConfig, dark_frame, render_camera_stack

DEFAULT_OUTPUT = Path(__file__).parent / "results" / "codecs.json"
QUICK_SHAPE = (16, 512, 512)
CAMERA = 0
TIMEPOINT = 0
SCALING = 4.92
"""Axial step / lateral pixel size passed to the correction (2 µm / 0.406 µm)."""

FAST_MAX_RATIO_LOSS = 0.10
FAST_MIN_WRITE_SPEEDUP = 10.0
ARCHIVAL_MIN_WRITE_SPEEDUP = 5.0
ARCHIVAL_MIN_READ_SPEEDUP = 2.0
TABLE_WIDTH = 140
"""Console width, so the tables stay unwrapped when the output is piped to a file."""
TARGETS = {
    "fast": f"ratio >= {1 - FAST_MAX_RATIO_LOSS:.0%} of KLB's and write >= {FAST_MIN_WRITE_SPEEDUP:g}x KLB",
    "archival": f"ratio >= KLB's, write >= {ARCHIVAL_MIN_WRITE_SPEEDUP:g}x and read >= {ARCHIVAL_MIN_READ_SPEEDUP:g}x KLB",
}


@dataclass(frozen=True)
class Codec:
    """A chunk codec: ``encode`` turns one (Y, X) uint16 plane into bytes, ``decode`` gives the plane's buffer back."""

    name: str
    encode: Callable[[np.ndarray], bytes]
    decode: Callable[[bytes], object]
    sample_planes: int | None = None
    """Measure on this many evenly spaced planes instead of all (slow codecs)."""


@dataclass(frozen=True)
class Measurement:
    """Size and speed of one codec on one input."""

    name: str
    raw_bytes: int
    compressed_bytes: int
    write_s: float
    read_s: float
    lossless: bool
    planes_measured: int
    planes_total: int

    @property
    def ratio(self) -> float:
        return self.raw_bytes / self.compressed_bytes

    @property
    def write_mbps(self) -> float:
        return self.raw_bytes / self.write_s / 1e6

    @property
    def read_mbps(self) -> float:
        return self.raw_bytes / self.read_s / 1e6

    @property
    def sampled(self) -> bool:
        return self.planes_measured < self.planes_total

    def as_dict(self) -> dict:
        return asdict(self) | {
            "ratio": self.ratio,
            "write_mb_per_s": self.write_mbps,
            "read_mb_per_s": self.read_mbps,
            "extrapolated_from_sample": self.sampled,
        }


def blosc_codec(cname: str, level: int, shuffle: str, blocksize: int = 0) -> Codec:
    modes = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}
    codec = Blosc(cname=cname, clevel=level, shuffle=modes[shuffle], blocksize=blocksize)
    suffix = f"-{blocksize >> 20}MiB" if blocksize else ""
    return Codec(f"blosc-{cname}-{level}-{shuffle}{suffix}", codec.encode, codec.decode)


def delta_zstd_codec(level: int) -> Codec:
    """Delta along the flattened plane (uint16 wrap-around, still lossless), then zstd."""
    delta, zstd = Delta(dtype="<u2"), Zstd(level=level)
    return Codec(f"delta-zstd-{level}", lambda plane: zstd.encode(delta.encode(plane)), lambda data: delta.decode(zstd.decode(data)))


def pcodec_codec(level: int = 8) -> Codec:
    codec = PCodec(level=level)
    return Codec(f"pcodec-{level}", codec.encode, codec.decode)


def jpegls_codec() -> Codec:
    return Codec("jpegls", imagecodecs.jpegls_encode, imagecodecs.jpegls_decode)


def jpegxl_codec(effort: int, sample_planes: int | None) -> Codec:
    return Codec(
        f"jpegxl-e{effort}",
        lambda plane: imagecodecs.jpegxl_encode(plane, lossless=True, effort=effort, numthreads=1),
        lambda data: imagecodecs.jpegxl_decode(data, numthreads=1),
        sample_planes,
    )


def build_codecs(jpegxl_planes: int | None) -> list[Codec]:
    """Every chunk codec of the comparison; JPEG-XL effort 3 (the slowest) runs on ``jpegxl_planes`` planes (None: all)."""
    codecs = [blosc_codec("zstd", level, shuffle) for level in (1, 3, 5) for shuffle in ("shuffle", "bitshuffle")]
    codecs += [blosc_codec("zstd", 1, "shuffle", 1 << 20), blosc_codec("zstd", 3, "shuffle", 1 << 20)]  # the pipeline's default blocks
    codecs += [blosc_codec("lz4", 5, shuffle) for shuffle in ("shuffle", "bitshuffle")]
    codecs += [blosc_codec("lz4hc", level, "bitshuffle") for level in (5, 9)]
    codecs += [delta_zstd_codec(level) for level in (3, 9)]
    codecs += [pcodec_codec(), jpegls_codec(), jpegxl_codec(1, None), jpegxl_codec(3, jpegxl_planes)]
    return codecs


def build_label_codecs() -> list[Codec]:
    """The candidates for the label image: lz4 at the pipeline's 1 MiB blocks, with each shuffle."""
    return [blosc_codec("lz4", 5, shuffle, 1 << 20) for shuffle in ("noshuffle", "shuffle", "bitshuffle")]


def best_time(function: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Shortest wall time of ``repeats`` calls, and the last call's result."""
    best = float("inf")
    for _ in range(repeats):
        tic = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - tic)
    return best, result


def sample_indices(planes: int, count: int | None) -> np.ndarray:
    """The middle plane of each of ``count`` equal slabs of the stack (all planes when ``count`` is None or too large).

    Mid-slab planes, not the first and last planes, so that empty planes at the stack ends are not over-represented.
    """
    if count is None or count >= planes:
        return np.arange(planes)
    return np.unique(((np.arange(count) + 0.5) * planes / count).astype(int))


def measure_codec(codec: Codec, stack: np.ndarray, repeats: int) -> Measurement:
    planes = [stack[index] for index in sample_indices(stack.shape[0], codec.sample_planes)]
    write_s, encoded = best_time(lambda: [codec.encode(plane) for plane in planes], repeats)
    read_s, decoded = best_time(lambda: [codec.decode(data) for data in encoded], repeats)
    lossless = all(
        np.array_equal(np.frombuffer(plane_back, dtype=plane.dtype), plane.ravel()) for plane_back, plane in zip(decoded, planes, strict=True)
    )
    return Measurement(
        name=codec.name,
        raw_bytes=sum(plane.nbytes for plane in planes),
        compressed_bytes=sum(len(data) for data in encoded),
        write_s=write_s,
        read_s=read_s,
        lossless=lossless,
        planes_measured=len(planes),
        planes_total=stack.shape[0],
    )


def measure_klb(stack: np.ndarray, voxel_size_um: tuple[float, float, float], repeats: int) -> Measurement:
    """KLB bzip2, one thread, whole stack written to and read from a file in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="bench_codecs_") as workdir:
        path = str(Path(workdir) / "stack.klb")
        spacing = (1.0, 1.0, *voxel_size_um)
        write_s, _ = best_time(lambda: pyklb.writefull(stack, path, numthreads=1, pixelspacing_tczyx=spacing, compression="bzip2"), repeats)
        read_s, stack_back = best_time(lambda: pyklb.readfull(path, 1), repeats)
        compressed_bytes = os.path.getsize(path)
    return Measurement(
        name="klb-bzip2",
        raw_bytes=stack.nbytes,
        compressed_bytes=compressed_bytes,
        write_s=write_s,
        read_s=read_s,
        lossless=bool(np.array_equal(stack_back, stack)),
        planes_measured=stack.shape[0],
        planes_total=stack.shape[0],
    )


def compare_with_klb(measurement: Measurement, klb: Measurement) -> dict:
    """Ratio relative to KLB, speed-ups over KLB and which targets ``measurement`` meets (lossless codecs only)."""
    ratio_vs_klb = measurement.ratio / klb.ratio
    write_speedup = measurement.write_mbps / klb.write_mbps
    read_speedup = measurement.read_mbps / klb.read_mbps
    return {
        "ratio_vs_klb_pct": 100 * ratio_vs_klb,
        "write_speedup": write_speedup,
        "read_speedup": read_speedup,
        "meets_fast_target": measurement.lossless and ratio_vs_klb >= 1 - FAST_MAX_RATIO_LOSS and write_speedup >= FAST_MIN_WRITE_SPEEDUP,
        "meets_archival_target": measurement.lossless
        and ratio_vs_klb >= 1
        and write_speedup >= ARCHIVAL_MIN_WRITE_SPEEDUP
        and read_speedup >= ARCHIVAL_MIN_READ_SPEEDUP,
    }


def benchmark_input(stack: np.ndarray, codecs: list[Codec], voxel_size_um: tuple[float, float, float], repeats: int, console: Console) -> dict:
    """KLB and every codec on one stack; the JSON section of this input."""
    console.log(f"klb-bzip2 on {stack.shape} ...")
    klb = measure_klb(stack, voxel_size_um, repeats)
    rows = []
    for codec in codecs:
        console.log(f"{codec.name} ...")
        measurement = measure_codec(codec, stack, repeats)
        rows.append(measurement.as_dict() | compare_with_klb(measurement, klb))
    return {
        "stats": {
            "min": int(stack.min()),
            "max": int(stack.max()),
            "mean": float(stack.mean()),
            "zero_fraction": float(np.count_nonzero(stack == 0) / stack.size),
        },
        "klb": klb.as_dict(),
        "codecs": rows,
        "meets_fast_target": [row["name"] for row in rows if row["meets_fast_target"]],
        "meets_archival_target": [row["name"] for row in rows if row["meets_archival_target"]],
    }


class ArraySink:
    """Collects the corrected slabs of ``correct_stack`` and their mask labels into two arrays."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.volume = np.zeros(shape, dtype=np.uint16)
        self.labels = np.zeros(shape, dtype=np.uint8)

    def write(self, first_plane: int, slab: np.ndarray, labels: np.ndarray | None = None) -> None:
        self.volume[first_plane : first_plane + slab.shape[0]] = slab
        if labels is not None:
            self.labels[first_plane : first_plane + slab.shape[0]] = labels


def corrected_stack(raw: np.ndarray, config: SimulationConfig) -> tuple[np.ndarray, np.ndarray]:
    """The stack as the pipeline writes it (background-subtracted, dead-pixel corrected and masked) and its mask labels."""
    sink = ArraySink(raw.shape)
    correct_stack(ArraySource(raw), scaling=SCALING, background_frame=dark_frame(config, CAMERA), sink=sink)
    return sink.volume, sink.labels


def machine_info() -> dict:
    return {
        **base_machine_info(),
        "physical_cores": psutil.cpu_count(logical=False),
        "numcodecs": numcodecs.__version__,
        "blosc": numcodecs.blosc.VERSION_STRING,
        "imagecodecs": imagecodecs.__version__,
        "pyklb": getattr(pyklb, "__version__", "unknown"),
    }


def print_table(title: str, section: dict, console: Console) -> None:
    table = Table(title=title)
    for column in ("codec", "ratio", "vs KLB", "write MB/s", "read MB/s", "write x", "read x", "lossless", "fast", "archival"):
        table.add_column(column, justify="left" if column == "codec" else "right")
    klb = section["klb"]
    table.add_row("klb-bzip2", f"{klb['ratio']:.3f}", "100.0 %", f"{klb['write_mb_per_s']:.1f}", f"{klb['read_mb_per_s']:.1f}", "1.0", "1.0", str(klb["lossless"]), "", "")
    for row in section["codecs"]:
        name = row["name"] + (f" ({row['planes_measured']}/{row['planes_total']} planes)" if row["extrapolated_from_sample"] else "")
        table.add_row(
            name,
            f"{row['ratio']:.3f}",
            f"{row['ratio_vs_klb_pct']:.1f} %",
            f"{row['write_mb_per_s']:.1f}",
            f"{row['read_mb_per_s']:.1f}",
            f"{row['write_speedup']:.1f}",
            f"{row['read_speedup']:.1f}",
            str(row["lossless"]),
            "yes" if row["meets_fast_target"] else "",
            "yes" if row["meets_archival_target"] else "",
        )
    console.print(table)
    console.print(f"fast target ({TARGETS['fast']}): {', '.join(section['meets_fast_target']) or 'none'}")
    console.print(f"archival target ({TARGETS['archival']}): {', '.join(section['meets_archival_target']) or 'none'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--planes", type=int, default=64, help="planes (Z) of the simulated stack (default 64)")
    parser.add_argument("--size", type=int, default=2048, help="plane height and width in pixels (default 2048)")
    parser.add_argument("--quick", action="store_true", help=f"smoke run on a {QUICK_SHAPE} stack (overrides --planes/--size)")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per codec, best kept (default 2)")
    parser.add_argument(
        "--jpegxl-planes", type=int, default=0, help="measure JPEG-XL effort 3 on this many evenly spaced planes only, for a faster run; 0 = all (default)"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"JSON results (default {DEFAULT_OUTPUT})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    console = Console(width=TABLE_WIDTH)
    numcodecs.blosc.set_nthreads(1)
    shape = QUICK_SHAPE if args.quick else (args.planes, args.size, args.size)
    config = SimulationConfig(shape=shape)

    console.log(f"rendering camera {CAMERA}, timepoint {TIMEPOINT}, shape {shape} ...")
    tic = time.perf_counter()
    raw = render_camera_stack(config, TIMEPOINT, CAMERA)
    render_s = time.perf_counter() - tic
    console.log("correcting ...")
    tic = time.perf_counter()
    corrected, labels = corrected_stack(raw, config)
    correct_s = time.perf_counter() - tic

    codecs = build_codecs(args.jpegxl_planes or None)
    inputs = {}
    for label, stack, candidates in (("raw", raw, codecs), ("corrected", corrected, codecs), ("labels", labels, build_label_codecs())):
        inputs[label] = benchmark_input(stack, candidates, config.voxel_size_um, args.repeats, console)

    results = {
        "benchmark": "codecs",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "machine": machine_info(),
        "data": {
            "shape_zyx": list(shape),
            "dtype": "uint16",
            "stack_bytes": raw.nbytes,
            "chunk_zyx": [1, shape[1], shape[2]],
            "camera": CAMERA,
            "timepoint": TIMEPOINT,
            "seed": config.seed,
            "voxel_size_um": list(config.voxel_size_um),
            "render_s": render_s,
            "correct_s": correct_s,
        },
        "method": {
            "threads": 1,
            "repeats": args.repeats,
            "timing": "best of repeats, time.perf_counter around encode (write) / decode (read) of all measured planes",
            "mb": "10^6 bytes of the input (uint16 stacks, uint8 labels)",
            "chunk_codecs": "each (Y, X) plane encoded independently in memory",
            "klb": "pyklb.writefull / readfull of the whole stack, bzip2, numthreads=1, default blocks, file in a temporary directory",
            "sampling": (
                f"jpegxl-e3 measured on {args.jpegxl_planes} evenly spaced (mid-slab) planes, ratio and speeds extrapolated to the stack"
                if args.jpegxl_planes
                else "all codecs measured on all planes"
            ),
        },
        "targets": TARGETS,
        "inputs": inputs,
    }
    for label, section in inputs.items():
        print_table(f"{label} stack {shape} {'uint8' if label == 'labels' else 'uint16'}, one-plane chunks, 1 thread", section, console)
    results["total_runtime_s"] = time.perf_counter() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"total runtime {results['total_runtime_s']:.0f} s; results in {args.output}")

    lossy = [f"{label}/{row['name']}" for label, section in inputs.items() for row in [section["klb"], *section["codecs"]] if not row["lossless"]]
    if lossy:
        console.print(f"[red]decode is not bit-exact for: {', '.join(lossy)}[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
