"""Coarse-to-fine rigid 3D registration of VW90 onto VW00 (issue 16, step 2).

Method (:func:`register_views`):

1. **Common grid and resolution.** Level ``L`` (``L = levels - 1`` coarsest, ``0`` finest) is the isotropic grid
   of voxel ``s 2^L`` covering VW00's volume, in VW00's frame (:func:`~isoview_core.isotropic.geometry.isotropic_grid`).
   Both views are first blurred, each along its own axes, to the same isotropic Gaussian resolution
   ``max(matching_sigma, antialias * s 2^L)`` (:mod:`~isoview_core.isotropic.pyramid`: the views' PSFs are
   elongated along different axes, so they are compared at the resolution they share) and band-passed (minus
   their blur by ``background_ratio`` times that sigma: illumination, attenuation and the specimen's envelope
   differ between the views, or are shared by any two specimens). Then VW00 is resampled onto the grid, and
   VW90 through the current estimate of ``vw90_to_vw00`` (the initial transform, by default the nominal one of
   the acquisition geometry).
2. **Coarse translation.** On the coarsest level, the masked normalised cross-correlation of the two footprints
   (Padfield [1]_, ``skimage.registration.phase_cross_correlation`` with masks) gives the whole-voxel shift that
   best aligns them among the shifts that keep at least ``coarse_overlap_ratio`` of the footprints overlapping.
   Masks, not an apodised window, because the views' footprints on the grid are rotated boxes whose edges would
   otherwise pull the peak towards the initial transform. The masked correlation has no upsampled peak: the
   sub-voxel part is left to step 3, whose capture range at the coarsest level is several voxels.
3. **Rigid refinement.** On every level, coarse to fine, Gauss-Newton (Lucas-Kanade [2]_ with the symmetric
   ESM gradient [3]_, the mean of both views' gradients) minimises ``sum (F - a M - b)^2`` over the overlap
   eroded by one voxel, with ``F`` VW00, ``M`` VW90 resampled through the estimate, and ``a``, ``b`` a gain and
   an offset (the views differ in brightness). An update is a small rotation ``omega`` about the overlap's
   centroid ``c`` and a translation ``tau``, composed after the estimate: ``p -> R(omega)(p - c) + c + tau``.
   VW90 is resampled from its own (blurred) samples at every iteration; a level stops when an update moves no
   overlap voxel by more than ``tolerance_voxels``. The coarse levels do most of the iterations: on the finest,
   one to three updates are typical.
4. **Region.** With ``region_voxels`` (the default), steps 1-3 run on a central cube of VW00 and the part of VW90
   that the initial transform maps onto it (plus 30 um for the motion and the band-pass margin), sliced from the
   views, which may be lazy arrays: a full-size pair is never read whole, and the result is expressed for the
   whole volumes.
5. **Quality.** The Pearson correlation (NCC) of the two band-passed views over their overlap on the finest
   level, through the initial and through the final transform. A registration whose NCC stays below
   ``min_quality`` is reported as unreliable (noise, no common content: the transform is then whatever the
   refinement wandered to, not to be applied), and one without ``min_overlap_voxels`` of overlap at the coarsest
   level keeps the initial transform with quality 0.

Accuracy on the simulator (``tests/test_isotropic_registration.py``: 48 x 96 x 96 views, 1 um pixels, 2 um
z steps, PSF FWHM 1 um x 4 um, Poisson and read noise; rotations up to 2 degrees about any axis after the nominal
one, translations up to 20 um): at most 0.004 isotropic voxels (2 um) at the overlap's centre and 0.04 degrees,
in about 0.7 s of CPU per registration; the errors are those of the noise (0.006 degrees without it).

References
----------
.. [1] Padfield, D. (2012). Masked object registration in the Fourier domain. IEEE Transactions on Image
   Processing 21(5), 2706-2718.
.. [2] Lucas, B. D. & Kanade, T. (1981). An iterative image registration technique with an application to
   stereo vision. Proc. 7th IJCAI, 674-679.
.. [3] Benhimane, S. & Malis, E. (2004). Real-time image-based tracking of planes using efficient second-order
   minimization. Proc. IEEE/RSJ IROS, 943-948.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage

from isoview_core.isotropic.config import IsotropicConfig
from isoview_core.isotropic.geometry import (
    IsotropicGrid,
    isotropic_grid,
    nominal_vw90_to_vw00,
    resample_onto_grid,
    rigid_transform,
    rotation_angle_deg,
    volume_centre_um,
)
from isoview_core.isotropic.pyramid import SampledView, view_at_resolution

__all__ = ["LevelRecord", "ViewRegistration", "register_views"]

logger = logging.getLogger(__name__)

Matrix4 = tuple[tuple[float, float, float, float], ...]


class LevelRecord(BaseModel):
    """What the refinement did on one resolution level."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")  # a failed NCC round-trips as NaN

    voxel_um: float = Field(description="Isotropic voxel of the level (um).")
    sigma_um: float = Field(description="Common Gaussian resolution both views were blurred to (um).")
    grid_shape: tuple[int, int, int] = Field(description="Shape (z, y, x) of the level's grid.")
    overlap_voxels: int = Field(ge=0, description="Voxels of the last overlap the refinement used.")
    iterations: int = Field(ge=0, description="Gauss-Newton updates.")
    ncc: float = Field(description="NCC of the views in their overlap at the level's last iteration.")


class ViewRegistration(BaseModel):
    """The estimated ``vw90_to_vw00`` with its correction of the initial transform and its quality."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")  # a failed NCC round-trips as NaN

    vw90_to_vw00: Matrix4 = Field(description="4 x 4 affine on (z, y, x, 1) column vectors, um: p00 = R p90 + t.")
    initial: Matrix4 = Field(description="The transform the registration started from (nominal when none was given).")
    rotation_deg: float = Field(description="Angle of the correction relative to the initial transform (degrees).")
    translation_um: tuple[float, float, float] = Field(
        description="Displacement (z, y, x) of the overlap's centre by the correction (um)."
    )
    coarse_shift_um: tuple[float, float, float] = Field(description="Translation found by the coarse step (um).")
    voxel_um: float = Field(description="Isotropic voxel of the finest level (um).")
    quality: float = Field(description="NCC of the views over their overlap on the finest level after registration.")
    quality_before: float = Field(description="The same NCC through the initial transform.")
    reliable: bool = Field(description="quality >= config.min_quality.")
    levels: tuple[LevelRecord, ...] = Field(description="Coarsest first.")
    timings_s: dict[str, float] = Field(description="Wall seconds per step: pyramid, coarse, refine, quality, total.")

    def matrix(self) -> np.ndarray:
        """``vw90_to_vw00`` as a 4 x 4 array."""
        return np.array(self.vw90_to_vw00)


@dataclass(frozen=True)
class _Level:
    """One resolution level: the grid, VW00 on it with its gradient, and VW90's blurred samples."""

    grid: IsotropicGrid
    sigma_um: float
    fixed: np.ndarray  # float32, nan outside VW00's footprint
    fixed_gradient: np.ndarray  # (3, *grid.shape) float32, per um
    moving: SampledView
    order: int
    block_size: int

    def moving_on_grid(self, vw90_to_vw00: np.ndarray) -> np.ndarray:
        """VW90 resampled onto the grid through ``vw90_to_vw00`` (nan outside its footprint)."""
        view = self.moving
        return resample_onto_grid(
            view.values, view.voxel_um, vw90_to_vw00, self.grid,
            origin_um=view.origin_um, order=self.order, block_size=self.block_size, outside=np.nan,
        )  # fmt: skip


def register_views(
    vw00: np.ndarray,
    voxel00: Sequence[float],
    vw90: np.ndarray,
    voxel90: Sequence[float],
    *,
    initial: np.ndarray | None = None,
    config: IsotropicConfig | None = None,
) -> ViewRegistration:
    """Rigidly register VW90 onto VW00, coarse to fine, on isotropic grids of VW00's frame (module docstring).

    Parameters
    ----------
    vw00, vw90 : ndarray
        The two fused views, (z, y, x), each with z along its own detection axis.
    voxel00, voxel90 : sequence of float
        Their voxel sizes (dz, dy, dx) in um.
    initial : ndarray, optional
        4 x 4 ``vw90_to_vw00`` to start from (e.g. the previous timepoint's); default the nominal transform of the
        acquisition geometry (:func:`~isoview_core.isotropic.geometry.nominal_vw90_to_vw00`).
    config : IsotropicConfig, optional
        Grid, resolution and stopping options.

    Returns
    -------
    ViewRegistration
        The estimated transform, its correction of ``initial``, the NCC before and after, one record per level.

    References
    ----------
    .. [1] Padfield, D. (2012). Masked object registration in the Fourier domain. IEEE TIP 21(5), 2706-2718.
    .. [2] Lucas, B. D. & Kanade, T. (1981). An iterative image registration technique with an application to
       stereo vision. Proc. 7th IJCAI, 674-679.
    .. [3] Benhimane, S. & Malis, E. (2004). Real-time image-based tracking of planes using efficient second-order
       minimization. Proc. IEEE/RSJ IROS, 943-948.
    """
    config = config or IsotropicConfig()
    voxel00, voxel90 = _checked_voxel(vw00, voxel00, "VW00"), _checked_voxel(vw90, voxel90, "VW90")
    if initial is None:
        start = nominal_vw90_to_vw00(vw90.shape, voxel90, vw00.shape, voxel00)
    else:
        start = np.asarray(initial, dtype=np.float64)
    if start.shape != (4, 4):
        raise ValueError(f"initial transform of shape {start.shape}: expected a 4 x 4 affine")
    voxel = config.resolved_voxel_um(voxel00, voxel90)
    matching_sigma = config.matching_sigma_um or max(voxel00[0], voxel90[0])
    if config.region_voxels is not None:
        regions = _registration_regions(vw00.shape, voxel00, vw90.shape, voxel90, start, voxel, matching_sigma, config)
        if regions is not None:
            return _register_regions(vw00, voxel00, vw90, voxel90, start, regions, config)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    levels = [
        _build_level(vw00, voxel00, vw90, voxel90, voxel * 2**level, matching_sigma, config)
        for level in reversed(range(config.levels))
    ]
    timings["pyramid"] = time.perf_counter() - clock

    tick = time.perf_counter()
    shift = _coarse_shift(levels[0], start, config)
    timings["coarse"] = time.perf_counter() - tick
    if shift is None:
        logger.warning(
            "VW90 through the initial transform overlaps VW00 by fewer than %d voxels: nothing to register", config.min_overlap_voxels
        )
        timings["total"] = time.perf_counter() - clock
        return _result(start, start, np.zeros(3), voxel, 0.0, 0.0, levels[-1].grid.centre_um(), (), timings, config)
    estimate = rigid_transform(np.eye(3), shift) @ start

    tick = time.perf_counter()
    records = []
    for level in levels:
        estimate, record = _refine(level, estimate, config)
        records.append(record)
    timings["refine"] = time.perf_counter() - tick

    tick = time.perf_counter()
    finest = levels[-1]
    before = _overlap_ncc(finest.fixed, finest.moving_on_grid(start))
    registered = finest.moving_on_grid(estimate)
    after = _overlap_ncc(finest.fixed, registered)
    centre = _overlap_centre_um(finest.grid, np.isfinite(finest.fixed) & np.isfinite(registered))
    timings["quality"] = time.perf_counter() - tick
    timings["total"] = time.perf_counter() - clock
    return _result(estimate, start, shift, voxel, before, after, centre, tuple(records), timings, config)


MAX_MOTION_UM = 30.0
"""How far VW90 may lie from its initial transform (the issue's 20 um, and more): the part of VW90 read for a region."""


def _registration_regions(
    shape00: Sequence[int],
    voxel00: Sequence[float],
    shape90: Sequence[int],
    voxel90: Sequence[float],
    start: np.ndarray,
    voxel: float,
    matching_sigma: float,
    config: IsotropicConfig,
) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """Index ranges of VW00's central region (``region_voxels`` wide, plus the margin of the coarsest band-pass) and of
    the part of VW90 the initial transform maps onto it (plus :data:`MAX_MOTION_UM`); None when they are the volumes
    or VW90 has no part there."""
    coarsest = voxel * 2 ** (config.levels - 1)
    sigma = max(matching_sigma, config.antialias * coarsest)
    margin = 3.0 * sigma * (config.background_ratio or 1.0) + 2 * coarsest
    centre, half = volume_centre_um(shape00, voxel00), config.region_voxels * voxel / 2 + margin
    region00 = _index_range(centre - half, centre + half, shape00, voxel00)
    corners = np.array(list(itertools.product(*zip(centre - half - MAX_MOTION_UM, centre + half + MAX_MOTION_UM, strict=True))))
    in90 = (np.linalg.inv(start) @ np.c_[corners, np.ones(len(corners))].T)[:3].T
    region90 = _index_range(in90.min(axis=0), in90.max(axis=0), shape90, voxel90)
    whole = all(s.start == 0 and s.stop == n for s, n in zip(region00, shape00)) and all(s.start == 0 and s.stop == n for s, n in zip(region90, shape90))
    apart = any(s.stop - s.start < 2 for s in region90)  # the initial transform puts VW90 elsewhere: the whole volumes say so
    return None if whole or apart else (region00, region90)


def _index_range(low_um: np.ndarray, high_um: np.ndarray, shape: Sequence[int], voxel: Sequence[float]) -> tuple[slice, ...]:
    """The voxels of a volume between two physical corners (um), clipped to the volume."""
    return tuple(
        slice(max(0, math.floor(lo / d)), min(n, math.ceil(hi / d) + 1)) for lo, hi, n, d in zip(low_um, high_um, shape, voxel, strict=True)
    )


def _register_regions(
    vw00: np.ndarray,
    voxel00: Sequence[float],
    vw90: np.ndarray,
    voxel90: Sequence[float],
    start: np.ndarray,
    regions: tuple[tuple[slice, ...], tuple[slice, ...]],
    config: IsotropicConfig,
) -> ViewRegistration:
    """Register the two regions (read from the views, which may be lazy arrays) and express the result for the whole
    volumes: a region's voxel 0 sits at ``o`` in its view, so ``M = T(o00) M_region T(-o90)``."""
    offsets = [np.array([s.start * d for s, d in zip(region, voxel, strict=True)]) for region, voxel in zip(regions, (voxel00, voxel90), strict=True)]
    to_whole00, to_region90 = rigid_transform(np.eye(3), offsets[0]), rigid_transform(np.eye(3), -offsets[1])
    result = register_views(
        np.asarray(vw00[regions[0]]), voxel00, np.asarray(vw90[regions[1]]), voxel90,
        initial=np.linalg.inv(to_whole00) @ start @ np.linalg.inv(to_region90), config=config.model_copy(update={"region_voxels": None}),
    )  # fmt: skip
    whole = to_whole00 @ result.matrix() @ to_region90
    return result.model_copy(update={"vw90_to_vw00": _as_tuple(whole), "initial": _as_tuple(start)})


def _checked_voxel(view: np.ndarray, voxel_um: Sequence[float], name: str) -> tuple[float, float, float]:
    """Validate a view and its voxel size."""
    if view.ndim != 3 or min(view.shape) < 2:
        raise ValueError(f"{name} of shape {view.shape}: expected a (z, y, x) volume with at least 2 voxels per axis")
    if len(voxel_um) != 3 or min(voxel_um) <= 0:
        raise ValueError(f"{name} voxel size {tuple(voxel_um)}: expected three positive sizes (dz, dy, dx) in um")
    return (float(voxel_um[0]), float(voxel_um[1]), float(voxel_um[2]))


def _build_level(
    vw00: np.ndarray,
    voxel00: Sequence[float],
    vw90: np.ndarray,
    voxel90: Sequence[float],
    voxel: float,
    matching_sigma: float,
    config: IsotropicConfig,
) -> _Level:
    """Both views blurred to the level's resolution; VW00 resampled onto its grid, with its gradient."""
    sigma = max(matching_sigma, config.antialias * voxel)
    grid = isotropic_grid(vw00.shape, voxel00, voxel)
    background = None if config.background_ratio is None else config.background_ratio * sigma
    fixed_view = view_at_resolution(vw00, voxel00, sigma, axial_sigma_um=matching_sigma, background_sigma_um=background)
    fixed = resample_onto_grid(
        fixed_view.values, fixed_view.voxel_um, np.eye(4), grid,
        origin_um=fixed_view.origin_um, order=config.interpolation_order, block_size=config.block_size, outside=np.nan,
    )  # fmt: skip
    gradient = np.stack(np.gradient(np.nan_to_num(fixed), voxel)).astype(np.float32)
    moving = view_at_resolution(vw90, voxel90, sigma, axial_sigma_um=matching_sigma, background_sigma_um=background)
    return _Level(grid, sigma, fixed, gradient, moving, config.interpolation_order, config.block_size)


def _coarse_shift(level: _Level, start: np.ndarray, config: IsotropicConfig) -> np.ndarray | None:
    """Whole-voxel translation (um) of VW90 that maximises the masked NCC on the coarsest level; None: no overlap."""
    moving = level.moving_on_grid(start)
    fixed_mask, moving_mask = np.isfinite(level.fixed), np.isfinite(moving)
    if np.count_nonzero(fixed_mask & moving_mask) < config.min_overlap_voxels:
        return None
    from skimage.registration import phase_cross_correlation  # here, not at import: only the isotropic stage needs it

    shift = phase_cross_correlation(
        np.nan_to_num(level.fixed), np.nan_to_num(moving),
        reference_mask=fixed_mask, moving_mask=moving_mask, overlap_ratio=config.coarse_overlap_ratio,
    )[0]  # fmt: skip
    return np.asarray(shift, dtype=np.float64) * level.grid.voxel_um


def _refine(level: _Level, estimate: np.ndarray, config: IsotropicConfig) -> tuple[np.ndarray, LevelRecord]:
    """Gauss-Newton on one level (module docstring, step 3) from ``estimate``; returns the refined transform."""
    grid = level.grid
    fixed_inside = ndimage.binary_erosion(np.isfinite(level.fixed))
    iterations, ncc, overlap_voxels = 0, float("nan"), 0
    for _ in range(config.max_iterations):
        moving = level.moving_on_grid(estimate)
        overlap = fixed_inside & ndimage.binary_erosion(np.isfinite(moving))
        overlap_voxels = int(np.count_nonzero(overlap))
        if overlap_voxels < config.min_overlap_voxels:
            logger.warning("level %.3g um: the views overlap by %d voxels only, refinement stopped", grid.voxel_um, overlap_voxels)
            break
        update, ncc = _gauss_newton_step(level, moving, overlap)
        estimate = update.transform @ estimate
        iterations += 1
        if update.largest_move_um < config.tolerance_voxels * grid.voxel_um:
            break
    record = LevelRecord(
        voxel_um=grid.voxel_um, sigma_um=level.sigma_um, grid_shape=grid.shape,
        overlap_voxels=overlap_voxels, iterations=iterations, ncc=ncc,
    )  # fmt: skip
    return estimate, record


@dataclass(frozen=True)
class _Update:
    """One Gauss-Newton update, composed after the estimate, and the largest displacement it causes (um)."""

    transform: np.ndarray
    largest_move_um: float


NORMAL_EQUATION_CHUNK = 1 << 18
"""Overlap voxels whose Jacobian rows exist at once: the normal equations are summed chunk by chunk (about 20 MB),
so a Gauss-Newton step needs no per-voxel Jacobian of the whole overlap (300 bytes a voxel: 6 GB for 20 M voxels)."""


def _gauss_newton_step(level: _Level, moving: np.ndarray, overlap: np.ndarray) -> tuple[_Update, float]:
    """Solve the linearised least squares for (omega, tau, gain, offset) over the overlap; NCC before the step."""
    grid = level.grid
    index = np.flatnonzero(overlap)
    fixed, warped = level.fixed.ravel()[index].astype(np.float64), moving.ravel()[index].astype(np.float64)
    gain, offset = _linear_fit(warped, fixed)
    moving_gradient = np.gradient(np.nan_to_num(moving), grid.voxel_um)  # float32, like `moving`
    centre = _overlap_centre_um(grid, overlap)
    normal, right, reach = np.zeros((8, 8)), np.zeros(8), 0.0
    for chunk in range(0, index.size, NORMAL_EQUATION_CHUNK):
        part = slice(chunk, chunk + NORMAL_EQUATION_CHUNK)
        flat = index[part]
        # gain times the ESM gradient: the mean of VW90's gradient and of VW00's brought to VW90's scale
        gradient = np.stack(
            [0.5 * (gain * m.ravel()[flat] + f.ravel()[flat]) for m, f in zip(moving_gradient, level.fixed_gradient, strict=True)], axis=1
        ).astype(np.float64)
        arm = np.stack(np.unravel_index(flat, grid.shape), axis=1) * grid.voxel_um + np.asarray(grid.origin_um) - centre
        jacobian = np.column_stack([-np.cross(arm, gradient), -gradient, warped[part], np.ones(flat.size)])
        # einsum's own loops, not BLAS, whose summation order follows its thread count: a watcher's worker and a
        # notebook register the same views to the same bits
        normal += np.einsum("ni,nj->ij", jacobian, jacobian)
        right += np.einsum("ni,n->i", jacobian, fixed[part] - gain * warped[part] - offset)
        reach = max(reach, float(np.sqrt((arm**2).sum(axis=1).max())))
    scale = np.sqrt(np.diag(normal))  # columns of equal norm: radians and um alike
    scale[scale == 0] = 1.0
    step = np.linalg.lstsq(normal / np.outer(scale, scale), right / scale, rcond=None)[0] / scale
    omega, tau = step[:3], step[3:6]
    from scipy.spatial.transform import Rotation  # here, not at import: SciPy's spatial costs every command 0.1 CPU-s

    rotation = Rotation.from_rotvec(omega).as_matrix()
    update = rigid_transform(rotation, centre + tau - rotation @ centre)
    return _Update(update, float(np.linalg.norm(omega) * reach + np.linalg.norm(tau))), _pearson(fixed, warped)


def _overlap_centre_um(grid: IsotropicGrid, overlap: np.ndarray) -> np.ndarray:
    """Physical centroid of the overlap's voxels (the grid's centre when there are none)."""
    counts = [overlap.sum(axis=tuple(a for a in range(3) if a != axis), dtype=np.int64) for axis in range(3)]
    total = counts[0].sum()
    if total == 0:
        return grid.centre_um()
    mean_index = np.array([np.arange(n) @ count / total for n, count in zip(grid.shape, counts, strict=True)])
    return mean_index * grid.voxel_um + np.asarray(grid.origin_um)


def _overlap_ncc(fixed: np.ndarray, moving: np.ndarray) -> float:
    """Pearson correlation of two grids over the voxels where both are defined (0 where that is nearly empty)."""
    overlap = np.isfinite(fixed) & np.isfinite(moving)
    if np.count_nonzero(overlap) < 2:
        return 0.0
    return _pearson(fixed[overlap].astype(np.float64), moving[overlap].astype(np.float64))


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two samples (0 when either is constant); pairwise sums, the same bits in any process."""
    a, b = a - a.mean(), b - b.mean()
    norm = math.sqrt(float(np.sum(a * a)) * float(np.sum(b * b)))
    return float(np.sum(a * b)) / norm if norm > 0 else 0.0


def _linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares ``y = gain x + offset`` with pairwise sums (no BLAS); (1, 0) when x is constant."""
    dx = x - x.mean()
    spread = float(np.sum(dx * dx))
    if spread == 0:
        return 1.0, 0.0
    gain = float(np.sum(dx * (y - y.mean()))) / spread
    return gain, float(y.mean() - gain * x.mean())


def _result(
    estimate: np.ndarray,
    start: np.ndarray,
    shift: np.ndarray,
    voxel: float,
    before: float,
    after: float,
    centre: np.ndarray,
    records: tuple[LevelRecord, ...],
    timings: dict[str, float],
    config: IsotropicConfig,
) -> ViewRegistration:
    """The registration model: the correction ``estimate @ start^-1``, its translation measured at ``centre`` (um)."""
    correction = estimate @ np.linalg.inv(start)
    moved = correction[:3, :3] @ centre + correction[:3, 3] - centre
    return ViewRegistration(
        vw90_to_vw00=_as_tuple(estimate), initial=_as_tuple(start),
        rotation_deg=rotation_angle_deg(correction), translation_um=tuple(float(v) for v in moved),
        coarse_shift_um=tuple(float(v) for v in shift), voxel_um=voxel, quality=after, quality_before=before,
        reliable=after >= config.min_quality, levels=records, timings_s=timings,
    )  # fmt: skip


def _as_tuple(matrix: np.ndarray) -> Matrix4:
    """A 4 x 4 array as nested tuples of floats (JSON-ready)."""
    return tuple(tuple(float(v) for v in row) for row in matrix)
