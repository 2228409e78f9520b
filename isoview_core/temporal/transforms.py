"""Temporal smoothing of the per-timepoint rigid transform between the orthogonal views (VW90 → VW00).

The registration of the two views is estimated at every timepoint; the
transform applied at timepoint ``t`` is the robust LOESS (§4.3) of the
estimates of its live window ``t - w … t + w`` (§4.6, the same windowing as the
camera-pair parameters), so one bad registration does not jerk the movie.

Transforms are 4x4 affines on column vectors ``(z, y, x, 1)`` in micrometres,
``p00 = R p90 + t`` with ``R`` a proper rotation. Each is smoothed as six
parameters that do not couple (see :func:`rigid_to_parameters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from isoview_core.temporal.config import TemporalConfig
from isoview_core.temporal.rloess import rloess
from isoview_core.temporal.series import _lookup, _reduce, _sliding_average
from isoview_core.temporal.window import _check_inside, _complete, window_bounds

__all__ = [
    "WindowedTransform",
    "applied_transform",
    "parameters_to_rigid",
    "rigid_to_parameters",
    "smooth_transforms",
]

RIGID_TOLERANCE = 1e-6
"""Largest deviation of ``R^T R`` from the identity accepted for a rigid transform."""


@dataclass(frozen=True)
class WindowedTransform:
    """The transform applied at one timepoint and whether it can still change.

    Attributes
    ----------
    timepoint : int
        Timepoint the transform is applied at.
    window : tuple of int
        First and last timepoint whose estimates were used (inclusive).
    applied : ndarray, shape (4, 4)
        Rigid transform VW90 → VW00 on ``(z, y, x, 1)`` in micrometres.
    final : bool
        No later estimate (or end of acquisition) can change the value.
    smoothed : bool
        False where the window held no usable estimate and the fallback was applied.
    """

    timepoint: int
    window: tuple[int, int]
    applied: np.ndarray
    final: bool
    smoothed: bool = True


def rigid_to_parameters(
    transform: np.ndarray, *, reference_rotation: np.ndarray, reference_point_um: np.ndarray
) -> np.ndarray:
    """The six smoothing parameters of a rigid transform: small rotation and the source of a reference point.

    Parameters
    ----------
    transform : ndarray, shape (4, 4)
        Rigid transform ``p00 = R p90 + t`` on ``(z, y, x, 1)`` in micrometres.
    reference_rotation : ndarray, shape (3, 3)
        Rotation ``R_ref`` near ``R`` (e.g. the mean rotation of a window).
    reference_point_um : ndarray, shape (3,)
        Point ``c`` of the VW00 frame, (z, y, x) in micrometres, near the
        centre of the overlap.

    Returns
    -------
    ndarray, shape (6,)
        ``(r, s)``: the rotation vector ``r`` (radians, in the (z, y, x) basis)
        of ``R R_ref^T``, and ``s = R^T (c - t)``, the VW90 point that lands on
        ``c``.

    Raises
    ------
    ValueError
        `transform` is not a finite 4x4 rigid transform, or the references have
        the wrong shape.

    Notes
    -----
    The translation ``t`` couples with ``R``: a rotation by a small angle about
    the overlap centre changes ``t`` by the angle times the distance of the
    centre from the origin. ``s`` does not change under a rotation about ``c``
    (``R' = dR R``, ``t' = dR t + (I - dR) c``), so rotation and translation
    are smoothed independently, and near ``R_ref`` the rotation vector is close
    to linear in the small correction angles.
    :func:`parameters_to_rigid` is the inverse.
    """
    rotation, translation = _rigid_parts(transform)
    centre = _point(reference_point_um)
    from scipy.spatial.transform import Rotation  # here, not at import: SciPy's spatial costs every command 0.1 CPU-s

    relative = Rotation.from_matrix(rotation @ _rotation(reference_rotation).T)
    return np.concatenate([relative.as_rotvec(), rotation.T @ (centre - translation)])


def parameters_to_rigid(
    parameters: np.ndarray, *, reference_rotation: np.ndarray, reference_point_um: np.ndarray
) -> np.ndarray:
    """The rigid transform of six smoothing parameters; inverse of :func:`rigid_to_parameters`.

    Parameters
    ----------
    parameters : ndarray, shape (6,)
        Rotation vector ``r`` of ``R R_ref^T`` (radians) and ``s = R^T (c - t)``
        (micrometres).
    reference_rotation : ndarray, shape (3, 3)
        Rotation ``R_ref`` the parameters were taken against.
    reference_point_um : ndarray, shape (3,)
        Point ``c`` of the VW00 frame, (z, y, x) in micrometres.

    Returns
    -------
    ndarray, shape (4, 4)
        ``R = exp([r]) R_ref``, ``t = c - R s``.

    Raises
    ------
    ValueError
        `parameters` is not 6 finite numbers, or the references have the wrong shape.
    """
    parameters = np.asarray(parameters, dtype=np.float64)
    if parameters.shape != (6,) or not np.isfinite(parameters).all():
        raise ValueError(f"a rigid transform has 6 finite parameters; got {parameters!r}")
    from scipy.spatial.transform import Rotation  # as in rigid_to_parameters

    rotation = Rotation.from_rotvec(parameters[:3]).as_matrix() @ _rotation(reference_rotation)
    transform = np.eye(4)
    transform[:3, :3] = rotation
    transform[:3, 3] = _point(reference_point_um) - rotation @ parameters[3:]
    return transform


def applied_transform(
    t: int,
    estimates: Mapping[int, np.ndarray | None],
    *,
    reference_point_um: np.ndarray,
    config: TemporalConfig,
    first_timepoint: int,
    last_timepoint: int | None,
    qualities: Mapping[int, float] | None = None,
    min_quality: float = 0.5,
    fallback: np.ndarray | None = None,
) -> WindowedTransform:
    """The VW90 → VW00 transform to apply at timepoint `t`, from the estimates of its window.

    Parameters
    ----------
    t : int
        Timepoint to fuse.
    estimates : mapping of int to ndarray or None
        Registration estimates known so far (4x4 rigid transforms), by
        timepoint. None records a timepoint whose estimate will never come
        (failed registration); it counts as present for finality and as missing
        (imputed) for the value.
    reference_point_um : ndarray, shape (3,)
        Point of the VW00 frame, (z, y, x) in micrometres, about which the
        rotation is smoothed: the centre of the overlap of the views (the VW00
        volume centre when they overlap fully).
    config : TemporalConfig
        ``window`` (half-width w), ``temporal_smoothing``, ``loess_degree``,
        ``robust_iterations``, ``loess_stable``, ``param_median_filter_range``,
        ``static_parameters``, ``static_method``.
    first_timepoint : int
        First timepoint of the acquisition.
    last_timepoint : int or None
        Last timepoint once the acquisition is closed; None while it runs, when
        the latest estimated timepoint is the provisional end.
    qualities : mapping of int to float, optional
        Registration quality in [0, 1] by timepoint (1 where absent).
    min_quality : float, optional
        An estimate of lower quality is treated as missing (imputed), like a
        None estimate.
    fallback : ndarray, optional
        4x4 transform applied where the window holds no usable estimate (e.g.
        the nominal geometry); without it that is an error.

    Returns
    -------
    WindowedTransform
        Applied transform, the window used, whether it is final and whether it
        was smoothed (False: the fallback).

    Raises
    ------
    ValueError
        `t` or an estimate lies outside ``[first_timepoint, last_timepoint]``, an
        estimate is not rigid, a quality lies outside [0, 1],
        ``param_median_filter_range`` is even, or the window holds no usable
        estimate and no `fallback` is given.

    Notes
    -----
    Window and finality are those of
    :func:`isoview_core.temporal.applied_parameters`: ``t - w … t + w`` clipped
    to the acquisition and shifted, not shrunk, near either end; final once
    every timepoint of the window has a record and the window does not depend
    on the provisional end.

    Value: the usable estimates of the window become six parameters each
    (:func:`rigid_to_parameters`) against the chordal L2 mean of their rotations
    [3]_ and `reference_point_um`; each parameter is smoothed by robust LOESS
    [1]_ over the window (span = its number of timepoints, missing estimates
    imputed; after the optional running median of ``param_median_filter_range``
    estimates, clipped to the window) and evaluated at `t`, and the transform is rebuilt. The robust
    iterations give an outlying registration zero weight. A parameter with too
    few estimates for the local fit (or with ``temporal_smoothing`` off) takes
    the estimate at `t`, or the distance-weighted interpolation of the nearest
    ones before and after it.

    With tricube weights the centre of a ``2w + 1`` window is fitted on
    ``2w - 1`` timepoints; a local polynomial with that many coefficients
    interpolates them and leaves the robust iterations no residual to reject an
    outlier at ``t`` by, so the degree is lowered to ``2w - 3`` where
    ``loess_degree`` exceeds it (local linear at ``w = 2``). At ``w <= 1`` no
    smoothing can reject an outlier. At ``w = 2`` the five residuals that set
    the robust scale are mostly contaminated by an outlier one timepoint away,
    which then moves its neighbours; the median prefilter
    ``param_median_filter_range = 3`` (within the window) removes it first. An
    outlier at the first or last timepoint of the acquisition sits at the edge
    of a shifted window and is rejected less well.

    Static mode: the ``static_method`` (mean or median) of the parameters of
    every usable estimate known so far; window ``(first_timepoint, end)``; final
    once the acquisition is closed and every timepoint has a record.

    References
    ----------
    .. [1] W. S. Cleveland, "Robust locally weighted regression and smoothing
       scatterplots", J. Am. Stat. Assoc. 74 (368), 829–836 (1979).
    .. [2] R. K. Chhetri et al., "Whole-animal functional and developmental
       imaging with isotropic spatial resolution", Nat. Methods 12, 1171–1178
       (2015).
    .. [3] R. Hartley, J. Trumpf, Y. Dai, H. Li, "Rotation averaging",
       Int. J. Comput. Vis. 103, 267–305 (2013), §5.
    """
    _check_inside(t, first_timepoint, last_timepoint, "requested")
    for timepoint in estimates:
        _check_inside(timepoint, first_timepoint, last_timepoint, "estimate")
    usable = _usable(estimates, qualities or {}, min_quality)
    centre = _point(reference_point_um)
    end = last_timepoint if last_timepoint is not None else max(t, max(estimates, default=t))
    if config.static_parameters:
        lo, hi = first_timepoint, end
        final = last_timepoint is not None and _complete(estimates, lo, hi)
    else:
        lo, hi, shifted_hi = window_bounds(t, first_timepoint, end, config.window)
        final = _complete(estimates, lo, hi) and (last_timepoint is not None or shifted_hi <= end)
    in_window = {timepoint: usable[timepoint] for timepoint in range(lo, hi + 1) if timepoint in usable}
    if not in_window and fallback is not None:
        return WindowedTransform(timepoint=t, window=(lo, hi), applied=np.asarray(fallback, dtype=np.float64), final=final, smoothed=False)
    if not in_window:
        raise ValueError(f"no registration to apply at timepoint {t}: its window {lo}..{hi} holds no usable estimate")
    from scipy.spatial.transform import Rotation  # as in rigid_to_parameters

    reference = Rotation.from_matrix(np.stack([m[:3, :3] for m in in_window.values()])).mean().as_matrix()
    series = np.full((hi - lo + 1, 6), np.nan)
    for timepoint, transform in in_window.items():
        series[timepoint - lo] = rigid_to_parameters(transform, reference_rotation=reference, reference_point_um=centre)
    if config.static_parameters:
        values = _reduce(series, config.static_method, "omit")
    else:
        values = _window_value(t, lo, series, config)
    applied = parameters_to_rigid(values, reference_rotation=reference, reference_point_um=centre)
    return WindowedTransform(timepoint=t, window=(lo, hi), applied=applied, final=final)


def smooth_transforms(
    estimates: Mapping[int, np.ndarray | None],
    *,
    reference_point_um: np.ndarray,
    config: TemporalConfig,
    first_timepoint: int | None = None,
    last_timepoint: int | None = None,
    qualities: Mapping[int, float] | None = None,
    min_quality: float = 0.5,
) -> dict[int, np.ndarray]:
    """The transform applied at every timepoint of a closed acquisition.

    Parameters
    ----------
    estimates : mapping of int to ndarray or None
        Registration estimates (4x4 rigid transforms) by timepoint; None or a
        missing timepoint: no estimate (imputed).
    reference_point_um : ndarray, shape (3,)
        Point of the VW00 frame, (z, y, x) in micrometres, about which the
        rotation is smoothed (the overlap centre).
    config : TemporalConfig
        Settings of :func:`applied_transform`.
    first_timepoint, last_timepoint : int, optional
        The acquisition's timepoints; by default the first and last estimated.
    qualities : mapping of int to float, optional
        Registration quality in [0, 1] by timepoint (1 where absent).
    min_quality : float, optional
        An estimate of lower quality is treated as missing.

    Returns
    -------
    dict of int to ndarray
        Applied 4x4 transform by timepoint, ``first_timepoint … last_timepoint``.

    Raises
    ------
    ValueError
        No estimate is given, or as :func:`applied_transform`.

    Notes
    -----
    Each value is :func:`applied_transform` of the closed acquisition, so it
    equals the live value of its timepoint once that one is final.
    """
    if not estimates:
        raise ValueError("smooth_transforms: no registration estimate to smooth")
    first = min(estimates) if first_timepoint is None else first_timepoint
    last = max(estimates) if last_timepoint is None else last_timepoint
    return {
        t: applied_transform(
            t,
            estimates,
            reference_point_um=reference_point_um,
            config=config,
            first_timepoint=first,
            last_timepoint=last,
            qualities=qualities,
            min_quality=min_quality,
        ).applied
        for t in range(first, last + 1)
    }


def _window_value(t: int, lo: int, series: np.ndarray, config: TemporalConfig) -> np.ndarray:
    """Per parameter: rloess over the window evaluated at `t`, else interpolation of the nearest estimates."""
    n = series.shape[0]
    prefilter = config.param_median_filter_range
    if prefilter:
        if prefilter % 2 == 0:
            raise ValueError(f"param_median_filter_range must be odd (a centred window); got {prefilter}")
        filtered = np.column_stack([_sliding_average(column, prefilter // 2, "median", "omit") for column in series.T])
        series = np.where(np.isnan(series), np.nan, filtered)
    # the centre fit has n - 2 samples of positive tricube weight: fewer coefficients than that
    degree = max(1, min(config.loess_degree, n - 4))
    positions = np.arange(lo, lo + n)
    values = np.empty(series.shape[1])
    for column, samples in enumerate(series.T):
        if config.temporal_smoothing and np.count_nonzero(~np.isnan(samples)) > degree:
            samples = rloess(
                samples, n, degree=degree, robust_iterations=config.robust_iterations, stable=config.loess_stable
            )
        valid = ~np.isnan(samples)
        values[column] = _lookup(positions[valid], samples[valid, None], np.array([t]), interpolate=True)[0, 0]
    return values


def _usable(
    estimates: Mapping[int, np.ndarray | None], qualities: Mapping[int, float], min_quality: float
) -> dict[int, np.ndarray]:
    """The validated estimates whose quality reaches `min_quality`."""
    for timepoint, quality in qualities.items():
        if not 0.0 <= quality <= 1.0:
            raise ValueError(f"registration quality of timepoint {timepoint} is {quality}, outside [0, 1]")
    usable = {}
    for timepoint, transform in estimates.items():
        if transform is None:
            continue
        _rigid_parts(transform, f"registration estimate of timepoint {timepoint}")
        if qualities.get(timepoint, 1.0) >= min_quality:
            usable[timepoint] = np.asarray(transform, dtype=np.float64)
    return usable


def _rigid_parts(transform: np.ndarray, what: str = "transform") -> tuple[np.ndarray, np.ndarray]:
    """``(R, t)`` of a 4x4 rigid transform; ValueError if it is not one."""
    transform = np.asarray(transform, dtype=np.float64)
    if transform.shape != (4, 4) or not np.isfinite(transform).all():
        raise ValueError(f"{what}: expected a finite 4x4 matrix, got shape {transform.shape}")
    if not np.allclose(transform[3], [0.0, 0.0, 0.0, 1.0], rtol=0.0, atol=RIGID_TOLERANCE):
        raise ValueError(f"{what}: last row {transform[3]} is not (0, 0, 0, 1)")
    return _rotation(transform[:3, :3], what), transform[:3, 3]


def _rotation(rotation: np.ndarray, what: str = "reference rotation") -> np.ndarray:
    """A validated proper 3x3 rotation matrix."""
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.shape != (3, 3) or not np.isfinite(rotation).all():
        raise ValueError(f"{what}: expected a finite 3x3 rotation, got shape {rotation.shape}")
    if np.abs(rotation.T @ rotation - np.eye(3)).max() > RIGID_TOLERANCE or np.linalg.det(rotation) < 0:
        raise ValueError(f"{what}: not rigid (the rotation part is not orthonormal with determinant +1)")
    return rotation


def _point(point: np.ndarray) -> np.ndarray:
    """A validated finite (z, y, x) point."""
    point = np.asarray(point, dtype=np.float64)
    if point.shape != (3,) or not np.isfinite(point).all():
        raise ValueError(f"reference point: expected (z, y, x) in micrometres, got {point!r}")
    return point
