"""Drivers of one camera pair at one timepoint: estimate its parameters, then fuse with applied ones.

Estimation (clusterMF, §3): the corrected stacks of the two cameras of the pair are read, the
second camera is oriented (§3.4), the pre-registration transition map positions the registration
slab (§3.5-§3.7), the registered second camera's map gives the final transition map (§3.6) and
the intensity ratio is measured around it (§3.9). The result is an ``estimate.json``.

Fusion (clusterTF, §4.5): with the applied (temporally smoothed) parameters the second camera is
transformed plane by plane, both cameras are background-subtracted and intensity-corrected and
blended slab by slab into OME-Zarr, so memory stays at a few slabs. The ``fusion.json`` beside
the volume is written last: it marks the pair as done.

The array work is the fusion stage's (:mod:`isoview_core.fusion.pair`); this module reads the
corrected stacks and writes the outputs where :mod:`isoview_core.layout` says.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import numpy as np
import tifffile

from isoview_core.errors import IsoviewError
from isoview_core.formats.atomic import write_text_atomically
from isoview_core.formats.codecs import CodecConfig
from isoview_core.formats.omezarr import (
    OmeZarrWriter,
    read_ome_zarr,
    read_ome_zarr_planes,
)
from isoview_core.formats.tiff import write_tiff
from isoview_core.fusion.background import fusion_backgrounds
from isoview_core.fusion.config import FusionConfig, ViewOrientation
from isoview_core.fusion.intensity import (
    IntensityCorrection,
    intensity_correction,
)
from isoview_core.fusion.orientation import orient_second_camera
from isoview_core.fusion.pair import (
    applied_intensity,
    fuse_slab,
    pair_transition_map,
    planes_near_surface,
    register_in_place,
    registered_map,
    shift_map,
)
from isoview_core.fusion.records import FusionRecord, PairEstimate
from isoview_core.fusion.registration import estimate_registration
from isoview_core.fusion.transition import transition_plane_summary
from isoview_core.layout import FusedPaths, PairId, corrected_paths
from isoview_core.numerics.projections import MaxProjections
from isoview_core.pipeline.heap import releases_free_memory
from isoview_core.pipeline.previews import FusionPreview, save_estimate_preview
from isoview_core.records import CorrectedStackRecord, FusionParameters, load_record

logger = logging.getLogger(__name__)


class PairData:
    """Lazy access to the corrected stacks, records and coordinate masks of a camera pair."""

    def __init__(self, corrected_root: Path, pair: PairId, orientation: ViewOrientation) -> None:
        self.pair = pair
        self.orientation = orientation
        self._paths = [
            corrected_paths(corrected_root, pair.specimen, pair.timepoint, camera, pair.channel) for camera in pair.cameras
        ]
        for paths in self._paths:
            if not paths.record.is_file():
                raise IsoviewError(f"{paths.record}: corrected stack missing (run the correction of TM{pair.timepoint:06d} first)")
        self.records: list[CorrectedStackRecord] = [load_record(paths.record) for paths in self._paths]
        self.shape: tuple[int, int, int] = tuple(read_ome_zarr(self._paths[0].volume).shape)
        self.second_stored_shape: tuple[int, int, int] = tuple(read_ome_zarr(self._paths[1].volume).shape)
        if self.second_stored_shape != self.shape and not orientation.rotation:
            raise IsoviewError(
                f"{self._paths[1].volume}: shape {self.second_stored_shape} differs from camera {pair.cameras[0]}'s {self.shape}"
            )

    def reference_planes(self, start: int, stop: int, *, out: np.ndarray | None = None) -> np.ndarray:
        """Planes ``[start, stop)`` of the reference camera (read into ``out`` when given)."""
        return read_ome_zarr_planes(self._paths[0].volume, start, stop, out=out)

    @property
    def voxel_size_um(self) -> tuple[float, float, float]:
        return tuple(self.records[0].voxel_size_um)

    @property
    def scaling(self) -> float:
        z, y, _ = self.voxel_size_um
        return z / y

    @cached_property
    def coordinate_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """1-based xy coordinate masks of both cameras, the second oriented (§3.5, segmented data)."""
        first = tifffile.imread(self._paths[0].coordinate_mask("xy"))
        second = tifffile.imread(self._paths[1].coordinate_mask("xy"))
        return first, orient_second_camera(second, self.orientation, planes=self.shape[0])

    def second_planes(self, start: int, stop: int, *, out: np.ndarray | None = None) -> np.ndarray:
        """Planes ``[start, stop)`` of the second camera in the reference orientation.

        Without ``out``, an oriented copy. With ``out`` (a buffer of the planes as stored,
        ``(stop - start, *second_stored_shape[1:])``), the planes are read into it and returned
        as an oriented view of it (flips as negative strides), without a copy.
        """
        planes = self.shape[0]
        first, last = (planes - stop, planes - start) if self.orientation.flip_z else (start, stop)
        stored = read_ome_zarr_planes(self._paths[1].volume, first, last, out=out)
        return orient_second_camera(stored, self.orientation, copy=out is None)

    def min_intensity_records(self) -> tuple[list[float], list[float]]:
        return self.records[0].min_intensity, self.records[1].min_intensity


@releases_free_memory
def estimate_pair_parameters(
    corrected_root: Path,
    pair: PairId,
    config: FusionConfig,
    *,
    output_root: Path,
    orientation: ViewOrientation | None = None,
    save_diagnostics: bool = True,
) -> PairEstimate:
    """Estimate the fusion parameters of one camera pair at one timepoint and write ``estimate.json``.

    Parameters
    ----------
    corrected_root : Path
        Root of the corrected OME-Zarr volumes (``<acquisition>.corrected``).
    pair : PairId
        Timepoint, cameras, view and channel.
    config : FusionConfig
        Fusion settings.
    output_root : Path
        Root of the fused outputs (``<acquisition>.fused``).
    orientation : ViewOrientation, optional
        Second-camera orientation (default: the config's, or its per-view override).
    save_diagnostics : bool
        Keep the data of ``registration.png`` and ``intensity_correction.png`` (a preview that
        :func:`~isoview_core.pipeline.previews.draw_pair_diagnostics` draws).

    Returns
    -------
    PairEstimate
        Offsets, rotation, intensity ratio and transition plane, with the registration and
        intensity details; also written to ``<stem>.estimate.json`` with the transition maps.
    """
    tic = time.perf_counter()
    orientation = orientation or config.orientation_by_view.get(pair.view, config.orientation)
    data = PairData(corrected_root, pair, orientation)
    paths = FusedPaths(output_root, pair)
    paths.folder.mkdir(parents=True, exist_ok=True)
    planes = data.shape[0]
    first_map, second_map = data.coordinate_maps
    pre_map = pair_transition_map(config, first_map, second_map, planes, padded=False)
    # Only the planes around the transition surface enter registration and intensity estimation.
    first, last = planes_near_surface(config, (first_map, second_map, pre_map), planes)
    reference = data.reference_planes(first, last)
    # The second camera's planes as stored, used through the oriented view (an oriented copy cost 0.3 CPU-s per pair
    # of 64 x 2048 x 2048 cameras); registered in place, plane by plane, through the same view.
    second = data.second_planes(first, last, out=np.empty((last - first, *data.second_stored_shape[1:]), np.uint16))
    timings = {"read": time.perf_counter() - tic}

    tic = time.perf_counter()
    try:
        registration = estimate_registration(
            reference, second, transition_map=shift_map(pre_map, first), scaling=data.scaling, config=config, method=config.registration_method
        )
    except ValueError as error:  # e.g. no overlap left: name the pair, keep the service going
        raise IsoviewError(f"{FusedPaths(output_root, pair).estimate}: {error}") from error
    timings["registration"] = time.perf_counter() - tic

    tic = time.perf_counter()
    middle = (last - first) // 2
    moving_before = second[middle].copy()
    estimated_registration = register_in_place(second, registration)
    final_map = pair_transition_map(config, first_map, registered_map(estimated_registration, second_map), planes, padded=True)
    backgrounds = fusion_backgrounds(config, min_intensity_records=data.min_intensity_records(), reference=reference, second=second)
    intensity = intensity_correction(reference, second, shift_map(final_map, first), config, backgrounds=backgrounds)
    timings["intensity"] = time.perf_counter() - tic

    parameters = estimated_registration.model_copy(
        update={"intensity_ratio": intensity.intensity_ratio, "transition_z": transition_plane_summary(final_map)}
    )
    write_tiff(paths.pre_registration_map, pre_map, overwrite=True)
    write_tiff(paths.transition_map, final_map, overwrite=True)
    estimate = PairEstimate(
        timepoint=pair.timepoint,
        cameras=pair.cameras,
        view=pair.view,
        channel=pair.channel,
        parameters=parameters,
        registration=registration,
        intensity=intensity,
        timings_s={key: round(value, 3) for key, value in timings.items()},
    )
    write_text_atomically(paths.estimate, estimate.model_dump_json(indent=2))
    if save_diagnostics:  # kept once the estimate is published, drawn later (pipeline.previews)
        save_estimate_preview(paths, reference, second, moving_before, middle, intensity)
    return estimate


def _fused_slabs(
    data: PairData,
    config: FusionConfig,
    applied: FusionParameters,
    intensity: IntensityCorrection,
    transition: np.ndarray,
    slab_planes: int,
    timings: dict[str, float],
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """``(first plane, reference, registered second, fused)`` of each slab of ``slab_planes`` planes.

    Both cameras corrected (background, intensity), the second oriented and transformed with the
    applied parameters, then blended. The planes live in three slab buffers allocated once and
    reused (valid until the next slab): the second camera is read into its buffer as stored and
    transformed straight from the oriented view of it, so the flips cost no copy, and the fused
    planes go to that buffer once it has been transformed (unless a 90-degree turn of non-square
    planes gives it another shape). Seconds spent reading and fusing are added to
    ``timings["read"]`` and ``timings["fuse"]``.
    """
    planes, rows, cols = data.shape
    depth = min(slab_planes, planes)
    reference_buffer, second_buffer = (np.empty((depth, rows, cols), np.uint16) for _ in range(2))
    stored_buffer = np.empty((depth, *data.second_stored_shape[1:]), np.uint16)
    fused_buffer = stored_buffer if stored_buffer.shape == reference_buffer.shape else np.empty_like(reference_buffer)
    for start in range(0, planes, slab_planes):
        stop = min(planes, start + slab_planes)
        count = stop - start
        tic = time.perf_counter()
        reference = data.reference_planes(start, stop, out=reference_buffer[:count])
        stored = data.second_planes(start, stop, out=stored_buffer[:count])
        second = second_buffer[:count]
        timings["read"] += time.perf_counter() - tic
        tic = time.perf_counter()
        fused = fuse_slab(
            reference,
            stored,
            config,
            applied,
            intensity,
            transition,
            first_plane=start,
            registered=second,
            out=fused_buffer[:count],
        )
        timings["fuse"] += time.perf_counter() - tic
        yield start, reference, second, fused


@releases_free_memory
def fuse_pair(
    corrected_root: Path,
    pair: PairId,
    config: FusionConfig,
    *,
    output_root: Path,
    estimated: FusionParameters,
    applied: FusionParameters,
    window: tuple[int, int],
    codec: CodecConfig | None = None,
    pyramid_levels: int = 0,
    orientation: ViewOrientation | None = None,
    slab_planes: int = 16,
    overwrite: bool = False,
    save_diagnostics: bool = True,
) -> FusionRecord:
    """Fuse one camera pair at one timepoint with the applied parameters, streaming slab by slab.

    The second camera is transformed with the applied offsets and rotation, the transition map
    is rebuilt from the registered coordinate masks, both cameras are background-subtracted and
    the second (or first) is scaled by the applied intensity ratio, and the two are blended.
    ``fusion.json`` (the contract) is written last.
    """
    orientation = orientation or config.orientation_by_view.get(pair.view, config.orientation)
    data = PairData(corrected_root, pair, orientation)
    paths = FusedPaths(output_root, pair)
    paths.folder.mkdir(parents=True, exist_ok=True)
    planes = data.shape[0]
    first_map, second_map = data.coordinate_maps
    final_map = pair_transition_map(config, first_map, registered_map(applied, second_map), planes, padded=True)
    intensity = applied_intensity(config, applied, fusion_backgrounds(config, min_intensity_records=data.min_intensity_records()))
    projections = MaxProjections(data.shape)
    preview = FusionPreview(data.shape) if save_diagnostics else None
    timings = {"read": 0.0, "fuse": 0.0, "write": 0.0, "preview": 0.0}
    attributes = {
        "specimen": pair.specimen,
        "timepoint": pair.timepoint,
        "cameras": list(pair.cameras),
        "view": pair.view,
        "channel": pair.channel,
        "applied": applied.model_dump(),
        "window": list(window),
    }
    with OmeZarrWriter(
        paths.volume,
        data.shape,
        voxel_size_um=data.voxel_size_um,
        codec=codec,
        pyramid_levels=pyramid_levels,
        attributes=attributes,
        overwrite=overwrite,
    ) as writer:
        for start, reference, second, fused in _fused_slabs(data, config, applied, intensity, final_map, slab_planes, timings):
            tic = time.perf_counter()
            writer.write(start, fused)
            projections.add(start, fused)
            timings["write"] += time.perf_counter() - tic
            if preview is not None:
                tic = time.perf_counter()
                preview.add(start, reference, second, fused)
                timings["preview"] += time.perf_counter() - tic
    for name, image in projections.as_dict().items():
        write_tiff(paths.projection(name), image, overwrite=True)
    record = FusionRecord(
        timepoint=pair.timepoint,
        cameras=pair.cameras,
        view=pair.view,
        channel=pair.channel,
        blending=config.fusion_type,
        window=window,
        estimated=estimated,
        applied=applied,
        timings_s={key: round(value, 3) for key, value in timings.items()},
    )
    write_text_atomically(paths.record, record.model_dump_json(indent=2))
    if preview is not None:  # kept once the fused volume and its record are published, drawn later (pipeline.previews)
        preview.save(paths, projections.xz, final_map)
    return record

