"""Fusion of a whole acquisition (or a selection of timepoints): estimate, smooth over time, fuse.

Parameters are estimated per timepoint and camera pair, smoothed with the same windowed robust
LOESS the live service uses (``isoview_core.temporal.window``), so a batch run and a live run on
the same data give the same applied parameters and the same fused volumes; then every selected
timepoint is fused with its applied parameters. Estimates already on disk are reused and fused
outputs whose applied parameters have not changed are skipped unless ``overwrite``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from isoview_core import diagnostics
from isoview_core.acquisition import Acquisition, discover_acquisition
from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.fusion.records import (
    FusionRecord,
    PairEstimate,
    load_estimate,
    load_fusion_record,
)
from isoview_core.layout import (
    ESTIMATE_SUFFIX,
    FUSION_RECORD_SUFFIX,
    FusedPaths,
    PairId,
    pair_series_files,
    parameters_over_time_figure,
)
from isoview_core.pipeline.correction import largest_stack_bytes, selected_timepoints
from isoview_core.pipeline.heap import heap_kept_for_run
from isoview_core.pipeline.huge_pages import huge_page_advice_off_for_run
from isoview_core.pipeline.pair import estimate_pair_parameters, fuse_pair
from isoview_core.pipeline.parallel import FUSION_STACKS_PER_WORKER, submit_each, worker_count, worker_pool
from isoview_core.pipeline.previews import draw_pair_diagnostics, pending_previews
from isoview_core.pipeline.series import update_fused_series
from isoview_core.records import PARAMETER_NAMES, FusionParameters
from isoview_core.temporal import REPORT_TOLERANCE, applied_parameters
from isoview_core.temporal.config import TemporalConfig
from isoview_core.temporal.window import window_bounds

logger = logging.getLogger(__name__)

MIN_TIMEPOINTS_OVER_TIME = 2
"""Timepoints a pair series needs before its parameters-over-time figure is drawn."""


@dataclass
class FusionReport:
    """What a fusion run did: estimates made, pairs fused, pairs skipped, one-line errors."""

    estimated: list[PairEstimate] = field(default_factory=list)
    fused: list[FusionRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def timepoint_pairs(acquisition: Acquisition, config: ProcessingConfig, specimen: int, timepoint: int) -> list[PairId]:
    """The camera pairs of a timepoint with both cameras on disk: channel and view from files and XML."""
    stacks = {stack.camera: stack for stack in acquisition.timepoint(specimen, timepoint).stacks}
    pairs = []
    for first, second in config.camera_pairs:
        if first not in stacks or second not in stacks:
            continue
        metadata = stacks[first].metadata
        view = metadata.view if metadata.view is not None else (0 if first < 2 else 90)
        pairs.append(PairId(specimen, timepoint, (first, second), view, stacks[first].channel))
    return pairs


def unfusable_pairs(acquisition: Acquisition, config: ProcessingConfig, specimen: int, timepoint: int) -> list[str]:
    """Why camera pairs of a timepoint are left out of :func:`timepoint_pairs`, one line per pair.

    A pair is left out when the XML of a channel of its cameras is missing or unreadable: its
    stacks were not corrected (the correction reported the XML), so it has nothing to fuse.
    """
    unreadable = acquisition.timepoint(specimen, timepoint).unreadable
    reasons = []
    for first, second in config.camera_pairs:
        failed = next((channel for channel in unreadable if {first, second} & set(channel.cameras)), None)
        if failed is not None:
            reasons.append(f"SPM{specimen:02d} TM{timepoint:06d} cameras {first}+{second}: not fused, {failed.message}")
    return reasons


def known_estimates(output_root: Path, pair: PairId) -> dict[int, FusionParameters]:
    """Every estimate already written for this pair's cameras, view and channel, by timepoint."""
    estimates = {}
    for path in pair_series_files(output_root, pair, ESTIMATE_SUFFIX):
        estimate = load_estimate(path)
        estimates[estimate.timepoint] = estimate.parameters
    return estimates


def _unchanged(record: FusionRecord, applied: FusionParameters, window: tuple[int, int]) -> bool:
    old, new = record.applied, applied
    return record.window == window and all(
        abs(getattr(old, name) - getattr(new, name)) <= REPORT_TOLERANCE[name] * (abs(getattr(new, name)) if name == "intensity_ratio" else 1.0)
        for name in PARAMETER_NAMES
    )


@dataclass(frozen=True)
class FusionJob:
    """One pair to fuse: the parameters estimated at its timepoint, those to apply and their window."""

    pair: PairId
    estimated: FusionParameters
    applied: FusionParameters
    window: tuple[int, int]


@dataclass
class FusionPlan:
    """The outcome of smoothing: pairs to fuse, pairs already fused with the same values, pairs waiting, errors."""

    jobs: list[FusionJob] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def series_key(pair: PairId) -> tuple[int, tuple[int, int], int, int]:
    """The parameter time series a pair belongs to: specimen, cameras, view, channel."""
    return (pair.specimen, pair.cameras, pair.view, pair.channel)


def pairs_to_estimate(output_root: Path, pairs: list[PairId], *, overwrite: bool = False) -> list[PairId]:
    """The pairs without an ``estimate.json`` yet (all of them with ``overwrite``)."""
    return [pair for pair in pairs if overwrite or not FusedPaths(output_root, pair).estimate.is_file()]


def estimation_timepoints(timepoints: list[int], *, first_timepoint: int, last_timepoint: int, temporal: TemporalConfig) -> list[int]:
    """Every timepoint whose estimate the applied values of `timepoints` use, within ``[first, last]``."""
    if temporal.static_parameters:
        return list(range(first_timepoint, last_timepoint + 1))
    needed: set[int] = set()
    for t in timepoints:
        lo, hi, _ = window_bounds(t, first_timepoint, last_timepoint, temporal.window)
        needed.update(range(lo, hi + 1))
    return sorted(needed)


def plan_fusion(
    config: ProcessingConfig,
    pairs: list[PairId],
    *,
    first_timepoint: int,
    last_timepoint: int | None,
    estimated: Collection[int] = (),
) -> FusionPlan:
    """Smooth the estimates on disk over time and decide which pairs to (re-)fuse with which values.

    Parameters
    ----------
    config : ProcessingConfig
        Fused root, temporal settings and ``overwrite``.
    pairs : list of PairId
        The pairs to fuse.
    first_timepoint, last_timepoint : int
        The acquisition's first and last timepoints; ``last_timepoint=None`` while it is still
        being recorded: then a pair whose window is not complete yet is left ``waiting``.
    estimated : collection of int
        Timepoints whose estimation is over: a pair series without an estimate there will get
        none (its stacks failed, or its channel XML), so the smoothing takes it as missing
        (imputed) and it does not keep the windows around it from being final.

    Returns
    -------
    FusionPlan
        A pair whose applied values and window equal those of its ``fusion.json`` is skipped
        (unless ``overwrite``), so reruns and overlapping windows never fuse twice.
    """
    output_root = config.resolved_fused_dir()
    plan = FusionPlan()
    series: dict[tuple, dict[int, FusionParameters | None]] = {}
    for pair in pairs:
        key = series_key(pair)
        if key not in series:
            series[key] = dict.fromkeys(estimated) | known_estimates(output_root, pair)
        estimates = series[key]
        paths = FusedPaths(output_root, pair)
        estimate = estimates.get(pair.timepoint)
        if estimate is None:
            plan.errors.append(f"{paths.estimate}: no parameter estimate for this pair; it cannot be fused")
            continue
        windowed = applied_parameters(
            pair.timepoint, estimates, first_timepoint=first_timepoint, last_timepoint=last_timepoint, config=config.temporal
        )
        if last_timepoint is None and not windowed.final:
            plan.waiting.append(pair.stem)
        elif paths.record.is_file() and not config.overwrite and _unchanged(load_fusion_record(paths.record), windowed.applied, windowed.window):
            plan.skipped.append(pair.stem)
        else:
            plan.jobs.append(FusionJob(pair, estimate, windowed.applied, windowed.window))
    return plan


def fuse_job(config: ProcessingConfig, job: FusionJob) -> FusionRecord:
    """Fuse one planned pair with the config's codec, pyramid and diagnostics settings, then publish it in its view's time series."""
    record = fuse_pair(
        config.resolved_corrected_dir(),
        job.pair,
        config.fusion,
        output_root=config.resolved_fused_dir(),
        estimated=job.estimated,
        applied=job.applied,
        window=job.window,
        codec=config.output.codec,
        pyramid_levels=config.output.pyramid_levels,
        overwrite=True,
        save_diagnostics=config.save_diagnostics,
    )
    update_fused_series(config.resolved_fused_dir(), job.pair, corrected_root=config.resolved_corrected_dir())
    return record


def estimate_pair(config: ProcessingConfig, pair: PairId) -> PairEstimate:
    """Estimate one pair's parameters with the config's roots and settings (writes ``estimate.json``)."""
    return estimate_pair_parameters(
        config.resolved_corrected_dir(),
        pair,
        config.fusion,
        output_root=config.resolved_fused_dir(),
        save_diagnostics=config.save_diagnostics,
    )


def fuse(
    config: ProcessingConfig,
    *,
    estimate_params: bool = True,
    apply_fusion: bool = True,
    workers: int | None = 1,
    progress: Callable[[str], None] | None = None,
) -> FusionReport:
    """Estimate, smooth and fuse the camera pairs of the selected timepoints of an acquisition.

    Parameters
    ----------
    config : ProcessingConfig
        Acquisition, selection, corrected and fused roots, fusion and temporal settings.
    estimate_params : bool
        Estimate parameters of timepoints that have no ``estimate.json`` yet (all with ``overwrite``).
    apply_fusion : bool
        Fuse every selected timepoint with its applied (windowed, smoothed) parameters.
    workers : int or None
        Pairs estimated and fused at once, in worker threads (1: in this process; None: as many as
        the cores and the memory allow, :func:`~isoview_core.pipeline.parallel.worker_count`). The
        figures are drawn afterwards in this thread (:func:`draw_diagnostics`).
    progress : callable, optional
        Called with a short description after each estimate, each fusion and each pair's figures.

    Returns
    -------
    FusionReport
        A pair whose corrected stacks are missing or unreadable, or whose channel XML is, becomes
        a one-line error; the others are still processed.
    """
    acquisition = discover_acquisition(config.acquisition, config.layout)
    output_root = config.resolved_fused_dir()
    report = FusionReport()
    selection = list(selected_timepoints(config, acquisition))
    pairs = []
    for specimen, timepoint in selection:
        try:
            pairs += timepoint_pairs(acquisition, config, specimen, timepoint)
            report.errors += unfusable_pairs(acquisition, config, specimen, timepoint)
        except IsoviewError as error:
            report.errors.append(str(error))

    def outcomes(submitted: list[tuple[PairId | FusionJob, Future]], done: str, results: list) -> None:
        for item, future in submitted:
            try:
                results.append(future.result())
            except IsoviewError as error:
                logger.error("%s", error)
                report.errors.append(str(error))
            pair = item.pair if isinstance(item, FusionJob) else item
            if progress is not None:
                progress(f"{done} TM{pair.timepoint:06d} {pair.label}")

    count = worker_count(workers, stack_bytes=largest_stack_bytes(acquisition, selection), stacks_per_worker=FUSION_STACKS_PER_WORKER)
    logger.info("estimating and fusing %d pairs with %d workers", len(pairs), count)
    # jobs reuse the memory earlier jobs freed (slabs: in worker threads only on the shared main heap, heap.py),
    # in pages faulted in one by one (huge_pages.py)
    with heap_kept_for_run(), huge_page_advice_off_for_run(), worker_pool(count) as pool:
        if estimate_params:
            outcomes(submit_each(pool, estimate_pair, pairs_to_estimate(output_root, pairs, overwrite=config.overwrite), config), "estimated", report.estimated)
        for specimen in sorted({pair.specimen for pair in pairs}) if apply_fusion else []:
            timepoints = acquisition.timepoints(specimen)
            plan = plan_fusion(
                config, [pair for pair in pairs if pair.specimen == specimen], first_timepoint=timepoints[0], last_timepoint=timepoints[-1]
            )
            report.skipped += plan.skipped
            report.errors += plan.errors
            outcomes(submit_each(pool, fuse_job, plan.jobs, config), "fused", report.fused)
        if config.save_diagnostics:  # after every volume: the figures never delay a fused output
            draw_diagnostics(config, pairs, progress=progress)
    return report


def draw_diagnostics(config: ProcessingConfig, pairs: list[PairId], *, progress: Callable[[str], None] | None = None) -> list[Path]:
    """Draw the figures whose previews `pairs` left (estimates and fusions), then each pair series' parameters over time (from its second timepoint on).

    One figure after another in this thread: matplotlib holds the GIL while it draws, so worker threads drew the ten
    figures of two pairs no sooner (1.40-1.87 against 1.69-1.76 s) for more CPU (1.62-2.11 against 1.52-1.62 s).

    Parameters
    ----------
    config : ProcessingConfig
        Fused root and fusion settings.
    pairs : list of PairId
        The pairs whose pending previews are drawn; their series get a parameters-over-time figure.
    progress : callable, optional
        Called with a short description after each pair with figures drawn.

    Returns
    -------
    list of Path
        The PNGs written.
    """
    output_root = config.resolved_fused_dir()
    drawn: list[Path] = []
    pending = [pair for pair in pairs if pending_previews(output_root, pair)]
    for pair in pending:
        figures = draw_pair_diagnostics(output_root, pair, config.fusion)
        drawn += figures
        if figures and progress is not None:
            progress(f"drew TM{pair.timepoint:06d} {pair.label}")
    for key in sorted({series_key(pair) for pair in pairs}):
        figure = plot_parameters(output_root, key, config)
        drawn += [figure] if figure is not None else []
    return drawn


def plot_parameters(output_root: Path, key: tuple, config: ProcessingConfig) -> Path | None:
    """``diagnostics/parameters_over_time_cam<a>_<b>.png``: estimated vs applied parameters of a pair series.

    None while the series has fewer than two timepoints: a single one has no course over time to show (its
    parameters are in its ``registration.png`` and record), and its figure cost ~0.4 CPU-s per pair (a py-spy
    profile) of every one-timepoint ``isoview fuse``.
    """
    specimen, cameras, view, channel = key
    series = PairId(specimen, 0, cameras, view, channel)
    estimates = known_estimates(output_root, series)
    records = {}
    for path in pair_series_files(output_root, series, FUSION_RECORD_SUFFIX):
        record = load_fusion_record(path)
        records[record.timepoint] = record
    if not records:
        return None
    timepoints = sorted(set(records) | set(estimates))
    if len(timepoints) < MIN_TIMEPOINTS_OVER_TIME:
        return None
    estimated = {name: [getattr(estimates[t], name) if t in estimates else None for t in timepoints] for name in PARAMETER_NAMES}
    applied = {name: [getattr(records[t].applied, name) if t in records else np.nan for t in timepoints] for name in PARAMETER_NAMES}
    return diagnostics.plot_parameters_over_time(
        parameters_over_time_figure(output_root, cameras),
        timepoints,
        estimated,
        applied,
        title=f"SPM{specimen:02d} cameras {cameras[0]}+{cameras[1]} (VW{view:02d}, CHN{channel:02d}): estimated vs applied",
    )
