"""``isoview view``: open an acquisition's results in napari, and with ``--live`` follow them while they are processed.

napari and the plugin (:mod:`isoview_napari`) are imported only when the command runs: they come with the
optional ``[viewer]`` extra, and every other command works without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from flows.cli.common import console, fail

MISSING_NAPARI = "isoview view needs napari: pip install 'isoview[viewer]'"
"""The one-line error when napari is not installed."""


def view(
    path: Annotated[
        Path,
        typer.Argument(help="An acquisition (its fused series, else its corrected root), ACQ.fused, ACQ.corrected or one series."),
    ],
    live: Annotated[bool, typer.Option("--live", help="Extend the time axis as new timepoints are published.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.5, help="Seconds between two looks at the series with --live.")] = 5.0,
) -> None:
    """Open PATH in napari: one layer per view (or camera) and channel, physical scale, a time slider."""
    try:
        import napari
    except ImportError:
        fail(escape(MISSING_NAPARI), code=1)  # escaped: rich would take [viewer] for a style
    from isoview_napari.live import follow
    from isoview_napari.reader import SERIES_KEY, napari_get_reader

    if napari_get_reader(str(path)) is None:
        fail(f"{escape(str(path))}: no IsoView time series or corrected / fused volumes (give ACQ, ACQ.fused, ACQ.corrected or one series)")
    viewer = napari.Viewer(title=f"isoview: {path.name}")
    viewer.open(str(path), plugin="isoview")
    following = live and any(SERIES_KEY in layer.metadata for layer in viewer.layers)
    if live and not following:
        console.print(f"{escape(str(path))}: no time series to follow (fused roots have them); showing what is there now", highlight=False, soft_wrap=True)
    if following:
        follow(viewer, interval)
    napari.run()


COMMANDS = {"view": view}
"""The viewer command by name."""
