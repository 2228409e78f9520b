"""The intensity-correction figure of a camera pair: histograms of both cameras before and after (ALGORITHMS.md §5)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes

from isoview_core.diagnostics._style import (
    DPI,
    FOREGROUND,
    REFERENCE_COLOUR,
    SECOND_COLOUR,
    Margins,
    _every,
    _legend,
    _log_scale,
    _new_figure,
    _nonzero_values,
    _save,
    _text_panel,
    _title,
)

HISTOGRAM_STEP = 100
"""Every this many voxels enter the intensity histograms (§5)."""

HISTOGRAM_UPPER_PERCENTILE = 99.5
"""The histograms' x range ends at this percentile of the reference camera's samples."""

HISTOGRAM_BINS = 120


def histogram_samples(volume: np.ndarray, correct: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Every :data:`HISTOGRAM_STEP`-th voxel of `volume` (flattened), zeros left out: what the histograms count.

    Parameters
    ----------
    volume : ndarray
        A camera's voxels, any shape.
    correct : callable, optional
        Voxel-wise correction, given the samples as a (1, N) array of `volume`'s dtype: the samples
        of the corrected volume, at a hundredth of the cost of correcting `volume` first.

    Returns
    -------
    ndarray
        1-D float32 samples, about 1 % of the voxels: kept until the figure is drawn.
    """
    samples = _every(volume, HISTOGRAM_STEP)
    if correct is not None:
        samples = correct(samples[np.newaxis])
    return _nonzero_values(samples).astype(np.float32)


def plot_intensity_correction(
    path: str | os.PathLike[str],
    reference: np.ndarray,
    second_before: np.ndarray,
    second_after: np.ndarray,
    *,
    intensity_ratio: float,
    background_reference: float,
    background_second: float,
    method: str,
    dpi: int = DPI,
) -> Path:
    """Draw ``intensity_correction.png``: intensity histograms of the pair before and after (§3.9, §5).

    Parameters
    ----------
    path : str or os.PathLike
        PNG to write.
    reference : ndarray
        :func:`histogram_samples` of the reference camera.
    second_before, second_after : ndarray
        :func:`histogram_samples` of the second camera before and after intensity correction.
    intensity_ratio : float
        Signed single-number correction ρ: the multiplier applied to the second camera.
    background_reference, background_second : float
        Backgrounds subtracted from the two cameras (ADU).
    method : str
        How the ratio was obtained (e.g. ``"estimated"``, ``"fixed"``, ``"lookup table"``).
    dpi : int, optional
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        `path`.

    Notes
    -----
    Histograms of every 100th voxel with the zeros (masked background) left out (the samples); the x range
    ends at the 99.5 % percentile of the reference's samples, counts are on a log scale.
    """
    reference_values, before_values, after_values = (np.ravel(samples) for samples in (reference, second_before, second_after))
    upper = float(np.percentile(reference_values, HISTOGRAM_UPPER_PERCENTILE)) if reference_values.size else 0.0
    bins = np.linspace(0.0, max(upper, 1.0), HISTOGRAM_BINS + 1)
    margins = Margins(left=0.75, bottom=0.6, top=0.75, wspace=0.85)
    figure, grid = _new_figure("Intensity correction between the cameras", (15, 5), (1, 3), dpi, margins, width_ratios=(1, 1, 0.7))
    _histograms(figure.add_subplot(grid[0, 0]), bins, {"reference": reference_values, "second, before": before_values}, "before correction")
    _histograms(figure.add_subplot(grid[0, 1]), bins, {"reference": reference_values, "second, after": after_values}, "after correction")
    _text_panel(
        figure,
        grid[0, 2],
        {
            "ratio ρ": f"{intensity_ratio:.4f} (× second)",
            "background ref.": f"{background_reference:.1f} ADU",
            "background 2nd": f"{background_second:.1f} ADU",
            "method": method,
        },
    )
    return _save(figure, path)


def _histograms(axes: Axes, bins: np.ndarray, samples: Mapping[str, np.ndarray], title: str) -> None:
    """Step histograms of the reference (magenta) and the second camera (green), log counts."""
    counted = False
    for (name, values), colour in zip(samples.items(), (REFERENCE_COLOUR, SECOND_COLOUR)):
        counts, _ = np.histogram(values, bins)
        axes.stairs(counts, bins, color=colour, linewidth=1.3, label=f"{name} (n = {values.size:,})")
        counted |= bool(counts.any())
    if counted:
        _log_scale(axes)
    else:
        axes.text(0.5, 0.5, "no non-zero voxels", transform=axes.transAxes, ha="center", color=FOREGROUND)
    axes.set_xlim(bins[0], bins[-1])
    _title(axes, title)
    axes.set_xlabel("intensity (ADU)")
    axes.set_ylabel(f"voxels (every {HISTOGRAM_STEP}th)")
    _legend(axes, loc="upper right")
