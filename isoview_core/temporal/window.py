"""Live (sliding-window) smoothing of the fusion parameters while an acquisition runs (§4.6).

The value applied at timepoint ``t`` depends only on the estimates of the
timepoints ``t - w … t + w`` (``w = TemporalConfig.window``), so it can be fixed
("final") as soon as those estimates exist, long before the acquisition ends.
Everything here is a function of the estimates known so far: a restarted
service that re-reads the parameter records gets the same answers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from isoview_core.records import PARAMETER_NAMES, FusionParameters
from isoview_core.temporal.config import TemporalConfig
from isoview_core.temporal.rloess import rloess
from isoview_core.temporal.series import _lookup, _reduce

__all__ = ["REPORT_TOLERANCE", "WindowedResult", "WindowedSmoother", "applied_parameters", "window_bounds"]

REPORT_TOLERANCE: dict[str, float] = {
    "offset_x_px": 0.01,
    "offset_y_px": 0.01,
    "rotation_deg": 0.001,
    "intensity_ratio": 1e-4,
    "transition_z": 0.01,
}
"""Change that makes :meth:`WindowedSmoother.ready` report a timepoint again: pixels,
degrees, relative ratio, planes."""

_RELATIVE = np.array([name == "intensity_ratio" for name in PARAMETER_NAMES])
_TOLERANCE = np.array([REPORT_TOLERANCE[name] for name in PARAMETER_NAMES])


class WindowedResult(BaseModel):
    """The parameters applied at one timepoint and whether they can still change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timepoint: int
    window: tuple[int, int] = Field(description="First and last timepoint whose estimates were used (inclusive).")
    applied: FusionParameters
    final: bool = Field(description="No later estimate (or end of acquisition) can change the value.")


def applied_parameters(
    t: int,
    estimates: Mapping[int, FusionParameters | None],
    *,
    first_timepoint: int,
    last_timepoint: int | None,
    config: TemporalConfig,
) -> WindowedResult:
    """The fusion parameters to apply at timepoint `t`, from the estimates of its window.

    Parameters
    ----------
    t : int
        Timepoint to fuse.
    estimates : mapping of int to FusionParameters or None
        Estimates known so far, by timepoint. None records a timepoint whose
        estimate will never come (failed or rejected estimation); it counts as
        present for finality and as missing (imputed) for the value.
    first_timepoint : int
        First timepoint of the acquisition.
    last_timepoint : int or None
        Last timepoint once the acquisition is closed; None while it runs, when
        the latest estimated timepoint is the provisional end.
    config : TemporalConfig
        ``window`` (half-width w), ``temporal_smoothing``, ``loess_degree``,
        ``robust_iterations``, ``read_factors``, ``static_parameters``,
        ``static_method``.

    Returns
    -------
    WindowedResult
        Applied parameters, the window used and whether they are final.

    Raises
    ------
    ValueError
        `t` or an estimate lies outside ``[first_timepoint, last_timepoint]``, or
        the window holds no estimate.

    Notes
    -----
    Window: ``t - w … t + w`` clipped to ``[first_timepoint, end]`` (``end`` =
    `last_timepoint`, or while running the latest of `t` and the estimated
    timepoints). Near either end it is shifted, not shrunk, to keep ``2w + 1``
    timepoints when the acquisition has them — as the batch smoother's end
    windows (§4.3), so early and late values do not rest on a few points.

    Value: robust LOESS (§4.3) over the window's timepoints, span = the number
    of timepoints in the window, evaluated at `t`; missing estimates are NaN and
    imputed. A parameter with too few valid estimates in the window for the
    local fit (or with ``temporal_smoothing`` off) takes the estimate at `t`, or
    the distance-weighted interpolation of the nearest estimates before and
    after `t` in the window (the nearest one if only one side exists). The §4.2
    median prefilter and sliding averaging are batch-only: in the live form the
    window is the only temporal context.

    Final: every timepoint of the window has a record and the window does not
    depend on the provisional end (it is interior, or the acquisition is closed).

    Static mode: the ``static_method`` (mean or median) of every estimate known
    so far, NaNs skipped; window = ``(first_timepoint, end)``; final only once
    the acquisition is closed and every timepoint has a record.
    """
    _check_inside(t, first_timepoint, last_timepoint, "requested")
    for timepoint in estimates:
        _check_inside(timepoint, first_timepoint, last_timepoint, "estimate")
    end = last_timepoint if last_timepoint is not None else max(t, max(estimates, default=t))
    result = _evaluate(t, estimates, first_timepoint, last_timepoint, end, config)
    if result is None:
        raise ValueError(f"no estimate to apply at timepoint {t}: its window holds none")
    return result


class WindowedSmoother:
    """Collects estimates as they arrive and reports the timepoints ready to (re-)fuse.

    Parameters
    ----------
    config : TemporalConfig
        Settings passed to :func:`applied_parameters`.
    first_timepoint : int, optional
        First timepoint of the acquisition.

    Notes
    -----
    The applied values are those of :func:`applied_parameters` on the estimates
    held, so they do not depend on the order or repetition of
    :meth:`add_estimate` calls. The only other state is what was last reported,
    which decides what :meth:`ready` returns.
    """

    def __init__(self, config: TemporalConfig, *, first_timepoint: int = 0) -> None:
        self.config = config
        self.first_timepoint = first_timepoint
        self.last_timepoint: int | None = None
        self._estimates: dict[int, FusionParameters | None] = {}
        self._reported: dict[int, WindowedResult] = {}
        self._stale: set[int] = set()

    def add_estimate(self, t: int, parameters: FusionParameters | None) -> None:
        """Record the estimate of timepoint `t` (None: no estimate will come); a repeat replaces it.

        Raises
        ------
        ValueError
            `t` lies before the first timepoint or after the closed end.
        """
        _check_inside(t, self.first_timepoint, self.last_timepoint, "estimate")
        if t in self._estimates and self._estimates[t] == parameters:
            return
        reach = 2 * self.config.window  # a (possibly shifted) window spans 2w + 1 timepoints
        old_end = self._provisional_end()
        self._estimates[t] = parameters
        first_stale = t - reach
        if self.last_timepoint is None and old_end is not None and t > old_end:
            first_stale = min(first_stale, old_end - reach)  # windows clipped at the old provisional end
        self._mark_stale(first_stale, t + reach)

    def close(self, last_timepoint: int) -> None:
        """Mark the acquisition as ended at `last_timepoint`, which fixes the windows of its tail.

        Raises
        ------
        ValueError
            `last_timepoint` precedes the first timepoint or an estimate, or the
            smoother was already closed at another timepoint.
        """
        if self.last_timepoint is not None and last_timepoint != self.last_timepoint:
            raise ValueError(f"acquisition already closed at timepoint {self.last_timepoint}, not {last_timepoint}")
        if last_timepoint < self.first_timepoint or (self._estimates and last_timepoint < max(self._estimates)):
            raise ValueError(
                f"cannot close at timepoint {last_timepoint}: the acquisition has timepoints "
                f"{self.first_timepoint}..{max(self._estimates, default=self.first_timepoint)}"
            )
        old_end = self._provisional_end()
        self.last_timepoint = last_timepoint
        # windows that reached the provisional end become fixed, and timepoints after it exist now
        self._mark_stale(self.first_timepoint if old_end is None else old_end - 2 * self.config.window, last_timepoint)

    def ready(self) -> list[WindowedResult]:
        """Timepoints whose applied value became final or moved beyond :data:`REPORT_TOLERANCE` since last reported.

        Provisional (not final) values are reported too, the first time and when
        they move; a final value is reported again only if a changed estimate
        inside its window moves it.

        Returns
        -------
        list of WindowedResult
            In timepoint order.
        """
        end = self.last_timepoint if self.last_timepoint is not None else self._provisional_end()
        if end is None:
            return []
        if self.config.static_parameters:  # one value for every timepoint: evaluate once
            result = self._evaluate(self.first_timepoint, end)
            timepoints = range(self.first_timepoint, end + 1)
            results = [None if result is None else result.model_copy(update={"timepoint": t}) for t in timepoints]
        else:
            timepoints = sorted(t for t in self._stale if self.first_timepoint <= t <= end)
            results = [self._evaluate(t, end) for t in timepoints]
        self._stale.clear()
        changed = []
        for t, result in zip(timepoints, results, strict=True):
            if result is not None and self._moved(t, result):
                self._reported[t] = result
                changed.append(result)
        return changed

    def _evaluate(self, t: int, end: int) -> WindowedResult | None:
        return _evaluate(t, self._estimates, self.first_timepoint, self.last_timepoint, end, self.config)

    def _moved(self, t: int, result: WindowedResult) -> bool:
        previous = self._reported.get(t)
        if previous is None or (result.final and not previous.final):
            return True
        old, new = previous.applied.as_array(), result.applied.as_array()
        scale = np.where(_RELATIVE, np.abs(old), 1.0)
        beyond = np.abs(new - old) > _TOLERANCE * scale
        return bool(np.any(beyond | (np.isnan(old) != np.isnan(new))))

    def _provisional_end(self) -> int | None:
        return max(self._estimates, default=None)

    def _mark_stale(self, lo: int, hi: int) -> None:
        self._stale.update(range(max(lo, self.first_timepoint), hi + 1))


def _check_inside(t: int, first: int, last: int | None, what: str) -> None:
    if t < first or (last is not None and t > last):
        bounds = f"{first}..{last}" if last is not None else f"{first} onwards"
        raise ValueError(f"{what} timepoint {t} lies outside the acquisition (timepoints {bounds})")


def _evaluate(
    t: int,
    estimates: Mapping[int, FusionParameters | None],
    first: int,
    last: int | None,
    end: int,
    config: TemporalConfig,
) -> WindowedResult | None:
    """:func:`applied_parameters` on validated input, with the window end given; None if nothing to apply."""
    if config.static_parameters:
        lo, hi = first, end
        known = [estimate.as_array() for estimate in estimates.values() if estimate is not None]
        values = _reduce(np.array(known), config.static_method, "omit") if known else None
        final = last is not None and _complete(estimates, lo, hi)
    else:
        lo, hi, shifted_hi = window_bounds(t, first, end, config.window)
        values = _window_value(t, lo, hi, estimates, config)
        final = _complete(estimates, lo, hi) and (last is not None or shifted_hi <= end)
    if values is None or np.isnan(values).all():
        return None
    if not config.read_factors:
        values[PARAMETER_NAMES.index("intensity_ratio")] = np.nan
    return WindowedResult(timepoint=t, window=(lo, hi), applied=FusionParameters.from_array(values), final=final)


def _complete(estimates: Mapping[int, FusionParameters | None], lo: int, hi: int) -> bool:
    return all(timepoint in estimates for timepoint in range(lo, hi + 1))


def window_bounds(t: int, first: int, end: int, w: int) -> tuple[int, int, int]:
    """Window ``(lo, hi)`` of `t` inside ``[first, end]`` (shifted near either end), and its upper bound before the end clip."""
    lo = max(t - w, first)
    shifted_hi = lo + 2 * w
    hi = min(shifted_hi, end)
    return max(hi - 2 * w, first), hi, shifted_hi


def _window_value(
    t: int, lo: int, hi: int, estimates: Mapping[int, FusionParameters | None], config: TemporalConfig
) -> np.ndarray:
    """Per parameter: rloess over the window's timepoints evaluated at `t`, else interpolation (NaN: no estimate)."""
    series = np.full((hi - lo + 1, len(PARAMETER_NAMES)), np.nan)
    for timepoint in range(lo, hi + 1):
        estimate = estimates.get(timepoint)
        if estimate is not None:
            series[timepoint - lo] = estimate.as_array()
    positions = np.arange(lo, hi + 1)
    values = np.full(len(PARAMETER_NAMES), np.nan)
    for column, samples in enumerate(series.T):
        valid = ~np.isnan(samples)
        if config.temporal_smoothing and np.count_nonzero(valid) > config.loess_degree:
            samples = rloess(samples, samples.size, **config.loess_options())
            valid = ~np.isnan(samples)
        if valid.any():
            values[column] = _lookup(positions[valid], samples[valid, None], np.array([t]), interpolate=True)[0, 0]
    return values
