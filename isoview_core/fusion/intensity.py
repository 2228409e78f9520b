"""Intensity correction between the two cameras of a pair (ALGORITHMS.md §3.9); backgrounds in ``background.py``.

The correction is summarised by one number, the **multiplier for camera 2**
``intensity_ratio = factor if flag == 2 else 1 / factor`` (``fusion.json``; the form the temporal
smoothing works on, §4.2), together with the original's ``factor >= 1`` / ``flag`` pair that says
which camera is brightened.

Estimators on the transition slab (planes ``avg - L .. avg + U`` around the final map):

* ``"slab_sum"`` (original, multiFuse): ``S1 / S2``, the sums of the positive
  background-subtracted values of the slab.
* ``"transition_fit"`` (port default): per plane offset ``d`` from the map, the sums of the voxels
  positive in *both* cameras; ``log(S1(d) / S2(d))`` fitted linearly in ``d`` and evaluated at the
  sub-plane position of the transition surface.

Why the refinement. The two cameras look at the specimen from opposite sides, so their
intensities change with depth in opposite directions (attenuation, Beer-Lambert): the per-plane
ratio ``S1(d) / S2(d)`` is close to exponential in ``d`` (4-5 % per plane on the simulator's
default specimen). The slab sum is, in effect, the ratio at the slab's centre, the map's integer
plane; but the map is a rounded average of two rounded mean planes, so it sits up to one plane
away from the foreground's actual mean plane (half a plane on a specimen symmetric about a plane
boundary, since MATLAB rounds halves up). On the simulated pairs of the tests this biases
``S1 / S2`` by -1.0 to -3.1 % (-3.4 % for other seeds), beyond the 3 % target for short stacks.
The fit removes the dependence on where the slab sits: it is read at the unrounded mean plane of
the two cameras' foreground (median over the map's columns, :func:`estimate_intensity_correction`;
columns whose foreground goes on beyond the planes given are left out, so the pair estimation,
which reads only the planes around the surface, finds the same position as on the whole stack)
and compares only voxels that both cameras see. Its error on the test pairs (ratios 0.4 to 2.5)
is at most 0.6 %, and 0.9 % over the 95 pairs of ``benchmarks/bench_fusion_accuracy.py``; what
remains comes from the stack background of the min-intensity record (1 ADU after the correction
stage's dark-frame subtraction), which lowers the dimmer camera relatively more: the error grows
with the ratio, from -0.3 % at 0.4 to +0.9 % at 2.5 (within 0.25 % without that background).
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from isoview_core.fusion.config import FusionConfig
from isoview_core.numerics.compiled import compiled

logger = logging.getLogger(__name__)

IntensityMethod = Literal["none", "transition_fit", "slab_sum", "mask_overlap", "fixed", "table"]
SlabEstimator = Literal["transition_fit", "slab_sum"]
IntensityRegion = Literal["transition_slab", "mask_overlap"]

MAX_CROSSOVER_OFFSET = 1.5
"""Columns whose map lies farther (planes) from the foreground's mean plane were not built from it.

The map's roundings move it at most one plane from the midpoint of the two cameras' mean planes;
the extra half plane absorbs masks that differ slightly from those the map was made of."""

_BLOCK_VOXELS = 1 << 16
"""Voxels looked up together when a correction is applied (their index array stays in cache)."""


class IntensityCorrection(BaseModel):
    """Background and intensity correction of a camera pair (the original's saved vector, plus the ratio).

    ``flag`` says which camera is multiplied by ``factor`` (>= 1): 2 camera 2, 1 camera 1, 0 none.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")  # NaN round-trips through JSON records

    background_reference: float = Field(0.0, ge=0, description="Background subtracted from camera 1 (§3.8).")
    background_second: float = Field(0.0, ge=0, description="Background subtracted from camera 2 (§3.8).")
    sum_reference: float | None = Field(None, description="Original slab / overlap sum S1 of camera 1 (None: not measured).")
    sum_second: float | None = Field(None, description="Original slab / overlap sum S2 of camera 2 (None: not measured).")
    factor: float = Field(1.0, ge=1.0, description="Multiplier (>= 1) of the camera named by flag.")
    flag: Literal[0, 1, 2] = Field(0, description="0 none, 1 scale camera 1, 2 scale camera 2.")
    intensity_ratio: float = Field(1.0, gt=0, description="Multiplier for camera 2: factor if flag == 2 else 1 / factor.")
    method: IntensityMethod = Field("none", description="How the factor was obtained.")
    crossover_offset: float | None = Field(
        None, description="transition_fit: sub-plane position (planes) of the transition surface relative to the map."
    )
    correlation: float | None = Field(None, description="mask_overlap: Pearson correlation of the two cameras on the overlap.")

    @classmethod
    def from_ratio(
        cls,
        ratio: float,
        *,
        method: IntensityMethod,
        background_reference: float = 0.0,
        background_second: float = 0.0,
        **diagnostics: float | None,
    ) -> IntensityCorrection:
        """Correction that multiplies camera 2 by ``ratio`` (§3.9 mode 2 rule).

        ``ratio > 1`` gives ``factor = ratio, flag = 2``; otherwise ``factor = 1 / ratio,
        flag = 1`` (the dimmer camera is brightened). ``method="none"`` gives flag 0.

        Raises
        ------
        ValueError
            If ``ratio`` is not a positive finite number.
        """
        if not np.isfinite(ratio) or ratio <= 0:
            raise ValueError(f"intensity ratio must be positive and finite, got {ratio}")
        if method == "none":
            factor, flag = 1.0, 0
        elif ratio > 1:
            factor, flag = float(ratio), 2
        else:
            factor, flag = 1.0 / float(ratio), 1
        return cls(
            background_reference=background_reference,
            background_second=background_second,
            factor=factor,
            flag=flag,
            intensity_ratio=factor if flag == 2 else 1.0 / factor,
            method=method,
            **diagnostics,
        )


def intensity_correction(
    reference: np.ndarray,
    second: np.ndarray,
    transition_map: np.ndarray,
    config: FusionConfig,
    *,
    backgrounds: tuple[float, float] = (0.0, 0.0),
    masks: tuple[np.ndarray, np.ndarray] | None = None,
    table_ratio: float | None = None,
) -> IntensityCorrection:
    """Intensity correction of a pair as ``config.intensity_correction_mode`` asks (§3.9).

    Parameters
    ----------
    reference, second : ndarray
        (Z, Y, X) camera 1 and registered camera 2, before background subtraction.
    transition_map : ndarray
        (Y, X) final 1-based transition map (after padding).
    config : FusionConfig
        ``intensity_correction_mode``, ``intensity_fixed_ratio``, ``intensity_region``,
        ``intensity_estimator``, ``intensity_slab_cameras``.
    backgrounds : tuple of float
        From :func:`~isoview_core.fusion.background.fusion_backgrounds`.
    masks : tuple of ndarray, optional
        3-D foreground masks of both cameras (camera 2 registered); see
        :func:`estimate_intensity_correction`.
    table_ratio : float, optional
        ``"table"`` mode: the camera-2 multiplier from the lookup table (§4.5).

    Returns
    -------
    IntensityCorrection

    Raises
    ------
    ValueError
        ``"table"`` mode without ``table_ratio``.
    """
    bg1, bg2 = backgrounds
    mode = config.intensity_correction_mode
    if mode == "none":
        return IntensityCorrection.from_ratio(1.0, method="none", background_reference=bg1, background_second=bg2)
    if mode == "fixed":
        return IntensityCorrection.from_ratio(config.intensity_fixed_ratio, method="fixed", background_reference=bg1, background_second=bg2)
    if mode == "table":
        if table_ratio is None:
            raise ValueError("intensity_correction_mode 'table' needs the camera-2 multiplier from the lookup table")
        return IntensityCorrection.from_ratio(table_ratio, method="table", background_reference=bg1, background_second=bg2)
    return estimate_intensity_correction(
        reference,
        second,
        transition_map,
        background_reference=bg1,
        background_second=bg2,
        slab_half_width=config.intensity_slab_cameras,
        region=config.intensity_region,
        estimator=config.intensity_estimator,
        masks=masks,
    )


def estimate_intensity_correction(
    reference: np.ndarray,
    second: np.ndarray,
    transition_map: np.ndarray,
    *,
    background_reference: float = 0.0,
    background_second: float = 0.0,
    slab_half_width: int = 5,
    region: IntensityRegion = "transition_slab",
    estimator: SlabEstimator = "transition_fit",
    masks: tuple[np.ndarray, np.ndarray] | None = None,
    crossover_offset: float | None = None,
) -> IntensityCorrection:
    """Estimate the camera-2 multiplier from the data (§3.9 mode 1).

    Parameters
    ----------
    reference, second : ndarray
        (Z, Y, X) uint16 camera 1 and registered camera 2, before background subtraction. Memory
        maps work: the stacks are read plane by plane.
    transition_map : ndarray
        (Y, X) final 1-based transition map, 0 = excluded.
    background_reference, background_second : float
        Subtracted first (``to_u16``, saturating at 0), :func:`~isoview_core.fusion.background.fusion_backgrounds`.
    slab_half_width : int
        ``K`` (``intensity_slab_cameras``): ``L = min(K, min(avg) - 1)``,
        ``U = min(K, Z - max(avg))`` (1-based map values).
    region : {"transition_slab", "mask_overlap"}
        ``transition_slab``: planes ``avg - L .. avg + U`` of every mapped column (original).
        ``mask_overlap`` (later port): every voxel inside both masks where both
        background-subtracted stacks are > 0, ratio of sums, plus their Pearson correlation.
    estimator : {"transition_fit", "slab_sum"}
        Transition slab only: the port's fit (default) or the original's ratio of slab sums
        (module docstring).
    masks : tuple of ndarray, optional
        (Z, Y, X) bool foreground of camera 1 and registered camera 2. ``mask_overlap`` restricts
        to them; ``transition_fit`` takes the transition surface's sub-plane position from their
        unrounded mean planes. Default: ``stack > 0`` (the correction stage's masked output is 0
        outside its mask); pass the masks for unmasked or unsegmented data.
    crossover_offset : float, optional
        ``transition_fit``: evaluate the fit this many planes from the map instead of estimating
        the offset (0 evaluates at the map itself, e.g. for a geometric map placed on purpose).

    Returns
    -------
    IntensityCorrection
        ``sum_reference`` / ``sum_second`` are the original's sums (transition slab or overlap);
        ``factor`` / ``flag`` / ``intensity_ratio`` come from the chosen estimator. A zero sum
        (nothing to compare) gives ``factor = 1, flag = 0`` with a warning: the original would
        divide by zero (§6 item 14).

    Raises
    ------
    ValueError
        On shape mismatches, an empty map (transition slab), invalid options.

    References
    ----------
    .. [1] Chhetri, R. K. et al. (2015). Whole-animal functional and developmental imaging with
       isotropic spatial resolution. Nature Methods 12, 1171-1178 (``multiFuse``).
    """
    if reference.ndim != 3 or reference.shape != second.shape:
        raise ValueError(f"camera stacks must be 3-D and of equal shape, got {reference.shape} and {second.shape}")
    transition_map = np.asarray(transition_map)
    if transition_map.shape != reference.shape[1:]:
        raise ValueError(f"transition map {transition_map.shape} does not match the planes {reference.shape[1:]}")
    if masks is not None and any(mask.shape != reference.shape for mask in masks):
        raise ValueError(f"masks must have the stacks' shape {reference.shape}")
    if slab_half_width < 0:
        raise ValueError(f"slab_half_width must be >= 0, got {slab_half_width}")
    if estimator not in ("transition_fit", "slab_sum"):
        raise ValueError(f"estimator must be 'transition_fit' or 'slab_sum', got {estimator!r}")
    backgrounds = {"background_reference": float(background_reference), "background_second": float(background_second)}
    if region == "mask_overlap":
        return _mask_overlap(reference, second, masks, **backgrounds)
    if region != "transition_slab":
        raise ValueError(f"region must be 'transition_slab' or 'mask_overlap', got {region!r}")
    if not (transition_map > 0).any():
        raise ValueError("the transition map is empty: no transition slab to compare the cameras on")

    profile = _slab_profile(reference, second, transition_map, slab_half_width, background_reference, background_second)
    sums = {"sum_reference": float(profile.all_1.sum()), "sum_second": float(profile.all_2.sum())}
    if sums["sum_reference"] <= 0 or sums["sum_second"] <= 0:
        logger.warning("transition slab has no signal in one camera (S1=%g, S2=%g): no intensity correction", *sums.values())
        return IntensityCorrection(**backgrounds, **sums, factor=1.0, flag=0, intensity_ratio=1.0, method=estimator)
    if estimator == "slab_sum":
        ratio = sums["sum_reference"] / sums["sum_second"]
        return IntensityCorrection.from_ratio(ratio, method="slab_sum", **backgrounds, **sums)

    if crossover_offset is None:
        crossover_offset = _crossover_offset(reference, second, transition_map, masks)
    usable = (profile.both_1 > 0) & (profile.both_2 > 0)
    if not usable.any():
        logger.warning("no voxel of the transition slab is bright in both cameras: no intensity correction")
        return IntensityCorrection(**backgrounds, **sums, factor=1.0, flag=0, intensity_ratio=1.0, method=estimator)
    offsets = profile.offsets[usable].astype(np.float64)
    log_ratio = np.log(profile.both_1[usable] / profile.both_2[usable])
    if offsets.size >= 2:
        slope, intercept = np.polyfit(offsets, log_ratio, 1)
        ratio = float(np.exp(intercept + slope * crossover_offset))
    else:
        ratio = float(np.exp(log_ratio[0]))
    return IntensityCorrection.from_ratio(ratio, method="transition_fit", crossover_offset=float(crossover_offset), **backgrounds, **sums)


def apply_intensity_correction(
    volume: np.ndarray, correction: IntensityCorrection, *, camera: Literal[1, 2], out: np.ndarray | None = None
) -> np.ndarray:
    """Subtract the camera's background and apply the factor if the flag names it (§3.9 "Apply").

    ``V <- to_u16(V - bg)``, then, when ``flag == camera``, ``V <- to_u16(V * factor)``: the
    original's two uint16 steps (each rounds half away and saturates). Voxel-wise, so it works on
    any slab of planes. Both steps are one lookup in a table of the 65536 corrected values, block
    by block of rows (about 3 ms per 2048 x 2048 plane instead of 20 ms in float64).

    Parameters
    ----------
    volume : ndarray
        uint16 (..., Y, X) stack, slab or plane of camera ``camera``.
    correction : IntensityCorrection
        Backgrounds, factor and flag.
    camera : {1, 2}
        1 = reference camera, 2 = second camera.
    out : ndarray, optional
        uint16 destination of ``volume``'s shape; may be ``volume`` itself.

    Returns
    -------
    ndarray
        uint16 corrected volume (``out`` when given).

    Raises
    ------
    ValueError
        For a camera other than 1 or 2, a non-uint16 volume or one of fewer than 2 dimensions,
        or a mismatched ``out``.
    """
    if camera not in (1, 2):
        raise ValueError(f"camera must be 1 (reference) or 2 (second), got {camera}")
    if volume.dtype != np.uint16 or volume.ndim < 2:
        raise ValueError(f"camera stacks must be uint16 planes (..., Y, X), got {volume.dtype} {volume.shape}")
    if out is None:
        out = np.empty(volume.shape, dtype=np.uint16)
    elif out.shape != volume.shape or out.dtype != np.uint16:
        raise ValueError(f"out must be uint16 of shape {volume.shape}, got {out.dtype} {out.shape}")
    background = correction.background_reference if camera == 1 else correction.background_second
    shift, factor = camera_correction(correction, camera)
    if factor == 1.0 and shift <= 0:  # the background alone, as _subtract_background: max(v, bg) - bg in place, no lookup
        amount = np.uint16(min(-shift, 65535))
        np.maximum(volume, amount, out=out)
        np.subtract(out, amount, out=out)
        return out
    table = _correction_table(background, factor)
    rows = max(1, _BLOCK_VOXELS // max(1, volume.shape[-1]))
    for plane in np.ndindex(volume.shape[:-2]):
        for start in range(0, volume.shape[-2], rows):
            block = (*plane, slice(start, start + rows))
            # mode="clip" never clips (uint16 indices) but lets numpy skip buffering the output
            np.take(table, volume[block], out=out[block], mode="clip")
    return out


def camera_correction(correction: IntensityCorrection, camera: Literal[1, 2]) -> tuple[int, float]:
    """The correction of one camera as ``v -> to_u16(to_u16(v + shift) * factor)``, the form the compiled blend applies.

    Parameters
    ----------
    correction : IntensityCorrection
        Backgrounds, factor and flag.
    camera : {1, 2}
        1 = reference camera, 2 = second camera.

    Returns
    -------
    tuple of int and float
        ``shift`` (:func:`_background_shift`: for an integer ``v``, ``round_half_away(v - bg) = v + shift``)
        and the multiplier (1 unless the flag names the camera).
    """
    if camera not in (1, 2):
        raise ValueError(f"camera must be 1 (reference) or 2 (second), got {camera}")
    background = correction.background_reference if camera == 1 else correction.background_second
    return _background_shift(background), correction.factor if correction.flag == camera else 1.0


def _correction_table(background: float, factor: float) -> np.ndarray:
    """The corrected value of every uint16 value: ``to_u16(to_u16(v - bg) * factor)``, as a lookup table.

    Built with the very operations applied to the voxels before (integer background subtraction,
    float64 product, round half away, saturation), so a lookup gives identical results.
    """
    table = _subtract_background(np.arange(65536, dtype=np.uint16), background)
    if factor == 1.0:
        return table
    scaled = table * factor  # float64, as MATLAB's uint16 * double
    scaled += 0.5
    np.floor(scaled, out=scaled)  # round half away (non-negative)
    np.clip(scaled, 0, 65535, out=scaled)
    return scaled.astype(np.uint16)


class _SlabProfile:
    """Per-offset sums of the transition slab: offsets ``d = -L .. U`` from the map (0-based plane ``m - 1``)."""

    def __init__(self, lower: int, upper: int) -> None:
        self.offsets = np.arange(-lower, upper + 1)
        size = self.offsets.size
        self.all_1, self.all_2 = np.zeros(size), np.zeros(size)
        self.both_1, self.both_2 = np.zeros(size), np.zeros(size)


def _slab_profile(
    reference: np.ndarray, second: np.ndarray, transition_map: np.ndarray, half_width: int, bg1: float, bg2: float
) -> _SlabProfile:
    """Sums of the background-subtracted slab planes ``avg - L .. avg + U`` per offset (one compiled pass)."""
    planes = reference.shape[0]
    mapped = transition_map > 0
    m_min, m_max = int(transition_map[mapped].min()), int(transition_map[mapped].max())
    if m_max > planes:
        raise ValueError(f"transition map value {m_max} lies beyond the stack's {planes} planes")
    lower, upper = min(half_width, m_min - 1), min(half_width, planes - m_max)
    profile = _SlabProfile(lower, upper)
    # index of a voxel in the profile: plane - (m - 1) + L, in 0 .. L + U for the slab
    base = np.where(mapped, lower + 1 - transition_map.astype(np.int32), -planes - 1)
    sums = np.zeros((4, profile.offsets.size))
    shifts = np.array([_background_shift(bg1), _background_shift(bg2)])
    _slab_sums(np.asarray(reference), np.asarray(second), base, m_min - 1 - lower, m_max + upper, shifts, sums)
    profile.all_1, profile.all_2, profile.both_1, profile.both_2 = sums
    return profile


@compiled
def _slab_sums(
    reference: np.ndarray, second: np.ndarray, base: np.ndarray, start: int, stop: int, shifts: np.ndarray, sums: np.ndarray
) -> None:
    """Add the background-subtracted values of planes ``[start, stop)`` to ``sums`` (all 1, all 2, both 1, both 2) by profile index ``base + plane``.

    The values are integers and their sums stay far below 2**53, so the float64 sums are exact in any order:
    the same as per-plane ``np.bincount`` calls: 0.33 CPU-s instead of 1.9 for 11 slab planes of two 2048 x 2048
    cameras with 2/3 foreground.
    """
    size = sums.shape[1]
    rows, cols = base.shape
    for plane in range(start, stop):
        for row in range(rows):
            for col in range(cols):
                index = base[row, col] + plane
                if index < 0 or index >= size:
                    continue
                a = min(max(np.int64(reference[plane, row, col]) + shifts[0], 0), 65535)
                b = min(max(np.int64(second[plane, row, col]) + shifts[1], 0), 65535)
                sums[0, index] += a
                sums[1, index] += b
                if a > 0 and b > 0:
                    sums[2, index] += a
                    sums[3, index] += b


def _background_shift(background: float) -> int:
    """``shift = ⌊0.5 - bg⌋``: for a uint16 ``v``, ``to_u16(v - bg) = clip(v + shift, 0, 65535)`` (:func:`_subtract_background`)."""
    return int(np.floor(0.5 - background))


def _subtract_background(values: np.ndarray, background: float) -> np.ndarray:
    """``to_u16(values - background)`` of uint16 values, exactly, in integers.

    For an integer ``v``, ``floor(v - bg + 0.5) = v + floor(0.5 - bg)``; MATLAB's half-away
    rounding of negative differences ends at 0 after saturation either way.
    """
    shift = _background_shift(background)
    if shift == 0:
        return values
    if shift > 0:  # a negative background (not produced by the pipeline): add, saturating
        return np.clip(values.astype(np.int32) + shift, 0, 65535).astype(np.uint16)
    amount = np.uint16(min(-shift, 65535))
    return values - np.minimum(values, amount)  # uint16 throughout: saturates at 0, no wrap


def _crossover_offset(
    reference: np.ndarray, second: np.ndarray, transition_map: np.ndarray, masks: tuple[np.ndarray, np.ndarray] | None
) -> float:
    """Sub-plane position of the transition surface relative to the map (planes).

    Per mapped column, the midpoint of the two cameras' unrounded mean foreground planes minus
    the map's plane; the mean over the columns where the map is within
    ``MAX_CROSSOVER_OFFSET`` of it (i.e. where the map is that midpoint, rounded). Not the
    median: a column's midpoint of two runs of whole planes is a multiple of 1/4 plane, and the
    median of such values stays on that grid (up to 1.5 % off in the ratio on the demo's stacks,
    0.7 % with the mean). Columns whose
    foreground reaches the first or last plane given are left out: their foreground goes on
    beyond the planes given, so its mean plane there is pulled towards the middle of those planes
    (the pair estimation passes only the planes around the transition surface). When fewer than
    half of the other mapped columns qualify, the map was not built from these masks (geometric
    or padded map) and the offset is 0.
    """
    volumes = masks if masks is not None else (reference, second)
    count = np.zeros((2, *reference.shape[1:]), dtype=np.int32)
    total = np.zeros((2, *reference.shape[1:]), dtype=np.int32)
    cut = np.zeros(reference.shape[1:], dtype=np.bool_)
    for camera, volume in enumerate(volumes):
        _foreground_columns(np.asarray(volume), count[camera], total[camera], cut)
    mapped = transition_map > 0
    seen = mapped & (count[0] > 0) & (count[1] > 0) & ~cut
    if not seen.any():
        logger.info("no mapped column has its whole foreground in the planes given; fit evaluated at the map")
        return 0.0
    midpoint = (total[0][seen] / count[0][seen] + total[1][seen] / count[1][seen]) / 2
    offset = midpoint - (transition_map[seen].astype(np.float64) - 1)
    near = np.abs(offset) <= MAX_CROSSOVER_OFFSET
    if 2 * near.sum() < (mapped & ~cut).sum():
        logger.info("transition map is not the rounded mean plane of the foreground; fit evaluated at the map")
        return 0.0
    return float(np.mean(offset[near]))


def _foreground_columns(volume: np.ndarray, count: np.ndarray, total: np.ndarray, cut: np.ndarray) -> None:
    """Add to ``count`` and ``total`` ((Y, X) int32) the number and the sum of the planes where `volume` (Z, Y, X) is > 0
    per column, and mark in ``cut`` the columns where it is > 0 in its first or last plane.

    Rows or columns of `volume` in reverse (the oriented second camera: flips are negative strides) are passed to
    :func:`_foreground_planes` in memory order and its maps flipped back: the compiled loop vectorises only along
    increasing addresses (0.10 against 0.18 s per pair of 22 x 2048 x 2048 cameras, the second flipped along x).
    """
    reversed_axes = tuple(axis for axis in (1, 2) if volume.strides[axis] < 0)
    in_memory_order = np.flip(volume, reversed_axes)
    maps = tuple(np.flip(target, tuple(axis - 1 for axis in reversed_axes)) for target in (count, total, cut))
    _foreground_planes(in_memory_order.view(np.uint8) if volume.dtype == np.bool_ else in_memory_order, *maps)


@compiled
def _foreground_planes(volume: np.ndarray, count: np.ndarray, total: np.ndarray, cut: np.ndarray) -> None:
    """Per column of a (Z, Y, X) stack, add the number and the sum of the planes where it is > 0 to ``count`` and
    ``total`` ((Y, X)), and set ``cut`` where it is > 0 in the first or the last plane.

    One pass instead of five numpy passes per plane (0.30 CPU-s instead of 1.5 for 30 planes of two 2048 x 2048
    cameras with 2/3 foreground), row by row through the planes so that the row's sums stay in the cache.
    """
    planes, rows, cols = volume.shape
    for row in range(rows):
        row_count, row_total, row_cut = count[row], total[row], cut[row]
        for plane in range(planes):
            line = volume[plane, row]
            for col in range(cols):
                inside = np.int32(line[col] > 0)
                row_count[col] += inside
                row_total[col] += plane * inside
        for plane in (0, planes - 1):
            line = volume[plane, row]
            for col in range(cols):
                row_cut[col] |= line[col] > 0


def _mask_overlap(
    reference: np.ndarray,
    second: np.ndarray,
    masks: tuple[np.ndarray, np.ndarray] | None,
    *,
    background_reference: float,
    background_second: float,
) -> IntensityCorrection:
    """Later-port variant: sums and Pearson correlation over the voxels inside both masks and > 0 in both."""
    sum_1 = sum_2 = 0.0
    moments = np.zeros(5)  # sums of a, b, a^2, b^2, ab (shifted by the first plane's means, for stability)
    count = 0
    shift: tuple[float, float] | None = None
    for plane in range(reference.shape[0]):
        a = _subtract_background(reference[plane], background_reference)
        b = _subtract_background(second[plane], background_second)
        inside = (a > 0) & (b > 0)
        if masks is not None:
            inside &= masks[0][plane] & masks[1][plane]
        if not inside.any():
            continue
        a, b = a[inside].astype(np.float64), b[inside].astype(np.float64)
        sum_1 += a.sum()
        sum_2 += b.sum()
        if shift is None:
            shift = (float(a.mean()), float(b.mean()))
        a -= shift[0]
        b -= shift[1]
        moments += (a.sum(), b.sum(), (a * a).sum(), (b * b).sum(), (a * b).sum())
        count += a.size
    backgrounds = {"background_reference": background_reference, "background_second": background_second}
    if count == 0:
        logger.warning("the cameras' masks do not overlap: no intensity correction")
        return IntensityCorrection(**backgrounds, sum_reference=0.0, sum_second=0.0, method="mask_overlap")
    mean_a, mean_b = moments[0] / count, moments[1] / count
    var_a, var_b = moments[2] / count - mean_a**2, moments[3] / count - mean_b**2
    covariance = moments[4] / count - mean_a * mean_b
    correlation = float(covariance / np.sqrt(var_a * var_b)) if var_a > 0 and var_b > 0 else None
    return IntensityCorrection.from_ratio(
        sum_1 / sum_2, method="mask_overlap", sum_reference=sum_1, sum_second=sum_2, correlation=correlation, **backgrounds
    )
