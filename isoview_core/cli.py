"""The library commands of ``isoview``: simulate, correct, fuse (``flows.cli`` adds the service: watch, run, serve, demo)."""

from __future__ import annotations

import logging
from enum import Enum
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from isoview_core.config import OutputConfig, ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.formats.atomic import set_fsync
from isoview_core.formats.codecs import CodecConfig
from isoview_core.timepoints import parse_timepoints

if TYPE_CHECKING:
    from isoview_core.acquisition import Acquisition

app = typer.Typer(no_args_is_help=True, add_completion=False, help="IsoView light-sheet processing: correct, compress, fuse.")
console = Console(stderr=True)


class Blending(str, Enum):
    adaptive = "adaptive"
    geometric = "geometric"
    average = "average"
    wavelet = "wavelet"


class VolumeFormat(str, Enum):
    zarr = "zarr"
    klb = "klb"
    tif = "tif"


# shared with the service commands (flows.cli)
NO_FSYNC_OPTION = typer.Option(
    False, "--no-fsync", help="Publish outputs without fsync: faster, but a power cut can leave them truncated (scratch runs only)."
)


def _fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _selected_acquisition(config: ProcessingConfig) -> tuple[Acquisition, list[tuple[int, int]]]:
    """The acquisition and the (specimen, timepoint) pairs the config selects, or a one-line error (exit 2) when it
    is no acquisition or the selection is empty: before any work starts."""
    from isoview_core.acquisition import discover_acquisition
    from isoview_core.pipeline.correction import selected_timepoints

    try:
        found = discover_acquisition(config.acquisition, config.layout)
    except IsoviewError as error:
        _fail(str(error).splitlines()[0])
    selection = list(selected_timepoints(config, found))
    if not selection:
        _fail(f"{config.acquisition}: no timepoint matches the selection {config.timepoints}")
    return found, selection


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every step.")) -> None:
    """IsoView light-sheet processing."""
    level = logging.INFO if verbose else logging.WARNING
    # the handler's own level too: records of libraries' loggers (Prefect's) propagate to it regardless of the root level
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=console, show_path=False, level=level)])


@app.command()
def simulate(
    out: Path = typer.Argument(..., help="Folder to write the synthetic acquisition to."),
    timepoints: int = typer.Option(4, help="Number of timepoints."),
    shape: tuple[int, int, int] = typer.Option((48, 192, 160), help="Stack shape Z Y X of every camera."),
    seed: int = typer.Option(0, help="Random seed (the same seed gives the same data)."),
    interval: Optional[float] = typer.Option(None, help="Seconds per timepoint: write plane by plane in real time."),
    overwrite: bool = typer.Option(False, help="Replace an existing acquisition in OUT."),
) -> None:
    """Write a synthetic IsoView acquisition (four cameras, known ground truth) to OUT."""
    from isoview_core.synthetic import SimulationConfig, simulate_acquisition

    try:
        config = SimulationConfig(shape=shape, timepoints=timepoints, seed=seed)
    except ValueError as error:
        _fail(str(error).splitlines()[0])
    with _progress() as progress:
        task = progress.add_task("simulate", total=timepoints)
        try:
            simulate_acquisition(out, config, interval_s=interval, overwrite=overwrite, on_timepoint=lambda _: progress.advance(task))
        except (IsoviewError, FileExistsError) as error:
            _fail(str(error))
    console.print(f"wrote {timepoints} timepoints to {out} (ground truth: {out / 'ground_truth.json'})")


@app.command()
def correct(
    acquisition: Path = typer.Argument(..., help="Raw acquisition folder (nested SPM##/TM##### or flat layout)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output root (default: <acquisition>.corrected beside it)."),
    timepoints: Optional[str] = typer.Option(None, help="Timepoints, e.g. 0,1,5-9 (default: all)."),
    format: VolumeFormat = typer.Option(VolumeFormat.zarr, "--format", help="Volume format."),
    codec: str = typer.Option("blosc-zstd:1:shuffle", help="OME-Zarr codec NAME[:LEVEL[:SHUFFLE]], e.g. blosc-zstd:5, jpegls."),
    pyramid_levels: int = typer.Option(0, help="Extra 2x-downsampled levels in each OME-Zarr (smoother zooming in viewers)."),
    overwrite: bool = typer.Option(False, help="Recompute timepoints that are already complete."),
    no_fsync: bool = NO_FSYNC_OPTION,
) -> None:
    """Correct every camera stack (background, dead pixels, foreground mask) and compress it."""
    from isoview_core.pipeline.correction import planned_planes, process_dataset

    try:
        config = ProcessingConfig(
            acquisition=acquisition,
            corrected_dir=output,
            timepoints=parse_timepoints(timepoints),
            output=OutputConfig(format=format.value, codec=CodecConfig.parse(codec), pyramid_levels=pyramid_levels, fsync=not no_fsync),
            overwrite=overwrite,
        )
    except (IsoviewError, ValueError) as error:
        _fail(str(error).splitlines()[0])
    set_fsync(config.output.fsync)
    found, selection = _selected_acquisition(config)
    # planes streamed once each timepoint is done: the bar goes there even when a failed or cropped stack streamed fewer
    finished_at = dict(zip(selection, accumulate(planned_planes(found, [key], config.correction) for key in selection)))
    errors: list[str] = []
    done = skipped = 0
    with _progress() as progress:
        task = progress.add_task(f"correct {len(selection)} timepoints", total=finished_at[selection[-1]])
        for report in process_dataset(
            config,
            progress=lambda planes: progress.advance(task, planes),
            on_timepoint=lambda report: progress.update(task, completed=finished_at[(report.specimen, report.timepoint)]),
        ):
            errors += report.errors
            done += len(report.records)
            skipped += len(report.skipped)
    console.print(f"corrected {done} stacks, skipped {skipped} already complete -> {config.resolved_corrected_dir()}")
    if errors:
        for error in errors:
            console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@app.command()
def fuse(
    acquisition: Path = typer.Argument(..., help="Raw acquisition folder (for its XMLs and timepoints)."),
    corrected: Optional[Path] = typer.Option(None, "--corrected", help="Corrected root (default: <acquisition>.corrected)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Fused root (default: <acquisition>.fused)."),
    timepoints: Optional[str] = typer.Option(None, help="Timepoints, e.g. 0,1,5-9 (default: all)."),
    window: int = typer.Option(5, help="Temporal smoothing window half-width w: timepoints t-w .. t+w."),
    blending: Blending = typer.Option(Blending.adaptive, help="Blending of the two cameras of a pair."),
    static: bool = typer.Option(False, "--static", help="One set of parameters for the whole acquisition."),
    no_diagnostics: bool = typer.Option(False, "--no-diagnostics", help="Skip the diagnostic PNGs."),
    overwrite: bool = typer.Option(False, help="Re-estimate and re-fuse timepoints that are already done."),
    no_fsync: bool = NO_FSYNC_OPTION,
) -> None:
    """Register, intensity-match and blend each opposing camera pair, with temporally smoothed parameters."""
    from isoview_core.fusion.config import FusionConfig
    from isoview_core.pipeline.fusion import fuse as fuse_dataset
    from isoview_core.temporal.config import TemporalConfig

    try:
        config = ProcessingConfig(
            acquisition=acquisition,
            corrected_dir=corrected,
            fused_dir=output,
            timepoints=parse_timepoints(timepoints),
            fusion=FusionConfig(fusion_type=blending.value),
            temporal=TemporalConfig(window=window, static_parameters=static),
            output=OutputConfig(fsync=not no_fsync),
            save_diagnostics=not no_diagnostics,
            overwrite=overwrite,
        )
    except (IsoviewError, ValueError) as error:
        _fail(str(error).splitlines()[0])
    set_fsync(config.output.fsync)
    with _progress() as progress:
        task = progress.add_task("estimate and fuse", total=None)
        try:
            report = fuse_dataset(config, progress=lambda text: progress.update(task, advance=1, description=text))
        except IsoviewError as error:
            _fail(str(error))
    console.print(
        f"estimated {len(report.estimated)} pairs, fused {len(report.fused)}, skipped {len(report.skipped)} unchanged "
        f"-> {config.resolved_fused_dir()}"
    )
    if report.errors:
        for error in report.errors:
            console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
