"""Configuration of the synthetic IsoView acquisition, and the fixed camera ↔ pair ↔ channel wiring.

The simulated microscope has the reference dataset's wiring (ALGORITHMS.md §1.4, §1.7): cameras
0 and 1 face each other along the z axis of view 0 (channel 0, ``stack_direction`` Z), cameras
2 and 3 along the orthogonal axis, view 90 (channel 1, ``stack_direction`` Y). The first camera
of a pair is the reference, the second sees the specimen mirrored left-right ("Normal" mounting).
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from isoview_core.metadata import DEFAULT_PIXEL_PITCH_UM

CAMERAS = (0, 1, 2, 3)


class CameraRole(NamedTuple):
    """Where a camera sits in the simulated microscope."""

    pair: int
    """Index of its pair in :attr:`SimulationConfig.pairs` (0: cameras 0/1, 1: cameras 2/3)."""
    view: int
    """View angle in degrees: 0 for cameras 0/1, 90 for cameras 2/3."""
    channel: int
    """Acquisition channel (``CHN`` token, XML ``ch<N>.xml``): 0 for cameras 0/1, 1 for cameras 2/3."""
    is_reference: bool
    """True for the first camera of the pair (0 and 2), which defines the pair's frame."""


def camera_role(camera: int) -> CameraRole:
    """Pair, view, channel and reference flag of camera 0-3.

    Raises
    ------
    ValueError
        If ``camera`` is not 0-3.
    """
    if camera not in CAMERAS:
        raise ValueError(f"camera {camera} does not exist: the simulated IsoView has cameras 0-3")
    pair = camera // 2
    return CameraRole(pair=pair, view=90 * pair, channel=pair, is_reference=camera % 2 == 0)


class PairConfig(BaseModel):
    """Known transform between the two cameras of a pair, in the project's fusion convention.

    After flipping the second camera's columns, ``aligned(y, x) = second_flipped(y - offset_y_px,
    x - offset_x_px)`` matches the reference camera, and the second camera's background-subtracted
    intensities times ``intensity_ratio`` match the reference's.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    offset_x_px: float = Field(description="Column offset of the flipped second camera (pixels).")
    offset_y_px: float = Field(description="Row offset of the flipped second camera (pixels).")
    intensity_ratio: PositiveFloat = Field(description="Multiplier bringing the second camera's signal to the reference's.")


class OffsetJump(BaseModel):
    """An injected registration fault: at one timepoint, the second camera of a pair is displaced by an extra offset.

    The displacement adds to the pair's :class:`PairConfig` offsets at ``timepoint`` only (in the same
    convention), so the pair's estimated offset jumps there and comes back at the next timepoint.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timepoint: NonNegativeInt
    pair: int = Field(ge=0, le=1, description="Index of the pair in SimulationConfig.pairs (0: cameras 0/1, 1: cameras 2/3).")
    offset_x_px: float = Field(0.0, description="Extra column offset of the flipped second camera (pixels).")
    offset_y_px: float = Field(0.0, description="Extra row offset of the flipped second camera (pixels).")


class DarkCamera(BaseModel):
    """An injected camera fault: from a timepoint on, no light reaches the camera (a closed shutter, a laser off).

    Its stacks then hold only the sensor: offset, read noise and defective pixels.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera: int = Field(ge=0, le=3)
    from_timepoint: NonNegativeInt


INJECTION_FIELDS = ("offset_jumps", "dark_cameras")
"""The fault injections of :class:`SimulationConfig`: left out of its serialisation while empty (the default), so that
an acquisition without faults writes the same ``ground_truth.json`` as before they existed."""
LATER_FIELDS = {"view90_geometry": "exchange"}
"""Fields added later, left out of the serialisation at these defaults for the same reason."""


class SimulationConfig(BaseModel):
    """Everything that defines a synthetic acquisition; with the seed it fixes every voxel.

    Defaults give a small, non-square acquisition that runs in well under a second per stack.
    Lengths are in voxels of the detection frame unless the name says µm.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    shape: tuple[PositiveInt, PositiveInt, PositiveInt] = Field((48, 192, 160), description="Stack shape (Z, Y, X) of every camera.")
    timepoints: PositiveInt = 4
    seed: int = Field(0, ge=0)
    specimen: int = Field(0, ge=0, le=99, description="Specimen index (SPM / SPC token).")
    pairs: tuple[PairConfig, PairConfig] = Field(
        (
            PairConfig(offset_x_px=7.3, offset_y_px=-4.6, intensity_ratio=1.25),
            PairConfig(offset_x_px=-3.2, offset_y_px=5.7, intensity_ratio=0.8),
        ),
        description="Transforms of camera pair (0, 1) and (2, 3).",
    )
    background_levels_adu: tuple[float, float, float, float] = Field(
        (100.0, 104.0, 97.0, 102.0), description="sCMOS offset (mean dark level) of cameras 0-3."
    )
    read_noise_adu: tuple[PositiveFloat, PositiveFloat, PositiveFloat, PositiveFloat] = Field(
        (1.6, 1.8, 1.5, 1.7), description="Gaussian read noise (standard deviation) of cameras 0-3."
    )
    electrons_per_adu: PositiveFloat = Field(0.46, description="Conversion factor; Poisson noise acts on signal x this (Orca Flash 4.0).")
    nucleus_peak_adu: PositiveFloat = Field(1200.0, description="Brightest nucleus amplitude above the cytoplasm, sharp and unattenuated.")
    cytoplasm_adu: float = Field(300.0, ge=0, description="Uniform cytoplasm signal of the body.")
    n_nuclei: int = Field(300, ge=0)
    nucleus_sigma_um: tuple[PositiveFloat, PositiveFloat] = Field((0.8, 1.4), description="Range of nucleus Gaussian sigmas.")
    sheet_sigma_um: float = Field(1.5, ge=0, description="Light-sheet thickness (sigma), widens nuclei along the detection axis.")
    body_semi_axes: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = Field(
        (0.38, 0.35, 0.35), description="Body ellipsoid semi-axes as fractions of the stack shape (Z, Y, X)."
    )
    body_edge_px: PositiveFloat = Field(2.0, description="Half-width of the body's smooth boundary, in lateral pixels.")
    blur_sigma_px: tuple[float, float] = Field(
        (0.5, 4.0), description="In-plane blur sigma at the body's near and far side (linear in depth)."
    )
    attenuation_far: float = Field(0.45, gt=0, le=1, description="Signal factor at the body's far side relative to its near side.")
    defect_fraction: float = Field(5e-4, ge=0, le=0.01, description="Fraction of each camera's pixels that are defective.")
    drift_px_per_timepoint: tuple[float, float, float] = Field(
        (0.0, 0.3, 0.3), description="Specimen translation (dz, dy, dx) per timepoint in view-0 voxels."
    )
    nucleus_jitter_um: float = Field(0.08, ge=0, description="Per-timepoint random displacement (sigma) of each nucleus.")
    z_step_um: PositiveFloat = 2.0
    magnification: PositiveFloat = 16.0
    wavelengths_nm: tuple[int, int] = Field((488, 561), description="Laser line of channel 0 and channel 1.")
    exposure_ms: PositiveFloat = 10.0
    view90_geometry: Literal["exchange", "rotation"] = Field(
        "exchange",
        description="How view 90 sees the specimen. exchange: body axes z and x exchanged, the body filling the same "
        "fractions of the stack in both views (a mirror image, rescaled: not a rigid motion; the default, for the camera-pair "
        "tests). rotation: the specimen turned 90 degrees about y in physical units, as the microscope sees it, so that "
        "VW90 maps onto VW00 by the nominal rigid transform (the isotropic stage needs this; the stack must hold the body "
        "in both views, i.e. about as deep in um as it is wide).",
    )
    offset_jumps: tuple[OffsetJump, ...] = Field((), description="Injected faults: a pair's offset jumps at one timepoint.")
    dark_cameras: tuple[DarkCamera, ...] = Field((), description="Injected faults: a camera receives no light from a timepoint on.")

    @model_serializer(mode="wrap")
    def _leave_out_empty_injections(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The fields, without the fault injections that are empty (:data:`INJECTION_FIELDS`) and the later fields at their defaults."""
        data = handler(self)
        return {
            name: value
            for name, value in data.items()
            if (name not in INJECTION_FIELDS or value) and (name not in LATER_FIELDS or value != LATER_FIELDS[name])
        }

    def offset_jump(self, pair: int, timepoint: int) -> tuple[float, float]:
        """Extra ``(offset_x_px, offset_y_px)`` of ``pair``'s second camera at ``timepoint`` (0, 0 without a jump)."""
        jumps = [jump for jump in self.offset_jumps if jump.pair == pair and jump.timepoint == timepoint]
        return float(sum(jump.offset_x_px for jump in jumps)), float(sum(jump.offset_y_px for jump in jumps))

    def is_dark(self, camera: int, timepoint: int) -> bool:
        """Whether no light reaches ``camera`` at ``timepoint`` (:class:`DarkCamera`)."""
        return any(dark.camera == camera and timepoint >= dark.from_timepoint for dark in self.dark_cameras)

    @model_validator(mode="after")
    def _check_geometry(self) -> SimulationConfig:
        if min(self.shape) < 4:
            raise ValueError(f"shape {self.shape}: every axis needs at least 4 voxels")
        if any(fraction >= 0.5 for fraction in self.body_semi_axes):
            raise ValueError(f"body_semi_axes {self.body_semi_axes}: fractions must stay below 0.5 to fit the stack")
        if self.view90_geometry == "rotation":
            physical = [f * n * v for f, n, v in zip(self.body_semi_axes, self.shape, self.voxel_size_um)]
            turned = [physical[2] / self.voxel_size_um[0] / self.shape[0], physical[0] / self.voxel_size_um[2] / self.shape[2]]
            if max(turned) >= 0.5:
                raise ValueError(
                    f"shape {self.shape}: turned by 90 degrees the body does not fit view 90's stack (semi-axes {max(turned):.2f} of "
                    "its depth or width); make the stack about as deep in um as it is wide"
                )
        if min(self.blur_sigma_px) < 0:
            raise ValueError(f"blur_sigma_px {self.blur_sigma_px}: sigmas must be >= 0")
        if self.nucleus_sigma_um[0] > self.nucleus_sigma_um[1]:
            raise ValueError(f"nucleus_sigma_um {self.nucleus_sigma_um}: expected (min, max)")
        return self

    @property
    def lateral_pixel_um(self) -> float:
        """Pixel size in the image plane: 6.5 µm sensor pitch / magnification."""
        return DEFAULT_PIXEL_PITCH_UM / self.magnification

    @property
    def voxel_size_um(self) -> tuple[float, float, float]:
        """Voxel size (z, y, x) in µm."""
        return (self.z_step_um, self.lateral_pixel_um, self.lateral_pixel_um)
