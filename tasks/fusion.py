"""Prefect tasks of the fusion stage: estimate one pair, smooth a window, fuse one pair, draw the figures (thin wrappers)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.logging import get_run_logger

from isoview_core.config import ProcessingConfig
from isoview_core.fusion.records import FusionRecord, PairEstimate, load_estimate
from isoview_core.layout import FusedPaths, PairId, configured_corrected_paths
from isoview_core.pipeline.fusion import (
    FusionJob,
    FusionPlan,
    draw_diagnostics,
    estimate_pair,
    fuse_job,
    plan_fusion,
)
from isoview_core.service.journal import record_work
from tasks.caching import finished_output_cache_key
from tasks.retries import TRANSIENT_RETRIES


def _fused_paths(config: ProcessingConfig, pair: PairId) -> FusedPaths:
    """Where the fusion outputs of `pair` go."""
    return FusedPaths(config.resolved_fused_dir(), pair)


def _pair_files(config: ProcessingConfig, pair: PairId) -> tuple[list[Path], list[Path]]:
    """The cache key's files: the records of the pair's two corrected stacks in; its ``estimate.json`` out."""
    corrected = [configured_corrected_paths(config, pair.specimen, pair.timepoint, camera, pair.channel).record for camera in pair.cameras]
    return corrected, [_fused_paths(config, pair).estimate]


@task(
    name="estimate-pair",
    task_run_name="estimate {pair.stem}",
    **TRANSIENT_RETRIES,
    persist_result=True,
    cache_key_fn=finished_output_cache_key(_pair_files),
)
def estimate_pair_task(config: ProcessingConfig, pair: PairId) -> PairEstimate:
    """Register the pair, measure its intensity ratio and transition plane; writes ``estimate.json``."""
    path = _fused_paths(config, pair).estimate
    if not config.overwrite and path.is_file():
        return load_estimate(path)
    estimate = estimate_pair(config, pair)
    record_work(config, "estimated", specimen=pair.specimen, timepoint=pair.timepoint, cameras=list(pair.cameras))
    p = estimate.parameters
    get_run_logger().info(
        "%s: offset (x %.2f, y %.2f) px, rotation %.3f deg, intensity ratio %.4f, transition z %.1f, %.1f s",
        path.name, p.offset_x_px, p.offset_y_px, p.rotation_deg, p.intensity_ratio, p.transition_z, sum(estimate.timings_s.values()),
    )
    return estimate


@task(name="smooth-window", task_run_name="smooth SPM{specimen:02d}")
def smooth_window_task(
    config: ProcessingConfig,
    specimen: int,
    timepoints: list[int],
    pairs: list[PairId],
    first_timepoint: int,
    last_timepoint: int | None,
    estimated: list[int],
) -> FusionPlan:
    """Robust-LOESS smoothing of the estimates on disk over each pair's window: the values to apply.

    ``estimated``: the timepoints whose estimation is over (a pair's estimate missing there is imputed).
    """
    plan = plan_fusion(config, pairs, first_timepoint=first_timepoint, last_timepoint=last_timepoint, estimated=estimated)
    get_run_logger().info(
        "%d pairs to fuse, %d already fused with the same values, %d waiting for their window", len(plan.jobs), len(plan.skipped), len(plan.waiting)
    )
    return plan


@task(
    name="fuse-pair",
    task_run_name="fuse {job.pair.stem}",
    **TRANSIENT_RETRIES,
)
def fuse_pair_task(config: ProcessingConfig, job: FusionJob) -> FusionRecord:
    """Fuse one pair with its applied parameters into OME-Zarr; ``fusion.json`` is written last."""
    record = fuse_job(config, job)
    record_work(config, "fused", specimen=job.pair.specimen, timepoint=job.pair.timepoint, cameras=list(job.pair.cameras), window=list(job.window))
    get_run_logger().info("%s: fused with the parameters of window %d..%d", _fused_paths(config, job.pair).volume, *job.window)
    return record


@task(name="draw-diagnostics", task_run_name="draw diagnostics SPM{specimen:02d}")
def draw_diagnostics_task(config: ProcessingConfig, specimen: int, pairs: list[PairId]) -> list[Path]:
    """Draw the figures the pairs' estimates and fusions left previews for, and the parameters over time.

    Runs after the fused volumes and records are published, so a slow figure never delays them.
    """
    drawn = draw_diagnostics(config, pairs)
    get_run_logger().info("drew %d figures of SPM%02d", len(drawn), specimen)
    return drawn
