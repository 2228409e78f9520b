"""Diagnostic figures of camera-pair fusion and of its parameters over time (ALGORITHMS.md §5).

One PNG per figure, for every fused camera pair and timepoint (registration, intensity
correction, blending weights, fusion result, fused overview) or per acquisition (parameters
over time). Every function takes arrays in (Z, Y, X) or (Y, X) order, uint16 or float, and small
plain values, never a stage's internals: the pipeline draws them after publishing what they show.
"""

from isoview_core.diagnostics._style import DPI
from isoview_core.diagnostics.blending import (
    plot_blending_weights,
    plot_fused_overview,
    plot_fusion_result,
)
from isoview_core.diagnostics.intensity import plot_intensity_correction
from isoview_core.diagnostics.parameters import plot_parameters_over_time
from isoview_core.diagnostics.registration import plot_registration

__all__ = [
    "DPI",
    "plot_blending_weights",
    "plot_fused_overview",
    "plot_fusion_result",
    "plot_intensity_correction",
    "plot_parameters_over_time",
    "plot_registration",
]
