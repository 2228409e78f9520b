"""Configuration of the temporal smoothing of the fusion parameters (localAP / clusterTF), owned by the temporal stage.

Every option of the original is a field, with the original's default (ALGORITHMS.md §7.5).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TemporalConfig(BaseModel):
    """Temporal processing of the per-timepoint fusion parameters (localAP / clusterTF defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temporal_smoothing: bool = Field(True, description="Robust LOESS on (smoothing(1)).")
    smoothing_window: float = Field(20, gt=0, description="rloess span in estimates (forced odd for complete series); < 1 = fraction.")
    loess_degree: Literal[1, 2] = Field(2)
    robust_iterations: int = Field(5, ge=0)
    loess_stable: bool = Field(
        True,
        description="Fall back to a lower degree where a local fit is rank-deficient or would leave its window's "
        "range by more than the window's spread; False: the toolbox's fits, which can invent values.",
    )
    param_median_filter_range: int = Field(0, ge=0, description="Temporal median prefilter (odd window); 0 = off.")
    temporal_interpolation: bool = Field(True, description="Fill non-reference timepoints by distance-weighted neighbours.")
    averaging: Literal["mean", "median"] = Field("mean")
    offset_averaging_range: int = Field(10, ge=0)
    angle_averaging_range: int = Field(10, ge=0)
    intensity_averaging_range: int = Field(5, ge=0)
    temporal_nan_policy: Literal["propagate", "omit"] = Field("propagate")
    static_parameters: bool = Field(False, description="One value per parameter for the whole acquisition (staticFlag).")
    static_method: Literal["mean", "median"] = Field("mean")
    read_factors: bool = Field(True)
    generate_lookup_table: bool = Field(True)
    window: int = Field(5, ge=0, description="Half-width w of the live window: timepoints t-w .. t+w.")

    def loess_options(self) -> dict[str, int | bool]:
        """The keyword arguments of :func:`isoview_core.temporal.rloess` these settings select."""
        return {"degree": self.loess_degree, "robust_iterations": self.robust_iterations, "stable": self.loess_stable}
