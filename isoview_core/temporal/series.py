"""Batch temporal analysis of the fusion parameters of one camera pair: the lookup table of §4.2.

The original's parameter analysis (localAP) turns the estimates at the reference
timepoints into one parameter set per timepoint of the full interval:
(optional median prefilter) → robust LOESS per parameter → distance-weighted
interpolation between references → sliding mean/median → (static mode). The
intensity factor/flag pair is already folded into the camera-2 multiplier ρ
(``intensity_ratio``, §4.1), and unfolding it is left to the writer of the
original's six-column table.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import BaseModel, ConfigDict, Field

from isoview_core.formats.atomic import atomic_output
from isoview_core.records import PARAMETER_NAMES, FusionParameters
from isoview_core.temporal.config import TemporalConfig
from isoview_core.temporal.rloess import rloess

__all__ = ["LookupTable", "LookupTableRow", "smooth_parameters"]

logger = logging.getLogger(__name__)


_STAGES = ("estimated", "smoothed", "applied")


class LookupTableRow(BaseModel):
    """One timepoint of a lookup table: what was estimated, smoothed and finally applied."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timepoint: int
    estimated: FusionParameters | None = Field(description="Raw estimate; None where none was made or recorded.")
    smoothed: FusionParameters = Field(description="After prefilter, rloess and interpolation between references.")
    applied: FusionParameters = Field(description="After the sliding averaging (and static mode): used for fusion.")


class LookupTable(BaseModel):
    """Per-timepoint fusion parameters of one camera pair over the full interval (§4.4)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: tuple[LookupTableRow, ...]

    def applied_at(self, timepoint: int) -> FusionParameters:
        """The parameters to fuse `timepoint` with.

        Raises
        ------
        KeyError
            The table has no row for `timepoint` (the original fails; callers log and skip).
        """
        for row in self.rows:
            if row.timepoint == timepoint:
                return row.applied
        raise KeyError(f"lookup table has no row for timepoint {timepoint}")

    def save_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the table as CSV, replacing an existing file atomically.

        Columns: ``timepoint``, then per parameter ``<name>_estimated``,
        ``<name>_smoothed``, ``<name>_applied`` side by side (QC); a missing
        estimate is an empty cell, a missing value ``nan``. Values are written
        with full precision, so :meth:`load_csv` restores the table exactly.

        Returns
        -------
        pathlib.Path
            The written file.
        """
        path = Path(path)
        with atomic_output(path, overwrite=True) as tmp, open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(_csv_header())
            for row in self.rows:
                stages = [row.estimated, row.smoothed, row.applied]
                cells = [
                    "" if parameters is None else repr(getattr(parameters, name))
                    for name in PARAMETER_NAMES
                    for parameters in stages
                ]
                writer.writerow([row.timepoint, *cells])
        return path

    @classmethod
    def load_csv(cls, path: str | os.PathLike[str]) -> LookupTable:
        """Read a table written by :meth:`save_csv`.

        Raises
        ------
        ValueError
            The file lacks a column of :meth:`save_csv`, or a row is incomplete.
        """
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = set(_csv_header()) - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{path}: not an isoview lookup table, missing columns {sorted(missing)}")
            rows = [_row_from_csv(record, path, line) for line, record in enumerate(reader, start=2)]
        return cls(rows=tuple(rows))


def _csv_header() -> list[str]:
    return ["timepoint", *(f"{name}_{stage}" for name in PARAMETER_NAMES for stage in _STAGES)]


def _row_from_csv(record: dict[str, str], path: str | os.PathLike[str], line: int) -> LookupTableRow:
    stages: dict[str, FusionParameters | None] = {}
    for stage in _STAGES:
        cells = [record[f"{name}_{stage}"] for name in PARAMETER_NAMES]
        if stage == "estimated" and all(cell == "" for cell in cells):
            stages[stage] = None
        elif any(cell == "" for cell in cells):
            raise ValueError(f"{path}, line {line}: empty {stage} value(s)")
        else:
            stages[stage] = FusionParameters.from_array([float(cell) for cell in cells])
    return LookupTableRow(timepoint=int(record["timepoint"]), **stages)


def smooth_parameters(
    timepoints: Sequence[int],
    estimates: Sequence[FusionParameters | None],
    full_interval: Sequence[int],
    config: TemporalConfig,
) -> LookupTable:
    """Turn the estimates at the reference timepoints into a lookup table over the full interval (§4.2).

    Parameters
    ----------
    timepoints : sequence of int
        Reference timepoints, strictly increasing (possibly unevenly spaced).
    estimates : sequence of FusionParameters or None
        One estimate per reference timepoint; None (a missing record) enters
        the series as NaN and is imputed by the smoothing.
    full_interval : sequence of int
        Timepoints of the table, strictly increasing (the timepoints to fuse).
    config : TemporalConfig
        Smoothing, interpolation, averaging and static-mode settings.

    Returns
    -------
    LookupTable
        One row per timepoint of `full_interval`.

    Raises
    ------
    ValueError
        Lengths differ, a timepoint list is empty or not strictly increasing, or
        ``param_median_filter_range`` is even.

    Notes
    -----
    1. Optional median prefilter (port extension, ``param_median_filter_range``
       samples, odd): each value becomes the median of the valid values of its
       window of reference positions, clipped at the ends; missing records stay
       missing.
    2. rloess per parameter (``temporal_smoothing``), span ``smoothing_window``,
       on the **position** in the reference list, so uneven references are
       treated as evenly spaced (§4.3).
    3. Table: a reference timepoint takes its smoothed row; any other timepoint
       the distance-weighted linear interpolation of the nearest references
       before and after, or the nearest reference if only one side exists. With
       ``temporal_interpolation`` off it takes the nearest reference (the earlier
       one on ties) — a port choice; the original always interpolates.
    4. Sliding ``averaging`` (mean or median) over table rows ``i - R … i + R``
       clipped to the table: ``R = offset_averaging_range`` for both offsets and
       for ``transition_z`` (a plane position, like the offsets; the original has
       no transition plane parameter), ``angle_averaging_range`` for the
       rotation, ``intensity_averaging_range`` for the ratio. ``temporal_nan_policy``
       ``"propagate"`` (original) makes every window holding a NaN NaN, ``"omit"``
       averages the valid values.
    5. Static mode: every row becomes the ``static_method`` of the averaged
       table's column (NaNs per ``temporal_nan_policy``).
    A warning is logged when the applied parameters contain NaN. With
    ``read_factors`` off the smoothed and applied ratio are then set to NaN
    (§4.4). Writing the table (``generate_lookup_table``) is the caller's choice.
    """
    references = _strictly_increasing(timepoints, "reference timepoints")
    table_timepoints = _strictly_increasing(full_interval, "full interval")
    if len(estimates) != references.size:
        raise ValueError(f"{references.size} reference timepoints but {len(estimates)} estimates")
    prefilter = config.param_median_filter_range
    if prefilter and prefilter % 2 == 0:
        raise ValueError(f"param_median_filter_range must be odd (a centred window); got {prefilter}")

    raw = np.array([_as_row(estimate) for estimate in estimates])
    series = raw
    if prefilter:
        half = prefilter // 2
        series = np.column_stack([_sliding_average(column, half, "median", "omit") for column in raw.T])
        series[np.isnan(raw)] = np.nan
    if config.temporal_smoothing:
        fit = config.loess_options()
        series = np.column_stack([rloess(column, config.smoothing_window, **fit) for column in series.T])
    smoothed = _lookup(references, series, table_timepoints, interpolate=config.temporal_interpolation)
    ranges = _averaging_ranges(config)
    applied = np.column_stack(
        [
            _sliding_average(column, radius, config.averaging, config.temporal_nan_policy)
            for column, radius in zip(smoothed.T, ranges, strict=True)
        ]
    )
    if config.static_parameters:
        static = _reduce(applied, config.static_method, config.temporal_nan_policy)
        applied = np.tile(static, (applied.shape[0], 1))
    if np.isnan(applied).any():
        logger.warning(
            "lookup table: applied parameters contain NaN at %d of %d timepoints (missing estimates?)",
            np.isnan(applied).any(axis=1).sum(), applied.shape[0],
        )
    if not config.read_factors:  # the ratio is not part of the table (§4.4)
        ratio = PARAMETER_NAMES.index("intensity_ratio")
        smoothed[:, ratio] = applied[:, ratio] = np.nan

    estimate_at = dict(zip(references.tolist(), estimates, strict=True))
    return LookupTable(
        rows=tuple(
            LookupTableRow(
                timepoint=t,
                estimated=estimate_at.get(t),
                smoothed=FusionParameters.from_array(smoothed_row),
                applied=FusionParameters.from_array(applied_row),
            )
            for t, smoothed_row, applied_row in zip(table_timepoints.tolist(), smoothed, applied, strict=True)
        )
    )


def _strictly_increasing(values: Sequence[int], what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{what}: expected a non-empty list of timepoints")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{what}: timepoints must be integers; got {array.dtype}")
    if np.any(np.diff(array) <= 0):
        raise ValueError(f"{what}: timepoints must be strictly increasing")
    return array.astype(np.int64)


def _as_row(estimate: FusionParameters | None) -> np.ndarray:
    return np.full(len(PARAMETER_NAMES), np.nan) if estimate is None else estimate.as_array()


def _averaging_ranges(config: TemporalConfig) -> tuple[int, ...]:
    """Sliding-average half-width per parameter, in :data:`PARAMETER_NAMES` order."""
    ranges = {
        "offset_x_px": config.offset_averaging_range,
        "offset_y_px": config.offset_averaging_range,
        "rotation_deg": config.angle_averaging_range,
        "intensity_ratio": config.intensity_averaging_range,
        "transition_z": config.offset_averaging_range,
    }
    return tuple(ranges[name] for name in PARAMETER_NAMES)


def _lookup(references: np.ndarray, values: np.ndarray, timepoints: np.ndarray, *, interpolate: bool) -> np.ndarray:
    """Values at `timepoints` from the rows of `values` at sorted `references` (§4.2 step 4).

    Parameters
    ----------
    references : ndarray, shape (m,)
        Strictly increasing positions of the rows of `values`.
    values : ndarray, shape (m, k)
        One row per reference.
    timepoints : ndarray, shape (t,)
        Where to look values up.
    interpolate : bool
        Between two references: their distance-weighted linear interpolation
        (``w_before = d_after / (d_before + d_after)``), else the nearer one (the
        earlier on ties). A reference timepoint takes its own row; beyond the
        first or last reference, the nearest reference.
    """
    last = references.size - 1
    before = np.clip(np.searchsorted(references, timepoints, side="right") - 1, 0, last)
    after = np.where(references[before] >= timepoints, before, np.minimum(before + 1, last))
    d_before = np.abs(timepoints - references[before]).astype(np.float64)
    d_after = np.abs(references[after] - timepoints).astype(np.float64)
    if not interpolate:
        before = after = np.where(d_after < d_before, after, before)
    w_after = np.divide(d_before, d_before + d_after, out=np.zeros_like(d_before), where=before != after)
    return values[before] * (1.0 - w_after[:, None]) + values[after] * w_after[:, None]


def _sliding_average(values: np.ndarray, radius: int, method: str, nan_policy: str) -> np.ndarray:
    """Mean or median of ``values[i - radius : i + radius + 1]`` clipped to the series, per position.

    ``nan_policy="propagate"``: a window holding NaN gives NaN; ``"omit"``: the
    valid values of the window (NaN only if there are none).
    """
    if radius == 0:
        return values.copy()
    padded = np.pad(values, radius, constant_values=np.nan)
    inside = np.pad(np.ones(values.size, dtype=bool), radius, constant_values=False)
    windows = sliding_window_view(padded, 2 * radius + 1)
    has_nan = (np.isnan(windows) & sliding_window_view(inside, 2 * radius + 1)).any(axis=1)
    usable = ~np.isnan(windows).all(axis=1)
    if nan_policy == "propagate":
        usable &= ~has_nan
    out = np.full(values.size, np.nan)
    reducer = np.nanmedian if method == "median" else np.nanmean
    out[usable] = reducer(windows[usable], axis=1)
    return out


def _reduce(values: np.ndarray, method: str, nan_policy: str) -> np.ndarray:
    """Column-wise mean or median of a (rows, k) table; NaN handling per `nan_policy`."""
    out = np.full(values.shape[1], np.nan)
    for column in range(values.shape[1]):
        data = values[:, column]
        if nan_policy == "omit":
            data = data[~np.isnan(data)]
        if data.size:
            out[column] = np.median(data) if method == "median" else np.mean(data)
    return out

