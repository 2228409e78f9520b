"""Diagnostics off the critical path: what a pair's figures show is kept while it streams, drawn after publishing.

Estimation and fusion keep only reduced data (planes at display size, xz projections, histogram
samples, the applied transition map: a few MB whatever the stack depth) and save it as a preview
file beside the pair's figures once their own outputs are published. :func:`draw_pair_diagnostics`
turns the previews into the PNGs later (after every volume in the CLI, as a task of its own in the
service) and removes them; a preview left by an interrupted run is drawn by the next.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from isoview_core import diagnostics
from isoview_core.formats.atomic import atomic_output
from isoview_core.fusion.blending import blending_weights
from isoview_core.fusion.config import FusionConfig
from isoview_core.fusion.intensity import IntensityCorrection, apply_intensity_correction
from isoview_core.fusion.records import load_estimate
from isoview_core.layout import PREVIEW_SUFFIX, FusedPaths, PairId, diagnostics_dir
from isoview_core.numerics.projections import MaxProjections

ESTIMATE = "estimate"
"""Preview of an estimate: ``registration.png`` and ``intensity_correction.png``."""
FUSION = "fusion"
"""Preview of a fused pair: ``blending_weights.png``, ``fusion_result.png`` and ``fused_overview.png``."""
INTENSITY_SAMPLE_PLANES = 4
"""Every this many planes of the estimation slab enter the intensity histograms."""


def _save(path: Path, **arrays: np.ndarray) -> Path:
    """Write `arrays` to an ``.npz`` published atomically (readers never see half a preview)."""
    with atomic_output(path, overwrite=True) as partial, open(partial, "wb") as file:
        np.savez(file, **arrays)
    return path


def save_estimate_preview(
    paths: FusedPaths,
    reference: np.ndarray,
    registered: np.ndarray,
    moving_before: np.ndarray,
    middle: int,
    intensity: IntensityCorrection,
) -> Path:
    """Keep what the estimate's figures show, from the planes it was measured on.

    Parameters
    ----------
    paths : FusedPaths
        The pair's outputs.
    reference, registered : ndarray
        (Z, Y, X) planes of the reference and of the registered second camera around the transition.
    moving_before : ndarray
        Plane `middle` of the second camera before registration.
    middle : int
        The plane shown, an index into `reference`.
    intensity : IntensityCorrection
        The estimated backgrounds and ratio (applied to the histogram samples).

    Returns
    -------
    Path
        The preview file.
    """
    step = INTENSITY_SAMPLE_PLANES
    return _save(
        paths.preview(ESTIMATE),
        reference_plane=diagnostics.display_plane(reference[middle]),
        before_plane=diagnostics.display_plane(moving_before),
        after_plane=diagnostics.display_plane(registered[middle]),
        reference_samples=diagnostics.histogram_samples(reference[::step], partial(apply_intensity_correction, correction=intensity, camera=1)),
        before_samples=diagnostics.histogram_samples(registered[::step]),
        after_samples=diagnostics.histogram_samples(registered[::step], partial(apply_intensity_correction, correction=intensity, camera=2)),
    )


class FusionPreview:
    """What the fusion figures show, gathered slab by slab: one plane of each volume, xz projections, overview planes.

    Parameters
    ----------
    shape : tuple of int
        (Z, Y, X) of the pair's stacks.
    """

    def __init__(self, shape: tuple[int, int, int]) -> None:
        planes = shape[0]
        self.depth = planes
        self.middle = planes // 2
        self.overview = diagnostics.overview_plane_indices(planes)
        self.planes: list[np.ndarray] = []
        self.projections = [MaxProjections(shape) for _ in range(2)]  # of the reference and the registered camera
        self.overview_planes: dict[int, np.ndarray] = {}

    def add(self, first_plane: int, reference: np.ndarray, registered: np.ndarray, fused: np.ndarray) -> None:
        """Fold in one slab of the corrected reference, the registered second camera and the fused planes."""
        planes = range(first_plane, first_plane + len(fused))
        for projections, volume in zip(self.projections, (reference, registered)):
            projections.add(first_plane, volume)
        if self.middle in planes:
            self.planes = [np.array(diagnostics.display_plane(volume[self.middle - first_plane])) for volume in (reference, registered, fused)]
        for z in self.overview:
            if z in planes:
                self.overview_planes[z] = np.array(diagnostics.display_plane(fused[z - first_plane]))

    def save(self, paths: FusedPaths, fused_xz: np.ndarray, transition_map: np.ndarray) -> Path:
        """Write the preview, with the fused volume's xz projection and the applied transition map."""
        return _save(
            paths.preview(FUSION),
            depth=np.array(self.depth),
            middle=np.array(self.middle),
            planes=np.stack(self.planes),
            xz=np.stack([*(projections.xz for projections in self.projections), fused_xz]),
            overview_indices=np.array(self.overview),
            overview=np.stack([self.overview_planes[z] for z in self.overview]),
            transition_map=transition_map,
        )


def pending_previews(output_root: Path, pair: PairId) -> list[Path]:
    """The previews of `pair` not drawn yet."""
    paths = FusedPaths(output_root, pair)
    return [path for path in (paths.preview(ESTIMATE), paths.preview(FUSION)) if path.is_file()]


def pending_preview_timepoints(output_root: Path) -> list[int]:
    """The timepoints that have previews not drawn yet (left by a stopped run), sorted."""
    previews = diagnostics_dir(output_root).glob(f"TM*/*/*{PREVIEW_SUFFIX}")
    return sorted({int(path.parent.parent.name.removeprefix("TM")) for path in previews})


def draw_pair_diagnostics(output_root: Path, pair: PairId, config: FusionConfig) -> list[Path]:
    """Draw the figures of every preview the pair has, then remove the previews.

    Parameters
    ----------
    output_root : Path
        Root of the fused outputs.
    pair : PairId
        The pair.
    config : FusionConfig
        Its blending range and front flag (the blending-weights figure).

    Returns
    -------
    list of Path
        The PNGs written (none when nothing was pending).
    """
    paths = FusedPaths(output_root, pair)
    drawn: list[Path] = []
    if paths.preview(ESTIMATE).is_file():
        drawn += _draw_estimate(paths)
        paths.preview(ESTIMATE).unlink()
    if paths.preview(FUSION).is_file():
        drawn += _draw_fusion(paths, config)
        paths.preview(FUSION).unlink()
    return drawn


def _draw_estimate(paths: FusedPaths) -> list[Path]:
    """``registration.png`` and ``intensity_correction.png`` from the estimate's preview and its record."""
    estimate = load_estimate(paths.estimate)
    registration, intensity = estimate.registration, estimate.intensity
    with np.load(paths.preview(ESTIMATE)) as preview:
        return [
            diagnostics.plot_registration(
                paths.figure("registration"),
                preview["reference_plane"],
                preview["before_plane"],
                preview["after_plane"],
                offset_x_px=registration.offset_x_px,
                offset_y_px=registration.offset_y_px,
                rotation_deg=registration.rotation_deg,
                correlation=registration.correlation,
                method=registration.method,
            ),
            diagnostics.plot_intensity_correction(
                paths.figure("intensity_correction"),
                preview["reference_samples"],
                preview["before_samples"],
                preview["after_samples"],
                intensity_ratio=intensity.intensity_ratio,
                background_reference=intensity.background_reference,
                background_second=intensity.background_second,
                method=intensity.method,
            ),
        ]


def _draw_fusion(paths: FusedPaths, config: FusionConfig) -> list[Path]:
    """``blending_weights.png``, ``fusion_result.png`` and ``fused_overview.png`` from the fusion preview."""
    with np.load(paths.preview(FUSION)) as preview:
        planes, transition_map = int(preview["depth"]), preview["transition_map"]
        row, col = transition_map.shape[0] // 2, transition_map.shape[1] // 2
        centre_ray = blending_weights(transition_map[row : row + 1, col : col + 1], planes, config.blending_range_cameras, config.front_flag)
        return [
            diagnostics.plot_blending_weights(
                paths.figure("blending_weights"),
                transition_map,
                planes=planes,
                blending_range=config.blending_range_cameras,
                front_weights_profile=centre_ray[:, 0, 0],
            ),
            diagnostics.plot_fusion_result(paths.figure("fusion_result"), list(preview["planes"]), list(preview["xz"]), plane_index=int(preview["middle"])),
            diagnostics.plot_fused_overview(
                paths.figure("fused_overview"), dict(zip(preview["overview_indices"].tolist(), preview["overview"])), depth=planes
            ),
        ]

