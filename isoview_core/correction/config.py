"""Configuration of the correction stage (clusterPT port), with the spec's defaults (ALGORITHMS.md §7.3)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class CropBox(BaseModel):
    """Read-time region of interest of one camera (original ``startsLeft``/``widths``/...); None = full extent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    left: int = Field(0, ge=0)
    top: int = Field(0, ge=0)
    front: int = Field(0, ge=0)
    width: int | None = Field(None, gt=0)
    height: int | None = Field(None, gt=0)
    depth: int | None = Field(None, gt=0)


class CorrectionConfig(BaseModel):
    """Every parameter of the correction of one camera stack.

    Defaults follow the original pipeline, except where the project asks for more: the camera
    background is subtracted by default (``background_subtraction="auto"``; the original only used
    it for dead-pixel detection, available as ``"none"``), and the segmentation runs at reduced
    lateral resolution for speed (``segmentation_downsample=4``; ``1`` is the original method).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    median_kernel: tuple[int, int] | None = Field(
        (3, 3), description="Dead-pixel 2-D median kernel (rows, cols), odd sizes; None disables the correction."
    )
    defect_detection: Literal["noise", "knee"] = Field(
        "noise",
        description="knee: original thresholds on both tests; noise: std test at defect_std_sigmas standard errors "
        "of the std estimate (robust on bright specimens), mean test as the original.",
    )
    defect_std_sigmas: float = Field(6.0, gt=0, description="Standard errors of a std estimate beyond which a pixel is defective.")
    background_subtraction: Literal["auto", "image", "scalar", "none"] = Field(
        "auto",
        description="auto: subtract Background_<camera>.tif pixel-wise when present, else the percentile "
        "estimate; image: require the background frame; scalar: subtract the scalar background value; "
        "none: original behaviour (background only used to detect dead pixels).",
    )
    background_file_percentile: float = Field(3.0, ge=0, le=100, description="Percentile of Background_<k>.tif giving the scalar background.")
    background_index_mode: Literal["camera_id", "position"] = Field(
        "camera_id", description="Which Background_<k>.tif a camera uses: its id, or its position in the camera list (original)."
    )
    background_percentile: float = Field(5.0, ge=0, le=100, description="Percentile of the stack's non-zero voxels: stack background / min intensity.")
    subsample_factor: int = Field(100, ge=1, description="Every n-th voxel (MATLAB order) for percentiles.")
    segment: bool = Field(True, description="Compute the foreground mask (original segmentFlag 1).")
    apply_segmentation_mask: bool = Field(True, description="Set the background outside the mask to 0 in the written volume.")
    gauss_kernel: float = Field(5, gt=0, description="In-plane Gaussian kernel size (kernelSize).")
    gauss_sigma: float = Field(2.0, gt=0, description="In-plane Gaussian sigma (kernelSigma).")
    segment_threshold: float = Field(0.4, ge=0, description="tau in level = min + tau * (mean_foreground - min).")
    mask_percentile: float = Field(1.0, ge=0, le=100, description="Percentile of the filtered volume taken as its minimum.")
    splitting: int = Field(10, ge=1, description="Row slabs of the full-resolution Gaussian filter (memory bound).")
    segmentation_downsample: int = Field(
        4, ge=1, description="Lateral block size of the reduced-resolution segmentation; 1 = full resolution (original)."
    )
    slab_planes: int = Field(16, ge=1, description="Planes the statistics pass reads at a time.")
    correction_rotation: Literal[-1, 0, 1] = Field(0, description="+1 = 90 deg clockwise, -1 = counter-clockwise, all cameras (rotationFlag).")
    correction_flip_horizontal: bool = Field(False, description="Reverse the columns of the last camera of the pair (flipHFlag).")
    correction_flip_vertical: bool = Field(False, description="Reverse the rows of the last camera of the pair (flipVFlag).")
    crop: dict[int, CropBox] = Field(default_factory=dict, description="Per-camera read-time crop box.")
    save_projections: bool = Field(True, description="Write xy/xz/yz maximum projections beside the volume.")

    @field_validator("median_kernel")
    @classmethod
    def _odd_kernel(cls, kernel: tuple[int, int] | None) -> tuple[int, int] | None:
        if kernel is not None and any(size < 1 or size % 2 == 0 for size in kernel):
            raise ValueError(f"median_kernel must be odd and positive, got {kernel}")
        return kernel
