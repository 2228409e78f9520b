"""The isotropic stage as users run it: ``isoview isotropic`` on two simulated orthogonal views, per size, time and memory.

For each size, the two views of one timepoint are written as a fused root's VW00 and VW90
(:func:`isoview_core.synthetic.write_orthogonal_views`, rendered through memory-mapped scratch files so that
full-size views need no memory; the simulator's defaults with the nuclei scaled to the volume), then
``isoview isotropic ACQ --fused ROOT --deconvolve N`` runs in a child process with every other setting at its
default (N = 2 is the default; 0 the fusion alone), measured as ``bench_isotropic.py`` measures its steps: wall seconds, CPU seconds of the process tree,
peak RSS of the tree (sampled every 0.05 s). Reported per run: the grid, CPU microseconds per output voxel, the
record's time split (read = the views decompressed into scratch files, fuse, write), the registration's error
against the simulator's truth, the peak RSS, side by side across sizes (does memory grow with the volume?), and for
views small enough to simulate again in memory the volume's bead FWHM and NCC with the sharp specimen.

Run: ``python benchmarks/bench_isotropic_command.py [--sizes 128x512x512 550x2048x2048] [--deconvolve 0 2]
[--repeat N] [--data DIR] [--output benchmarks/results/isotropic_command.json]``. ``--repeat`` runs each command N
times, interleaved, and reports the medians too (this VM is shared: single runs of the same command varied by 40 %). ``--data`` keeps the simulated views between
runs (the full-size pair takes about 15 minutes to render and 2 x 4.6 GB uncompressed); ``--deconvolve`` lists the
iteration counts to run at each size (``--deconvolve-sizes`` limits the deconvolution to some sizes).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_isotropic import bead_widths, correlations, measure_child, registration_errors
from machine import machine_info, source_revision

VOXEL_UM = (2.0, 0.40625, 0.40625)
"""2 um z steps, the 16x objectives' 0.40625 um pixel."""
REFERENCE_SHAPE = (128, 512, 512)
REFERENCE_NUCLEI = 300
"""The simulator's default nuclei at the reference shape; other sizes get as many per voxel."""
MAX_EVALUATED_VOXELS = 64 * 2**20
"""Views up to this many voxels are simulated again in memory to measure the volume's beads and NCC (sharp specimen)."""


def views_config(shape: tuple[int, int, int]):
    """The simulator's defaults at this shape, both views alike, nuclei in proportion to the voxels."""
    from isoview_core.synthetic import OrthogonalViewsConfig

    nuclei = round(REFERENCE_NUCLEI * np.prod(shape) / np.prod(REFERENCE_SHAPE))
    return OrthogonalViewsConfig(shape00=shape, shape90=shape, voxel00_um=VOXEL_UM, voxel90_um=VOXEL_UM, n_nuclei=nuclei, seed=0)


def simulated_root(data: Path, shape: tuple[int, int, int]) -> tuple[Path, float | None]:
    """The fused root holding the views of this shape (reused when its truth has the same configuration); render seconds."""
    from isoview_core.synthetic import OrthogonalTruth, write_orthogonal_views

    config = views_config(shape)
    root = data / f"views-{'x'.join(map(str, shape))}" / "acquisition.fused"
    truth = root / "ground_truth.json"
    if truth.is_file() and OrthogonalTruth.load(truth).config == config:
        return root, None
    shutil.rmtree(root, ignore_errors=True)
    tic = time.perf_counter()
    write_orthogonal_views(root, config)
    return root, time.perf_counter() - tic


def run_command(root: Path, deconvolve: int, *, evaluate: bool = True) -> dict:
    """``isoview isotropic`` on the root's views into a fresh output: its cost, record and registration error."""
    from isoview_core.isotropic.records import load_isotropic_record, load_registration
    from isoview_core.synthetic import OrthogonalTruth, overlap_box_um

    output = root.parent / f"isotropic-deconvolve{deconvolve}"
    shutil.rmtree(output, ignore_errors=True)
    command = [shutil.which("isoview") or "isoview", "isotropic", str(root.parent / "acquisition"), "--fused", str(root), "-o", str(output)]
    command += ["--deconvolve", str(deconvolve)]
    print(" ".join(command), file=sys.stderr, flush=True)
    cost = measure_child(command)
    if cost["returncode"] != 0:
        return {"command": command, "error": cost["output_tail"], **cost}
    record = load_isotropic_record(next(output.rglob("*.isotropic.json")))
    estimate = load_registration(next(output.rglob("*.registration.json")))
    truth = OrthogonalTruth.load(root / "ground_truth.json")
    low, high = overlap_box_um(truth.config)
    voxels = int(np.prod(record.shape))
    errors = {
        name: registration_errors(matrix, np.asarray(truth.vw90_to_vw00), (low + high) / 2, record.voxel_um)
        for name, matrix in (("estimated", estimate.matrix()), ("applied", record.applied_matrix()))
    }
    small = np.prod(truth.config.shape00) <= MAX_EVALUATED_VOXELS
    quality = volume_quality(truth.config, next(output.glob("SPM*/TM*/*.ome.zarr"))) if evaluate and small else {}
    return {
        "command": command[1:],
        "quality": quality,
        "grid_shape": list(record.shape),
        "grid_voxels": voxels,
        "iso_voxel_um": record.voxel_um,
        "deconvolution_iterations": record.deconvolution_iterations,
        "timings_s": record.timings_s,
        "registration": errors,
        "registration_quality": estimate.registration.quality,
        "cpu_us_per_output_voxel": cost["process_cpu_s"] / voxels * 1e6,
        **{key: value for key, value in cost.items() if key != "output_tail"},
    }


def volume_quality(config, volume_path: Path) -> dict:
    """Bead FWHM and NCC with the sharp specimen of the command's volume (level 0, uint16), and of each view alone,
    measured as ``bench_isotropic.py`` measures them (inside the views' overlap)."""
    from bench_isotropic import references
    from isoview_core.formats.omezarr import read_ome_zarr
    from isoview_core.synthetic import simulate_orthogonal_views

    views = simulate_orthogonal_views(config)
    context, overlap = references(views)
    volume = np.asarray(read_ome_zarr(volume_path)[:], dtype=np.float32)
    if volume.shape != views.specimen_iso.shape:
        return {"error": f"volume {volume.shape} is not on the sharp specimen's grid {views.specimen_iso.shape}"}
    return {"volume": {**bead_widths(volume, views.iso_voxel_um, views.beads_um), **correlations(volume, views.specimen_iso, overlap)}, **context}


def medians(runs: list[dict]) -> list[dict]:
    """Median wall, CPU and peak memory over the repeats of each (views, deconvolution) pair."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        if "error" not in run:
            groups.setdefault((tuple(run["view_shape"]), run["deconvolution_iterations"]), []).append(run)
    return [
        {
            "view_shape": list(shape),
            "deconvolution_iterations": iterations,
            "runs": len(group),
            **{key: float(np.median([run[key] for run in group])) for key in ("process_wall_s", "process_cpu_s", "peak_rss_mib", "cpu_us_per_output_voxel")},
        }
        for (shape, iterations), group in groups.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["128x512x512", "550x2048x2048"], help="Each view's Z x Y x X.")
    parser.add_argument("--deconvolve", nargs="+", type=int, default=[0, 2], help="Deconvolution iterations to run (0: fusion only).")
    parser.add_argument("--deconvolve-sizes", nargs="*", default=None, help="Sizes the deconvolution runs at (default all).")
    parser.add_argument("--data", type=Path, default=None, help="Keep the simulated views here (default a temporary folder).")
    parser.add_argument("--repeat", type=int, default=1, help="Runs of each command, interleaved (the volume's quality is measured on the first).")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "isotropic_command.json")
    args = parser.parse_args()
    machine = machine_info()
    runs = []
    with tempfile.TemporaryDirectory(prefix="isoview-isotropic-command-", dir=os.environ.get("BENCH_TMP")) as scratch:
        data = args.data or Path(scratch)
        for size in args.sizes:
            shape = tuple(int(n) for n in size.split("x"))
            root, render_s = simulated_root(data, shape)
            view_bytes = int(np.prod(shape)) * 2
            for repeat, iterations in itertools.product(range(args.repeat), args.deconvolve):
                if iterations and args.deconvolve_sizes is not None and size not in args.deconvolve_sizes:
                    continue
                measured = run_command(root, iterations, evaluate=repeat == 0)
                run = {"view_shape": list(shape), "view_voxel_um": list(VOXEL_UM), "view_bytes": view_bytes, "render_s": render_s, "repeat": repeat, **measured}
                runs.append(run)
                print(
                    f"{size} deconvolve {iterations}: {run.get('process_wall_s', float('nan')):.0f} s wall, {run.get('process_cpu_s', float('nan')):.0f} CPU-s, "
                    f"peak {run.get('peak_rss_mib', float('nan')):.0f} MiB",
                    file=sys.stderr,
                    flush=True,
                )
    report = {
        "machine": {**machine, "after_run": source_revision()},
        "settings": {
            "command": "isoview isotropic ACQ --fused ROOT -o OUT --deconvolve N (2 is the default, 0 the fusion alone); every other setting at its default",
            "views": "write_orthogonal_views with OrthogonalViewsConfig defaults at each shape (voxel 2 x 0.40625 x 0.40625 um, "
            f"VW90 turned 90 degrees about y, then 1.5 degrees, shifted (6, -4.5, 8) um), {REFERENCE_NUCLEI} nuclei per "
            f"{'x'.join(map(str, REFERENCE_SHAPE))} voxels",
            "measures": {
                "process_wall_s / process_cpu_s": "the command's child process tree, start-up and imports included",
                "peak_rss_mib": "largest sum of the process tree's RSS, sampled every 0.05 s (at least the largest ru_maxrss)",
                "timings_s": "the record's split: read (views decompressed into scratch files), fuse (or deconvolve), write",
                "registration": "translation error at the overlap's centre (isotropic voxels) and rotation error (degrees) "
                "of the estimate and of the transform applied, against the simulator's truth",
                "quality": f"views up to {MAX_EVALUATED_VOXELS} voxels: median bead FWHM (z, y, x) and per-plane NCC with the sharp "
                "specimen of the written volume (uint16) and of each view alone, as bench_isotropic.py",
            },
        },
        "runs": runs,
        "medians": medians(runs),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'views':>16s} {'deconv':>6s} {'grid':>16s} {'wall s':>7s} {'CPU s':>7s} {'us/voxel':>8s} {'peak MiB':>8s} {'shift err':>9s} {'rot err':>8s}")
    for run in runs:
        if "error" in run:
            print(f"{'x'.join(map(str, run['view_shape'])):>16s} failed: {run['error'][-200:]}")
            continue
        applied = run["registration"]["applied"]
        print(
            f"{'x'.join(map(str, run['view_shape'])):>16s} {run['deconvolution_iterations']:6d} {'x'.join(map(str, run['grid_shape'])):>16s}"
            f" {run['process_wall_s']:7.0f} {run['process_cpu_s']:7.0f} {run['cpu_us_per_output_voxel']:8.2f} {run['peak_rss_mib']:8.0f}"
            f" {applied['translation_error_voxels']:9.3f} {applied['rotation_error_deg']:8.3f}"
        )
        for name, row in run["quality"].items():
            if isinstance(row, dict) and row.get("bead_fwhm_um"):
                print(f"{'':>16s} {name}: bead FWHM {' / '.join(f'{w:.2f}' for w in row['bead_fwhm_um'])} um, NCC {row['plane_ncc']:.3f} ({row['volume_ncc']:.3f})")
    print(f"results in {args.output}")


if __name__ == "__main__":
    main()
