"""Models of the records that more than one floor reads: shared below the stages so that no stage imports another.

``CorrectedStackRecord`` is written by the correction of a camera stack and read by the fusion of its
pair, the tasks and the UI; ``FusionParameters`` is estimated by the fusion stage, smoothed by the
temporal stage and applied by the fusion stage again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class CorrectedStackRecord(BaseModel):
    """What the correction of one camera stack produced and measured (``<stem>.json``)."""

    specimen: int
    timepoint: int
    camera: int
    channel: int
    source: str
    volume: str
    format: str
    shape: tuple[int, int, int]
    voxel_size_um: tuple[float, float, float]
    background_value: float
    background_source: str
    defective_pixels: int
    defective_fraction: float
    std_threshold: float | None
    mean_threshold: float | None
    min_intensity: list[float]
    threshold_level: float | None
    foreground_fraction: float
    raw_bytes: int
    stored_bytes: int
    compression_ratio: float
    timings_s: dict[str, float]


def load_record(path: Path) -> CorrectedStackRecord:
    """Read a ``<stem>.json`` correction record."""
    return CorrectedStackRecord.model_validate(json.loads(Path(path).read_text()))


class FusionParameters(BaseModel):
    """The fusion parameters of one camera pair at one timepoint (§4.1), with the factor/flag folded into ρ."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")  # NaN round-trips through JSON records

    offset_x_px: float = Field(description="Column shift of camera 2 in pixels (MATLAB bestYOffset).")
    offset_y_px: float = Field(description="Row shift of camera 2 in pixels (MATLAB bestXOffset).")
    rotation_deg: float = Field(description="In-plane rotation of camera 2 in degrees.")
    intensity_ratio: float = Field(description="Multiplier of camera 2 (the folded ratio rho of §4.1).")
    transition_z: float = Field(description="Crossover plane between the two cameras, in planes.")

    def as_array(self) -> np.ndarray:
        """The five values in :data:`PARAMETER_NAMES` order, as float64."""
        return np.array([getattr(self, name) for name in PARAMETER_NAMES], dtype=np.float64)

    @classmethod
    def from_array(cls, values: Sequence[float] | np.ndarray) -> FusionParameters:
        """Build from five values in :data:`PARAMETER_NAMES` order."""
        if len(values) != len(PARAMETER_NAMES):
            raise ValueError(
                f"fusion parameters take {len(PARAMETER_NAMES)} values {PARAMETER_NAMES}; got {len(values)}"
            )
        return cls(**{name: float(value) for name, value in zip(PARAMETER_NAMES, values, strict=True)})


PARAMETER_NAMES: tuple[str, ...] = tuple(FusionParameters.model_fields)
"""Names of the fusion parameters, in the order of :meth:`FusionParameters.as_array`."""
