"""Analytic specimen model: an ellipsoidal body with uniform cytoplasm and Gaussian nuclei.

The specimen is defined once in *body coordinates* ``u`` (view-0 axis order z, y, x; the body
ellipsoid is the unit ball) and placed into the voxel frame of each view's reference camera:

``voxel = center + semi_axes * u[permutation]``

* view 0 (cameras 0/1): identity permutation; the stack axis z is the detection axis.
* view 90 (cameras 2/3): the specimen turned 90° about y, i.e. body axes z and x exchanged
  (permutation ``(2, 1, 0)``). The body fills the same fractions of the stack in both views, so
  the map from view-0 to view-90 voxels is a z/x exchange with a per-axis scale, not a rigid
  rotation. Nuclei keep the same detection-frame size in both views (round nuclei, elongated
  along the detection axis by the light sheet), only their centres follow the map.

The body centre sits half the pair offset away from the stack centre, so both cameras of a pair
see the specimen equally far from their borders. Every image is evaluated analytically at the
sampling coordinates it is asked for (no resampling of images), so sub-pixel shifts are exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from isoview_core.synthetic.config import SimulationConfig

VIEW_PERMUTATIONS = {0: (0, 1, 2), 90: (2, 1, 0)}
"""Body axis shown along each view's stack axes (z, y, x)."""
ROTATION_SIGNS = {0: (1.0, 1.0, 1.0), 90: (1.0, 1.0, -1.0)}
"""Direction of each body axis along the view's stack axes with ``view90_geometry="rotation"``: view 90's x runs
against body z, so that view 90 is view 0 turned 90 degrees about y (z -> x, x -> -z), not mirrored."""

NUCLEUS_RADIUS = 0.85
"""Nuclei centres lie within this fraction of the body (body coordinates)."""

GAUSSIAN_SUPPORT = 4.0
"""Nuclei are evaluated out to this many sigmas."""

_SPECIMEN_STREAM = 1
_JITTER_STREAM = 2


class AxisSampling(NamedTuple):
    """Sampling of one axis: sample ``i`` sits at view-frame coordinate ``origin + step * i``."""

    origin: float
    step: int
    size: int

    def coordinate(self, index: int) -> float:
        """View-frame coordinate of sample ``index``."""
        return self.origin + self.step * index

    def coordinates(self, start: int, stop: int) -> np.ndarray:
        """View-frame coordinates (float64) of samples ``start .. stop - 1``."""
        return self.origin + self.step * np.arange(start, stop, dtype=np.float64)

    def index_range(self, low: float, high: float) -> tuple[int, int]:
        """``(start, stop)`` of the samples whose coordinate lies in ``[low, high]``, clipped to the axis."""
        first, last = sorted(((low - self.origin) / self.step, (high - self.origin) / self.step))
        start = max(int(np.ceil(first)), 0)
        stop = min(int(np.floor(last)) + 1, self.size)
        return start, max(start, stop)


Sampling = tuple[AxisSampling, AxisSampling, AxisSampling]
"""Sampling of the (z, y, x) axes of an image in a view frame."""


def identity_sampling(shape: tuple[int, int, int]) -> Sampling:
    """Sampling of a stack that *is* the view frame (the reference camera)."""
    depth, height, width = shape
    return AxisSampling(0.0, 1, depth), AxisSampling(0.0, 1, height), AxisSampling(0.0, 1, width)


@dataclass(frozen=True)
class SpecimenState:
    """The specimen at one timepoint, in the voxel frame of one view's reference camera.

    Attributes
    ----------
    body_center, body_semi_axes : ndarray
        (3,) ellipsoid centre and semi-axes (z, y, x), voxels.
    edge_width : float
        Half-width of the smooth body boundary in body coordinates (1 = a semi-axis).
    cytoplasm : float
        Cytoplasm signal inside the body (ADU).
    nucleus_centers, nucleus_sigmas : ndarray
        (N, 3) centres and Gaussian sigmas (z, y, x), voxels.
    nucleus_amplitudes : ndarray
        (N,) peak signal of each nucleus above the cytoplasm (ADU).
    """

    body_center: np.ndarray
    body_semi_axes: np.ndarray
    edge_width: float
    cytoplasm: float
    nucleus_centers: np.ndarray
    nucleus_sigmas: np.ndarray
    nucleus_amplitudes: np.ndarray

    def body_radius(self, sampling: Sampling, plane: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
        """Ellipsoidal radius (1 on the body surface) of the samples ``rows x cols`` of a plane, float32."""
        z_axis, y_axis, x_axis = sampling
        center, semi = self.body_center, self.body_semi_axes
        rz = (z_axis.coordinate(plane) - center[0]) / semi[0]
        ry = ((y_axis.coordinates(*rows) - center[1]) / semi[1]).astype(np.float32)
        rx = ((x_axis.coordinates(*cols) - center[2]) / semi[2]).astype(np.float32)
        return np.sqrt(np.float32(rz * rz) + ry[:, None] ** 2 + rx[None, :] ** 2)


def _body_semi_axes(config: SimulationConfig, view: int = 0) -> np.ndarray:
    """The body's semi-axes along the view's stack axes (z, y, x), voxels."""
    semi = np.asarray(config.body_semi_axes) * np.asarray(config.shape)
    if view == 0 or config.view90_geometry == "exchange":
        return semi
    physical = semi * np.asarray(config.voxel_size_um)  # along body z, y, x
    return physical[list(VIEW_PERMUTATIONS[view])] / np.asarray(config.voxel_size_um)


def _axis_signs(config: SimulationConfig, view: int) -> np.ndarray:
    return np.asarray(ROTATION_SIGNS[view] if config.view90_geometry == "rotation" else (1.0, 1.0, 1.0))


def specimen_drift(config: SimulationConfig, timepoint: int, view: int = 0) -> tuple[float, float, float]:
    """Translation (dz, dy, dx) of the specimen at ``timepoint`` relative to timepoint 0, in view voxels.

    Parameters
    ----------
    config : SimulationConfig
        Simulation parameters.
    timepoint : int
        Timepoint (any integer; the drift is linear in time).
    view : int
        0 (cameras 0/1) or 90 (cameras 2/3).

    Returns
    -------
    tuple of float
        ``timepoint * config.drift_px_per_timepoint`` in view 0; in view 90 the same motion with
        body axes z and x exchanged and rescaled (module docstring). Nuclei also jitter around
        this common motion.
    """
    drift_body = timepoint * np.asarray(config.drift_px_per_timepoint) / _body_semi_axes(config)
    dz, dy, dx = (_body_semi_axes(config, view) * _axis_signs(config, view) * drift_body[list(_permutation(view))]).tolist()
    return dz, dy, dx


def specimen_state(config: SimulationConfig, timepoint: int, view: int = 0) -> SpecimenState:
    """Place the specimen of ``config`` at ``timepoint`` into the frame of ``view``.

    Parameters
    ----------
    config : SimulationConfig
        Simulation parameters; the seed fixes the nuclei.
    timepoint : int
        0 .. ``config.timepoints - 1``; adds the drift and a fresh nucleus jitter.
    view : int
        0 (cameras 0/1) or 90 (cameras 2/3).

    Returns
    -------
    SpecimenState
        Body and nuclei in voxels of the view's reference camera.

    Raises
    ------
    ValueError
        If the timepoint is out of range or the view is not 0 or 90.
    """
    if not 0 <= timepoint < config.timepoints:
        raise ValueError(f"timepoint {timepoint} is outside the acquisition's 0..{config.timepoints - 1}")
    permutation = list(_permutation(view))
    semi = _body_semi_axes(config, view)
    pair = config.pairs[view // 90]
    center = (np.asarray(config.shape) - 1) / 2 + np.array([0.0, pair.offset_y_px / 2, pair.offset_x_px / 2])

    specimen_rng = np.random.default_rng([config.seed, _SPECIMEN_STREAM])
    positions = _uniform_in_ball(specimen_rng, config.n_nuclei, NUCLEUS_RADIUS)
    sigma_um = specimen_rng.uniform(*config.nucleus_sigma_um, size=config.n_nuclei)
    amplitudes = config.nucleus_peak_adu * specimen_rng.uniform(0.6, 1.0, size=config.n_nuclei)

    jitter_rng = np.random.default_rng([config.seed, _JITTER_STREAM, timepoint])
    jitter_px = jitter_rng.normal(0.0, config.nucleus_jitter_um, size=(config.n_nuclei, 3)) / np.asarray(config.voxel_size_um)
    drift_px = timepoint * np.asarray(config.drift_px_per_timepoint)
    positions = positions + (drift_px + jitter_px) / _body_semi_axes(config)  # body coordinates, view 0's axes

    lateral = sigma_um / config.lateral_pixel_um
    axial = np.hypot(sigma_um, config.sheet_sigma_um) / config.z_step_um
    return SpecimenState(
        body_center=center + np.asarray(specimen_drift(config, timepoint, view)),
        body_semi_axes=semi,
        edge_width=config.body_edge_px / float(np.mean(semi[1:])),
        cytoplasm=config.cytoplasm_adu,
        nucleus_centers=center + semi * _axis_signs(config, view) * positions[:, permutation],
        nucleus_sigmas=np.stack([axial, lateral, lateral], axis=1),
        nucleus_amplitudes=amplitudes,
    )


def sharp_regions(
    state: SpecimenState, sampling: Sampling, *, margin: int = 0
) -> Iterator[tuple[tuple[slice, slice], np.ndarray | None]]:
    """Noise-free, unblurred specimen, plane by plane, restricted to where it has signal.

    Parameters
    ----------
    state : SpecimenState
        The specimen in a view frame.
    sampling : Sampling
        Where each sample of the image sits in that frame (mirrored / shifted for second cameras).
    margin : int
        Zero samples added around the signal's bounding box (room for a later blur).

    Yields
    ------
    region : tuple of slice
        (rows, cols) of the plane covered by ``image``; the same for every plane.
    image : ndarray or None
        float32 signal (ADU) of the region, ``None`` for a plane without signal.
    """
    z_axis, y_axis, x_axis = sampling
    support = GAUSSIAN_SUPPORT * state.nucleus_sigmas
    body_extent = (1 + state.edge_width) * state.body_semi_axes
    low = np.minimum(state.body_center - body_extent, (state.nucleus_centers - support).min(axis=0, initial=np.inf))
    high = np.maximum(state.body_center + body_extent, (state.nucleus_centers + support).max(axis=0, initial=-np.inf))
    planes = z_axis.index_range(low[0], high[0])
    rows, cols = (_widen(axis.index_range(lo, hi), margin, axis.size) for axis, lo, hi in zip((y_axis, x_axis), low[1:], high[1:]))
    region = (slice(*rows), slice(*cols))
    nuclei = [_nucleus_profiles(state, index, sampling, rows, cols) for index in range(len(state.nucleus_amplitudes))]
    for plane in range(z_axis.size):
        if not planes[0] <= plane < planes[1] or rows[0] == rows[1] or cols[0] == cols[1]:
            yield region, None
            continue
        image = state.cytoplasm * _smooth_inside(state.body_radius(sampling, plane, rows, cols), state.edge_width)
        for nucleus in nuclei:
            if nucleus is not None and nucleus.planes[0] <= plane < nucleus.planes[1]:
                weight = nucleus.z_profile[plane - nucleus.planes[0]]
                image[nucleus.rows, nucleus.cols] += weight * np.multiply.outer(nucleus.y_profile, nucleus.x_profile)
        yield region, image


def render_sharp(state: SpecimenState, sampling: Sampling) -> np.ndarray:
    """Whole noise-free, unblurred image (Z, Y, X) float32 of ``state`` at ``sampling``."""
    volume = np.zeros(tuple(axis.size for axis in sampling), dtype=np.float32)
    for plane, (region, image) in enumerate(sharp_regions(state, sampling)):
        if image is not None:
            volume[plane][region] = image
    return volume


def body_mask(state: SpecimenState, sampling: Sampling) -> np.ndarray:
    """Voxels (Z, Y, X) inside the body ellipsoid (radius <= 1) at ``sampling``, bool."""
    shape = tuple(axis.size for axis in sampling)
    mask = np.zeros(shape, dtype=bool)
    full = ((0, shape[1]), (0, shape[2]))
    for plane in range(shape[0]):
        mask[plane] = state.body_radius(sampling, plane, *full) <= 1
    return mask


def view90_to_view0_um(config: SimulationConfig) -> np.ndarray:
    """The truth between the views' reference-camera frames: VW90 µm -> VW00 µm, ``p00 = R p90 + t``.

    Parameters
    ----------
    config : SimulationConfig
        An acquisition with ``view90_geometry="rotation"``.

    Returns
    -------
    ndarray
        4 x 4 rigid affine on (z, y, x, 1): ``R`` is 90 degrees about y (VW90's z -> VW00's +x, its x -> VW00's -z),
        ``t`` maps the body's centre in VW90 onto its centre in VW00. The same at every timepoint: drift and
        jitter move the specimen alike in both views.

    Raises
    ------
    ValueError
        With ``view90_geometry="exchange"``: view 90 is then a mirror image, not a rigid motion of view 0.
    """
    if config.view90_geometry != "rotation":
        raise ValueError('view 90 is a rigid motion of view 0 only with view90_geometry="rotation"')
    rotation = np.zeros((3, 3))
    for axis90, (body_axis, sign) in enumerate(zip(VIEW_PERMUTATIONS[90], ROTATION_SIGNS[90])):
        rotation[body_axis, axis90] = sign
    voxel = np.asarray(config.voxel_size_um)
    centre00, centre90 = (specimen_state(config, 0, view).body_center * voxel for view in (0, 90))
    transform = np.eye(4)
    transform[:3, :3], transform[:3, 3] = rotation, centre00 - rotation @ centre90
    return transform


def sharp_specimen(config: SimulationConfig, timepoint: int, view: int = 0) -> np.ndarray:
    """Noise-free, unblurred, unattenuated specimen in the frame of a view's reference camera.

    Parameters
    ----------
    config : SimulationConfig
        Simulation parameters.
    timepoint : int
        Timepoint (drift and jitter included).
    view : int
        0 (frame of camera 0) or 90 (frame of camera 2).

    Returns
    -------
    ndarray
        (Z, Y, X) float32 signal in ADU above the camera offset: what an ideal fusion recovers.
    """
    return render_sharp(specimen_state(config, timepoint, view), identity_sampling(config.shape))


class _NucleusProfiles(NamedTuple):
    """Separable Gaussian factors of one nucleus on a sampling, with the index ranges they cover."""

    planes: tuple[int, int]
    rows: slice
    cols: slice
    z_profile: np.ndarray
    y_profile: np.ndarray
    x_profile: np.ndarray


def _nucleus_profiles(
    state: SpecimenState, index: int, sampling: Sampling, rows: tuple[int, int], cols: tuple[int, int]
) -> _NucleusProfiles | None:
    """Profiles of nucleus ``index``, row/column slices relative to the region; None when off the image."""
    center, sigma = state.nucleus_centers[index], state.nucleus_sigmas[index]
    ranges = [axis.index_range(c - GAUSSIAN_SUPPORT * s, c + GAUSSIAN_SUPPORT * s) for axis, c, s in zip(sampling, center, sigma)]
    if any(start == stop for start, stop in ranges):
        return None
    profiles = [
        np.exp(-((axis.coordinates(*span) - c) ** 2) / (2 * s * s)).astype(np.float32)
        for axis, span, c, s in zip(sampling, ranges, center, sigma)
    ]
    profiles[1] *= np.float32(state.nucleus_amplitudes[index])
    return _NucleusProfiles(
        planes=ranges[0],
        rows=slice(ranges[1][0] - rows[0], ranges[1][1] - rows[0]),
        cols=slice(ranges[2][0] - cols[0], ranges[2][1] - cols[0]),
        z_profile=profiles[0],
        y_profile=profiles[1],
        x_profile=profiles[2],
    )


def _smooth_inside(radius: np.ndarray, edge_width: float) -> np.ndarray:
    """1 inside the body, 0 outside, a smoothstep of half-width ``edge_width`` across radius 1 (in place)."""
    t = np.clip((1 + edge_width - radius) / np.float32(2 * edge_width), 0, 1, out=radius)
    return t * t * (3 - 2 * t)


def _uniform_in_ball(rng: np.random.Generator, count: int, radius: float) -> np.ndarray:
    """``count`` points uniformly distributed in the ball of ``radius`` (rejection sampling), (count, 3)."""
    points = np.empty((0, 3))
    while len(points) < count:
        candidates = rng.uniform(-radius, radius, size=(2 * count + 8, 3))
        points = np.concatenate([points, candidates[np.linalg.norm(candidates, axis=1) <= radius]])
    return points[:count]


def _permutation(view: int) -> tuple[int, int, int]:
    if view not in VIEW_PERMUTATIONS:
        raise ValueError(f"view {view} does not exist: the simulated IsoView has views 0 and 90")
    return VIEW_PERMUTATIONS[view]


def _widen(span: tuple[int, int], margin: int, size: int) -> tuple[int, int]:
    start, stop = span
    if start == stop:
        return span
    return max(start - margin, 0), min(stop + margin, size)
