"""Configuration of the live quality alerts, owned by the quality stage: how far a measure may move before it is an alert."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class AlertConfig(BaseModel):
    """Bounds of the quality checks run on each new timepoint (the alert when a measure goes beyond one).

    A pair's estimated parameters are compared with the median of its previous timepoints and with the
    smoothed trend (the applied parameters of its ``fusion.json``); a camera's signal (foreground
    fraction, mean intensity, focus measure) with the median of its previous timepoints.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Check each new timepoint and raise alerts; off = no check.")
    offset_px: float = Field(
        2.0, gt=0, description="A pair's offset (x, y) further than this from the previous timepoints or the smoothed trend, in pixels."
    )
    ratio_change: float = Field(
        0.10, gt=0, description="A pair's intensity ratio changing by more than this fraction from the previous timepoints or the trend."
    )
    signal_drop: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="A camera's foreground fraction, mean intensity or focus measure below this fraction of its previous timepoints'.",
    )
    history: int = Field(5, ge=1, description="Previous timepoints on disk compared with (their median).")
    min_history: int = Field(3, ge=1, description="Fewer healthy previous timepoints than this: no comparison with them.")

    @model_validator(mode="after")
    def _check_history(self) -> AlertConfig:
        if self.min_history > self.history:
            raise ValueError(f"min_history {self.min_history} > history {self.history}: the comparison would never be made")
        return self
