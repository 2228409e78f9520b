"""Temporal processing of the fusion parameters (ALGORITHMS.md §4): robust smoothing, lookup tables, live windows."""

from isoview_core.temporal.rloess import rloess
from isoview_core.temporal.series import LookupTable, LookupTableRow, smooth_parameters
from isoview_core.temporal.transforms import (
    WindowedTransform,
    applied_transform,
    parameters_to_rigid,
    rigid_to_parameters,
    smooth_transforms,
)
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
    "WindowedTransform",
    "applied_parameters",
    "applied_transform",
    "parameters_to_rigid",
    "rigid_to_parameters",
    "rloess",
    "smooth_parameters",
    "smooth_transforms",
]
