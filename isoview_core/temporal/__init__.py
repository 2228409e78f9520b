"""Temporal processing of the fusion parameters (ALGORITHMS.md §4): robust smoothing, lookup tables, live windows."""

from isoview_core.temporal.rloess import rloess
from isoview_core.temporal.series import LookupTable, LookupTableRow, smooth_parameters
from isoview_core.temporal.window import (
    REPORT_TOLERANCE,
    WindowedResult,
    WindowedSmoother,
    applied_parameters,
)

__all__ = [
    "REPORT_TOLERANCE",
    "LookupTable",
    "LookupTableRow",
    "WindowedResult",
    "WindowedSmoother",
    "applied_parameters",
    "rloess",
    "smooth_parameters",
]
