"""The ``isoview`` command line of the service: the library commands (simulate, correct, fuse) plus
watch, run, serve, config and demo, which run the Prefect flows."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from enum import Enum
from pathlib import Path

import typer
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from isoview_core.cli import NO_FSYNC_OPTION, _fail, _selected_acquisition, app, console
from isoview_core.config import OutputConfig, ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.formats.atomic import set_fsync
from isoview_core.service.config import (
    ExecutionConfig,
    ServiceConfig,
    WatchConfig,
    example_config_yaml,
    load_service_config,
)
from isoview_core.service.paths import require_watchable_acquisition
from isoview_core.temporal.config import TemporalConfig
from isoview_core.timepoints import parse_timepoints

__all__ = ["app"]


class TaskRunnerKind(str, Enum):
    threads = "threads"
    dask = "dask"


# options shared by `watch` and `run`
TASK_RUNNER_OPTION = typer.Option(None, help="Parallel tasks in threads (default) or on Dask.")
DASK_ADDRESS_OPTION = typer.Option(None, help="Dask scheduler tcp://host:8786 (default: a local cluster).")
NO_DIAGNOSTICS_OPTION = typer.Option(False, "--no-diagnostics", help="Skip the fusion diagnostic PNGs.")
ARCHIVE_RAW_OPTION = typer.Option(False, "--archive-raw", help="Archive each raw stack losslessly and verify it (beside the acquisition).")
DELETE_RAW_OPTION = typer.Option(
    False, "--delete-raw-after-verify", help="With --archive-raw: delete each raw stack once its archive is verified."
)


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
            terminal = isinstance(handler, RichHandler)  # isoview_core.cli's; other handlers (files, tests) keep everything
            if terminal and not any(isinstance(existing, _RunFailuresReportedOnce) for existing in handler.filters):
                handler.addFilter(_RunFailuresReportedOnce())
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _service_config(
    acquisition: Path | None,
    config_file: Path | None,
    *,
    processing: dict,
    watch: dict | None = None,
    execution: dict | None = None,
) -> ServiceConfig:
    """The service config from the YAML file (if any), with command-line values on top."""
    try:
        base = load_service_config(config_file) if config_file else None
        if base is None and acquisition is None:
            raise IsoviewError("give the acquisition folder, or a --config file that names it")
        processing_fields = base.processing.model_dump() if base else {}
        processing_fields.update({k: v for k, v in processing.items() if v is not None})
        if acquisition is not None:
            processing_fields["acquisition"] = acquisition
        watch_fields = (base.watch.model_dump() if base else {}) | {k: v for k, v in (watch or {}).items() if v is not None}
        execution_fields = (base.execution.model_dump() if base else {}) | {k: v for k, v in (execution or {}).items() if v is not None}
        return ServiceConfig(processing=processing_fields, watch=watch_fields, execution=execution_fields)
    except (IsoviewError, ValueError) as error:
        _fail(str(error).splitlines()[0])


def _temporal(config_file: Path | None, window: int | None) -> dict | None:
    """A ``temporal`` override for ``--window`` that keeps the file's other temporal settings."""
    if window is None:
        return None
    base = load_service_config(config_file).processing.temporal if config_file else TemporalConfig()
    return base.model_copy(update={"window": window}).model_dump()


def _output(config_file: Path | None, no_fsync: bool) -> dict | None:
    """An ``output`` override for ``--no-fsync`` that keeps the file's other output settings."""
    if not no_fsync:
        return None
    base = load_service_config(config_file).processing.output if config_file else OutputConfig()
    return base.model_copy(update={"fsync": False}).model_dump()


def _processing_overrides(
    config_file: Path | None, window: int | None, no_diagnostics: bool, archive_raw: bool, delete_raw_after_verify: bool, **fields: object
) -> dict:
    """The ``processing`` fields the command line sets (None: keep the config file's value)."""
    return {
        **fields,
        "temporal": _temporal(config_file, window),
        "save_diagnostics": False if no_diagnostics else None,
        "archive": _archive(archive_raw, delete_raw_after_verify),
    }


def _archive(archive_raw: bool, delete_raw_after_verify: bool) -> dict | None:
    """An ``archive`` override from the flags (None keeps the config file's)."""
    if not archive_raw:
        if delete_raw_after_verify:
            _fail("--delete-raw-after-verify needs --archive-raw: raw stacks are deleted only once their archive is verified")
        return None
    return {"enabled": True, "delete_raw_after_verify": delete_raw_after_verify}


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


@app.command()
def watch(
    acquisition: Path | None = typer.Argument(None, help="Acquisition folder the microscope writes (or give it in --config)."),
    config_file: Path | None = typer.Option(None, "--config", "-c", help="Service YAML (see `isoview config --example`)."),
    corrected: Path | None = typer.Option(None, "--corrected", help="Corrected root (default: <acquisition>.corrected)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Fused root (default: <acquisition>.fused)."),
    window: int | None = typer.Option(None, help="Temporal window half-width w (timepoints t-w .. t+w; default 5)."),
    polling: bool | None = typer.Option(None, "--polling", help="Poll instead of OS events (network drives)."),
    idle_timeout: float | None = typer.Option(None, help="Seconds without new data after which the tail is fused and the watcher stops (also the longest wait for a folder not created yet)."),
    deployment: str | None = typer.Option(None, help="Submit to the deployments of `isoview serve --name NAME` instead of running in-process."),
    task_runner: TaskRunnerKind | None = TASK_RUNNER_OPTION,
    dask_address: str | None = DASK_ADDRESS_OPTION,
    no_diagnostics: bool = NO_DIAGNOSTICS_OPTION,
    archive_raw: bool = ARCHIVE_RAW_OPTION,
    delete_raw_after_verify: bool = DELETE_RAW_OPTION,
    no_fsync: bool = NO_FSYNC_OPTION,
) -> None:
    """Watch an acquisition as it is recorded: correct each complete timepoint, fuse each filled window."""
    config = _service_config(
        acquisition,
        config_file,
        processing=_processing_overrides(
            config_file, window, no_diagnostics, archive_raw, delete_raw_after_verify, corrected_dir=corrected, fused_dir=output,
            output=_output(config_file, no_fsync),
        ),
        watch={"polling": polling, "idle_timeout_s": idle_timeout},
        execution={"deployment": deployment, "task_runner": task_runner.value if task_runner else None, "dask_address": dask_address},
    )
    set_fsync(config.processing.output.fsync)
    try:
        require_watchable_acquisition(config.processing.acquisition)  # at once, before Prefect starts
        summary = _run_watcher(config)
    except IsoviewError as error:
        _fail(str(error))
    console.print(f"corrected {len(summary.corrected)} timepoints, fused {len(summary.fused)}, {len(summary.problems)} problems")
    if summary.problems:
        raise typer.Exit(1)


@app.command()
def run(
    acquisition: Path | None = typer.Argument(None, help="Acquisition folder (or give it in --config)."),
    config_file: Path | None = typer.Option(None, "--config", "-c", help="Service YAML (see `isoview config --example`)."),
    timepoints: str | None = typer.Option(None, help="Timepoints, e.g. 0,1,5-9 (default: all)."),
    window: int | None = typer.Option(None, help="Temporal window half-width w (default 5)."),
    overwrite: bool = typer.Option(False, help="Redo finished work."),
    no_fusion: bool = typer.Option(False, "--no-fusion", help="Correct only."),
    task_runner: TaskRunnerKind | None = TASK_RUNNER_OPTION,
    dask_address: str | None = DASK_ADDRESS_OPTION,
    no_diagnostics: bool = NO_DIAGNOSTICS_OPTION,
    archive_raw: bool = ARCHIVE_RAW_OPTION,
    delete_raw_after_verify: bool = DELETE_RAW_OPTION,
    no_fsync: bool = NO_FSYNC_OPTION,
) -> None:
    """Process a whole acquisition or a range (backfill, reruns) with the service's flows, visible in the Prefect UI."""
    config = _service_config(
        acquisition,
        config_file,
        processing=_processing_overrides(
            config_file, window, no_diagnostics, archive_raw, delete_raw_after_verify, timepoints=parse_timepoints(timepoints), overwrite=overwrite or None,
            output=_output(config_file, no_fsync),
        ),
        execution={"task_runner": task_runner.value if task_runner else None, "dask_address": dask_address},
    )
    set_fsync(config.processing.output.fsync)
    _selected_acquisition(config.processing)  # a one-line error before Prefect starts (its flow would log a traceback first)
    _prefect_defaults()
    from flows.acquisition import process_acquisition
    from flows.runners import make_task_runner

    flow = process_acquisition.with_options(task_runner=make_task_runner(config.execution))
    try:
        summary = flow(config.processing.acquisition, config.processing.timepoints, config.processing, fuse=not no_fusion)
    except IsoviewError as error:
        _fail(str(error), code=1)
    console.print(
        f"corrected {summary.corrected_timepoints} timepoints, fused {summary.fused_pairs} pairs "
        f"-> {config.processing.resolved_corrected_dir()}, {config.processing.resolved_fused_dir()}"
    )


@app.command()
def serve(
    config_file: Path | None = typer.Option(None, "--config", "-c", help="Service YAML: its execution section picks the task runner."),
    name: str = typer.Option("isoview", help="Deployment name: <flow>/<name>, e.g. correct-timepoint/isoview."),
    limit: int | None = typer.Option(None, help="Most flow runs at once (default: unlimited)."),
) -> None:
    """Serve the three flows as deployments of the Prefect server (start it with `prefect server start`)."""
    execution = load_service_config(config_file).execution if config_file else ExecutionConfig()
    from flows.memory import apply_mmap_threshold
    from flows.runners import environment_for

    apply_mmap_threshold(execution.malloc_mmap_threshold_bytes)  # exported to the served runs too
    os.environ.update(environment_for(execution))  # served runs are subprocesses: they read these
    from prefect import serve as prefect_serve

    from flows.acquisition import process_acquisition
    from flows.correction import correct_timepoint
    from flows.fusion import fuse_window

    deployments = [flow.to_deployment(name=name, tags=["isoview"]) for flow in (correct_timepoint, fuse_window, process_acquisition)]
    prefect_serve(*deployments, limit=limit, pause_on_shutdown=False)


@app.command("config")
def config_command(
    example: bool = typer.Option(False, "--example", help="Print a commented example service config."),
    check: Path | None = typer.Option(None, "--check", help="Validate a service config file and print it resolved."),
) -> None:
    """Print an example service configuration, or check one."""
    if check is not None:
        try:
            config = load_service_config(check)
        except IsoviewError as error:
            _fail(str(error))
        console.print(f"{check}: valid; acquisition {config.processing.acquisition}, window {config.processing.temporal.window}")
        return
    if not example:
        _fail("give --example or --check FILE")
    typer.echo(example_config_yaml(), nl=False)


@app.command()
def demo(
    folder: Path | None = typer.Option(None, "--folder", help="Where to write it (default: a new temporary folder)."),
    timepoints: int = typer.Option(8, help="Timepoints the simulated microscope records."),
    interval: float = typer.Option(5.0, help="Seconds per timepoint of the simulated microscope."),
    shape: tuple[int, int, int] = typer.Option((48, 192, 160), help="Stack shape Z Y X of every camera."),
    window: int = typer.Option(2, help="Temporal window half-width w."),
) -> None:
    """A simulated microscope records an acquisition in real time while the service processes it."""
    from isoview_core.synthetic import SimulationConfig, simulate_acquisition

    root = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="isoview-demo-"))
    acquisition = root / "acquisition"
    if acquisition.exists():
        shutil.rmtree(acquisition.parent / "acquisition.corrected", ignore_errors=True)
        shutil.rmtree(acquisition.parent / "acquisition.fused", ignore_errors=True)
    simulation = SimulationConfig(shape=shape, timepoints=timepoints, seed=0)
    console.print(f"[bold]isoview demo[/bold]: a simulated IsoView writes {timepoints} timepoints of 4 cameras x {shape} into {acquisition}, one every {interval:g} s")
    microscope = threading.Thread(
        target=simulate_acquisition, args=(acquisition, simulation), kwargs={"interval_s": interval, "overwrite": True}, name="microscope", daemon=True
    )
    microscope.start()
    config = ServiceConfig(
        processing=ProcessingConfig(acquisition=acquisition, temporal=TemporalConfig(window=window)),
        watch=WatchConfig(scan_interval_s=0.5, settle_s=1.0, idle_timeout_s=max(5.0, interval)),
    )
    started = time.monotonic()
    summary = _run_watcher(config, expected=timepoints)
    microscope.join()
    _print_demo_outputs(config.processing, summary, time.monotonic() - started)


def _print_demo_outputs(processing: ProcessingConfig, summary, seconds: float) -> None:
    corrected, fused = processing.resolved_corrected_dir(), processing.resolved_fused_dir()
    first_volume = next(iter(sorted(fused.glob("SPM*/TM*/*.ome.zarr"))), None)
    console.print(
        f"\n[bold]done in {seconds:.0f} s[/bold]: {len(summary.corrected)} timepoints corrected, "
        f"{len(summary.fused)} fused, {len(summary.problems)} problems\n"
        f"  corrected OME-Zarr : {corrected}/SPM00/TM*/  (one per camera, with labels/segmentation)\n"
        f"  fused OME-Zarr     : {fused}/SPM00/TM*/  (VW00 = cameras 0+1, VW90 = cameras 2+3)\n"
        f"  diagnostics        : {fused}/diagnostics/  (per timepoint and pair)\n"
        f"  parameters over time: {fused}/diagnostics/parameters_over_time_cam0_1.png\n"
        f"  journal of the work: {fused}/service/journal.jsonl\n\n"
        f"open a volume in napari:  napari --plugin napari-ome-zarr {first_volume or fused}\n"
        "see the runs in the Prefect UI:  prefect server start   then open http://127.0.0.1:4200",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def doctor(
    acquisition: Path = typer.Argument(..., help="Acquisition folder to check."),
    corrected: Path | None = typer.Option(None, "--corrected", help="Corrected root (default: <acquisition>.corrected)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Fused root (default: <acquisition>.fused)."),
) -> None:
    """Check an acquisition before a run: layout, XMLs, stack sizes, backgrounds, free disk; exit 1 on any error."""
    from rich.text import Text

    from isoview_core.doctor import diagnose_acquisition, size_text

    try:
        config = ProcessingConfig(acquisition=acquisition, corrected_dir=corrected, fused_dir=output)
    except ValueError as error:
        _fail(str(error).splitlines()[0])
    report = diagnose_acquisition(config)
    styles = {"ok": "green", "warning": "yellow", "error": "red"}
    for finding in report.checks:
        console.print(Text.assemble((f"{finding.level:>7}", styles[finding.level]), " ", finding.message), highlight=False, soft_wrap=True)
    free = ", ".join(f"{size_text(space.free_bytes)} free on {space.path}" for space in report.output_space) or "free space unknown"
    console.print(
        f"\n{report.specimens} specimen(s), {report.timepoints} timepoint(s), {report.stacks} stacks, {size_text(report.raw_bytes)} raw; "
        f"expected output about {size_text(report.expected_output_bytes)} (corrected {size_text(report.expected_corrected_bytes)}, "
        f"fused {size_text(report.expected_fused_bytes)}); {free}",
        highlight=False,
        soft_wrap=True,
    )
    errors, warnings = len(report.errors), len(report.warnings)
    verdict = Text(f"{errors} error(s), {warnings} warning(s)", style="red" if errors else "yellow" if warnings else "green")
    console.print(verdict)
    if errors:
        raise typer.Exit(1)
