"""Shared helpers of the fusion tests: simulated and corrected camera pairs, the simulator's pair
transform undone exactly, and what a fusion must blend, rebuilt from the corrected outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from isoview_core.correction.config import CorrectionConfig
from isoview_core.correction.stack_correction import (
    ArraySource,
    StackCorrection,
    correct_stack,
)
from isoview_core.formats.omezarr import read_ome_zarr
from isoview_core.fusion.config import FusionConfig
from isoview_core.fusion.intensity import (
    IntensityCorrection,
    apply_intensity_correction,
)
from isoview_core.fusion.orientation import orient_second_camera
from isoview_core.fusion.transform import (
    transform_plane,
    transform_volume,
)
from isoview_core.fusion.transition import transition_map
from isoview_core.layout import PairId, corrected_paths
from isoview_core.records import FusionParameters, load_record
from isoview_core.synthetic import (
    PairConfig,
    SimulationConfig,
    dark_frame,
    render_camera_stack,
)

#: Integer pair offset the fusion tests simulate, so it can be undone exactly without registration.
OFFSET_Y, OFFSET_X = -4, 6
#: Axial step / lateral pixel size of the simulated acquisitions (2.0 µm / 0.40625 µm).
SCALING = 4.92


def align_second(volume: np.ndarray) -> np.ndarray:
    """Flip the second camera's columns and undo the simulator's integer offset (zero fill)."""
    flipped = volume[..., ::-1]
    out = np.zeros_like(flipped)
    rows, cols = flipped.shape[-2:]
    out[..., max(OFFSET_Y, 0) : rows + min(OFFSET_Y, 0), max(OFFSET_X, 0) : cols + min(OFFSET_X, 0)] = flipped[
        ..., max(-OFFSET_Y, 0) : rows + min(-OFFSET_Y, 0), max(-OFFSET_X, 0) : cols + min(-OFFSET_X, 0)
    ]
    return out


class CollectingSink:
    """A correction sink that keeps the corrected stack in memory."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.volume = np.zeros(shape, dtype=np.uint16)

    def write(self, first_plane: int, slab: np.ndarray, labels: np.ndarray | None = None) -> None:
        self.volume[first_plane : first_plane + slab.shape[0]] = slab


def pair_simulation(
    shape: tuple[int, int, int], *, ratio: float, offset: tuple[float, float] = (OFFSET_Y, OFFSET_X), seed: int = 3
) -> SimulationConfig:
    """One timepoint whose pair (0, 1) has the row/column ``offset`` and ``ratio`` (pair (2, 3) is the identity)."""
    first = PairConfig(offset_y_px=offset[0], offset_x_px=offset[1], intensity_ratio=ratio)
    return SimulationConfig(shape=shape, timepoints=1, seed=seed, pairs=(first, PairConfig(offset_x_px=0, offset_y_px=0, intensity_ratio=1)))


def corrected_camera(config: SimulationConfig, camera: int, correction: CorrectionConfig | None = None) -> tuple[np.ndarray, StackCorrection]:
    """Camera ``camera``'s raw stack of timepoint 0, corrected in memory with its dark frame: the volume and the result."""
    sink = CollectingSink(config.shape)
    result = correct_stack(
        ArraySource(render_camera_stack(config, 0, camera)), config=correction, scaling=SCALING, background_frame=dark_frame(config, camera), sink=sink
    )
    return sink.volume, result


@dataclass(frozen=True)
class FusionInputs:
    """What a fusion with given applied parameters blends: both cameras in the reference frame, and the final map."""

    reference: np.ndarray
    """(Z, Y, X) uint16: camera 1, background-subtracted and intensity-corrected."""
    second: np.ndarray
    """(Z, Y, X) uint16: camera 2 oriented, transformed with the applied parameters, background-subtracted and intensity-corrected."""
    transition: np.ndarray
    """(Y, X) final transition map (1-based, 0 = no plane) from the registered coordinate masks."""


def fusion_inputs(corrected_root: Path, pair: PairId, config: FusionConfig, applied: FusionParameters) -> FusionInputs:
    """Rebuild, from the corrected volumes, masks and records on disk, what ``fuse_pair`` must blend (§3.6-§3.9).

    Segmented data: each camera's background is the last element of its min-intensity record,
    and the applied ratio scales the dimmer camera.
    """
    paths = [corrected_paths(corrected_root, pair.specimen, pair.timepoint, camera, pair.channel) for camera in pair.cameras]
    reference, second = (np.asarray(read_ome_zarr(p.volume)[:]) for p in paths)
    first_map, second_map = (tifffile.imread(p.coordinate_mask("xy")) for p in paths)
    planes = reference.shape[0]
    orientation = config.orientation_by_view.get(pair.view, config.orientation)
    motion = (applied.offset_y_px, applied.offset_x_px, applied.rotation_deg)
    second = transform_volume(orient_second_camera(second, orientation), *motion)
    second_map = transform_plane(orient_second_camera(second_map, orientation, planes=planes), *motion, order="nearest")
    transition = transition_map(
        first_map, second_map, planes=planes, blending_range=config.blending_range_cameras, fusion_type=config.fusion_type, transition_plane=config.transition_plane
    )
    background_reference, background_second = (load_record(p.record).min_intensity[-1] for p in paths)
    correction = IntensityCorrection.from_ratio(
        applied.intensity_ratio, method="table", background_reference=background_reference, background_second=background_second
    )
    return FusionInputs(
        apply_intensity_correction(reference, correction, camera=1), apply_intensity_correction(second, correction, camera=2), transition
    )


def assert_seam_follows_the_map(fused: np.ndarray, inputs: FusionInputs, blending_range: int) -> None:
    """The §3.10 blend of ``inputs`` (camera 1 in front): camera 1 alone in front of the blend zone, camera 2 alone
    behind it, the linear weights inside it, and 0 in columns without a transition plane (``empty_mask_fill="zero"``)."""
    m = inputs.transition.astype(np.int64)[None]
    k = np.arange(fused.shape[0])[:, None, None]
    has_plane = np.broadcast_to(m > 0, fused.shape)
    front = has_plane & (k < m - blending_range)
    back = has_plane & (k >= m + blending_range)
    zone = has_plane & ~front & ~back
    assert front.any() and back.any() and zone.any()
    np.testing.assert_array_equal(fused[front], inputs.reference[front])
    np.testing.assert_array_equal(fused[back], inputs.second[back])
    assert not fused[~has_plane].any()
    j = (k - m).astype(np.float64)  # -B .. B - 1 in the zone; front weight 1 -> 0.5 before the plane, 0.5 -> 0 from it
    weight = np.where(j < 0, 1 - 0.5 * (j + blending_range) / (blending_range - 1), 0.5 - 0.5 * j / (blending_range - 1))
    weight = np.broadcast_to(weight, fused.shape)[zone]
    expected = weight * inputs.reference[zone] + (1 - weight) * inputs.second[zone]
    assert np.abs(fused[zone] - expected).max() <= 0.5 + 1e-3  # one rounding of the weighted sum
