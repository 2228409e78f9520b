"""The isotropic stage as the pipeline runs it (issue 16): whether the service makes it, registration, fusion, deconvolution."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat

from isoview_core.isotropic.config import IsotropicConfig
from isoview_core.isotropic.deconvolution import GaussianPsf, IsotropicDeconvolutionConfig
from isoview_core.isotropic.fusion import IsotropicFusionConfig


class IsotropicStageConfig(BaseModel):
    """Settings of the isotropic volume of each timepoint: VW90 registered onto VW00, smoothed over time, fused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        False,
        description="The service (isoview watch, process-acquisition) makes the isotropic volume of every timepoint "
        "once its two views are fused and its registration window is filled. isoview isotropic makes it regardless.",
    )
    registration: IsotropicConfig = Field(default_factory=IsotropicConfig, description="Grid and 3D rigid registration.")
    fusion: IsotropicFusionConfig = Field(default_factory=IsotropicFusionConfig, description="Content weights and blending.")
    deconvolution_iterations: NonNegativeInt = Field(
        2,
        description="Multi-view deconvolution iterations after the fusion: 2 (default) reach the isotropic target (at "
        "least 1.6 grid voxels), for about 1.4x the CPU time of the fusion alone (isoview isotropic on two 128 x 512 x 512 "
        "views, benchmarks/results/isotropic_command.json). 0: the "
        "content-weighted fusion only, cheaper but not isotropic (a point is a cross). Give the PSF (psf_lateral_fwhm_um, "
        "psf_axial_fwhm_um) where it is known; the default is a guess from the sampling.",
    )
    deconvolution: IsotropicDeconvolutionConfig = Field(
        default_factory=IsotropicDeconvolutionConfig, description="Target resolution and back projector of the deconvolution."
    )
    psf_lateral_fwhm_um: PositiveFloat | None = Field(
        None, description="Lateral FWHM of both views' PSF (um). None: twice the finer lateral pixel (Nyquist-sampled detection)."
    )
    psf_axial_fwhm_um: PositiveFloat | None = Field(
        None, description="Axial FWHM of both views' PSF (um). None: twice the larger z step (stacks sampled at half the axial FWHM)."
    )
    pyramid_levels: NonNegativeInt = Field(2, le=8, description="Extra 2x-downsampled (y, x) levels of the volume, for viewers.")

    def psf(self, voxel00: Sequence[float], voxel90: Sequence[float]) -> GaussianPsf:
        """Both views' PSF: the configured FWHMs, or those the sampling implies (see the fields)."""
        return GaussianPsf(
            lateral_fwhm_um=self.psf_lateral_fwhm_um or 2.0 * min(*voxel00[1:], *voxel90[1:]),
            axial_fwhm_um=self.psf_axial_fwhm_um or 2.0 * max(voxel00[0], voxel90[0]),
        )
