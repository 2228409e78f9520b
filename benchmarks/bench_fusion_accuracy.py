"""Camera-pair fusion accuracy: registration and intensity-ratio errors over a grid of offsets and ratios.

Simulates one-timepoint, four-camera acquisitions whose two camera pairs carry known offsets and
intensity ratios, corrects them, and estimates every pair's parameters through the production
path (``estimate_pair_parameters``: fast registration, the default, then the transition-slab
intensity fit), once without rotation estimation (the default) and once with it. Reported per
setting: max and median absolute offset error (px, rows and columns pooled), max intensity-ratio
error (%), max spurious rotation (degrees; the truth is 0).

Size: 48 x 512 x 512 per camera by default, the test suite's 32 x 256 x 224 scaled up (4.6x the
pixels per plane, 1.5x the planes); 2048 x 2048 planes register on a 2x block-averaged grid of
1024 x 1024 (``registration.fast.WORKING_PIXELS``) and are not needed to measure the accuracy.

Grid: offsets along rows (y) and columns (x) in ``AXIS_OFFSETS_PX`` (81 combinations, both axes to
+-45 px, +-40 px included), each with one ratio of ``RATIOS`` in a Latin arrangement (every ratio
meets every x and every y value), plus ``EXTREME_OFFSETS_PX`` (corners, +40 px along x) with both
extreme ratios.

Run: ``python benchmarks/bench_fusion_accuracy.py [--planes 48] [--size 512] [--output benchmarks/results/fusion_accuracy.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from machine import machine_info  # noqa: E402

AXIS_OFFSETS_PX = (-45.0, -40.0, -21.7, -7.6, 0.0, 7.3, 21.4, 40.0, 45.0)
"""Offsets along each axis; fractional values measure the sub-pixel accuracy."""
RATIOS = (0.4, 0.63, 1.0, 1.6, 2.5)
"""Camera-2 multipliers (0.4: camera 2 is 2.5x brighter; 2.5: 2.5x dimmer)."""
EXTREME_OFFSETS_PX = ((-45.0, -45.0), (-45.0, 45.0), (45.0, -45.0), (45.0, 45.0), (-45.0, 40.0), (45.0, 40.0), (0.0, 40.0))
"""(offset_y_px, offset_x_px) measured with both extreme ratios."""
TARGETS = {"offset_px": 0.05, "ratio_percent": 1.0, "rotation_deg": 0.03}
"""What the test suite asserts (README)."""


def grid() -> list[tuple[float, float, float]]:
    """``(offset_y_px, offset_x_px, intensity_ratio)`` of every simulated pair."""
    latin = [
        (y, x, RATIOS[(i + 2 * j) % len(RATIOS)]) for j, y in enumerate(AXIS_OFFSETS_PX) for i, x in enumerate(AXIS_OFFSETS_PX)
    ]
    return latin + [(y, x, ratio) for y, x in EXTREME_OFFSETS_PX for ratio in (RATIOS[0], RATIOS[-1])]


def measure(shape: tuple[int, int, int], cases: list[tuple[float, float, float]], work: Path) -> list[dict]:
    """Simulate, correct and estimate every case, two pairs per acquisition; one record per case and rotation setting."""
    from isoview_core.config import ProcessingConfig
    from isoview_core.fusion.config import FusionConfig
    from isoview_core.layout import PairId
    from isoview_core.pipeline.correction import process_dataset
    from isoview_core.pipeline.pair import estimate_pair_parameters
    from isoview_core.synthetic import (
        PairConfig,
        SimulationConfig,
        simulate_acquisition,
    )

    pair_ids = (PairId(0, 0, (0, 1), 0, 0), PairId(0, 0, (2, 3), 90, 1))
    filler = PairConfig(offset_y_px=0.0, offset_x_px=0.0, intensity_ratio=1.0)  # second pair of an odd last acquisition, not measured
    records = []
    for number, start in enumerate(range(0, len(cases), 2)):
        chunk = cases[start : start + 2]
        pairs = [PairConfig(offset_y_px=y, offset_x_px=x, intensity_ratio=ratio) for y, x, ratio in chunk]
        root = work / f"acquisition_{number:03d}"
        seed = number + 1
        simulate_acquisition(root / "raw", SimulationConfig(shape=shape, timepoints=1, seed=seed, pairs=(pairs + [filler])[:2]))
        config = ProcessingConfig(acquisition=root / "raw", corrected_dir=root / "corrected", save_diagnostics=False)
        errors = [error for report in process_dataset(config) for error in report.errors]
        if errors:
            raise RuntimeError(f"correction failed: {errors}")
        for index, truth in enumerate(pairs):
            for rotation in (False, True):
                estimate = estimate_pair_parameters(
                    config.resolved_corrected_dir(),
                    pair_ids[index],
                    FusionConfig(estimate_rotation=rotation),
                    output_root=root / f"fused_rotation_{rotation}",
                    save_diagnostics=False,
                )
                found = estimate.parameters
                records.append({
                    "seed": seed,
                    "cameras": list(pair_ids[index].cameras),
                    "estimate_rotation": rotation,
                    "truth": truth.model_dump(),
                    "estimated": found.model_dump(),
                    "offset_error_px": [found.offset_y_px - truth.offset_y_px, found.offset_x_px - truth.offset_x_px],
                    "ratio_error_percent": 100 * (found.intensity_ratio / truth.intensity_ratio - 1),
                    "rotation_deg": found.rotation_deg,
                    "correlation": estimate.registration.correlation,
                    "iterations": estimate.registration.evaluations,
                    "timings_s": estimate.timings_s,
                })
        shutil.rmtree(root)
        print(f"acquisition {number + 1}/{-(-len(cases) // 2)} done", file=sys.stderr, flush=True)
    return records


def summarise(records: list[dict]) -> dict:
    """Max / median absolute offset error, max |ratio error|, max |rotation| of a set of records."""
    offsets = [abs(error) for record in records for error in record["offset_error_px"]]
    return {
        "estimates": len(records),
        "offset_error_px_max": max(offsets),
        "offset_error_px_median": statistics.median(offsets),
        "ratio_error_percent_max": max(abs(record["ratio_error_percent"]) for record in records),
        "rotation_deg_max": max(abs(record["rotation_deg"]) for record in records),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planes", type=int, default=48)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "fusion_accuracy.json")
    args = parser.parse_args()

    from isoview_core.fusion.config import FusionConfig

    shape = (args.planes, args.size, args.size)
    cases = grid()
    tic, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        records = measure(shape, cases, Path(tmp))
    runtime_s, cpu_s = time.perf_counter() - tic, time.process_time() - cpu
    by_rotation = {rotation: [record for record in records if record["estimate_rotation"] is rotation] for rotation in (False, True)}
    by_ratio = {
        f"{ratio:g}": summarise([record for record in records if record["truth"]["intensity_ratio"] == ratio]) for ratio in RATIOS
    }
    report = {
        "machine": machine_info(),  # with the commit measured and the files changed since
        "runtime_s": runtime_s,
        "cpu_s": cpu_s,
        "settings": {
            "shape": shape,
            "size_note": "larger than the test suite's 32 x 256 x 224 stacks; 2048 x 2048 planes register on a 1024 x 1024 block-averaged grid",
            "axis_offsets_px": AXIS_OFFSETS_PX,
            "ratios": RATIOS,
            "extreme_offsets_px": EXTREME_OFFSETS_PX,
            "cases": len(cases),
            "simulation": "SimulationConfig defaults, timepoints=1, seed = acquisition number + 1, two cases per acquisition (pairs 0/1 and 2/3)",
            "fusion_config": FusionConfig().model_dump(mode="json"),
            "rotation_setting": "each case estimated with estimate_rotation False (the default) and True",
            "targets": TARGETS,
        },
        "summary": {"without_rotation": summarise(by_rotation[False]), "with_rotation": summarise(by_rotation[True]), "by_ratio": by_ratio},  # by_ratio: both settings
        "cases": records,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))

    print(f"\nFusion accuracy: {len(cases)} simulated pairs, {shape[0]} x {shape[1]} x {shape[2]} per camera, fast registration, {report['machine']['cpu_model']}")
    machine = report["machine"]
    changed = f" + {len(machine['uncommitted_changes'])} uncommitted files" if machine["uncommitted_changes"] else ""
    print(f"offsets x, y in {AXIS_OFFSETS_PX} px, ratios {RATIOS}; {runtime_s / 60:.1f} min ({cpu_s / 60:.1f} min CPU); commit {machine['commit'][:10]}{changed}")
    header = f"{'':24s} {'estimates':>9s} {'offset err max':>15s} {'median':>8s} {'ratio err max':>14s} {'rotation max':>13s}"
    print(header)
    rows = [("rotation not estimated", report["summary"]["without_rotation"]), ("rotation estimated", report["summary"]["with_rotation"])]
    rows += [(f"  ratio {ratio}, both", summary) for ratio, summary in by_ratio.items()]
    for name, summary in rows:
        print(
            f"{name:24s} {summary['estimates']:9d} {summary['offset_error_px_max']:12.4f} px {summary['offset_error_px_median']:8.4f}"
            f" {summary['ratio_error_percent_max']:12.2f} % {summary['rotation_deg_max']:9.4f} deg"
        )
    print(f"{'target (tests)':24s} {'':9s} {TARGETS['offset_px']:12.4f} px {'':8s} {TARGETS['ratio_percent']:12.2f} % {TARGETS['rotation_deg']:9.4f} deg")
    print(f"results in {args.output}")


if __name__ == "__main__":
    main()
