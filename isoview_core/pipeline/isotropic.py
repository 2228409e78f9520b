"""The isotropic volume of each timepoint (issue 16): register its two fused views, smooth the transform over time, fuse.

The fused VW00 and VW90 of a timepoint are registered (:func:`~isoview_core.isotropic.register_views`, written to
``registration.json``); the transform applied at timepoint ``t`` is the robust LOESS of the registrations of its
window ``t - w .. t + w`` (:func:`~isoview_core.temporal.transforms.applied_transform`, the windowing of the camera
pairs), so one bad registration does not jerk the movie; a window with no reliable registration applies the nominal
geometry and says so in the record. The views are then fused (optionally deconvolved) onto the isotropic grid of
VW00's frame and written as OME-Zarr; ``isotropic.json`` is written last and marks the volume done, and the volume
is published in the channels' live time series. A volume whose
applied transform and window equal its record's is never made twice, so reruns, overlapping windows and a restarted
service make each volume exactly once.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.formats.atomic import PARTIAL_MARKER, is_complete, remove_stale_partials, write_text_atomically
from isoview_core.formats.omezarr import ome_zarr_voxel_size, read_ome_zarr, write_ome_zarr
from isoview_core.formats.scratch import ScratchVolume
from isoview_core import diagnostics
from isoview_core.isotropic import nominal_vw90_to_vw00, register_views, resample_onto_grid, rotation_angle_deg, volume_centre_um
from isoview_core.isotropic.deconvolution import deconvolve_views
from isoview_core.isotropic.fusion import CONTENT_BIN, IsotropicVolume, block_region, content_grid, fuse_views
from isoview_core.isotropic.geometry import isotropic_grid
from isoview_core.isotropic.records import IsotropicRecord, RegistrationEstimate, load_isotropic_record, load_registration
from isoview_core.layout import (
    FUSED_VOLUME_SUFFIX,
    ISOTROPIC_RECORD_SUFFIX,
    REGISTRATION_SUFFIX,
    FusedPaths,
    IsotropicId,
    IsotropicPaths,
    PairId,
    fused_pair_of,
    isotropic_series_files,
    output_files,
    output_timepoint_folder,
    transforms_over_time_figure,
)
from isoview_core.numerics.projections import MaxProjections
from isoview_core.pipeline.parallel import submit_each, worker_count, worker_pool
from isoview_core.pipeline.series import update_isotropic_series
from isoview_core.temporal.transforms import applied_transform

logger = logging.getLogger(__name__)

WORKER_BYTES = 2 << 30
"""Memory of one worker: the registration's regions and the fusion's blocks in flight, not the views (scratch files);
benchmarks/results/isotropic_command.json measures it."""

APPLIED_TOLERANCE = 1e-6
"""Largest change of an applied transform's entries (rotation, um) that leaves a made volume as it is."""


@dataclass(frozen=True)
class IsotropicInputs:
    """The two fused views one isotropic volume is made of."""

    volume_id: IsotropicId
    view00: Path
    view90: Path


@dataclass(frozen=True)
class IsotropicJob:
    """One volume to make: its views, the transform to apply, its window and where the transform comes from."""

    inputs: IsotropicInputs
    applied: tuple[tuple[float, ...], ...]
    window: tuple[int, int]
    source: str


@dataclass
class IsotropicPlan:
    """The outcome of smoothing: volumes to make, volumes made with the same transform, volumes waiting, errors."""

    jobs: list[IsotropicJob] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class IsotropicReport:
    """What an isotropic run did: registrations, volumes made, skipped and waiting, one-line errors."""

    registered: list[RegistrationEstimate] = field(default_factory=list)
    made: list[IsotropicRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def timepoint_views(fused_root: Path, specimen: int, timepoint: int) -> list[IsotropicInputs]:
    """The fused views of a timepoint paired into isotropic volumes: the k-th VW00 channel with the k-th VW90 one.

    Only complete volumes count (a fused volume is published whole, by a rename): one still being fused is not there.
    """
    by_view: dict[int, list[PairId]] = {0: [], 90: []}
    for path in sorted(output_timepoint_folder(fused_root, specimen, timepoint).glob(f"*{FUSED_VOLUME_SUFFIX}")):
        pair = fused_pair_of(path)
        if pair is not None and pair.view in by_view and is_complete(path):
            by_view[pair.view].append(pair)
    views00, views90 = (sorted(by_view[view], key=lambda pair: pair.channel) for view in (0, 90))
    return [
        IsotropicInputs(
            IsotropicId(specimen, timepoint, (pair00.channel, pair90.channel)), FusedPaths(fused_root, pair00).volume, FusedPaths(fused_root, pair90).volume
        )
        for pair00, pair90 in zip(views00, views90)
    ]


def fused_timepoints(fused_root: Path, specimen: int) -> list[int]:
    """Timepoints of a specimen with at least one fused volume."""
    return sorted({pair.timepoint for pair in map(fused_pair_of, output_files(fused_root, FUSED_VOLUME_SUFFIX, specimen)) if pair is not None})


def _read_view(path: Path) -> tuple[Any, tuple[float, float, float]]:
    """A fused view as its zarr array (read where sliced) and its voxel size; a one-line error naming the file if it
    cannot be opened."""
    try:
        return read_ome_zarr(path), ome_zarr_voxel_size(path)
    except (OSError, ValueError) as error:
        raise IsoviewError(f"{path}: cannot read the fused view: {error}") from error


def register_timepoint(config: ProcessingConfig, inputs: IsotropicInputs) -> RegistrationEstimate:
    """Register VW90 onto VW00 at one timepoint, from the nominal geometry, and write ``registration.json``.

    Parameters
    ----------
    config : ProcessingConfig
        Isotropic root and registration settings (``config.isotropic.registration``).
    inputs : IsotropicInputs
        The two fused views, read only where the registration's regions lie.

    Returns
    -------
    RegistrationEstimate
        The estimate as written. Starting from the nominal transform at every timepoint (not the previous estimate)
        keeps each estimate independent of the others, so a live and a batch run register alike.
    """
    (vw00, voxel00), (vw90, voxel90) = _read_view(inputs.view00), _read_view(inputs.view90)
    try:  # only the registration's regions are read (IsotropicConfig.region_voxels)
        registration = register_views(vw00, voxel00, vw90, voxel90, config=config.isotropic.registration)
    except (OSError, ValueError) as error:
        raise IsoviewError(f"{inputs.view00.parent}: cannot register {inputs.view90.name} onto {inputs.view00.name}: {error}") from error
    volume_id = inputs.volume_id
    estimate = RegistrationEstimate(
        specimen=volume_id.specimen,
        timepoint=volume_id.timepoint,
        channels=volume_id.channels,
        views=(inputs.view00.name, inputs.view90.name),
        voxel_um=(voxel00, voxel90),
        shapes=(vw00.shape, vw90.shape),
        reference_point_um=tuple(volume_centre_um(vw00.shape, voxel00).tolist()),
        registration=registration,
    )
    write_text_atomically(IsotropicPaths(config.resolved_isotropic_dir(), volume_id).registration, estimate.model_dump_json(indent=2))
    return estimate


def registrations_to_make(config: ProcessingConfig, views: list[IsotropicInputs]) -> list[IsotropicInputs]:
    """The volumes without a ``registration.json`` yet (all of them with ``overwrite``)."""
    root = config.resolved_isotropic_dir()
    return [inputs for inputs in views if config.overwrite or not IsotropicPaths(root, inputs.volume_id).registration.is_file()]


def plan_isotropic(
    config: ProcessingConfig, views: list[IsotropicInputs], *, first_timepoint: int, last_timepoint: int | None
) -> IsotropicPlan:
    """Smooth the registrations on disk over time and decide which volumes to (re)make with which transform.

    Parameters
    ----------
    config : ProcessingConfig
        Isotropic root and settings, temporal settings and ``overwrite``.
    views : list of IsotropicInputs
        The volumes to consider.
    first_timepoint, last_timepoint : int
        The acquisition's first and last timepoints; ``last_timepoint=None`` while it is recorded: a volume whose
        window is not complete yet waits.

    Returns
    -------
    IsotropicPlan
        A volume whose record holds the same applied transform and window is skipped (unless ``overwrite``).
    """
    root = config.resolved_isotropic_dir()
    plan = IsotropicPlan()
    series: dict[tuple[int, tuple[int, int]], dict[int, RegistrationEstimate]] = {}
    for inputs in views:
        paths = IsotropicPaths(root, inputs.volume_id)
        key = (inputs.volume_id.specimen, inputs.volume_id.channels)
        if key not in series:
            series[key] = {
                estimate.timepoint: estimate for estimate in map(load_registration, isotropic_series_files(root, inputs.volume_id, REGISTRATION_SUFFIX))
            }
        estimates = series[key]
        own = estimates.get(inputs.volume_id.timepoint)
        if own is None:
            plan.errors.append(f"{paths.registration}: no registration for this timepoint; its volume cannot be made")
            continue
        try:
            windowed = applied_transform(
                inputs.volume_id.timepoint,
                {t: estimate.matrix() for t, estimate in estimates.items()},
                reference_point_um=np.array(own.reference_point_um),
                config=config.temporal,
                first_timepoint=first_timepoint,
                last_timepoint=last_timepoint,
                qualities={t: _quality(estimate) for t, estimate in estimates.items()},
                min_quality=config.isotropic.registration.min_quality,
                fallback=nominal_vw90_to_vw00(own.shapes[1], own.voxel_um[1], own.shapes[0], own.voxel_um[0]),
            )
        except ValueError as error:
            plan.errors.append(f"{paths.registration}: {error}")
            continue
        applied = tuple(tuple(row) for row in windowed.applied.tolist())
        if last_timepoint is None and not windowed.final:
            plan.waiting.append(inputs.volume_id.stem)
        elif not config.overwrite and _unchanged(paths.record, applied, windowed.window):
            plan.skipped.append(inputs.volume_id.stem)
        else:
            plan.jobs.append(IsotropicJob(inputs, applied, windowed.window, "smoothed" if windowed.smoothed else "nominal"))
    return plan


def _quality(estimate: RegistrationEstimate) -> float:
    """The registration's NCC as a quality in [0, 1] (a failed NCC, NaN, is 0)."""
    quality = estimate.registration.quality
    return float(np.clip(quality, 0.0, 1.0)) if np.isfinite(quality) else 0.0


def _unchanged(record_path: Path, applied: tuple[tuple[float, ...], ...], window: tuple[int, int]) -> bool:
    if not record_path.is_file():
        return False
    record = load_isotropic_record(record_path)
    return record.window == window and np.allclose(record.applied_matrix(), applied, rtol=0, atol=APPLIED_TOLERANCE)


class _Rounded:
    """A float32 volume seen as uint16, rounded and clipped slab by slab as the writer reads it."""

    dtype = np.dtype(np.uint16)

    def __init__(self, values: np.ndarray) -> None:
        self.values = values
        self.shape = values.shape

    def __getitem__(self, key: slice) -> np.ndarray:
        return np.clip(np.rint(self.values[key]), 0, np.iinfo(np.uint16).max).astype(np.uint16)


def make_isotropic_volume(config: ProcessingConfig, job: IsotropicJob) -> IsotropicRecord:
    """Fuse (and deconvolve, if configured) one timepoint's views with the applied transform; write volume, then record.

    Parameters
    ----------
    config : ProcessingConfig
        Isotropic root and settings, output codec.
    job : IsotropicJob
        The views, the transform and its window.

    Returns
    -------
    IsotropicRecord
        The record written beside the volume (``isotropic.json``, last). The volume is uint16 (the views' unit,
        rounded and clipped), on the isotropic grid of VW00's frame, with ``pyramid_levels`` extra levels. The views
        (decompressed and resampled onto the grid), the float32 grid and the deconvolution's second estimate are held
        in scratch files beside the output (:class:`~isoview_core.formats.scratch.ScratchVolume`), not in memory: the memory is that of the
        blocks in flight and of one slab of the writer, whatever the volumes' size.
    """
    stage = config.isotropic
    paths = IsotropicPaths(config.resolved_isotropic_dir(), job.inputs.volume_id)
    timings: dict[str, float] = {}
    transform = np.array(job.applied)
    paths.folder.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(paths.folder)  # the scratch of a killed run (gigabytes), untouched for an hour
    try:
        with tempfile.TemporaryDirectory(prefix=f".isotropic-grid{PARTIAL_MARKER}", dir=paths.folder) as scratch:
            folder = Path(scratch)
            clock = time.perf_counter()
            (zarr00, voxel00), (zarr90, voxel90) = _read_view(job.inputs.view00), _read_view(job.inputs.view90)
            vw00, vw90 = (_scratch_copy(folder / name, array, path) for name, array, path in (("vw00.raw", zarr00, job.inputs.view00), ("vw90.raw", zarr90, job.inputs.view90)))
            timings["read"] = time.perf_counter() - clock
            grid_shape = isotropic_grid(vw00.shape, voxel00, stage.registration.resolved_voxel_um(voxel00, voxel90)).shape
            grid, samples00, samples90 = (ScratchVolume.create(folder / name, grid_shape, np.float32) for name in ("grid.raw", "vw00-on-grid.raw", "vw90-on-grid.raw"))
            tick = time.perf_counter()
            arguments = (vw00, voxel00, vw90, voxel90, transform)
            if stage.deconvolution_iterations:
                psf = stage.psf(voxel00, voxel90)
                deconvolution = stage.deconvolution.model_copy(update={"iterations": stage.deconvolution_iterations})
                estimate = ScratchVolume.create(folder / "estimate.raw", grid_shape, np.float32)
                volume = deconvolve_views(
                    *arguments,
                    psf00=psf,
                    psf90=psf,
                    config=stage.registration,
                    fusion=stage.fusion,
                    deconvolution=deconvolution,
                    out=grid,
                    scratch=estimate,
                    samples=(samples00, samples90),
                )
            else:
                volume = fuse_views(*arguments, config=stage.registration, fusion=stage.fusion, out=grid, samples=(samples00, samples90))
            timings["fuse"] = time.perf_counter() - tick
            tick = time.perf_counter()
            write_ome_zarr(
                paths.volume,
                _Rounded(volume.values),
                voxel_size_um=(volume.voxel_um,) * 3,
                codec=config.output.codec,
                pyramid_levels=stage.pyramid_levels,
                attributes={"isotropic": {"window": list(job.window), "source": job.source, "vw90_to_vw00": [list(row) for row in job.applied]}},
                overwrite=True,
            )
            timings["write"] = time.perf_counter() - tick
            estimate_on_disk = load_registration(paths.registration) if paths.registration.is_file() else None
            record = IsotropicRecord(
                specimen=job.inputs.volume_id.specimen,
                timepoint=job.inputs.volume_id.timepoint,
                channels=job.inputs.volume_id.channels,
                window=job.window,
                source=job.source,
                estimated=estimate_on_disk.registration.vw90_to_vw00 if estimate_on_disk else None,
                quality=estimate_on_disk.registration.quality if estimate_on_disk else None,
                applied=job.applied,
                voxel_um=volume.voxel_um,
                shape=grid_shape,
                deconvolution_iterations=stage.deconvolution_iterations,
                timings_s=timings,
            )
            write_text_atomically(paths.record, record.model_dump_json(indent=2))
            update_isotropic_series(config.resolved_isotropic_dir(), job.inputs.volume_id)
            if config.save_diagnostics:  # after publishing: the figure never delays the volume, nor fails it
                try:
                    _draw_projections(config, job, paths, volume, {"VW00": (vw00, voxel00, np.eye(4)), "VW90": (vw90, voxel90, transform)})
                except OSError as error:
                    logger.warning("%s: not drawn: %s", paths.projections_figure, error)
    except OSError as error:  # scratch space or the output folder (a disk filling up): one line naming the volume
        raise IsoviewError(f"{paths.volume}: cannot make the isotropic volume: {error}") from error
    return record


def _scratch_copy(path: Path, view: Any, source: Path) -> ScratchVolume:
    """A fused view decompressed into a scratch file, a one-line error naming the view if it cannot be decoded (an
    OSError, e.g. the scratch disk filling up, is the caller's to report)."""
    try:
        return ScratchVolume.copy_of(path, view)
    except ValueError as error:
        raise IsoviewError(f"{source}: cannot read the fused view: {error}") from error


def _draw_projections(
    config: ProcessingConfig, job: IsotropicJob, paths: IsotropicPaths, volume: IsotropicVolume, views: dict[str, tuple[ScratchVolume, tuple[float, float, float], np.ndarray]]
) -> None:
    """The projections figure: both views and the volume on the grid 2x coarser than the output (a figure needs no
    full-resolution copy of each view, which would cost as much as the fusion), each computed slab by slab."""
    coarse = content_grid(volume.grid)
    block_size = config.isotropic.registration.block_size

    def view_slab(view: tuple[ScratchVolume, tuple[float, float, float], np.ndarray]) -> Callable[[slice], np.ndarray]:
        full = (slice(0, coarse.shape[1]), slice(0, coarse.shape[2]))
        return lambda planes: resample_onto_grid(*view, block_region(coarse, (planes, *full), (0, 0, 0))[0], order=1, block_size=block_size)

    projections = {name: _slab_projections(view_slab(view), coarse.shape) for name, view in views.items()}
    # every CONTENT_BIN-th row and column of the volume's full projections
    fused = [projection[::CONTENT_BIN, ::CONTENT_BIN] for projection in _slab_projections(lambda planes: volume.values[planes], volume.grid.shape)]
    diagnostics.plot_isotropic_projections(
        paths.projections_figure, projections | {"isotropic": fused}, title=f"{job.inputs.volume_id.stem}: views and isotropic volume"
    )


def _slab_projections(read_slab: Callable[[slice], np.ndarray], shape: tuple[int, int, int], slab_planes: int = 16) -> list[np.ndarray]:
    """Maximum projections over z, y and x of a (z, y, x) volume read ``slab_planes`` planes at a time."""
    projections = MaxProjections(shape, np.dtype(np.float32))
    for start in range(0, shape[0], slab_planes):
        projections.add(start, read_slab(slice(start, min(start + slab_planes, shape[0]))))
    return [projections.xy, projections.yz.T, projections.xz.T]


def draw_transforms_over_time(config: ProcessingConfig, volume_id: IsotropicId) -> Path | None:
    """``transforms_over_time_CHN00_CHN01.png``: per timepoint, the registration estimated and applied, as the shift
    of VW00's centre and the angle away from the nominal geometry."""
    root = config.resolved_isotropic_dir()
    estimates = {e.timepoint: e for e in map(load_registration, isotropic_series_files(root, volume_id, REGISTRATION_SUFFIX))}
    records = {r.timepoint: r for r in map(load_isotropic_record, isotropic_series_files(root, volume_id, ISOTROPIC_RECORD_SUFFIX))}
    if not records:
        return None
    first = estimates.get(min(records)) or next(iter(estimates.values()))
    nominal = nominal_vw90_to_vw00(first.shapes[1], first.voxel_um[1], first.shapes[0], first.voxel_um[0])
    reference = np.append(first.reference_point_um, 1.0)
    names = ("shift z (um)", "shift y (um)", "shift x (um)", "rotation off nominal (deg)")

    def values(matrix: np.ndarray | None) -> list[float | None]:
        if matrix is None:
            return [None] * len(names)
        shift = matrix @ np.linalg.solve(nominal, reference) - reference
        return [*shift[:3].tolist(), rotation_angle_deg(matrix[:3, :3] @ nominal[:3, :3].T)]

    timepoints = sorted(set(records) | set(estimates))
    estimated = [values(estimates[t].matrix() if t in estimates and estimates[t].registration.reliable else None) for t in timepoints]
    applied = [values(records[t].applied_matrix()) if t in records else [np.nan] * len(names) for t in timepoints]
    return diagnostics.plot_parameters_over_time(
        transforms_over_time_figure(root, volume_id.channels),
        timepoints,
        {name: [row[i] for row in estimated] for i, name in enumerate(names)},
        {name: [row[i] for row in applied] for i, name in enumerate(names)},
        title=f"SPM{volume_id.specimen:02d} VW90 -> VW00 (CHN{volume_id.channels[0]:02d}, CHN{volume_id.channels[1]:02d}): reliable estimates vs applied",
    )


def make_isotropic(
    config: ProcessingConfig,
    *,
    specimen: int,
    timepoints: list[int] | None = None,
    last_timepoint: int | None = None,
    workers: int | None = 1,
    progress: Callable[[str], None] | None = None,
) -> IsotropicReport:
    """Register, smooth and fuse the isotropic volumes of a specimen's fused timepoints.

    Parameters
    ----------
    config : ProcessingConfig
        Fused and isotropic roots, isotropic and temporal settings.
    specimen : int
        The specimen.
    timepoints : list of int, optional
        Volumes to make (default every fused timepoint); the registrations their windows need are made too.
    last_timepoint : int, optional
        The acquisition's last timepoint; None: the last fused one is the end (a closed acquisition).
    workers : int or None
        Timepoints registered and fused at once (1: in this process; None: as the cores and memory allow, at most one
        per timepoint). Each computes its blocks in threads on its share of the CPUs (``registration.threads``).
    progress : callable, optional
        Called with a short description after each registration and each volume.

    Returns
    -------
    IsotropicReport
        A timepoint whose views cannot be read becomes a one-line error; the others are still made.
    """
    fused_root = config.resolved_fused_dir()
    report = IsotropicReport()
    on_disk = fused_timepoints(fused_root, specimen)
    if not on_disk:
        report.errors.append(f"{fused_root}: no fused views of SPM{specimen:02d} to make isotropic volumes of")
        return report
    first, last = on_disk[0], on_disk[-1] if last_timepoint is None else last_timepoint
    views = [inputs for t in on_disk for inputs in timepoint_views(fused_root, specimen, t)]
    targets = [inputs for inputs in views if timepoints is None or inputs.volume_id.timepoint in timepoints]
    count = min(worker_count(workers, stack_bytes=WORKER_BYTES, stacks_per_worker=1.0), max(1, len(targets)))
    config = _threads_per_worker(config, count)

    def collect(submitted: list, results: list, done: str) -> None:
        for inputs, future in submitted:
            try:
                results.append(future.result())
            except IsoviewError as error:
                logger.error("%s", error)
                report.errors.append(str(error))
            if progress is not None:
                item = inputs.inputs if isinstance(inputs, IsotropicJob) else inputs
                progress(f"{done} {item.volume_id.stem}")

    with worker_pool(count, "processes", preload=[__name__]) as pool:
        collect(submit_each(pool, register_timepoint, registrations_to_make(config, views), config), report.registered, "registered")
        plan = plan_isotropic(config, targets, first_timepoint=first, last_timepoint=last)
        report.skipped, report.waiting, report.errors = plan.skipped, plan.waiting, report.errors + plan.errors
        collect(submit_each(pool, make_isotropic_volume, plan.jobs, config), report.made, "made")
    if config.save_diagnostics:
        draw_series_figures(config, [job.inputs.volume_id for job in plan.jobs])
    return report


def _threads_per_worker(config: ProcessingConfig, workers: int) -> ProcessingConfig:
    """``config`` with each of ``workers`` processes computing blocks on its share of the CPUs (unless threads are set)."""
    registration = config.isotropic.registration
    if registration.threads is not None or workers <= 1:
        return config
    threads = max(1, registration.resolved_threads() // workers)
    stage = config.isotropic.model_copy(update={"registration": registration.model_copy(update={"threads": threads})})
    return config.model_copy(update={"isotropic": stage})


def draw_series_figures(config: ProcessingConfig, volume_ids: list[IsotropicId]) -> list[Path]:
    """The transforms-over-time figure of every series (specimen and channels) `volume_ids` belong to."""
    series = {(volume_id.specimen, volume_id.channels): volume_id for volume_id in volume_ids}
    return [figure for volume_id in series.values() if (figure := draw_transforms_over_time(config, volume_id)) is not None]
