"""The library commands of ``isoview``: simulate, correct, fuse, isotropic and doctor, which call ``isoview_core`` directly (no Prefect)."""

from __future__ import annotations

from itertools import accumulate
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import (
    console,
    fail,
    print_error,
    progress_bars,
    resolved_workers,
    selected_acquisition,
)
from flows.cli.options import (
    Acquisition,
    Blending,
    BlendingOption,
    Codec,
    CorrectedOutput,
    CorrectedRoot,
    Deconvolve,
    Format,
    FusedOutput,
    FusedRoot,
    IsotropicOutput,
    IsotropicVoxel,
    NoDiagnostics,
    NoFsync,
    Overwrite,
    PyramidLevels,
    Shape,
    Static,
    TimepointCount,
    Timepoints,
    VolumeFormat,
    Window,
    Workers,
    processing_config,
)
from isoview_core.errors import IsoviewError


def simulate(
    out: Annotated[Path, typer.Argument(help="Folder to write the synthetic acquisition to.")],
    timepoints: TimepointCount = 4,
    shape: Shape = (48, 192, 160),
    seed: Annotated[int, typer.Option(help="Random seed (the same seed gives the same data).")] = 0,
    interval: Annotated[float | None, typer.Option(help="Seconds per timepoint: write plane by plane in real time.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing acquisition in OUT.")] = False,
) -> None:
    """Write a synthetic IsoView acquisition (four cameras, known ground truth) to OUT."""
    from isoview_core.synthetic import GROUND_TRUTH_NAME, SimulationConfig, simulate_acquisition

    try:
        config = SimulationConfig(shape=shape, timepoints=timepoints, seed=seed)
    except ValueError as error:
        fail(str(error).splitlines()[0])
    with progress_bars() as progress:
        task = progress.add_task("simulate", total=timepoints)
        try:
            simulate_acquisition(out, config, interval_s=interval, overwrite=overwrite, on_timepoint=lambda _: progress.advance(task))
        except (IsoviewError, FileExistsError) as error:
            fail(str(error))
    console.print(f"wrote {timepoints} timepoints to {out} (ground truth: {out / GROUND_TRUTH_NAME})")


def correct(
    acquisition: Acquisition,
    output: CorrectedOutput = None,
    timepoints: Timepoints = None,
    format: Format = VolumeFormat.zarr,
    codec: Codec = "blosc-zstd:1:shuffle",
    pyramid_levels: PyramidLevels = 0,
    overwrite: Overwrite = False,
    no_fsync: NoFsync = False,
    workers: Workers = None,
) -> None:
    """Correct every camera stack (background, dead pixels, foreground mask) and compress it."""
    from isoview_core.pipeline.correction import planned_planes, process_dataset
    from isoview_core.pipeline.heap import share_main_heap
    from isoview_core.pipeline.parallel import CORRECTION_STACKS_PER_WORKER

    share_main_heap()  # before any thread starts: the workers' jobs then reuse the memory earlier jobs freed (heap.py)

    config = processing_config(
        acquisition=acquisition,
        corrected_dir=output,
        timepoints=timepoints,
        volume_format=format,
        codec=codec,
        pyramid_levels=pyramid_levels,
        overwrite=overwrite,
        no_fsync=no_fsync,
    )
    found, selection = selected_acquisition(config)
    count = resolved_workers(workers, found, selection, CORRECTION_STACKS_PER_WORKER)
    # planes streamed once each timepoint is done: the bar goes there even when a failed or cropped stack streamed fewer
    finished_at = dict(zip(selection, accumulate(planned_planes(found, [key], config.correction) for key in selection)))
    errors: list[str] = []
    done = skipped = 0
    with progress_bars() as progress:
        task = progress.add_task(f"correct {len(selection)} timepoints with {count} workers", total=finished_at[selection[-1]])
        for report in process_dataset(
            config,
            workers=count,
            progress=lambda planes: progress.advance(task, planes),
            on_timepoint=lambda report: progress.update(task, completed=finished_at[(report.specimen, report.timepoint)]),
        ):
            errors += report.errors
            done += len(report.records)
            skipped += len(report.skipped)
    console.print(f"corrected {done} stacks, skipped {skipped} already complete ({count} workers) -> {config.resolved_corrected_dir()}")
    if errors:
        for error in errors:
            print_error(error)
        raise typer.Exit(1)


def fuse(
    acquisition: Acquisition,
    corrected: CorrectedRoot = None,
    output: FusedOutput = None,
    timepoints: Timepoints = None,
    window: Window = None,
    blending: BlendingOption = Blending.adaptive,
    static: Static = False,
    no_diagnostics: NoDiagnostics = False,
    overwrite: Overwrite = False,
    no_fsync: NoFsync = False,
    workers: Workers = None,
) -> None:
    """Register, intensity-match and blend each opposing camera pair, with temporally smoothed parameters."""
    from isoview_core.pipeline.fusion import fuse as fuse_dataset
    from isoview_core.pipeline.heap import share_main_heap
    from isoview_core.pipeline.parallel import FUSION_STACKS_PER_WORKER

    share_main_heap()  # before any thread starts: the workers' slabs then come from memory earlier jobs freed (heap.py)
    config = processing_config(
        acquisition=acquisition,
        corrected_dir=corrected,
        fused_dir=output,
        timepoints=timepoints,
        window=window,
        blending=blending,
        static=static,
        no_diagnostics=no_diagnostics,
        overwrite=overwrite,
        no_fsync=no_fsync,
    )
    found, selection = selected_acquisition(config)
    count = resolved_workers(workers, found, selection, FUSION_STACKS_PER_WORKER)
    with progress_bars() as progress:
        task = progress.add_task(f"estimate and fuse with {count} workers", total=None)
        try:
            report = fuse_dataset(config, workers=count, progress=lambda text: progress.update(task, advance=1, description=text))
        except IsoviewError as error:
            fail(str(error))
    console.print(
        f"estimated {len(report.estimated)} pairs, fused {len(report.fused)}, skipped {len(report.skipped)} unchanged "
        f"({count} workers) -> {config.resolved_fused_dir()}"
    )
    if report.errors:
        for error in report.errors:
            print_error(error)
        raise typer.Exit(1)


def isotropic(
    acquisition: Acquisition,
    fused: FusedRoot = None,
    output: IsotropicOutput = None,
    timepoints: Timepoints = None,
    window: Window = None,
    voxel: IsotropicVoxel = None,
    deconvolve: Deconvolve = None,
    overwrite: Overwrite = False,
    no_fsync: NoFsync = False,
    workers: Workers = None,
) -> None:
    """Register VW90 onto VW00 in 3D, smooth the transform over time and fuse both views into one isotropic volume."""
    from isoview_core.layout import output_specimens
    from isoview_core.pipeline.isotropic import make_isotropic

    config = processing_config(
        acquisition=acquisition,
        fused_dir=fused,
        isotropic_dir=output,
        timepoints=timepoints,
        window=window,
        voxel=voxel,
        deconvolve=deconvolve,
        overwrite=overwrite,
        no_fsync=no_fsync,
    )
    specimens = [s for s in output_specimens(config.resolved_fused_dir()) if config.specimens is None or s in config.specimens]
    if not specimens:
        fail(f"{config.resolved_fused_dir()}: no fused views to make isotropic volumes of (run isoview fuse first)")
    made, skipped, errors = 0, 0, []
    with progress_bars() as progress:
        task = progress.add_task("register and fuse the orthogonal views", total=None)
        for specimen in specimens:
            report = make_isotropic(
                config, specimen=specimen, timepoints=config.timepoints, workers=workers, progress=lambda text: progress.update(task, advance=1, description=text)
            )
            made, skipped, errors = made + len(report.made), skipped + len(report.skipped), errors + report.errors
    console.print(f"made {made} isotropic volumes, skipped {skipped} unchanged -> {config.resolved_isotropic_dir()}")
    if errors:
        for error in errors:
            print_error(error)
        raise typer.Exit(1)


def doctor(acquisition: Acquisition, corrected: CorrectedRoot = None, output: FusedOutput = None) -> None:
    """Check an acquisition before a run: layout, XMLs, stack sizes, backgrounds, free disk; exit 1 on any error."""
    from rich.text import Text

    from isoview_core.doctor import diagnose_acquisition, size_text

    config = processing_config(acquisition=acquisition, corrected_dir=corrected, fused_dir=output)
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


COMMANDS = {"simulate": simulate, "correct": correct, "fuse": fuse, "isotropic": isotropic, "doctor": doctor}
"""The library commands by name, in the order ``isoview --help`` lists them."""
