"""Fingerprints of every output of correction and fusion, to hold a renovation to byte-identical behaviour.

A fingerprint maps each output file, by its path under the output root, to what must not change: the
sha256, shape and dtype of every array (each OME-Zarr array, label images and pyramid levels included,
every TIFF), every value of the JSON records (timings, sizes that count the metadata, and absolute paths
left out: they differ from run to run), and the physical scale and the compressed size of the chunk data
of each OME-Zarr image. Diagnostic PNGs are not fingerprinted (their
pixels follow matplotlib's version).

``tests/golden/outputs.json`` was written once, from the code before the floor-plan renovation
(``python tests/golden_outputs.py``); ``tests/test_golden_outputs.py`` compares every later run with it. Its
``chunk_bytes`` of the corrected images were updated once, when the label images' codec changed
(``chunk_bytes_updated``): a rerun then differed from the file in those sizes only.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import zarr

from isoview_core.config import OutputConfig, ProcessingConfig
from isoview_core.correction.config import CorrectionConfig
from isoview_core.formats.codecs import CodecConfig
from isoview_core.fusion.config import FusionConfig
from isoview_core.layout import SERVICE_DIR_NAME, series_files
from isoview_core.naming import specimen_dir_name
from isoview_core.pipeline.correction import process_dataset
from isoview_core.pipeline.fusion import fuse
from isoview_core.synthetic import SimulationConfig, simulate_acquisition
from isoview_core.temporal.config import TemporalConfig

GOLDEN = Path(__file__).parent / "golden" / "outputs.json"
SIMULATION = SimulationConfig(shape=(24, 96, 80), timepoints=3, seed=11)
"""A small acquisition: 3 timepoints (window 1 smooths over all three), 4 cameras, 2 channels."""

VOLATILE_KEYS = {"timings_s", "stored_bytes", "compression_ratio"}
"""Record keys whose values differ from run to run: timings, and sizes that count the metadata, which holds
absolute paths (an OME-Zarr's fingerprint has the size of its chunk data instead)."""

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "matlab correction (no background, full-resolution segmentation, knee threshold)": {
        "correction": CorrectionConfig(background_subtraction="none", segmentation_downsample=1, defect_detection="knee"),
    },
    "jpeg-ls codec, 1 pyramid level": {"output": OutputConfig(codec=CodecConfig.parse("jpegls"), pyramid_levels=1)},
    "original registration": {"fusion": FusionConfig(registration_method="original")},
    "slab-sum intensity estimator": {"fusion": FusionConfig(intensity_estimator="slab_sum")},
    "geometric blending": {"fusion": FusionConfig(fusion_type="geometric")},
    "average blending, rotation estimated": {"fusion": FusionConfig(fusion_type="average", estimate_rotation=True)},
    "static parameters": {"temporal": TemporalConfig(window=1, static_parameters=True)},
}
"""Correction and fusion settings fingerprinted, by name (``ProcessingConfig`` fields; window 1 unless set)."""

_CORRECTION_FIELDS = ("correction", "output")


def run_variant(acquisition: Path, root: Path, overrides: dict[str, Any], corrected: Path | None = None) -> tuple[Path, Path]:
    """Correct (unless `corrected` already holds this variant's correction) and fuse the acquisition into `root`.

    Returns the corrected and fused roots.
    """
    settings = {"temporal": TemporalConfig(window=1), **overrides}
    corrected = corrected or root / "corrected"
    config = ProcessingConfig(
        acquisition=acquisition, corrected_dir=corrected, fused_dir=root / "fused", save_diagnostics=False, **settings
    )
    if not (corrected / specimen_dir_name(0)).is_dir():
        process_dataset(config)
    report = fuse(config)
    if report.errors:
        raise RuntimeError(f"fusion failed: {report.errors}")
    return corrected, root / "fused"


def changes_correction(overrides: dict[str, Any]) -> bool:
    """Whether a variant's settings change the correction (else it can fuse the default's corrected volumes)."""
    return any(field in overrides for field in _CORRECTION_FIELDS)


def fingerprint(root: Path) -> dict[str, Any]:
    """Every fingerprinted output under `root`, by its path relative to `root` (POSIX form).

    The live time series are left out: they came later, and hold the fused volumes' own shard files
    (tests/test_pipeline_series.py checks them against the volumes).
    """
    prints: dict[str, Any] = {}
    series = set(series_files(root))
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path in series or series.intersection(path.parents):
            continue
        if path.suffix == ".zarr" and path.is_dir():
            prints[relative] = _zarr_fingerprint(path)
        elif path.suffix == ".tif" and ".zarr/" not in relative:
            prints[relative] = _array_fingerprint(tifffile.imread(path))
        elif path.suffix == ".json" and ".zarr/" not in relative and path.parent.name != SERVICE_DIR_NAME:
            prints[relative] = _record_values(json.loads(path.read_text()), root)
    return prints


def _zarr_fingerprint(path: Path) -> dict[str, Any]:
    group = zarr.open_group(str(path), mode="r")
    arrays = {name: _array_fingerprint(array[...]) for name, array in _arrays(group)}
    scales = {
        name: [transform["scale"] for dataset in multiscale["datasets"] for transform in dataset["coordinateTransformations"]]
        for name, multiscale in _multiscales(group)
    }
    chunk_bytes = sum(file.stat().st_size for file in path.rglob("*") if file.is_file() and file.name != "zarr.json")
    return {"arrays": arrays, "scales": scales, "chunk_bytes": chunk_bytes}


def _arrays(group: zarr.Group, prefix: str = "") -> Iterator[tuple[str, zarr.Array]]:
    for name, member in sorted(group.members()):
        if isinstance(member, zarr.Array):
            yield prefix + name, member
        else:
            yield from _arrays(member, f"{prefix}{name}/")


def _multiscales(group: zarr.Group, prefix: str = "") -> Iterator[tuple[str, dict]]:
    for multiscale in group.attrs.get("ome", {}).get("multiscales", []):
        yield prefix or ".", multiscale
    for name, member in sorted(group.members()):
        if isinstance(member, zarr.Group):
            yield from _multiscales(member, f"{prefix}{name}/")


def _array_fingerprint(array: np.ndarray) -> dict[str, Any]:
    array = np.ascontiguousarray(array)
    return {"sha256": hashlib.sha256(array.tobytes()).hexdigest(), "shape": list(array.shape), "dtype": array.dtype.str}


def _record_values(value: Any, root: Path) -> Any:
    """A record without its volatile keys, paths under `root` made relative (``<root>/...``)."""
    if isinstance(value, dict):
        return {key: _record_values(item, root) for key, item in value.items() if key not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_record_values(item, root) for item in value]
    if isinstance(value, str) and value.startswith(str(root.parent.parent)):
        return "<root>/" + Path(value).relative_to(root.parent.parent).as_posix()
    return value


def fingerprint_variants(workspace: Path) -> dict[str, dict[str, Any]]:
    """Simulate the acquisition in `workspace`, run every variant and fingerprint its outputs, by variant and stage."""
    acquisition = workspace / "acquisition"
    simulate_acquisition(acquisition, SIMULATION)
    prints: dict[str, dict[str, Any]] = {}
    default_corrected = None
    for index, (name, overrides) in enumerate(VARIANTS.items()):
        shared = None if changes_correction(overrides) else default_corrected
        corrected, fused = run_variant(acquisition, workspace / f"variant{index}", overrides, corrected=shared)
        default_corrected = default_corrected or corrected
        # a variant fusing the default's corrected volumes has no correction of its own to fingerprint
        prints[name] = {"fused": fingerprint(fused)} | ({} if shared else {"corrected": fingerprint(corrected)})
    return prints


def main() -> None:
    """Write ``tests/golden/outputs.json`` from the code as it is now (once, before a renovation)."""
    import tempfile

    with tempfile.TemporaryDirectory() as workspace:
        prints = fingerprint_variants(Path(workspace))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=GOLDEN.parent, capture_output=True, text=True, check=True).stdout.strip()
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps({"generated_from_commit": commit, "variants": prints}, indent=1, sort_keys=True) + "\n")
    count = sum(len(outputs) for variant in prints.values() for outputs in variant.values())
    print(f"{count} outputs of {len(prints)} variants fingerprinted -> {GOLDEN}", file=sys.stderr)


if __name__ == "__main__":
    main()
