"""Diagnostic figures of camera-pair fusion and of its parameters over time (ALGORITHMS.md §5), and of the isotropic volume.

One PNG per figure, for every fused camera pair and timepoint (registration, intensity
correction, blending weights, fusion result, fused overview) or per acquisition (parameters
over time). Every function takes reduced arrays (planes at display size, projections, histogram
samples), uint16 or float, and small plain values, never a stage's internals: the pipeline keeps
those while it streams a pair and draws the figures after publishing what they show.
"""

from isoview_core.diagnostics._style import DPI, display_plane
from isoview_core.diagnostics.blending import (
    overview_plane_indices,
    plot_blending_weights,
    plot_fused_overview,
    plot_fusion_result,
)
from isoview_core.diagnostics.intensity import histogram_samples, plot_intensity_correction
from isoview_core.diagnostics.isotropic import plot_isotropic_projections
from isoview_core.diagnostics.parameters import plot_parameters_over_time
from isoview_core.diagnostics.registration import plot_registration

__all__ = [
    "DPI",
    "display_plane",
    "histogram_samples",
    "overview_plane_indices",
    "plot_blending_weights",
    "plot_fused_overview",
    "plot_fusion_result",
    "plot_intensity_correction",
    "plot_isotropic_projections",
    "plot_parameters_over_time",
    "plot_registration",
]
