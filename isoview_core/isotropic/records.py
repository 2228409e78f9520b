"""The records of an isotropic volume: ``registration.json`` (estimated at its timepoint) and ``isotropic.json`` (applied)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from isoview_core.isotropic.registration import Matrix4, ViewRegistration


class RegistrationEstimate(BaseModel):
    """VW90 -> VW00 as registered at one timepoint (``<stem>.registration.json``, the transforms' time series)."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    specimen: int
    timepoint: int
    channels: tuple[int, int] = Field(description="VW00's and VW90's channels.")
    views: tuple[str, str] = Field(description="The fused volumes registered, VW00 then VW90 (file names).")
    voxel_um: tuple[tuple[float, float, float], tuple[float, float, float]] = Field(description="Their voxel sizes (z, y, x), um.")
    shapes: tuple[tuple[int, int, int], tuple[int, int, int]] = Field(description="Their shapes (z, y, x).")
    reference_point_um: tuple[float, float, float] = Field(description="Point of VW00 about which rotations are smoothed (its centre).")
    registration: ViewRegistration

    def matrix(self) -> np.ndarray:
        """The estimated transform, 4 x 4."""
        return self.registration.matrix()


class IsotropicRecord(BaseModel):
    """The ``isotropic.json`` contract: what was estimated at a timepoint, what was applied, and the volume made with it."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    specimen: int
    timepoint: int
    channels: tuple[int, int]
    window: tuple[int, int] = Field(description="Timepoints whose registrations the applied transform was smoothed from.")
    source: Literal["smoothed", "nominal"] = Field(
        description="smoothed: the robust LOESS of the window's reliable registrations; nominal: the window held none, "
        "the acquisition geometry (90 degrees about y, centre onto centre) was applied."
    )
    estimated: Matrix4 | None = Field(description="Registration of this timepoint (None: it failed).")
    quality: float | None = Field(description="Its NCC over the overlap.")
    applied: Matrix4
    voxel_um: float
    shape: tuple[int, int, int]
    deconvolution_iterations: int
    timings_s: dict[str, float] = {}
    """Seconds spent reading the views, fusing (and deconvolving) on the grid, and writing."""

    def applied_matrix(self) -> np.ndarray:
        """The applied transform, 4 x 4."""
        return np.array(self.applied)


def load_registration(path: Path) -> RegistrationEstimate:
    """Read a ``registration.json``."""
    return RegistrationEstimate.model_validate_json(Path(path).read_text(encoding="utf-8"))


def load_isotropic_record(path: Path) -> IsotropicRecord:
    """Read an ``isotropic.json``."""
    return IsotropicRecord.model_validate_json(Path(path).read_text(encoding="utf-8"))
