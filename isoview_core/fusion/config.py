"""Configuration of camera-pair fusion (clusterMF / multiFuse); its temporal smoothing is configured in ``temporal/config.py``.

Every option of the original is a field, with the original's default (ALGORITHMS.md §7.4, §7.5);
names replace the original's numeric codes (§6 item 19).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ViewOrientation(BaseModel):
    """How the second camera of a pair is brought into the reference camera's frame (§3.4)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flip_z: bool = Field(False, description="Reverse the planes of the second camera (port extension).")
    rotation: Literal[-1, 0, 1] = Field(0, description="+1 = 90 deg clockwise in-plane, -1 = counter-clockwise.")
    flip_horizontal: bool = Field(True, description="Reverse the columns of the second camera (flipHFlag).")
    flip_vertical: bool = Field(False, description="Reverse the rows of the second camera (flipVFlag).")


class FusionCrop(BaseModel):
    """Per-camera crop before fusion: columns [left, left+width), rows [top, top+height), planes [front, back]."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    left: int = Field(0, ge=0)
    top: int = Field(0, ge=0)
    width: int | None = Field(None, gt=0)
    height: int | None = Field(None, gt=0)
    front: int = Field(0, ge=0)
    back: int | None = Field(None, ge=0, description="Last plane, inclusive (original convention).")


class FusionConfig(BaseModel):
    """Every parameter of the fusion of one camera pair (clusterMF defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_type: Literal["segmented", "unsegmented"] = Field("segmented", description="Masks from the correction stage, or recomputed here (dataType).")
    orientation: ViewOrientation = Field(default_factory=ViewOrientation, description="Second-camera transform.")
    orientation_by_view: dict[int, ViewOrientation] = Field(default_factory=dict, description="Per-view overrides (view 0 / 90).")
    auto_orientation_from_xml: bool = Field(True, description="camera_orientation=Rotated -> vertical instead of horizontal flip.")
    crop: dict[int, FusionCrop] = Field(default_factory=dict, description="Per-camera crop (cropping).")
    # masks (unsegmented data) and transition maps
    fusion_gauss_kernel: float = Field(5, gt=0, description="Mask Gaussian size (kernelSize).")
    fusion_gauss_sigma: float = Field(2.0, gt=0, description="Mask Gaussian sigma (kernelSigma).")
    precise_gauss: bool = Field(True, description="Filter in float64 and round once, else in uint16 (preciseGauss).")
    mask_factor: float = Field(1.0, ge=0, description="level = min + mask_factor * (mean - min) (maskFactor).")
    fusion_mask_percentile: float = Field(1.0, ge=0, le=100, description="Percentile for the mask minimum; 0 = true minimum.")
    fusion_subsample_slices: int = Field(1, ge=1, description="Sub-sampling of the registration-slab background percentile.")
    fusion_subsample_stacks: int = Field(100, ge=1, description="Sub-sampling for the mask minimum and pooled background.")
    fusion_mask_min_object_fraction: float = Field(0.0, ge=0, description="bwareaopen size as a fraction of voxels; 0 = off.")
    mask_fusion_mode: Literal["overlap", "union"] = Field("union", description="Combine the two cameras' maps (maskFusion 0/1).")
    mask_padding: Literal["none", "centre", "smooth"] = Field("none", description="Fill empty map pixels (padding 0/1/2).")
    mask_padding_radius: int = Field(50, ge=1, description="Disk radius (px) of smooth padding.")
    splitting: int = Field(10, ge=1, description="Row slabs for slab-wise processing of camera stacks (memory bound).")
    # registration
    registration_method: Literal["fast", "original"] = Field(
        "fast", description="original: grid search + fminuncFA on the adaptive slab; fast: sub-pixel cross-correlation refined by Gauss-Newton."
    )
    registration_data: Literal["adaptive_slab", "mip"] = Field("adaptive_slab", description="Data the registration runs on.")
    registration_slab_cameras: int = Field(3, ge=0, description="Slab half-width K around the transition surface; 0 = slice mode.")
    registration_median_range: int = Field(100, ge=0, description="High-pass median window along rows; 0 disables the high-pass.")
    registration_gauss_kernel: float = Field(3, ge=0, description="Gaussian size before the high-pass; 0 skips it.")
    registration_gauss_sigma: float = Field(1.0, gt=0, description="Gaussian sigma before the high-pass.")
    search_offsets_rows: tuple[int, int, int] = Field((-50, 50, 10), description="Coarse grid (start, stop incl., step), rows.")
    search_offsets_cols: tuple[int, int, int] = Field((-50, 50, 10), description="Coarse grid (start, stop incl., step), columns.")
    estimate_rotation: bool = Field(
        False, description="Also optimise the small in-plane rotation (enable for rotated camera mounts); off: translation only, applied with the fast separable interpolation."
    )
    optimizer: Literal["gradient", "quasi_newton", "nelder_mead"] = Field("gradient", description="Fine optimiser (3/1/2).")
    optimizer_steps: tuple[float, float, float] = Field((1.0, 1.0, 0.1), description="Difference steps: rows px, cols px, degrees.")
    optimizer_tol_x: float = Field(1e-3, gt=0)
    optimizer_tol_fun: float = Field(1e-6, gt=0)
    optimizer_max_evals: int = Field(400, ge=1)
    optimizer_backtrack: float = Field(0.5, gt=0, lt=1)
    registration_cost_planes: Literal["first", "all"] = Field("first", description="Fine cost on slab plane 0 (original) or all.")
    registration_cost_mask: Literal["none", "both_positive"] = Field("none", description="Pixels entering the fine cost.")
    min_valid_pixels: int = Field(100, ge=1)
    # background and intensity
    subtract_background: bool | None = Field(None, description="None = original coupling to the intensity mode.")
    fusion_background_percentile: float = Field(5.0, ge=0, le=100)
    intensity_correction_mode: Literal["none", "estimate", "fixed", "table"] = Field("estimate", description="correction(2).")
    intensity_fixed_ratio: float = Field(1.0, gt=0, description="Multiplier for camera 2 in 'fixed' mode.")
    intensity_region: Literal["transition_slab", "mask_overlap"] = Field("transition_slab")
    intensity_estimator: Literal["transition_fit", "slab_sum"] = Field(
        "transition_fit",
        description="slab_sum: the original's ratio of slab sums (biased 1-3 % by the rounded transition plane); "
        "transition_fit: log-ratio per plane offset fitted and read at the unrounded crossover.",
    )
    intensity_slab_cameras: int = Field(5, ge=0, description="Half-width of the intensity slab (intSizes(2)).")
    # blending
    fusion_type: Literal["adaptive", "geometric", "average", "wavelet"] = Field("adaptive", description="fusionType.")
    blending_range_cameras: int = Field(4, ge=1, description="Blend half-width B (blending(2)).")
    transition_plane: int | None = Field(None, ge=1, description="1-based plane for geometric blending; None = centre.")
    front_flag: Literal[1, 2] = Field(1, description="1: reference camera in front (low z); 2: second camera in front.")
    empty_mask_fill: Literal["zero", "reference", "max"] = Field("zero", description="Columns with no transition plane.")
    matlab_saturating_average: bool = Field(False, description="Reproduce uint16 saturation of the original average.")
    wavelet_name: str = Field("db4", description="Wavelet of wavelet fusion (needs PyWavelets).")
    wavelet_level: int = Field(5, ge=1, description="Decomposition levels of wavelet fusion.")
    apply_fusion_mask: bool = Field(False, description="Multiply the fused volume by the union of the masks.")
    single_camera_passthrough: bool = Field(True, description="Write a single-camera view when the partner is missing.")
    estimate_every: int = Field(1, ge=1, description="Estimate parameters every n-th timepoint (reference subset).")
