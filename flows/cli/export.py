"""``isoview export``: hand the results to other tools; ``isoview export bigstitcher ACQ.fused`` writes the
BigStitcher / BigDataViewer ``dataset.xml`` over the fused time series, ``isoview export series ACQ.fused``
builds those series from fused volumes written before they existed (fusion keeps them up to date since)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import fail
from isoview_core.errors import IsoviewError
from isoview_core.layout import CORRECTED_ROOT_SUFFIX, FUSED_ROOT_SUFFIX

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Export results for other tools (BigStitcher / BigDataViewer) and build the time series.")


@app.command("bigstitcher")
def bigstitcher(
    fused: Annotated[Path, typer.Argument(help=f"Fused root (<acquisition>{FUSED_ROOT_SUFFIX}) holding the time series.")],
) -> None:
    """Write FUSED/dataset.xml, a BigStitcher dataset over the fused time series (read in place); print its path."""
    from isoview_core.results.bigstitcher import write_bigstitcher_dataset

    try:
        dataset = write_bigstitcher_dataset(fused)
    except IsoviewError as error:
        fail(str(error).splitlines()[0])
    typer.echo(dataset)


@app.command("series")
def series(
    fused: Annotated[Path, typer.Argument(help=f"Fused root (<acquisition>{FUSED_ROOT_SUFFIX}).")],
    corrected: Annotated[
        Path | None,
        typer.Option(help=f"Corrected root, for the time scale from the XML timestamps (default: <acquisition>{CORRECTED_ROOT_SUFFIX} beside it)."),
    ] = None,
) -> None:
    """Bring each fused view's time series FUSED/SPM00_VW00_CHN00.ome.zarr in step with the fused volumes; print what was added."""
    from isoview_core.pipeline.series import update_all_fused_series

    if not fused.is_dir():
        fail(f"{fused}: no such fused root")
    if corrected is None:
        corrected = fused.with_name(fused.name.removesuffix(FUSED_ROOT_SUFFIX) + CORRECTED_ROOT_SUFFIX)
    try:
        appended = update_all_fused_series(fused, corrected_root=corrected if corrected.is_dir() else None)
    except IsoviewError as error:
        fail(str(error).splitlines()[0], code=1)
    if not appended:
        fail(f"{fused}: no fused volumes to make time series of")
    for path, timepoints in appended.items():
        typer.echo(f"{path}: {len(timepoints)} timepoints added")
