"""Follow an acquisition while it is processed: extend the time axis of series layers as timepoints are published.

:func:`refresh_series_layers` is one look at the disk: every layer that shows a time series
(``layer.metadata["series"]``, set by :mod:`isoview_napari.reader`) whose series has published more
timepoints than the layer shows gets the series' levels re-opened (an open zarr array keeps the shape it
was opened with), so the slider extends. The viewer stays where it was (slice, zoom); a viewer that
showed the last timepoint moves on to the new last one, the way a live view follows the microscope.
When the new timestamps change the series' time step, every series layer gets the new common step.
:func:`follow` puts the viewer on the newest timepoint and calls it every few seconds from a Qt timer, in
napari's event loop: each look reads one small ``zarr.json`` per series. Only new timepoints are picked up:
a rerun timepoint rewritten in place may still show its old planes from napari's cache until reopened.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from isoview_napari.reader import SERIES_KEY, common_interval_s, published_length, series_attributes, series_levels

if TYPE_CHECKING:
    from napari.components import ViewerModel
    from napari.layers import Layer
    from qtpy.QtCore import QTimer

__all__ = ["DEFAULT_INTERVAL_S", "follow", "refresh_series_layers"]

DEFAULT_INTERVAL_S = 5.0
"""Seconds between two looks at the series in :func:`follow`."""


def _shown_length(layer: Layer) -> int:
    """Timepoints the layer shows (the first axis of its full-resolution level)."""
    return int(layer.data[0].shape[0] if layer.multiscale else layer.data.shape[0])


def refresh_series_layers(viewer: ViewerModel) -> list[str]:
    """Give every series layer the timepoints its series has published since it was opened or last refreshed.

    Parameters
    ----------
    viewer : napari.components.ViewerModel
        A viewer (``napari.Viewer`` is one) whose layers came from :mod:`isoview_napari.reader`.

    Returns
    -------
    list of str
        Names of the layers whose time axis grew, in layer order (empty when nothing new was published).
    """
    layers = [layer for layer in viewer.layers if SERIES_KEY in layer.metadata]
    time_axis = viewer.dims.ndim - 4  # series layers are (t, z, y, x); napari aligns the trailing axes
    step = list(viewer.dims.current_step)
    following = bool(layers) and step[time_axis] >= viewer.dims.nsteps[time_axis] - 1
    grown = []
    for layer in layers:
        series = Path(layer.metadata[SERIES_KEY])
        length = published_length(series)
        if length <= _shown_length(layer):
            continue
        levels = series_levels(series, length)
        layer.data = levels if layer.multiscale else levels[0]
        layer.metadata = {**layer.metadata, "isoview": series_attributes(series)}
        grown.append(layer.name)
    if grown:
        interval = common_interval_s([layer.metadata["isoview"] for layer in layers])
        for layer in layers:
            if layer.scale[0] != interval:
                layer.scale = [interval, *layer.scale[1:]]
        # a new time step moves napari's world position, not the index: put the viewer back on its timepoint
        step[time_axis] = viewer.dims.nsteps[time_axis] - 1 if following else step[time_axis]
        viewer.dims.current_step = step
    return grown


def follow(viewer: ViewerModel, interval_s: float = DEFAULT_INTERVAL_S) -> QTimer:
    """Show the newest timepoint, then refresh `viewer`'s series layers every `interval_s` seconds from napari's Qt loop.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer the series were opened in.
    interval_s : float
        Seconds between two looks at the series.

    Returns
    -------
    qtpy.QtCore.QTimer
        The running timer, owned by the Qt application (it runs until the application quits); ``stop()``
        ends the following.
    """
    if interval_s <= 0:
        raise ValueError(f"interval_s must be positive, got {interval_s}")
    from qtpy.QtCore import QCoreApplication, QTimer

    if any(SERIES_KEY in layer.metadata for layer in viewer.layers):  # start on the newest timepoint, then follow it
        time_axis = viewer.dims.ndim - 4
        viewer.dims.set_current_step(time_axis, viewer.dims.nsteps[time_axis] - 1)
    timer = QTimer(QCoreApplication.instance())
    timer.timeout.connect(lambda: refresh_series_layers(viewer))
    timer.start(round(interval_s * 1000))
    return timer
