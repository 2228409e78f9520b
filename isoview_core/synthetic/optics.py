"""Image formation: what each camera's sensor receives (noise-free signal in ADU above the offset).

Model, per camera, plane by plane (z = stack plane, identical for both cameras of a pair):

* **Depth.** ``f(z)`` = fraction of the body's extent along the detection axis between the
  camera's near side and plane z: ``clip((z - (c_z - a_z)) / (2 a_z), 0, 1)`` for the first
  camera of a pair (it faces low z), ``1 - that`` for the second (it faces high z).
* **Blur.** In-plane Gaussian, sigma ``s_near + (s_far - s_near) f(z)`` (``blur_sigma_px``).
* **Attenuation.** Signal factor ``attenuation_far ** f(z)`` (1 at the near side).
* **Second camera.** Sees the specimen mirrored left-right and offset, and ``1 / intensity_ratio``
  as bright: raw column ``x`` of plane row ``y`` samples the reference frame at
  ``(y + offset_y_px, W - 1 - x + offset_x_px)``. Hence, after flipping its columns,
  ``aligned(y, x) = second_flipped(y - offset_y_px, x - offset_x_px)`` matches the reference
  (the project's fusion convention, ALGORITHMS.md §3.4 and §3.7), with the same blur and
  attenuation the reference has at the mirrored depth.

The specimen is evaluated at the camera's own sampling coordinates (``specimen.py``), then
blurred; blur and mirroring commute, so no image is ever resampled.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import ndimage

from isoview_core.synthetic.config import SimulationConfig, camera_role
from isoview_core.synthetic.specimen import (
    GAUSSIAN_SUPPORT,
    AxisSampling,
    Sampling,
    SpecimenState,
    body_mask,
    identity_sampling,
    sharp_regions,
    specimen_state,
)


def camera_sampling(config: SimulationConfig, camera: int, timepoint: int | None = None) -> Sampling:
    """Where the samples of ``camera``'s raw stack sit in its view's reference frame.

    Parameters
    ----------
    config : SimulationConfig
        Simulation parameters (pair offsets, injected offset jumps).
    camera : int
        Camera 0-3.
    timepoint : int, optional
        Adds the pair's injected offset jump at this timepoint (:attr:`SimulationConfig.offset_jumps`);
        None: the pair's configured offsets only.

    Returns
    -------
    Sampling
        Identity for the first camera of a pair; for the second, rows shifted by ``offset_y_px``
        and columns reversed and shifted by ``offset_x_px`` (module docstring).
    """
    role = camera_role(camera)
    if role.is_reference:
        return identity_sampling(config.shape)
    depth, height, width = config.shape
    pair = config.pairs[role.pair]
    jump_x, jump_y = (0.0, 0.0) if timepoint is None else config.offset_jump(role.pair, timepoint)
    return (
        AxisSampling(0.0, 1, depth),
        AxisSampling(pair.offset_y_px + jump_y, 1, height),
        AxisSampling(width - 1 + pair.offset_x_px + jump_x, -1, width),
    )


def depth_fraction(state: SpecimenState, depth: int, *, faces_low_z: bool) -> np.ndarray:
    """Per plane, how far into the body the plane lies as seen from the camera (0 near .. 1 far).

    Parameters
    ----------
    state : SpecimenState
        Specimen in the view frame (its body extent along z sets the scale).
    depth : int
        Number of planes.
    faces_low_z : bool
        True for the first camera of a pair, False for the second.

    Returns
    -------
    ndarray
        (depth,) float64 in [0, 1].
    """
    center, semi = state.body_center[0], state.body_semi_axes[0]
    fraction = np.clip((np.arange(depth) - (center - semi)) / (2 * semi), 0.0, 1.0)
    return fraction if faces_low_z else 1.0 - fraction


def optical_planes(config: SimulationConfig, timepoint: int, camera: int) -> Iterator[np.ndarray]:
    """The camera's noise-free image, plane by plane.

    Parameters
    ----------
    config : SimulationConfig
        Simulation parameters.
    timepoint : int
        Timepoint.
    camera : int
        Camera 0-3.

    Yields
    ------
    ndarray
        (Y, X) float32 signal in ADU above the camera offset, planes in stack order; zeros while the
        camera is dark (:attr:`SimulationConfig.dark_cameras`).
    """
    role = camera_role(camera)
    if config.is_dark(camera, timepoint):
        for _ in range(config.shape[0]):
            yield np.zeros(config.shape[1:], dtype=np.float32)
        return
    state = specimen_state(config, timepoint, role.view)
    fraction = depth_fraction(state, config.shape[0], faces_low_z=role.is_reference)
    near, far = config.blur_sigma_px
    sigmas = near + (far - near) * fraction
    scale = config.attenuation_far**fraction
    if not role.is_reference:
        scale = scale / config.pairs[role.pair].intensity_ratio
    margin = int(GAUSSIAN_SUPPORT * max(near, far) + 0.5) + 1
    for plane, (region, image) in enumerate(sharp_regions(state, camera_sampling(config, camera, timepoint), margin=margin)):
        out = np.zeros(config.shape[1:], dtype=np.float32)
        if image is not None:
            if sigmas[plane] > 0:
                image = ndimage.gaussian_filter(image, float(sigmas[plane]), mode="constant", truncate=GAUSSIAN_SUPPORT)
            out[region] = image * np.float32(scale[plane])
        yield out


def render_camera_signal(config: SimulationConfig, timepoint: int, camera: int) -> np.ndarray:
    """Whole noise-free image of a camera, before the sensor (no noise, offset or defects).

    Parameters
    ----------
    config : SimulationConfig
        Simulation parameters.
    timepoint : int
        Timepoint.
    camera : int
        Camera 0-3.

    Returns
    -------
    ndarray
        (Z, Y, X) float32 signal in ADU above the offset: blurred, attenuated, and for second
        cameras mirrored, offset and divided by the pair's ``intensity_ratio``.
    """
    plane_type = np.dtype((np.float32, config.shape[1:]))
    return np.fromiter(optical_planes(config, timepoint, camera), dtype=plane_type, count=config.shape[0])


def foreground_mask(config: SimulationConfig, timepoint: int, camera: int) -> np.ndarray:
    """The specimen body in the camera's raw frame (mirrored and offset for second cameras).

    Parameters
    ----------
    config : SimulationConfig
        Simulation parameters.
    timepoint : int
        Timepoint (the body drifts).
    camera : int
        Camera 0-3.

    Returns
    -------
    ndarray
        (Z, Y, X) bool, True inside the body ellipsoid: the ground truth of a threshold
        segmentation (the body's cytoplasm makes all of it foreground).
    """
    state = specimen_state(config, timepoint, camera_role(camera).view)
    return body_mask(state, camera_sampling(config, camera, timepoint))
