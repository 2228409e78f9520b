"""Prefect flows: windowed fusion of a set of timepoints (estimate what the windows need, smooth, fuse), the estimates
of one timepoint ahead of its windows, and the fusions' figures."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, tags
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from flows.artifacts import publish_fusion_figures, publish_fusion_parameters, publish_isotropic_transforms
from flows.inputs import flow_config
from flows.outcomes import failure_message, settled_states
from flows.runners import execution_from_environment, make_task_runner
from isoview_core.acquisition import Acquisition, discover_acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.fusion.records import FusionRecord
from isoview_core.layout import FusedPaths, IsotropicPaths, PairId
from isoview_core.pipeline.fusion import (
    estimation_timepoints,
    pairs_to_estimate,
    timepoint_pairs,
    unfusable_pairs,
)
from isoview_core.pipeline.isotropic import draw_series_figures, fused_timepoints, registrations_to_make, timepoint_views
from tasks.fusion import draw_diagnostics_task, estimate_pair_task, fuse_pair_task, smooth_window_task
from tasks.isotropic import make_isotropic_task, register_views_task, smooth_transforms_task


def _window_label(timepoints: list[int]) -> str:
    return f"TM{min(timepoints):06d}..TM{max(timepoints):06d}" if timepoints else "no timepoints"


def _run_name() -> str:
    """``fuse SPM00 TM000004..TM000007``: the flow run's name in the UI."""
    parameters = flow_run.parameters
    return f"fuse SPM{parameters['specimen']:02d} {_window_label(list(parameters['timepoints']))}"


def _needed_timepoints(found: Acquisition, config: ProcessingConfig, specimen: int, timepoints: list[int]) -> list[int]:
    """The timepoints on disk whose estimates the windows of `timepoints` need."""
    on_disk = found.timepoints(specimen)
    needed = estimation_timepoints(timepoints, first_timepoint=on_disk[0], last_timepoint=on_disk[-1], temporal=config.temporal)
    return [t for t in needed if t in set(on_disk)]


def _pairs(found: Acquisition, config: ProcessingConfig, specimen: int, timepoints: list[int], errors: list[str]) -> list[PairId]:
    """The camera pairs of `timepoints`; a timepoint whose channel XML failed adds its error to `errors` instead."""
    pairs = []
    for t in timepoints:
        try:
            pairs += timepoint_pairs(found, config, specimen, t)
        except IsoviewError as error:
            errors.append(str(error))
    return pairs


def _estimate_run_name() -> str:
    """``estimate SPM00 TM000003``: the estimation flow run's name in the UI."""
    parameters = flow_run.parameters
    return f"estimate SPM{parameters['specimen']:02d} TM{parameters['timepoint']:06d}"


def _draw_run_name() -> str:
    """``draw figures SPM00 TM000004..TM000007``: the figure flow run's name in the UI."""
    parameters = flow_run.parameters
    return f"draw figures SPM{parameters['specimen']:02d} {_window_label(list(parameters['timepoints']))}"


def _figures_step(config: ProcessingConfig, specimen: int, pairs: list[PairId], fused: list[PairId]) -> None:
    """Draw the figures `pairs` left previews for (a failure is a warning: the volumes are fine), then show the
    `fused` pairs' figures in the UI."""
    drawing = draw_diagnostics_task.submit(config, specimen, pairs)
    for state in settled_states([drawing]):
        if not state.is_completed():
            get_run_logger().warning("diagnostic figures not drawn: %s", failure_message(state))
    publish_fusion_figures(specimen, fused, config.resolved_fused_dir())


def _isotropic_step(config: ProcessingConfig, specimen: int, first: int, last: int | None) -> list[str]:
    """Register every fused timepoint not registered yet, then make each isotropic volume whose window is filled.

    Every fused timepoint without a volume is considered, not only the window's: a volume waits for the
    registrations of the timepoints after it, which later fusions bring. ``last`` None: the acquisition goes on.
    """
    fused_root = config.resolved_fused_dir()
    views = [inputs for t in fused_timepoints(fused_root, specimen) for inputs in timepoint_views(fused_root, specimen, t)]
    registrations = [register_views_task.submit(config, inputs) for inputs in registrations_to_make(config, views)]
    errors = [failure_message(state) for state in settled_states(registrations) if not state.is_completed()]
    pending = [inputs for inputs in views if config.overwrite or not IsotropicPaths(config.resolved_isotropic_dir(), inputs.volume_id).record.is_file()]
    plan = smooth_transforms_task(config, specimen, pending, first, last)
    states = settled_states([make_isotropic_task.submit(config, job) for job in plan.jobs])
    made = [state.result() for state in states if state.is_completed()]
    if config.save_diagnostics:
        draw_series_figures(config, [job.inputs.volume_id for job in plan.jobs])
    publish_isotropic_transforms(specimen, made)
    return errors + plan.errors + [failure_message(state) for state in states if not state.is_completed()]


@flow(
    name="fuse-window",
    flow_run_name=_run_name,
    task_runner=make_task_runner(execution_from_environment()),
)
def fuse_window(
    acquisition: Path,
    specimen: int,
    timepoints: list[int],
    config: ProcessingConfig | None = None,
    acquisition_finished: bool = True,
    draw_figures: bool = True,
) -> list[FusionRecord]:
    """Fuse the camera pairs of `timepoints` with temporally smoothed parameters (then, if enabled, the isotropic volumes).

    The estimates every window needs are made first (those already on disk are reused), the
    robust LOESS over each window gives the applied values, and each pair whose applied values
    differ from its ``fusion.json`` is fused. ``acquisition_finished=False`` (a live acquisition):
    the last timepoint on disk is not the end, and pairs whose window is not complete wait; an
    estimate that failed (or whose channel XML did) counts as missing, imputed, not as awaited.
    ``draw_figures=False`` (the watcher): the diagnostic figures are left as previews for :func:`draw_figures`,
    so that the next fusion does not wait for them.
    """
    logger = get_run_logger()
    config = flow_config(acquisition, config)
    found = discover_acquisition(config.acquisition, config.layout)
    on_disk = found.timepoints(specimen)
    first, last = on_disk[0], on_disk[-1]
    errors: list[str] = []
    needed = _needed_timepoints(found, config, specimen, timepoints)
    to_estimate = pairs_to_estimate(config.resolved_fused_dir(), _pairs(found, config, specimen, needed, errors), overwrite=config.overwrite)
    with tags(f"SPM{specimen:02d}"):  # no per-timepoint tags (see flows/correction.py): the TM is in the task run names
        estimates = [estimate_pair_task.submit(config, pair) for pair in to_estimate]
        for state in settled_states(estimates):
            if not state.is_completed():  # a missing estimate is imputed by the smoothing
                errors.append(failure_message(state))
        targets = _pairs(found, config, specimen, timepoints, errors)
        for t in sorted(set(timepoints) & set(on_disk)):  # their channel's XML failed the correction, which reported it
            for reason in unfusable_pairs(found, config, specimen, t):
                logger.warning("%s", reason)
        plan = smooth_window_task(config, specimen, sorted(timepoints), targets, first, last if acquisition_finished else None, needed)
        fusions = [fuse_pair_task.submit(config, job) for job in plan.jobs]
        states = settled_states(fusions)
    records = [state.result() for state in states if state.is_completed()]
    errors += plan.errors + [failure_message(state) for state in states if not state.is_completed()]
    if config.isotropic.enabled:
        errors += _isotropic_step(config, specimen, first, last if acquisition_finished else None)
    if config.save_diagnostics and draw_figures:  # the fused outputs are published: the figures may lag behind them
        fused = [job.pair for job, state in zip(plan.jobs, states) if state.is_completed()]
        _figures_step(config, specimen, to_estimate + [job.pair for job in plan.jobs], fused)
    publish_fusion_parameters(specimen, records)
    logger.info("fused %d pairs, %d unchanged, %d waiting for their window", len(records), len(plan.skipped), len(plan.waiting))
    if errors:
        raise IsoviewError(f"SPM{specimen:02d} {_window_label(timepoints)}: {len(errors)} error(s): " + " | ".join(errors))
    return records


@flow(
    name="estimate-timepoint",
    flow_run_name=_estimate_run_name,
    task_runner=make_task_runner(execution_from_environment()),
)
def estimate_timepoint(acquisition: Path, specimen: int, timepoint: int, config: ProcessingConfig | None = None) -> list[Path]:
    """Estimate the fusion parameters of one corrected timepoint's pairs before any window that needs them is filled.

    The watcher runs it in its fusion lane while the first windows of an acquisition fill (and after a gap), so that
    the fusion, once the window is filled, finds its estimates made and only smooths and fuses. Estimates already on
    disk are kept. A pair that cannot be estimated is left to the fusion, which tries again and reports it.
    """
    config = flow_config(acquisition, config)
    found = discover_acquisition(config.acquisition, config.layout)
    errors: list[str] = []
    to_estimate = pairs_to_estimate(config.resolved_fused_dir(), _pairs(found, config, specimen, [timepoint], errors), overwrite=config.overwrite)
    with tags(f"SPM{specimen:02d}"):
        states = settled_states([estimate_pair_task.submit(config, pair) for pair in to_estimate])
    errors += [failure_message(state) for state in states if not state.is_completed()]
    if errors:
        raise IsoviewError(f"SPM{specimen:02d} TM{timepoint:06d}: {len(errors)} estimate(s) failed: " + " | ".join(errors))
    return [FusedPaths(config.resolved_fused_dir(), pair).estimate for pair in to_estimate]


@flow(
    name="draw-figures",
    flow_run_name=_draw_run_name,
    task_runner=make_task_runner(execution_from_environment()),
)
def draw_figures(acquisition: Path, specimen: int, timepoints: list[int], config: ProcessingConfig | None = None) -> list[Path]:
    """Draw the diagnostic figures that the fusion of `timepoints` left as previews (``fuse_window(draw_figures=False)``).

    The watcher runs it in a lane of its own, so figures may lag behind the fused volumes without delaying them.
    The previews of the estimates those windows needed are drawn too; pairs without previews cost nothing.
    """
    config = flow_config(acquisition, config)
    found = discover_acquisition(config.acquisition, config.layout)
    unfusable: list[str] = []  # a channel whose XML failed: no fusion, no figures (the fusion reported it)
    fused = [pair for pair in _pairs(found, config, specimen, timepoints, unfusable) if FusedPaths(config.resolved_fused_dir(), pair).record.is_file()]
    with tags(f"SPM{specimen:02d}"):
        _figures_step(config, specimen, _pairs(found, config, specimen, _needed_timepoints(found, config, specimen, timepoints), unfusable), fused)
    return [figure for pair in fused for figure in FusedPaths(config.resolved_fused_dir(), pair).figures()]
