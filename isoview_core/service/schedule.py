"""Which timepoints can be fused: those whose window of estimates is filled (§4.6).

A timepoint is *settled* once its correction finished, successfully or not (a failed one will never
have an estimate, which the smoother treats as missing). The window of ``t`` is ``t - w .. t + w``,
shifted at the start of the acquisition; it is filled when all its timepoints are settled and it
does not reach past the latest settled timepoint. When the acquisition ends the tail's one-sided
windows are filled too.
"""

from __future__ import annotations

from isoview_core.temporal.config import TemporalConfig
from isoview_core.temporal.window import window_bounds


class FusionSchedule:
    """Settled and submitted timepoints of one specimen; answers which timepoints are ready to fuse.

    Parameters
    ----------
    temporal : TemporalConfig
        ``window`` (half-width) and ``static_parameters`` (then nothing is ready before the end).
    first_timepoint : int
        First timepoint of the acquisition.
    """

    def __init__(self, temporal: TemporalConfig, first_timepoint: int) -> None:
        self.temporal = temporal
        self.first_timepoint = first_timepoint
        self.settled: set[int] = set()
        self.submitted: set[int] = set()

    def settle(self, timepoint: int) -> None:
        """Timepoint `timepoint` will not change any more (corrected, or failed for good)."""
        self.settled.add(timepoint)

    def ready(self, *, last_timepoint: int | None = None) -> list[int]:
        """Timepoints not yet submitted whose window is filled; `last_timepoint` once the acquisition ended."""
        if not self.settled:
            return []
        end = last_timepoint if last_timepoint is not None else max(self.settled)
        if self.temporal.static_parameters and last_timepoint is None:
            return []
        ready = []
        for t in range(self.first_timepoint, end + 1):
            if t in self.submitted or t not in self.settled:
                continue
            if self.temporal.static_parameters:
                lo, hi, unclipped_hi = self.first_timepoint, end, end
            else:
                lo, hi, unclipped_hi = window_bounds(t, self.first_timepoint, end, self.temporal.window)
            if (last_timepoint is not None or unclipped_hi <= end) and all(s in self.settled for s in range(lo, hi + 1)):
                ready.append(t)
        return ready

    def submit(self, timepoints: list[int]) -> None:
        """Mark timepoints as handed to a fusion flow."""
        self.submitted.update(timepoints)
