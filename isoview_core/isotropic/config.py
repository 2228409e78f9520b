"""Configuration of the isotropic stage (issue 16): its grid and the registration of the two orthogonal views.

Defaults are documented where they are declared; ``None`` fields are derived from the views' voxel sizes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class IsotropicConfig(BaseModel):
    """The isotropic grid of VW00's frame (voxel, blocks, interpolation) and the registration of VW90 onto VW00."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    voxel_um: float | None = Field(
        None,
        gt=0,
        description="Isotropic voxel of the finest registration level (um). None: twice the smaller lateral pixel of "
        "the two views, a balance of accuracy (the targets are fractions of this voxel) and cost (8x fewer voxels "
        "than the lateral pixel).",
    )
    levels: int = Field(3, ge=1, description="Resolution levels, each twice as coarse as the previous (coarse-to-fine).")
    matching_sigma_um: float | None = Field(
        None,
        gt=0,
        description="Gaussian sigma (um) of the common, roughly isotropic resolution both views are blurred to along "
        "their own sharp (lateral) axes before they are compared; it should be about the views' axial PSF sigma. "
        "None: the larger z step of the two views (light-sheet stacks are sampled at about half the axial FWHM, "
        "i.e. about the axial sigma).",
    )
    background_ratio: float | None = Field(
        4.0,
        gt=1,
        description="Both views are band-passed: their blur by a Gaussian this many times the level's sigma is "
        "subtracted (uneven illumination and attenuation, and the specimen's envelope, would dominate the NCC). "
        "None: no background subtraction.",
    )
    antialias: float = Field(
        0.5, gt=0, description="A level of voxel s is blurred to a sigma of at least antialias * s before sampling."
    )
    coarse_overlap_ratio: float = Field(
        0.3, gt=0, le=1, description="Least overlap (fraction of the smaller footprint) a coarse shift may leave."
    )
    max_iterations: int = Field(30, ge=1, description="Gauss-Newton iterations per level, at most.")
    tolerance_voxels: float = Field(
        0.005, gt=0, description="A level stops when an update moves no voxel of the overlap by more than this (level voxels)."
    )
    interpolation_order: Literal[1, 3] = Field(
        3,
        description="Spline order of the resampling: 3 cubic (default), 1 linear (faster, but its position-dependent "
        "smoothing biases the estimate: up to 0.03 degrees and 0.01 voxel on noise-free simulated views, against "
        "0.006 degrees and 0.001 voxel with cubic splines).",
    )
    block_size: int = Field(64, ge=8, description="Edge of the output blocks resampled at a time (bounded memory).")
    threads: int | None = Field(
        None,
        ge=1,
        description="Output blocks of the fusion and deconvolution computed at once, in threads (scipy's interpolation, "
        "filters and FFTs release the GIL; the result does not depend on it). None: the CPUs this process may use.",
    )
    region_voxels: int | None = Field(
        96,
        ge=16,
        description="Register on a central cube of VW00 this many finest-level voxels wide (plus the band-pass margin) and "
        "the part of VW90 that the initial transform maps onto it, read from the views where they are lazy (zarr): memory "
        "and time do not grow with the volumes (at the default 0.81 um voxel a 78 um cube plus 30-70 um of margin). On "
        "two simulated 128 x 512 x 512 views: 96 voxels 0.010 voxel / 0.005 degrees in 17 CPU-s, 128 0.014 / 0.005 in "
        "38 s, 192 0.001 / 0.004 in 61 s and 2 GB. A sparse specimen may need more. None: the whole volumes.",
    )
    min_overlap_voxels: int = Field(
        100, ge=1, description="Fewer overlapping voxels at the coarsest level: nothing to register on (quality 0)."
    )
    min_quality: float = Field(
        0.5, ge=-1, le=1, description="A registration whose overlap NCC stays below this is reported as unreliable."
    )

    def resolved_voxel_um(self, voxel00: Sequence[float], voxel90: Sequence[float]) -> float:
        """The isotropic voxel: :attr:`voxel_um`, or twice the smaller lateral pixel of the two views (z, y, x sizes)."""
        return self.voxel_um or 2.0 * min(*voxel00[1:], *voxel90[1:])

    def resolved_threads(self) -> int:
        """:attr:`threads`, or the CPUs this process may run on."""
        return self.threads or len(os.sched_getaffinity(0))
