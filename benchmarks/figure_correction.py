"""The README's correction figure: raw vs corrected projections of a synthetic acquisition.

Simulates one small timepoint (known ground truth), corrects it with the default settings and
draws, for the two cameras of pair (0, 1): the raw xy maximum projection (hot pixels visible), the
corrected xy and xz projections (each camera sharp on its own side of z) and the middle plane with
the segmentation outline. Run: ``python benchmarks/figure_correction.py [OUT.png]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import tifffile  # noqa: E402

from isoview_core.config import ProcessingConfig  # noqa: E402
from isoview_core.formats import StackFile  # noqa: E402
from isoview_core.formats.omezarr import read_ome_zarr, read_ome_zarr_labels  # noqa: E402
from isoview_core.layout import corrected_paths
from isoview_core.pipeline.correction import process_dataset
from isoview_core.synthetic import SimulationConfig, simulate_acquisition  # noqa: E402


def main(output: Path) -> None:
    shape = (64, 384, 320)
    with tempfile.TemporaryDirectory() as tmp:
        raw_root = Path(tmp) / "acquisition"
        simulate_acquisition(raw_root, SimulationConfig(shape=shape, timepoints=1))
        config = ProcessingConfig(acquisition=raw_root)
        process_dataset(config)
        figure, axes = plt.subplots(2, 4, figsize=(16, 8), facecolor="black")
        for row, camera in enumerate((0, 1)):
            raw = StackFile(next(raw_root.glob(f"SPM00/TM00000/ANG000/*_CM{camera}_*.stack")), shape[2], shape[1]).memmap()
            paths = corrected_paths(config.resolved_corrected_dir(), 0, 0, camera, 0)
            middle = shape[0] // 2
            panels = [
                (raw.max(axis=0), f"CM{camera:02d} raw, xy max projection"),
                (tifffile.imread(paths.projection("xy")), "corrected, xy max projection"),
                (tifffile.imread(paths.projection("xz")), "corrected, xz max projection (y, z)"),
                (read_ome_zarr(paths.volume)[middle], f"corrected plane {middle} + mask outline"),
            ]
            for axis, (image, title) in zip(axes[row], panels):
                axis.imshow(image, cmap="gray", aspect="auto")
                axis.set_title(title, color="white")
                axis.axis("off")
            axes[row, 3].contour(read_ome_zarr_labels(paths.volume)[middle], [0.5], colors="red", linewidths=0.8)
        figure.tight_layout()
        figure.savefig(output, dpi=70, facecolor="black")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=Path(__file__).parent / "results" / "correction_example.png")
    main(parser.parse_args().output)
