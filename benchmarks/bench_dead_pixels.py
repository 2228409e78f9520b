"""Defective-pixel detection against the simulator's truth: the default std test vs the original knee.

Renders realistic synthetic camera stacks (2048 x 2048, 64 planes, sCMOS noise, 5e-4 of the pixels
defective: a third each dead, hot and insensitive) at several specimen brightnesses, detects defective
pixels with ``defect_detection="noise"`` (the default) and ``"knee"`` (the original), and scores each
mask against the simulator's defect list:

* precision: flagged pixels that are defective;
* recall: detectable defects flagged (dead and hot pixels anywhere, insensitive ones where the camera
  sees the specimen: in the dark they are indistinguishable from their neighbours);
* false-positive rate: healthy pixels flagged, over all healthy pixels and over those in the specimen;
* the std test alone (run with a flat mean map, which the mean test never flags): the dead pixels in the
  dark background that it finds (the README says the knee's std threshold misses them).

Run: ``python benchmarks/bench_dead_pixels.py [--planes 64] [--size 2048] [--brightness 0.25 1 4]
[--cameras 0 1 2 3] [--output benchmarks/results/dead_pixels.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from machine import machine_info  # noqa: E402

from isoview_core.correction.dead_pixels import ZStatistics, detect_defective_pixels  # noqa: E402
from isoview_core.synthetic import (  # noqa: E402
    SimulationConfig,
    camera_defects,
    camera_planes,
    dark_frame,
    foreground_mask,
)
from isoview_core.synthetic.camera import CameraDefects  # noqa: E402

METHODS = ("noise", "knee")


def score(mask: np.ndarray, defects: CameraDefects, specimen: np.ndarray) -> dict:
    """Counts of a defect mask's hits and misses against the simulator's defects (rates: :func:`rates`)."""
    defective = np.zeros(mask.shape, dtype=bool)
    defective[defects.rows, defects.cols] = True
    detectable = defective.copy()
    rows, cols, _ = defects.of_kind("insensitive")
    detectable[rows, cols] = specimen[rows, cols]
    flagged = int(np.count_nonzero(mask))
    true_positives = int(np.count_nonzero(mask & defective))
    false_positives = mask & ~defective
    return {
        "flagged": flagged,
        "true_positives": true_positives,
        "false_positives": int(np.count_nonzero(false_positives)),
        "false_positives_in_specimen": int(np.count_nonzero(false_positives & specimen)),
        "healthy_pixels": int(np.count_nonzero(~defective)),
        "healthy_specimen_pixels": int(np.count_nonzero(specimen & ~defective)),
        "detectable": int(np.count_nonzero(detectable)),
        "detectable_found": int(np.count_nonzero(mask & detectable)),
    }


def rates(counts: dict) -> dict:
    """Precision, recall and false-positive rates of (pooled) counts from :func:`score`."""
    return {
        "precision": counts["true_positives"] / max(counts["flagged"], 1),
        "recall": counts["detectable_found"] / max(counts["detectable"], 1),
        "false_positive_rate": counts["false_positives"] / counts["healthy_pixels"],
        "specimen_false_positive_rate": counts["false_positives_in_specimen"] / max(counts["healthy_specimen_pixels"], 1),
        "std_test_recall_of_dark_dead": counts["dark_dead_found_by_std_test"] / max(counts["dark_dead"], 1),
    }


def pool(counts: list[dict]) -> dict:
    """The integer counts of several cameras' :func:`score` summed."""
    return {key: sum(item[key] for item in counts) for key, value in counts[0].items() if isinstance(value, int)}


def measure_camera(config: SimulationConfig, camera: int) -> dict[str, dict]:
    """Render one camera stack plane by plane, detect its defects with both methods and score them."""
    tic = time.perf_counter()
    statistics = ZStatistics(config.shape[1:])
    for plane in camera_planes(config, 0, camera):
        statistics.add(plane[None])
        statistics.advance(1)
    std, mean = statistics.std(), statistics.mean()
    render_s = time.perf_counter() - tic
    background = float(np.percentile(dark_frame(config, camera), 3))
    defects = camera_defects(config, camera)
    specimen = foreground_mask(config, 0, camera).any(axis=0)
    rows, cols, _ = defects.of_kind("dead")
    dark = ~specimen[rows, cols]
    flat = np.ones_like(mean)  # the mean test flags nothing on a flat map: the std test alone
    results = {}
    for method in METHODS:
        tic = time.perf_counter()
        found = detect_defective_pixels(std, mean, background, planes=statistics.count, method=method)
        detect_s = time.perf_counter() - tic
        std_test = detect_defective_pixels(std, flat, 0.0, planes=statistics.count, method=method).mask
        results[method] = {
            **score(found.mask, defects, specimen),
            "dark_dead": int(np.count_nonzero(dark)),
            "dark_dead_found_by_std_test": int(np.count_nonzero(std_test[rows[dark], cols[dark]])),
            "std_threshold": found.std_threshold,
            "mean_threshold": found.mean_threshold,
            "render_and_statistics_s": render_s,
            "detect_s": detect_s,
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planes", type=int, default=64)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--brightness", type=float, nargs="+", default=[0.25, 1.0, 4.0], help="Specimen signal relative to the simulator's default.")
    parser.add_argument("--cameras", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "dead_pixels.json")
    args = parser.parse_args()

    default = SimulationConfig()
    runs = []
    for brightness in args.brightness:
        config = SimulationConfig(
            shape=(args.planes, args.size, args.size),
            timepoints=1,
            nucleus_peak_adu=default.nucleus_peak_adu * brightness,
            cytoplasm_adu=default.cytoplasm_adu * brightness,
        )
        per_camera = {camera: measure_camera(config, camera) for camera in args.cameras}
        for method in METHODS:
            pooled = pool([per_camera[camera][method] for camera in args.cameras])
            runs.append(
                {
                    "brightness": brightness,
                    "nucleus_peak_adu": config.nucleus_peak_adu,
                    "cytoplasm_adu": config.cytoplasm_adu,
                    "method": method,
                    "pooled": {**pooled, **rates(pooled)},
                    "cameras": {str(camera): {**per_camera[camera][method], **rates(per_camera[camera][method])} for camera in args.cameras},
                }
            )
    report = {
        "machine": machine_info(),
        "shape": [args.planes, args.size, args.size],
        "defect_fraction": default.defect_fraction,
        "seed": default.seed,
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))

    print(f"Defective pixels of {args.planes} x {args.size} x {args.size} synthetic stacks, cameras {args.cameras} pooled")
    print(f"{'brightness':>10s} {'method':6s} {'flagged':>8s} {'precision':>9s} {'recall':>7s} {'FP rate':>8s} {'FP rate in specimen':>19s} {'dark dead by std test':>21s}")
    for run in runs:
        pooled = run["pooled"]
        print(
            f"{run['brightness']:10.2f} {run['method']:6s} {pooled['flagged']:8d} {pooled['precision']:9.3f} {pooled['recall']:7.3f} "
            f"{100 * pooled['false_positive_rate']:7.3f}% {100 * pooled['specimen_false_positive_rate']:18.3f}% "
            f"{pooled['dark_dead_found_by_std_test']:>13d}/{pooled['dark_dead']:<7d}"
        )
    machine = report["machine"]
    changed = f" (with uncommitted changes to {', '.join(machine['uncommitted_changes'])})" if machine["uncommitted_changes"] else ""
    print(f"commit {machine['commit'][:12]}{changed}; results in {args.output}")


if __name__ == "__main__":
    main()
