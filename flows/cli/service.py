"""The service commands of ``isoview``: watch, run, serve, config and demo, which run the Prefect flows."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from flows.cli.common import console, fail, selected_acquisition
from flows.cli.options import (
    AcquisitionOrConfig,
    ArchiveRaw,
    ConfigFile,
    CorrectedRoot,
    DaskAddress,
    DeleteRaw,
    Isotropic,
    FusedOutput,
    NoDiagnostics,
    NoFsync,
    Overwrite,
    Shape,
    TaskRunner,
    TimepointCount,
    Timepoints,
    Window,
    execution_flags,
    given,
    processing_flags,
)
from flows.service_config import (
    ExecutionConfig,
    ServiceConfig,
    WatchConfig,
    example_config_yaml,
    load_service_config,
)
from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.formats.atomic import set_fsync
from isoview_core.isotropic.settings import IsotropicStageConfig
from isoview_core.layout import (
    default_corrected_root,
    default_fused_root,
    default_isotropic_root,
    diagnostics_dir,
    journal_path,
    output_timepoint_folder,
    parameters_over_time_figure,
    series_files,
)
from isoview_core.service.paths import require_watchable_acquisition
from isoview_core.temporal.config import TemporalConfig


class _RunFailuresReportedOnce(logging.Filter):
    """Keeps Prefect's reports of failed flow and task runs (a traceback each) out of the terminal.

    The commands print every failure themselves, in one line; the reports still reach the UI, whose log
    handler sits on Prefect's run loggers, not on the terminal's.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.ERROR and record.name.startswith(("prefect.flow_runs", "prefect.task_runs")))


def _prefect_defaults() -> None:
    """Prefect settings for a terminal user on a microscope PC, unless set otherwise; before Prefect is imported.

    Prefect's per-run INFO lines stay out of the terminal (they still reach the UI): the progress bars say it,
    and so do its reports of failed runs: the command prints each failure in one line.
    The embedded server's telemetry is off: microscope PCs are often offline, where it logs an error every 10 minutes.
    """
    if logging.getLogger().getEffectiveLevel() > logging.INFO:  # not --verbose
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
        for handler in logging.getLogger().handlers:
            terminal = isinstance(handler, RichHandler)  # flows.cli.common.log_to_terminal's; other handlers (files, tests) keep everything
            if terminal and not any(isinstance(existing, _RunFailuresReportedOnce) for existing in handler.filters):
                handler.addFilter(_RunFailuresReportedOnce())
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _service_config(
    config_file: Path | None, *, watch: dict[str, Any] | None = None, execution: dict[str, Any] | None = None, **flags: Any
) -> ServiceConfig:
    """The service config: the YAML file's settings (if any) with the flags given on top.

    Also applies the process-wide fsync setting of the outputs (``--no-fsync``).

    Parameters
    ----------
    config_file : Path or None
        The service YAML (``--config``).
    watch, execution : dict, optional
        The ``watch`` and ``execution`` flags, None where not given.
    **flags
        The processing flags: keyword arguments of :func:`~flows.cli.options.processing_flags`.

    Returns
    -------
    ServiceConfig
        The validated settings; a one-line error (exit 2) instead.
    """
    try:
        overrides = given({"processing": processing_flags(**flags), "watch": watch or {}, "execution": execution or {}})
        if config_file is None and "acquisition" not in overrides.get("processing", {}):
            raise IsoviewError("give the acquisition folder, or a --config file that names it")
        config = load_service_config(config_file, overrides)
    except (IsoviewError, ValueError) as error:
        fail(str(error).splitlines()[0])
    set_fsync(config.processing.output.fsync)
    return config


class _WatchDisplay:
    """Live progress of a watcher: bars for timepoints corrected and fused, a line per problem."""

    def __init__(self, progress: Progress, expected: int | None) -> None:
        self.progress = progress
        self.seen: set[tuple[int, int]] = set()
        self.corrected = progress.add_task("corrected", total=expected)
        self.fused = progress.add_task("fused", total=expected)
        self.expected = expected

    def __call__(self, event) -> None:
        keys = {(event.specimen, t) for t in event.timepoints}
        if event.kind in ("waiting", "queued") and self.expected is None:
            self.seen |= keys
            self.progress.update(self.corrected, total=len(self.seen))
            self.progress.update(self.fused, total=len(self.seen))
        if event.kind == "corrected":
            self.progress.advance(self.corrected, len(keys))
        elif event.kind == "fused":
            self.progress.advance(self.fused, len(keys))
        elif event.kind == "problem":
            self.progress.console.print(f"[red]problem:[/red] {event.message}", highlight=False, soft_wrap=True)
        elif event.kind == "waiting_for_acquisition":
            self.progress.console.print(event.message, highlight=False, soft_wrap=True)


def _watch_progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description:>10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console)


def _run_watcher(config: ServiceConfig, *, expected: int | None = None):
    """Run the watcher with a live display, with the service's memory settings; returns its summary."""
    _prefect_defaults()
    from flows.memory import apply_mmap_threshold
    from flows.submission import make_submitter
    from flows.watcher import AcquisitionWatcher

    apply_mmap_threshold(config.execution.malloc_mmap_threshold_bytes)
    with _watch_progress() as progress:
        watcher = AcquisitionWatcher(config, make_submitter(config), on_event=_WatchDisplay(progress, expected))
        try:
            return watcher.run()
        except KeyboardInterrupt:
            console.print("stopping after the job in progress (Ctrl-C again to abort it)")
            watcher.stop()
            return watcher.summary


def watch(
    acquisition: AcquisitionOrConfig = None,
    config_file: ConfigFile = None,
    corrected: CorrectedRoot = None,
    output: FusedOutput = None,
    window: Window = None,
    polling: Annotated[bool | None, typer.Option("--polling", help="Poll instead of OS events (network drives).")] = None,
    idle_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds without new data after which the tail is fused and the watcher stops (also the longest wait for a folder not created yet)."
        ),
    ] = None,
    deployment: Annotated[
        str | None, typer.Option(help="Submit to the deployments of `isoview serve --name NAME` instead of running in-process.")
    ] = None,
    task_runner: TaskRunner = None,
    dask_address: DaskAddress = None,
    no_diagnostics: NoDiagnostics = False,
    archive_raw: ArchiveRaw = False,
    delete_raw_after_verify: DeleteRaw = False,
    no_fsync: NoFsync = False,
    isotropic: Isotropic = False,
) -> None:
    """Watch an acquisition as it is recorded: correct each complete timepoint, fuse each filled window."""
    config = _service_config(
        config_file,
        acquisition=acquisition,
        corrected_dir=corrected,
        fused_dir=output,
        window=window,
        isotropic=isotropic,
        no_diagnostics=no_diagnostics,
        archive_raw=archive_raw,
        delete_raw_after_verify=delete_raw_after_verify,
        no_fsync=no_fsync,
        watch={"polling": polling, "idle_timeout_s": idle_timeout},
        execution=execution_flags(task_runner, dask_address, deployment),
    )
    try:
        require_watchable_acquisition(config.processing.acquisition)  # at once, before Prefect starts
        summary = _run_watcher(config)
    except IsoviewError as error:
        fail(str(error))
    console.print(f"corrected {len(summary.corrected)} timepoints, fused {len(summary.fused)}, {len(summary.problems)} problems")
    if summary.problems:
        raise typer.Exit(1)


def run(
    acquisition: AcquisitionOrConfig = None,
    config_file: ConfigFile = None,
    timepoints: Timepoints = None,
    window: Window = None,
    overwrite: Overwrite = False,
    no_fusion: Annotated[bool, typer.Option("--no-fusion", help="Correct only.")] = False,
    task_runner: TaskRunner = None,
    dask_address: DaskAddress = None,
    no_diagnostics: NoDiagnostics = False,
    archive_raw: ArchiveRaw = False,
    delete_raw_after_verify: DeleteRaw = False,
    no_fsync: NoFsync = False,
    isotropic: Isotropic = False,
) -> None:
    """Process a whole acquisition or a range (backfill, reruns) with the service's flows, visible in the Prefect UI."""
    config = _service_config(
        config_file,
        acquisition=acquisition,
        timepoints=timepoints,
        window=window,
        isotropic=isotropic,
        overwrite=overwrite,
        no_diagnostics=no_diagnostics,
        archive_raw=archive_raw,
        delete_raw_after_verify=delete_raw_after_verify,
        no_fsync=no_fsync,
        execution=execution_flags(task_runner, dask_address),
    )
    selected_acquisition(config.processing)  # a one-line error before Prefect starts (its flow would log a traceback first)
    _prefect_defaults()
    from flows.acquisition import process_acquisition

    try:
        summary = process_acquisition(
            config.processing.acquisition, config.processing.timepoints, config.processing, fuse=not no_fusion, execution=config.execution
        )
    except IsoviewError as error:
        fail(str(error), code=1)
    console.print(
        f"corrected {summary.corrected_timepoints} timepoints, fused {summary.fused_pairs} pairs "
        f"-> {config.processing.resolved_corrected_dir()}, {config.processing.resolved_fused_dir()}"
    )


def serve(
    config_file: ConfigFile = None,
    name: Annotated[str, typer.Option(help="Deployment name: <flow>/<name>, e.g. correct-timepoint/isoview.")] = "isoview",
    limit: Annotated[int | None, typer.Option(help="Most flow runs at once (default: unlimited).")] = None,
) -> None:
    """Serve the five flows as deployments of the Prefect server (start it with `prefect server start`); --config's execution section picks the task runner."""
    try:
        execution = load_service_config(config_file).execution if config_file else ExecutionConfig()
    except IsoviewError as error:
        fail(str(error))
    from flows.memory import apply_mmap_threshold
    from flows.runners import environment_for

    apply_mmap_threshold(execution.malloc_mmap_threshold_bytes)  # exported to the served runs too
    os.environ.update(environment_for(execution))  # served runs are subprocesses: they read these
    from prefect import serve as prefect_serve

    from flows.acquisition import process_acquisition
    from flows.correction import correct_timepoint
    from flows.fusion import draw_figures, estimate_timepoint, fuse_window

    flows = (correct_timepoint, estimate_timepoint, fuse_window, draw_figures, process_acquisition)
    deployments = [flow.to_deployment(name=name, tags=["isoview"]) for flow in flows]
    prefect_serve(*deployments, limit=limit, pause_on_shutdown=False)


def config_command(
    example: Annotated[bool, typer.Option("--example", help="Print a commented example service config.")] = False,
    check: Annotated[Path | None, typer.Option("--check", help="Validate a service config file and print it resolved.")] = None,
) -> None:
    """Print an example service configuration, or check one."""
    if check is not None:
        try:
            checked = load_service_config(check)
        except IsoviewError as error:
            fail(str(error))
        console.print(f"{check}: valid; acquisition {checked.processing.acquisition}, window {checked.processing.temporal.window}")
        return
    if not example:
        fail("give --example or --check FILE")
    typer.echo(example_config_yaml(), nl=False)


def demo(
    folder: Annotated[Path | None, typer.Option("--folder", help="Where to write it (default: a new temporary folder).")] = None,
    timepoints: TimepointCount = 8,
    interval: Annotated[float, typer.Option(help="Seconds per timepoint of the simulated microscope.")] = 5.0,
    shape: Shape = (40, 192, 192),
    window: Annotated[int, typer.Option(help="Temporal window half-width w of the demo (shorter than a real run's 5).")] = 2,
) -> None:
    """A simulated microscope records an acquisition in real time while the service processes it, isotropic volumes included."""
    from isoview_core.synthetic import SimulationConfig, simulate_acquisition

    root = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="isoview-demo-"))
    acquisition = root / "acquisition"
    if acquisition.exists():
        shutil.rmtree(default_corrected_root(acquisition), ignore_errors=True)
        shutil.rmtree(default_fused_root(acquisition), ignore_errors=True)
        shutil.rmtree(default_isotropic_root(acquisition), ignore_errors=True)
    try:  # view 90 turned, as the microscope sees it, so that the two views register into the isotropic volume
        simulation = SimulationConfig(shape=shape, timepoints=timepoints, seed=0, view90_geometry="rotation")
    except ValueError as error:
        fail(str(error).splitlines()[0])
    console.print(f"[bold]isoview demo[/bold]: a simulated IsoView writes {timepoints} timepoints of 4 cameras x {shape} into {acquisition}, one every {interval:g} s")
    microscope = threading.Thread(
        target=simulate_acquisition, args=(acquisition, simulation), kwargs={"interval_s": interval, "overwrite": True}, name="microscope", daemon=True
    )
    microscope.start()
    config = ServiceConfig(
        processing=ProcessingConfig(acquisition=acquisition, temporal=TemporalConfig(window=window), isotropic=IsotropicStageConfig(enabled=True)),
        watch=WatchConfig(scan_interval_s=0.5, settle_s=1.0, idle_timeout_s=max(5.0, interval)),
    )
    started = time.monotonic()
    summary = _run_watcher(config, expected=timepoints)
    microscope.join()
    _print_demo_outputs(config.processing, summary, time.monotonic() - started)


def _print_demo_outputs(processing: ProcessingConfig, summary, seconds: float) -> None:
    corrected, fused = processing.resolved_corrected_dir(), processing.resolved_fused_dir()
    series = series_files(fused)
    console.print(
        f"\n[bold]done in {seconds:.0f} s[/bold]: {len(summary.corrected)} timepoints corrected, "
        f"{len(summary.fused)} fused, {len(summary.problems)} problems\n"
        f"  corrected OME-Zarr : {output_timepoint_folder(corrected, 0, 0).parent}/  (a folder per timepoint, a volume per camera, with labels/segmentation)\n"
        f"  fused OME-Zarr     : {output_timepoint_folder(fused, 0, 0).parent}/  (a folder per timepoint; VW00 = cameras 0+1, VW90 = cameras 2+3)\n"
        f"  fused time series  : {', '.join(path.name for path in series) or 'none'} in {fused}/  (t, z, y, x; one movie per view)\n"
        f"  isotropic OME-Zarr : {output_timepoint_folder(processing.resolved_isotropic_dir(), 0, 0).parent}/  (VW90 registered onto VW00 in 3D, fused and deconvolved on an isotropic grid)\n"
        f"  diagnostics        : {diagnostics_dir(fused)}/  (per timepoint and pair)\n"
        f"  parameters over time: {parameters_over_time_figure(fused, (0, 1))}\n"
        f"  journal of the work: {journal_path(fused)}\n\n"
        f"look at it in napari:  isoview view {fused}   (pip install -e '.\\[viewer]')\n"
        f"in a notebook:         IsoviewArray('{fused}')   (from isoview_core.api)\n"
        f"see the runs in the Prefect UI:  prefect server start   then open http://127.0.0.1:4200/runs?tag=acquisition:{processing.acquisition.name}",
        highlight=False,
        soft_wrap=True,
    )


COMMANDS = {"watch": watch, "run": run, "serve": serve, "config": config_command, "demo": demo}
"""The service commands by name, in the order ``isoview --help`` lists them."""
