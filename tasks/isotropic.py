"""Prefect tasks of the isotropic stage: register one timepoint's views, smooth the transforms, make one volume (thin wrappers)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.logging import get_run_logger

from isoview_core.config import ProcessingConfig
from isoview_core.isotropic.records import IsotropicRecord, RegistrationEstimate, load_registration
from isoview_core.layout import IsotropicPaths
from isoview_core.pipeline.isotropic import (
    IsotropicInputs,
    IsotropicJob,
    IsotropicPlan,
    make_isotropic_volume,
    plan_isotropic,
    register_timepoint,
)
from isoview_core.service.journal import record_work
from tasks.caching import finished_output_cache_key
from tasks.retries import TRANSIENT_RETRIES


def _registration_files(config: ProcessingConfig, inputs: IsotropicInputs) -> tuple[list[Path], list[Path]]:
    """The cache key's files: the two fused volumes' metadata in; the ``registration.json`` out."""
    return [inputs.view00 / "zarr.json", inputs.view90 / "zarr.json"], [IsotropicPaths(config.resolved_isotropic_dir(), inputs.volume_id).registration]


@task(
    name="register-views",
    task_run_name="register {inputs.volume_id.stem}",
    **TRANSIENT_RETRIES,
    persist_result=True,
    cache_key_fn=finished_output_cache_key(_registration_files),
)
def register_views_task(config: ProcessingConfig, inputs: IsotropicInputs) -> RegistrationEstimate:
    """Register VW90 onto VW00 at one timepoint (3D rigid, coarse to fine); writes ``registration.json``."""
    path = IsotropicPaths(config.resolved_isotropic_dir(), inputs.volume_id).registration
    if not config.overwrite and path.is_file():
        return load_registration(path)
    estimate = register_timepoint(config, inputs)
    volume_id = inputs.volume_id
    record_work(config, "registered", specimen=volume_id.specimen, timepoint=volume_id.timepoint, channels=list(volume_id.channels))
    result = estimate.registration
    get_run_logger().info(
        "%s: NCC %.3f (%.3f before), correction %.3f deg, %s um, %s, %.1f s",
        path.name, result.quality, result.quality_before, result.rotation_deg, [round(v, 2) for v in result.translation_um],
        "reliable" if result.reliable else "UNRELIABLE (left out of the smoothing)", result.timings_s["total"],
    )  # fmt: skip
    return estimate


@task(name="smooth-transforms", task_run_name="smooth isotropic SPM{specimen:02d}")
def smooth_transforms_task(
    config: ProcessingConfig, specimen: int, views: list[IsotropicInputs], first_timepoint: int, last_timepoint: int | None
) -> IsotropicPlan:
    """Robust-LOESS smoothing of the registrations on disk over each volume's window: the transforms to apply."""
    plan = plan_isotropic(config, views, first_timepoint=first_timepoint, last_timepoint=last_timepoint)
    get_run_logger().info(
        "%d isotropic volumes to make, %d already made with the same transform, %d waiting for their window",
        len(plan.jobs), len(plan.skipped), len(plan.waiting),
    )  # fmt: skip
    return plan


@task(name="make-isotropic", task_run_name="isotropic {job.inputs.volume_id.stem}", **TRANSIENT_RETRIES)
def make_isotropic_task(config: ProcessingConfig, job: IsotropicJob) -> IsotropicRecord:
    """Fuse one timepoint's views with the applied transform into isotropic OME-Zarr; ``isotropic.json`` is written last."""
    record = make_isotropic_volume(config, job)
    volume_id = job.inputs.volume_id
    record_work(
        config, "isotropic", specimen=volume_id.specimen, timepoint=volume_id.timepoint, channels=list(volume_id.channels), window=list(job.window)
    )
    logger = get_run_logger()
    logger.info("%s: %s transform of window %d..%d, %.1f s", IsotropicPaths(config.resolved_isotropic_dir(), volume_id).volume, job.source, *job.window, sum(record.timings_s.values()))
    if job.source == "nominal":
        logger.warning("%s: no reliable registration in window %d..%d: the nominal geometry was applied", volume_id.stem, *job.window)
    return record
