"""The records of a camera pair's fusion: ``estimate.json`` (what was estimated) and ``fusion.json`` (what was applied)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from isoview_core.fusion.intensity import IntensityCorrection
from isoview_core.fusion.registration import RegistrationResult
from isoview_core.records import FusionParameters


class PairEstimate(BaseModel):
    """The parameters estimated for one pair at one timepoint (``estimate.json``, the parameter store)."""

    model_config = ConfigDict(ser_json_inf_nan="constants")  # NaN (a failed measure) round-trips as NaN, not null

    timepoint: int
    cameras: tuple[int, int]
    view: int
    channel: int
    parameters: FusionParameters
    registration: RegistrationResult
    intensity: IntensityCorrection
    timings_s: dict[str, float]


class FusionRecord(BaseModel):
    """The ``fusion.json`` contract: what was estimated for a timepoint and what was applied to fuse it."""

    model_config = ConfigDict(ser_json_inf_nan="constants")  # NaN (a failed measure) round-trips as NaN, not null

    timepoint: int
    cameras: tuple[int, int]
    view: int
    channel: int
    blending: Literal["adaptive", "geometric", "average", "wavelet"]
    window: tuple[int, int]
    estimated: FusionParameters
    applied: FusionParameters
    timings_s: dict[str, float] = {}
    """Seconds spent reading the cameras, fusing (transform, intensity, blend), writing and keeping the figures' preview."""


def load_estimate(path: Path) -> PairEstimate:
    """Read an ``estimate.json``."""
    return PairEstimate.model_validate(json.loads(Path(path).read_text()))


def load_fusion_record(path: Path) -> FusionRecord:
    """Read a ``fusion.json``."""
    return FusionRecord.model_validate(json.loads(Path(path).read_text()))
