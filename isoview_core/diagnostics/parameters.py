"""The parameters-over-time figure of a pair series: estimated vs applied (smoothed) fusion parameters (ALGORITHMS.md §5)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from isoview_core.diagnostics._style import (
    ACCENT_COLOUR,
    DPI,
    EDGE,
    SECOND_COLOUR,
    Margins,
    _legend,
    _new_figure,
    _save,
)

PARAMETER_LABELS = {
    "offset_x_px": "x offset (px)",
    "offset_y_px": "y offset (px)",
    "rotation_deg": "rotation (°)",
    "intensity_ratio": "intensity ratio ρ\n(× second camera)",
    "transition_z": "transition plane",
}
"""Axis labels of the parameters of :func:`plot_parameters_over_time`; other keys show as named."""


def plot_parameters_over_time(
    path: str | os.PathLike[str],
    timepoints: Sequence[int],
    estimated: Mapping[str, Sequence[float | None]],
    applied: Mapping[str, Sequence[float]],
    *,
    title: str,
    dpi: int = DPI,
) -> Path:
    """Draw the per-acquisition parameter figure: estimated vs applied parameters over time (§4, §5).

    Parameters
    ----------
    path : str or os.PathLike
        PNG to write.
    timepoints : sequence of int
        Timepoint of every sample.
    estimated : mapping of str to sequence of float or None
        Per parameter (e.g. ``offset_x_px``, ``offset_y_px``, ``rotation_deg``,
        ``intensity_ratio``, ``transition_z``), the raw estimate at every timepoint, None where
        none was made (drawn as a gap).
    applied : mapping of str to sequence of float
        Per parameter, the value used for fusion (e.g. the smoothed lookup table).
    title : str
        Figure title (e.g. ``"SPM00 CM00/CM01"``).
    dpi : int, optional
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        `path`.

    Raises
    ------
    ValueError
        No parameter given, or a series whose length differs from `timepoints`.

    Notes
    -----
    One row per parameter (estimated ones first), sharing the time axis: estimates as markers
    (their legend entry counts the missing ones), applied values as a line. Marker size shrinks
    with the number of timepoints, so 5 and 5000 timepoints both stay readable.
    """
    names = list(dict.fromkeys([*estimated, *applied]))
    if not names:
        raise ValueError("no parameter to plot: `estimated` and `applied` are both empty")
    times = np.asarray(timepoints, dtype=np.float64)
    margins = Margins(left=1.0, right=1.35, bottom=0.6, top=0.5, hspace=0.12)
    figure, grid = _new_figure(title, (12, 1.3 + 2.1 * len(names)), (len(names), 1), dpi, margins)
    axes = grid.subplots(sharex=True, squeeze=False)[:, 0]
    marker_size = float(np.clip(40 / np.sqrt(max(times.size, 1)), 1.0, 5.0))
    for parameter_axes, name in zip(axes, names):
        if name in applied:
            parameter_axes.plot(times, _series(applied[name], times, name), color=ACCENT_COLOUR, linewidth=1.4, label="applied")
        if name in estimated:
            values = _series(estimated[name], times, name)
            missing = int(np.isnan(values).sum())
            label = f"estimated ({missing} missing)" if missing else "estimated"
            parameter_axes.plot(
                times, values, linestyle="none", marker="o", markersize=marker_size, markeredgewidth=0, color=SECOND_COLOUR, alpha=0.8, label=label, zorder=3
            )
        parameter_axes.set_ylabel(PARAMETER_LABELS.get(name, name.replace("_", " ")))
        parameter_axes.grid(color=EDGE, alpha=0.35, linewidth=0.5)
        _legend(parameter_axes, loc="upper left", bbox_to_anchor=(1.01, 1.0), markerscale=5.0 / marker_size)
    axes[-1].set_xlabel("timepoint")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(figure, path)


def _series(values: Sequence[float | None], times: np.ndarray, name: str) -> np.ndarray:
    """`values` as float64 with None as NaN, checked against the number of timepoints."""
    series = np.array([np.nan if value is None else value for value in values], dtype=np.float64)
    if series.shape != times.shape:
        raise ValueError(f"{name}: {series.size} values for {times.size} timepoints")
    return series
