"""The registration family's shared model: method names, the result, and the offset search grid (§3.7)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RegistrationMethod", "RegistrationResult", "search_offsets"]

RegistrationMethod = Literal["fast", "original"]


class RegistrationResult(BaseModel):
    """Estimated transform of the second camera onto the reference (§3.7), with its quality."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")  # NaN round-trips through JSON records

    offset_y_px: float = Field(description="Row offset (offset_rows; the original's bestXOffset).")
    offset_x_px: float = Field(description="Column offset (offset_cols; the original's bestYOffset).")
    rotation_deg: float = Field(description="In-plane rotation about the plane centre, degrees (0 unless estimated).")
    correlation: float = Field(description="Pearson correlation of the registered data (method-specific, see module doc).")
    coarse_offset_y_px: float = Field(description="Row offset of the coarse stage (grid search / cross-correlation peak).")
    coarse_offset_x_px: float = Field(description="Column offset of the coarse stage.")
    evaluations: int = Field(ge=0, description="Cost evaluations (original) or Gauss-Newton iterations (fast).")
    method: RegistrationMethod = Field(description="Estimation method.")


def search_offsets(grid: tuple[int, int, int]) -> list[int]:
    """Candidate offsets of a ``(start, stop, step)`` search grid, both ends included (§3.7 "Coarse grid search").

    Parameters
    ----------
    grid : tuple of int
        ``config.search_offsets_rows`` or ``config.search_offsets_cols``.

    Returns
    -------
    list of int
        ``start, start + step, ...`` up to ``stop``.

    Raises
    ------
    ValueError
        If ``step <= 0`` or ``stop < start``.
    """
    start, stop, step = grid
    if step <= 0 or stop < start:
        raise ValueError(f"offset grid {grid}: expected (start, stop, step) with step > 0 and stop >= start")
    return list(range(start, stop + 1, step))
