"""Camera-pair registration: the in-plane rigid transform that maps camera 2 onto camera 1 (ALGORITHMS.md §3.7).

The model is one 2-D rigid transform for every plane of the (oriented) second camera: a
translation ``(offset_y_px, offset_x_px)`` (rows, columns; the original's ``bestXOffset``,
``bestYOffset``) and a rotation ``rotation_deg`` about the plane centre, applied by
:func:`~isoview_core.fusion.transform.transform_volume`. Two methods estimate it:

``method="original"`` (multiFuse)
    Adaptive slab around the transition surface (:func:`extract_slab`), slab background offset
    (:func:`slab_background_offset`), high-pass (:func:`highpass_plane`, with the even-window
    median of MATLAB's ``medfilt2``), coarse grid search with the original score and tie rule
    (:func:`coarse_grid_search`), then the fine optimisation of ``-Pearson`` on slab plane 0
    with ``fminuncFA`` (:func:`minimize_fminuncfa`) or the toolbox optimisers. Kept for parity.

``method="fast"`` (default)
    1. Data: the planes of the adaptive slab's range (at most 16, evenly spaced), block-averaged
       to at most about 1 Mpixel per plane (factor 2 for 2048 x 2048) and band-passed
       (Gaussian σ 2 px minus Gaussian σ 8 px, full-resolution pixels); with
       ``registration_data="mip"``, up to 16 evenly spaced planes of the whole stack, every pixel.
    2. Coarse: zero-padded FFT cross-correlation of the two slab projections (the original's slab
       data), its peak searched inside the configured offset grid (extended by one step), refined
       to 1/100 px by the matrix-multiply upsampled DFT (Guizar-Sicairos et al.).
    3. Fine: Gauss-Newton (Lucas-Kanade with the symmetric ESM Jacobian) least squares on
       **plane pairs**: every voxel ``(z, x)`` of the reference's slab (``-L <= z - t(x) <= U``
       with ``t`` the transition plane) is compared with the same plane ``z`` of the second
       camera, warped with the Keys cubic transform, with a gain and an offset per plane.
       Parameters: the translation, plus the rotation when ``config.estimate_rotation``. First on
       2x coarser blocks, then on the working grid, until no pixel moves by 0.005 px.
    The original's filter, optimiser and cost options (``registration_median_range``,
    ``registration_gauss_*``, ``optimizer*``, ``registration_cost_*``) do not apply.

Why the fast method differs (and is more precise: ≤ 0.04 px and ≤ 0.01° on the simulator for
offsets up to 45 px, ``benchmarks/results/fusion_accuracy.json``, against ~0.1 px and up to 0.14°
of spurious rotation for the original):

* The original samples camera 2's slab at the transition plane of the *same pixel*, not of the
  same specimen point: with an offset ``o`` the two slabs of a pixel come from planes
  ``|∇t|·|o|`` apart, and where the map steps between planes the slab content jumps at
  different specimen positions in the two cameras. That biases the estimate (0.1 px and 0.1°
  at 40 px offsets on the simulator, also when the slab is projected). Pairing equal planes
  removes the mismatch; the slab only chooses *which* voxels enter the cost. For the same
  reason ``"mip"`` uses plane pairs: the two cameras' MIPs show different depths sharply
  (0.5 px and 0.3° errors with MIPs).
* The Pearson cost on cubic-interpolated noisy data favours positions where interpolation
  smooths the noise ("pixel locking"); the cross-correlation is computed in the Fourier domain
  and the Gauss-Newton step uses band-passed data, where interpolation is accurate.
* The band-pass replaces the 100 x 20 median high-pass: same purpose (remove the slowly varying
  background, keep nuclei), ~100x cheaper, and it suppresses the noise.
* Rotation is solved jointly with the translation from all voxels of the slab, not by finite
  differences with a 0.1° step; the per-plane gains absorb the intensity ratio of the cameras
  and its change with depth.

The quantities reported as ``correlation`` differ by method: the original's ``-f`` (Pearson
correlation of high-passed slab plane 0), or for the fast method the Pearson correlation of the
band-passed slab voxels after registration. Compare them within one method only.

References
----------
.. [1] Chhetri, R. K. et al. (2015). Whole-animal functional and developmental imaging with
   isotropic spatial resolution. Nature Methods 12, 1171-1178 (``multiFuse``).
.. [2] Guizar-Sicairos, M., Thurman, S. T. & Fienup, J. R. (2008). Efficient subpixel image
   registration algorithms. Optics Letters 33(2), 156-158.
.. [3] Lucas, B. D. & Kanade, T. (1981). An iterative image registration technique with an
   application to stereo vision. Proc. 7th IJCAI, 674-679.
.. [4] Benhimane, S. & Malis, E. (2004). Real-time image-based tracking of planes using
   efficient second-order minimization. Proc. IEEE/RSJ IROS, 943-948.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import fft, ndimage, optimize
from skimage.filters import rank

from isoview_core.fusion.config import FusionConfig
from isoview_core.fusion.transform import transform_volume
from isoview_core.numerics.filters import gaussian_taps
from isoview_core.numerics.percentiles import hazen_percentile, matlab_subsample
from isoview_core.numerics.rounding import round_half_away, to_u16

__all__ = [
    "RegistrationMethod",
    "RegistrationResult",
    "coarse_grid_search",
    "estimate_registration",
    "extract_slab",
    "highpass_plane",
    "matlab_median_filter",
    "minimize_fminuncfa",
    "slab_background_offset",
    "slab_half_widths",
]

logger = logging.getLogger(__name__)

RegistrationMethod = Literal["fast", "original"]

WORKING_PIXELS = 1 << 20
"""The fast method block-averages planes until they have at most about this many pixels."""
LOWPASS_SIGMA_PX = 2.0
"""Band-pass of the fast method: noise-suppressing Gaussian sigma, full-resolution pixels."""
HIGHPASS_SIGMA_PX = 8.0
"""Band-pass of the fast method: background Gaussian sigma, full-resolution pixels."""
UPSAMPLE_FACTOR = 100
"""Sub-pixel resolution of the coarse cross-correlation peak (1/100 px of the working grid)."""
MAX_PLANES = 16
"""At most this many planes of the slab's range enter the fast method (evenly spaced beyond)."""
GN_TOLERANCE_PX = 5e-3
"""Gauss-Newton stops when no pixel of the frame moves by more than this (full-resolution px)."""
GN_MAX_ITERATIONS = 20
PYRAMID_FACTOR = 2
"""Gauss-Newton first runs on blocks this much coarser than the working grid ..."""
PYRAMID_MIN_SIZE = 256
"""... when the working grid is at least this large (pixels, shorter side) ..."""
PYRAMID_TOLERANCE_PX = 0.25
"""... until no pixel moves by more than this (full-resolution px)."""


class RegistrationResult(BaseModel):
    """Estimated transform of the second camera onto the reference (§3.7), with its quality."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")  # NaN round-trips through JSON records

    offset_y_px: float = Field(description="Row offset (offset_rows; the original's bestXOffset).")
    offset_x_px: float = Field(description="Column offset (offset_cols; the original's bestYOffset).")
    rotation_deg: float = Field(description="In-plane rotation about the plane centre, degrees (0 unless estimated).")
    correlation: float = Field(description="Pearson correlation of the registered data (method-specific, see module doc).")
    coarse_offset_y_px: float = Field(description="Row offset of the coarse stage (grid search / cross-correlation peak).")
    coarse_offset_x_px: float = Field(description="Column offset of the coarse stage.")
    evaluations: int = Field(ge=0, description="Cost evaluations (original) or Gauss-Newton iterations (fast).")
    method: RegistrationMethod = Field(description="Estimation method.")


def estimate_registration(
    reference: np.ndarray,
    second: np.ndarray,
    *,
    transition_map: np.ndarray | None = None,
    scaling: float,
    config: FusionConfig | None = None,
    method: RegistrationMethod | None = None,
) -> RegistrationResult:
    """Estimate the rigid in-plane transform that maps the second camera onto the reference (§3.7).

    Parameters
    ----------
    reference : ndarray
        (Z, Y, X) corrected stack of the reference camera (uint16, background-subtracted and
        masked: zero outside the foreground).
    second : ndarray
        (Z, Y, X) corrected stack of the second camera, already oriented
        (:func:`~isoview_core.fusion.transform.orient_second_camera`), not transformed.
    transition_map : ndarray, optional
        (Y, X) pre-registration transition map ``avg₀`` (1-based planes, 0 = empty, §3.5). Required
        for ``config.registration_data == "adaptive_slab"``.
    scaling : float
        Axial step / lateral pixel size (the original's high-pass divides its column window and
        Gaussian by it).
    config : FusionConfig, optional
        Registration settings (defaults when omitted): ``registration_data``,
        ``registration_slab_cameras``, ``search_offsets_rows/cols``, ``estimate_rotation``;
        the original method also uses ``fusion_background_percentile``,
        ``fusion_subsample_slices``, ``registration_median_range``,
        ``registration_gauss_kernel/sigma``, ``optimizer*``, ``registration_cost_planes``,
        ``registration_cost_mask`` and ``min_valid_pixels``.
    method : {"fast", "original"}, optional
        ``fast``: plane-pair Gauss-Newton refinement of an upsampled cross-correlation (module
        docstring). ``original``: the multiFuse algorithm. Default: ``config.registration_method``.

    Returns
    -------
    RegistrationResult
        Offsets and rotation in the convention of
        :func:`~isoview_core.fusion.transform.transform_volume`:
        ``aligned(y, x) ≈ second(y - offset_y_px, x - offset_x_px)`` for θ = 0.

    Raises
    ------
    ValueError
        On shape mismatches, a missing or empty transition map, an unknown method, invalid
        scaling, or when the data give nothing to register on.

    Notes
    -----
    ``registration_data="mip"`` means, for the original method, the later port's unfiltered
    full-depth maximum-intensity projections; for the fast method, plane pairs over the full
    depth (every pixel), because the two cameras' MIPs show different depths sharply and bias
    the estimate (about 0.5 px and 0.3° on the simulator). Neither needs the transition map.

    References
    ----------
    .. [1] Guizar-Sicairos, M., Thurman, S. T. & Fienup, J. R. (2008). Efficient subpixel image
       registration algorithms. Optics Letters 33(2), 156-158.
    .. [2] Lucas, B. D. & Kanade, T. (1981). An iterative image registration technique with an
       application to stereo vision. Proc. 7th IJCAI, 674-679.
    """
    config = config or FusionConfig()
    method = method or config.registration_method
    reference, second = np.asarray(reference), np.asarray(second)
    if reference.ndim != 3 or reference.shape != second.shape:
        raise ValueError(f"expected two (Z, Y, X) stacks of equal shape, got {reference.shape} and {second.shape}")
    if not (math.isfinite(scaling) and scaling > 0):
        raise ValueError(f"scaling must be a positive number, got {scaling}")
    if method not in ("fast", "original"):
        raise ValueError(f"method must be 'fast' or 'original', got {method!r}")
    if config.registration_data == "adaptive_slab":
        transition_map = _checked_transition_map(transition_map, reference.shape)
    if method == "original":
        return _estimate_original(reference, second, transition_map, scaling, config)
    return _estimate_fast(reference, second, transition_map, config)


def _checked_transition_map(transition_map: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    if transition_map is None:
        raise ValueError("registration_data='adaptive_slab' needs the pre-registration transition map (avg0)")
    transition_map = np.asarray(transition_map)
    if transition_map.shape != shape[1:]:
        raise ValueError(f"transition map of shape {transition_map.shape} does not match planes of shape {shape[1:]}")
    if not transition_map.any():
        raise ValueError("the transition map is empty (no foreground seen by the cameras): nothing to register on")
    if transition_map.min() < 0:
        raise ValueError("the transition map holds negative planes; expected 1-based planes and 0 = empty")
    if int(transition_map.max()) > shape[0]:
        raise ValueError(f"transition map value {int(transition_map.max())} exceeds the {shape[0]} planes of the stacks")
    return transition_map


# --------------------------------------------------------------------------------------------
# adaptive slab (original, steps 1-4)


def slab_half_widths(transition_map: np.ndarray, planes: int, half_width: int) -> tuple[int, int]:
    """Slab extent ``(L, U)`` below and above the transition plane (§3.7 step 1).

    ``L = min(K, m_min - 1)``, ``U = min(K, Z - m_max)`` with ``m_min`` / ``m_max`` the smallest
    non-zero and the largest value of the map, so that every slab plane exists.

    Parameters
    ----------
    transition_map : ndarray
        (Y, X) 1-based transition planes, 0 = empty; at least one non-zero.
    planes : int
        ``Z``.
    half_width : int
        ``K`` (``registration_slab_cameras``; 0 = the surface plane only).

    Returns
    -------
    tuple of int
        ``(L, U)``; the slab has ``L + U + 1`` planes.
    """
    values = transition_map[transition_map > 0]
    if values.size == 0:
        raise ValueError("the transition map is empty: no slab to extract")
    return min(half_width, int(values.min()) - 1), min(half_width, planes - int(values.max()))


def extract_slab(volume: np.ndarray, transition_map: np.ndarray, lower: int, upper: int) -> np.ndarray:
    """Voxels around the transition surface: ``S[j, y, x] = V[avg(y, x) - 1 - L + j, y, x]`` (§3.7 step 2).

    Parameters
    ----------
    volume : ndarray
        (Z, Y, X) stack.
    transition_map : ndarray
        (Y, X) 1-based transition planes ``avg``, 0 = empty.
    lower, upper : int
        ``L`` and ``U`` from :func:`slab_half_widths`.

    Returns
    -------
    ndarray
        (L + U + 1, Y, X), ``volume``'s dtype, zero where the map is 0.
    """
    empty = transition_map == 0
    first = np.where(empty, 0, transition_map.astype(np.intp) - 1 - lower)
    if int(first[~empty].min(initial=0)) < 0 or int(first.max()) + lower + upper >= volume.shape[0]:
        raise ValueError(f"slab [-{lower}, +{upper}] around the transition map leaves the {volume.shape[0]} planes")
    slab = np.empty((lower + upper + 1, *transition_map.shape), dtype=volume.dtype)
    rows, cols = np.indices(transition_map.shape, sparse=True)
    for j in range(slab.shape[0]):
        slab[j] = volume[first + j, rows, cols]
        slab[j][empty] = 0
    return slab


def slab_background_offset(reference_slab: np.ndarray, second_slab: np.ndarray, *, percentile: float, subsample: int) -> float:
    """Common background of the two slabs (§3.7 step 3).

    ``prctile`` (Hazen rule) of the non-zero values of every ``subsample``-th voxel of each slab
    in MATLAB linear order, pooled. 0.0 when both slabs are empty.
    """
    pooled = np.concatenate(
        [values[values > 0] for values in (matlab_subsample(reference_slab, subsample), matlab_subsample(second_slab, subsample))]
    )
    if pooled.size == 0:
        logger.warning("registration slabs hold no non-zero voxel; slab background offset 0")
        return 0.0
    return hazen_percentile(pooled, percentile)


def matlab_median_filter(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """MATLAB ``medfilt2(image, size, 'symmetric')`` on an integer image, even windows included.

    Borders are mirrored with the edge repeated (``'symmetric'``, SciPy ``reflect``). For an even
    number of window samples the result is the mean of the two middle order statistics, rounded
    half away from zero; along an even window axis the window covers ``n/2 - 1`` samples before
    and ``n/2`` after the output pixel (SciPy ``origin=-1``; ``scipy.ndimage.median_filter``
    instead anchors it one sample earlier and returns the upper middle value).

    Parameters
    ----------
    image : ndarray
        (Y, X) unsigned or signed integers.
    size : tuple of int
        Window (rows, columns), each >= 1.

    Returns
    -------
    ndarray
        Filtered image, same dtype.

    Notes
    -----
    Order statistics are taken with scikit-image's sliding-histogram rank filter on the image's
    ranks among its distinct values (exact, and fast because the histogram has as many bins as
    there are distinct values); ``scipy.ndimage.rank_filter`` gives the same result but is ~50x
    slower for 100 x 20 windows.

    References
    ----------
    .. [1] Huang, T., Yang, G. & Tang, G. (1979). A fast two-dimensional median filtering
       algorithm. IEEE Transactions on Acoustics, Speech, and Signal Processing 27(1), 13-18.
    """
    image = np.asarray(image)
    rows, cols = (int(s) for s in size)
    if image.ndim != 2 or rows < 1 or cols < 1:
        raise ValueError(f"expected a 2-D image and a window of positive sizes, got {image.shape} and {size}")
    if not np.issubdtype(image.dtype, np.integer):
        raise ValueError(f"matlab_median_filter needs integer data, got {image.dtype}")
    values, ranks = np.unique(image, return_inverse=True)
    if values.size > 1 << 16:
        raise ValueError(f"matlab_median_filter supports at most 65536 distinct values, got {values.size}")
    padded = np.pad(ranks.reshape(image.shape).astype(np.uint16), ((rows, rows), (cols, cols)), mode="symmetric")
    count = rows * cols

    def order_statistic(k: int) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "bad rank filter performance": few bins here
            filtered = rank.percentile(
                padded,
                np.ones((rows, cols), dtype=np.uint8),
                p0=(k + 0.5) / count,
                shift_x=-1 if cols % 2 == 0 else 0,
                shift_y=-1 if rows % 2 == 0 else 0,
            )
        return values[filtered[rows:-rows, cols:-cols]]

    if count % 2:
        return order_statistic(count // 2)
    low = order_statistic(count // 2 - 1).astype(np.float64)
    high = order_statistic(count // 2).astype(np.float64)
    info = np.iinfo(image.dtype)
    return np.clip(round_half_away((low + high) / 2), info.min, info.max).astype(image.dtype)


def highpass_plane(plane: np.ndarray, *, median_range: int, gauss_kernel: float, gauss_sigma: float, scaling: float) -> np.ndarray:
    """High-pass of one registration-slab plane: ``max(0, to_u16(G(plane)) - M(plane))`` (§3.7 step 4).

    Parameters
    ----------
    plane : ndarray
        (Y, X) uint16, background-subtracted slab plane.
    median_range : int
        ``R`` (``registration_median_range``, > 0). ``M`` is :func:`matlab_median_filter` with the
        window ``(R, max(1, round_half_away(R / scaling)))`` (rows, columns) — the original divides
        the *column* window by the axial scaling (quirk of code shared with channel fusion).
    gauss_kernel, gauss_sigma : float
        ``G``: anisotropic Gaussian of size ``(k, max(1, k / scaling))`` and sigma
        ``(σ, max(1, σ / scaling))`` along (rows, columns), taps per §2.6, replicate borders,
        float64. ``k = 0`` skips it (``plane - M(plane)``).
    scaling : float
        Axial step / lateral pixel size.

    Returns
    -------
    ndarray
        (Y, X) uint16.
    """
    if median_range < 1:
        raise ValueError(f"median_range must be >= 1 (0 disables the high-pass upstream), got {median_range}")
    plane = np.asarray(plane)
    if plane.dtype != np.uint16 or plane.ndim != 2:
        raise ValueError(f"highpass_plane expects a 2-D uint16 slab plane, got {plane.ndim}-D {plane.dtype}")
    window = (median_range, max(1, int(round_half_away(median_range / scaling))))
    median = matlab_median_filter(plane, window).astype(np.float64)
    if gauss_kernel > 0:
        rows = gaussian_taps(gauss_kernel, gauss_sigma)
        cols = gaussian_taps(max(1.0, gauss_kernel / scaling), max(1.0, gauss_sigma / scaling))
        smoothed = ndimage.correlate1d(plane.astype(np.float64), rows, axis=0, mode="nearest")
        ndimage.correlate1d(smoothed, cols, axis=1, mode="nearest", output=smoothed)
        base = to_u16(smoothed).astype(np.float64)
    else:
        base = plane.astype(np.float64)
    return to_u16(base - median)


# --------------------------------------------------------------------------------------------
# coarse grid search and fminuncFA (original)


def coarse_grid_search(
    reference_slab: np.ndarray, second_slab: np.ndarray, row_offsets: Sequence[int], col_offsets: Sequence[int]
) -> tuple[int, int, np.ndarray]:
    """The original's coarse search: maximise ``S = Σ A·B' / (ΣA · ΣB')`` over a grid of integer shifts.

    ``B'(r, c) = B(r - o_r, c - o_c)`` with zero fill, every slab plane; sums over all voxels in
    float64. A shift with ``ΣB' = 0`` has no score and never wins. Ties go to MATLAB's first
    index in column-major order of the score matrix (row offset, column offset): column offsets
    in the outer loop, row offsets in the inner loop, replaced only on a strictly greater score.

    Parameters
    ----------
    reference_slab, second_slab : ndarray
        (P, Y, X) slabs (or (Y, X) planes), non-negative.
    row_offsets, col_offsets : sequence of int
        Candidate shifts along rows and columns.

    Returns
    -------
    best_row, best_col : int
        The winning shift.
    scores : ndarray
        (len(row_offsets), len(col_offsets)) float64, NaN where undefined.

    Raises
    ------
    ValueError
        If no shift has a defined score.
    """
    a = np.asarray(reference_slab, dtype=np.float64)
    b = np.asarray(second_slab, dtype=np.float64)
    if a.ndim == 2:
        a, b = a[np.newaxis], b[np.newaxis]
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"slabs must have equal (P, Y, X) shapes, got {a.shape} and {b.shape}")
    _, height, width = a.shape
    total_a = a.sum()
    # ΣB' of every shift from the integral image of the plane-summed slab (exact for integer data)
    integral = np.zeros((height + 1, width + 1))
    integral[1:, 1:] = b.sum(axis=0).cumsum(axis=0).cumsum(axis=1)
    scores = np.full((len(row_offsets), len(col_offsets)), np.nan)
    best: tuple[int, int] | None = None
    best_score = -np.inf
    for j, oc in enumerate(col_offsets):
        for i, orow in enumerate(row_offsets):
            if abs(orow) >= height or abs(oc) >= width:
                continue
            r0, r1 = max(0, -orow), height - max(0, orow)  # source rows of B that stay in the frame
            c0, c1 = max(0, -oc), width - max(0, oc)
            total_b = integral[r1, c1] - integral[r0, c1] - integral[r1, c0] + integral[r0, c0]
            if total_b == 0 or total_a == 0:
                continue
            product = np.einsum("ijk,ijk->", a[:, r0 + orow : r1 + orow, c0 + oc : c1 + oc], b[:, r0:r1, c0:c1])
            scores[i, j] = float(product) / (total_a * total_b)
            if scores[i, j] > best_score:
                best_score, best = scores[i, j], (int(orow), int(oc))
    if best is None:
        raise ValueError("coarse registration: the second camera's slab is empty at every candidate offset")
    return best[0], best[1], scores


def minimize_fminuncfa(
    cost: Callable[[np.ndarray], float],
    x0: Sequence[float],
    steps: Sequence[float],
    *,
    tol_x: float = 1e-3,
    tol_fun: float = 1e-6,
    max_evals: int = 400,
    backtrack: float = 0.5,
) -> tuple[np.ndarray, float, int]:
    """The original's numerical-gradient descent ``fminuncFA`` (§3.7 "Optimiser").

    Central differences with fixed steps ``h``, a step ``μ = 5·α·min_k |h_k / g_k|`` along the
    negative gradient, backtracking by ``β`` while the cost rises, step memory
    ``α ← 0.3 α + 0.7 α a``, and a best-point memory updated by the gradient probes.

    Parameters
    ----------
    cost : callable
        ``f(p) -> float``.
    x0 : sequence of float
        Start.
    steps : sequence of float
        Difference steps ``h_k``.
    tol_x, tol_fun : float
        Step-norm and relative cost tolerances.
    max_evals : int
        Evaluation budget (checked once per iteration, as in the original).
    backtrack : float
        ``β``.

    Returns
    -------
    x : ndarray
        Solution.
    f : float
        Cost at ``x`` (the last evaluated value at that point).
    evaluations : int
        Number of cost evaluations.
    """
    p = np.asarray(x0, dtype=np.float64).copy()
    h = np.asarray(steps, dtype=np.float64)
    if p.shape != h.shape:
        raise ValueError(f"x0 and steps must have the same length, got {p.size} and {h.size}")
    evaluations = 0

    def f(x: np.ndarray) -> float:
        nonlocal evaluations
        evaluations += 1
        return float(cost(x))

    f0 = f(p)
    best_f, best_p = f0, p.copy()
    alpha = 1.0
    while True:
        gradient = np.empty_like(p)
        for k in range(p.size):
            probes = []
            for sign in (1.0, -1.0):
                x = p.copy()
                x[k] += sign * h[k]
                value = f(x)
                if value < best_f:
                    best_f, best_p = value, x
                probes.append(value)
            gradient[k] = (probes[0] - probes[1]) / (2 * h[k])
        usable = gradient != 0
        if not usable.any():
            logger.warning("fminuncFA: zero gradient at %s; stopping", p)
            return p, f0, evaluations
        mu = 5 * alpha * float(np.min(np.abs(h[usable] / gradient[usable])))
        f1 = f(p - mu * gradient)
        shrink = 1.0
        while f1 > f0 and np.linalg.norm(mu * gradient) > tol_x:
            mu *= backtrack
            shrink *= backtrack
            f1 = f(p - mu * gradient)
        alpha = 0.3 * alpha + 0.7 * alpha * shrink
        step = mu * gradient
        small = np.linalg.norm(step) < tol_x or (f0 != 0 and abs(f1 - f0) / abs(f0) < tol_fun)
        if small and best_f + tol_fun >= min(f0, f1):
            return (p - step, f1, evaluations) if f1 < f0 else (p, f0, evaluations)
        if f1 <= best_f:
            p, f0 = p - step, f1
        else:
            p, f0 = best_p.copy(), best_f
        best_f, best_p = f0, p.copy()
        if evaluations > max_evals:
            logger.warning("fminuncFA: %d evaluations spent without convergence", evaluations)
            return p, f0, evaluations


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation of two equally long float vectors; None when undefined."""
    a = a - a.mean()
    b = b - b.mean()
    norm = math.sqrt(float(np.dot(a, a)) * float(np.dot(b, b)))
    return float(np.dot(a, b)) / norm if norm > 0 else None


def _original_data(
    reference: np.ndarray, second: np.ndarray, transition_map: np.ndarray | None, scaling: float, config: FusionConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Registration data of the original: filtered adaptive slabs, or unfiltered MIPs (float64)."""
    if config.registration_data == "mip":
        return reference.max(axis=0)[np.newaxis].astype(np.float64), second.max(axis=0)[np.newaxis].astype(np.float64)
    assert transition_map is not None
    lower, upper = slab_half_widths(transition_map, reference.shape[0], config.registration_slab_cameras)
    slabs = [extract_slab(volume, transition_map, lower, upper) for volume in (reference, second)]
    offset = slab_background_offset(*slabs, percentile=config.fusion_background_percentile, subsample=config.fusion_subsample_slices)
    slabs = [to_u16(slab.astype(np.float64) - offset) for slab in slabs]
    if config.registration_median_range > 0:
        for slab in slabs:
            for j in range(slab.shape[0]):
                slab[j] = highpass_plane(
                    slab[j],
                    median_range=config.registration_median_range,
                    gauss_kernel=config.registration_gauss_kernel,
                    gauss_sigma=config.registration_gauss_sigma,
                    scaling=scaling,
                )
    return slabs[0].astype(np.float64), slabs[1].astype(np.float64)


def _offsets(grid: tuple[int, int, int]) -> list[int]:
    start, stop, step = grid
    if step <= 0 or stop < start:
        raise ValueError(f"offset grid {grid}: expected (start, stop, step) with step > 0 and stop >= start")
    return list(range(start, stop + 1, step))


def _estimate_original(
    reference: np.ndarray, second: np.ndarray, transition_map: np.ndarray | None, scaling: float, config: FusionConfig
) -> RegistrationResult:
    a, b = _original_data(reference, second, transition_map, scaling, config)
    coarse_r, coarse_c, _ = coarse_grid_search(a, b, _offsets(config.search_offsets_rows), _offsets(config.search_offsets_cols))
    planes = slice(None) if config.registration_cost_planes == "all" else slice(0, 1)
    a_cost, b_cost = a[planes], b[planes]
    a_flat = a_cost.ravel()
    warned = False

    def cost(p: np.ndarray) -> float:
        nonlocal warned
        rotation = float(p[2]) if p.size == 3 else 0.0
        moved = transform_volume(b_cost, float(p[0]), float(p[1]), rotation, outside=None).ravel()
        x, y = a_flat, moved
        if config.registration_cost_mask == "both_positive":
            valid = (x > 0) & (y > 0)
            if np.count_nonzero(valid) < config.min_valid_pixels:
                return 1.0
            x, y = x[valid], y[valid]
        r = _pearson(x, y)
        if r is None:
            if not warned:
                logger.warning("registration cost undefined (constant image); using f = 1")
                warned = True
            return 1.0
        return -r

    steps = config.optimizer_steps if config.estimate_rotation else config.optimizer_steps[:2]
    x0 = np.array([coarse_r, coarse_c, 0.0][: len(steps)], dtype=np.float64)
    x, value, evaluations = _minimize(cost, x0, steps, config)
    return RegistrationResult(
        offset_y_px=float(x[0]),
        offset_x_px=float(x[1]),
        rotation_deg=float(x[2]) if x.size == 3 else 0.0,
        correlation=-value,
        coarse_offset_y_px=float(coarse_r),
        coarse_offset_x_px=float(coarse_c),
        evaluations=evaluations,
        method="original",
    )


def _minimize(cost: Callable[[np.ndarray], float], x0: np.ndarray, steps: Sequence[float], config: FusionConfig) -> tuple[np.ndarray, float, int]:
    """The configured optimiser: fminuncFA, or the toolbox quasi-Newton / Nelder-Mead equivalents."""
    if config.optimizer == "gradient":
        return minimize_fminuncfa(
            cost,
            x0,
            steps,
            tol_x=config.optimizer_tol_x,
            tol_fun=config.optimizer_tol_fun,
            max_evals=config.optimizer_max_evals,
            backtrack=config.optimizer_backtrack,
        )
    if config.optimizer == "nelder_mead":
        # fminsearch's initial simplex: +5 % of each non-zero component, +0.00025 for zeros
        simplex = np.vstack([x0] + [x0 + np.eye(x0.size)[k] * (0.05 * x0[k] if x0[k] != 0 else 0.00025) for k in range(x0.size)])
        result = optimize.minimize(
            cost,
            x0,
            method="Nelder-Mead",
            options={"xatol": config.optimizer_tol_x, "fatol": 1e-12, "maxfev": config.optimizer_max_evals, "initial_simplex": simplex},
        )
    else:
        result = optimize.minimize(
            cost, x0, method="BFGS", options={"xrtol": config.optimizer_tol_x, "gtol": 1e-12, "maxiter": config.optimizer_max_evals}
        )
    return np.asarray(result.x, dtype=np.float64), float(result.fun), int(result.nfev)


# --------------------------------------------------------------------------------------------
# fast method


def _working_factor(shape: tuple[int, int]) -> int:
    """Block-averaging factor that brings a plane to at most about :data:`WORKING_PIXELS` pixels."""
    return max(1, math.ceil(math.sqrt(shape[0] * shape[1] / WORKING_PIXELS)))


def _block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """float32 means of ``factor x factor`` blocks over the last two axes (incomplete blocks dropped)."""
    if factor == 1:
        return image.astype(np.float32)
    rows, cols = (image.shape[-2] // factor) * factor, (image.shape[-1] // factor) * factor
    blocks = image[..., :rows, :cols].reshape(*image.shape[:-2], rows // factor, factor, cols // factor, factor)
    return blocks.sum(axis=-1, dtype=np.float32).sum(axis=-2) / np.float32(factor * factor)


def _bandpass(image: np.ndarray, factor: int) -> np.ndarray:
    """Difference of Gaussians (σ :data:`LOWPASS_SIGMA_PX`, :data:`HIGHPASS_SIGMA_PX` full-resolution px)."""
    smooth = ndimage.gaussian_filter(image, LOWPASS_SIGMA_PX / factor, mode="nearest")
    return smooth - ndimage.gaussian_filter(image, HIGHPASS_SIGMA_PX / factor, mode="nearest")


@dataclass(frozen=True)
class _PlanePairs:
    """Band-passed planes of both cameras on a grid of ``factor``-pixel blocks, with the slab weights.

    Pixel ``k`` of the grid is centred on full-resolution coordinate ``factor k + (factor - 1)/2``.
    ``weights[j]`` marks the reference-frame voxels of plane ``j`` that belong to the slab.
    """

    reference: np.ndarray  # (P, h, w) float32
    second: np.ndarray  # (P, h, w) float32
    weights: np.ndarray  # (P, h, w) bool
    factor: int
    full_shape: tuple[int, int]  # (H, W) of the full-resolution planes

    @classmethod
    def from_stacks(
        cls, reference: np.ndarray, second: np.ndarray, transition_map: np.ndarray | None, slab_half_width: int
    ) -> _PlanePairs:
        """Plane pairs of the adaptive slab's planes, or of the whole stack without a map (at most :data:`MAX_PLANES`)."""
        f = _working_factor(reference.shape[1:])
        if transition_map is None:  # every plane (evenly spaced), every pixel
            planes = np.linspace(0, reference.shape[0] - 1, min(MAX_PLANES, reference.shape[0])).round().astype(int)
            bandpassed = [np.stack([_bandpass(_block_mean(volume[z], f), f) for z in planes]) for volume in (reference, second)]
            return cls(bandpassed[0], bandpassed[1], np.ones(bandpassed[0].shape, dtype=bool), f, reference.shape[1:])
        lower, upper = slab_half_widths(transition_map, reference.shape[0], slab_half_width)
        covered = _block_mean(transition_map > 0, f)
        surface_sum = _block_mean(np.where(transition_map > 0, transition_map.astype(np.float64) - 1, 0.0), f)
        surface = np.rint(surface_sum / np.maximum(covered, 1e-12))  # 0-based transition plane per block
        inside = covered >= 0.5
        candidates = range(int(surface[inside].min()) - lower, int(surface[inside].max()) + upper + 1)
        step = max(1, math.ceil(len(candidates) / MAX_PLANES))
        planes, weights = [], []
        for z in candidates[::step]:
            weight = inside & (z - surface >= -lower) & (z - surface <= upper)
            if weight.any():
                planes.append(z)
                weights.append(weight)
        if not planes:
            raise ValueError("the transition map covers no block of the working grid: nothing to register on")
        return cls(
            np.stack([_bandpass(_block_mean(reference[z], f), f) for z in planes]),
            np.stack([_bandpass(_block_mean(second[z], f), f) for z in planes]),
            np.stack(weights),
            f,
            reference.shape[1:],
        )

    def downsampled(self, factor: int) -> _PlanePairs:
        """The same pairs on ``factor``-times coarser blocks (weights: blocks at least half inside)."""
        return _PlanePairs(
            _block_mean(self.reference, factor),
            _block_mean(self.second, factor),
            _block_mean(self.weights, factor) >= 0.5,
            self.factor * factor,
            self.full_shape,
        )

    def projections(self) -> tuple[np.ndarray, np.ndarray]:
        """Slab sums of both cameras, each on its own pixel grid (the original's slab data)."""
        return (self.weights * self.reference).sum(axis=0), (self.weights * self.second).sum(axis=0)

    def to_grid(self, offset: np.ndarray, theta: float) -> np.ndarray:
        """Full-resolution offset -> offset on this grid (rotation about the grid's own centre)."""
        shift = self._centre_shift()
        return (offset + (np.eye(2) - _rotation_matrix(theta)) @ shift) / self.factor

    def from_grid(self, offset: np.ndarray, theta: float) -> np.ndarray:
        """Offset on this grid -> full-resolution offset (rotation about the full plane's centre)."""
        return self.factor * offset - (np.eye(2) - _rotation_matrix(theta)) @ self._centre_shift()

    def _centre_shift(self) -> np.ndarray:
        """Full-resolution position of the grid's centre minus the full plane's centre ``c' - c``."""
        rows, cols = self.reference.shape[1:]
        height, width = self.full_shape
        return np.array([(self.factor * rows - height) / 2, (self.factor * cols - width) / 2])


def _cross_correlation_peak(
    reference: np.ndarray, moving: np.ndarray, row_range: tuple[float, float], col_range: tuple[float, float]
) -> np.ndarray:
    """Shift ``o`` maximising ``Σ_x ref(x) mov(x - o)`` inside the ranges, to 1/:data:`UPSAMPLE_FACTOR` px.

    Zero padding by the range makes the correlation linear (no wrap-around) for every candidate.
    """
    height, width = reference.shape
    margin_r = math.ceil(max(abs(row_range[0]), abs(row_range[1]))) + 2
    margin_c = math.ceil(max(abs(col_range[0]), abs(col_range[1]))) + 2
    shape = (fft.next_fast_len(height + margin_r), fft.next_fast_len(width + margin_c))
    spectrum = fft.fft2(reference, shape) * np.conj(fft.fft2(moving, shape))
    correlation = fft.ifft2(spectrum).real
    signed_r = np.where(np.arange(shape[0]) > shape[0] // 2, np.arange(shape[0]) - shape[0], np.arange(shape[0]))
    signed_c = np.where(np.arange(shape[1]) > shape[1] // 2, np.arange(shape[1]) - shape[1], np.arange(shape[1]))
    allowed_r = (signed_r >= row_range[0]) & (signed_r <= row_range[1])
    allowed_c = (signed_c >= col_range[0]) & (signed_c <= col_range[1])
    if not (allowed_r.any() and allowed_c.any()):
        raise ValueError(f"offset search range rows {row_range}, columns {col_range} holds no integer shift")
    masked = np.where(allowed_r[:, None] & allowed_c[None, :], correlation, -np.inf)
    peak = np.unravel_index(np.argmax(masked), shape)
    coarse = np.array([signed_r[peak[0]], signed_c[peak[1]]], dtype=np.float64)
    return coarse + _upsampled_peak(spectrum, coarse)


def _upsampled_peak(spectrum: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Sub-pixel correction of an integer correlation peak by the matrix-multiply DFT (Guizar-Sicairos 2008).

    Evaluates the inverse DFT of ``spectrum`` on a 1.5 x 1.5 px neighbourhood of ``shift`` with
    a 1/:data:`UPSAMPLE_FACTOR` px spacing and returns the offset of its maximum from ``shift``.
    """
    size = math.ceil(UPSAMPLE_FACTOR * 1.5)
    kernels = []
    for axis, n in enumerate(spectrum.shape):
        positions = shift[axis] + (np.arange(size) - size // 2) / UPSAMPLE_FACTOR  # candidate shifts, px
        kernels.append(np.exp(2j * np.pi * positions[:, None] * fft.fftfreq(n)[None, :]))
    upsampled = (kernels[0] @ spectrum @ kernels[1].T).real
    peak = np.array(np.unravel_index(np.argmax(upsampled), upsampled.shape), dtype=np.float64)
    return (peak - size // 2) / UPSAMPLE_FACTOR


def _rotation_matrix(theta: float) -> np.ndarray:
    """Matrix of the backward mapping: ``(Δr, Δc) -> (cos Δr + sin Δc, -sin Δr + cos Δc)``."""
    return np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])


def _gauss_newton(
    pairs: _PlanePairs, offset: np.ndarray, theta: float, *, estimate_rotation: bool, tolerance_px: float
) -> tuple[np.ndarray, float, float, int]:
    """Least-squares refinement of (offset, θ) on one grid; returns offset, θ (rad), correlation, iterations.

    Per plane ``j``: ``a_j(x) ≈ s_j b_j(T(x)) + c_j``. Linearised in a small extra motion
    ``δ(x) = (δr - dθ Δc, δc + dθ Δr)`` about the current warp ``b_w``, the residual
    ``a_j - s_j b_w - c_j`` is ``-J · δ(x)`` with the efficient second-order (symmetric) Jacobian
    ``J = (s_j ∇b_w + ∇a_j) / 2`` (Benhimane & Malis 2004); the normal equations of all weighted
    voxels give ``(δr, δc, dθ)``. Gains and offsets ``(s_j, c_j)`` are the per-plane
    least-squares fit at the current warp. Stops when no pixel moves by ``tolerance_px`` (grid px).
    """
    planes, height, width = pairs.reference.shape
    radius = math.hypot(height / 2, width / 2)
    reference_gradients = [np.gradient(a) for a in pairs.reference]
    unknowns = 3 if estimate_rotation else 2
    correlation = float("nan")
    for iteration in range(1, GN_MAX_ITERATIONS + 1):
        rotation = _rotation_matrix(theta)
        inside = _inside_frame(height, width, offset, rotation)
        warped_planes = transform_volume(pairs.second, offset[0], offset[1], math.degrees(theta), outside=0.0)
        normal = np.zeros((unknowns, unknowns))
        rhs = np.zeros(unknowns)
        sums = np.zeros(6)  # n, Σa, Σb, Σa², Σb², Σab over every plane
        for j in range(planes):
            index = np.flatnonzero(pairs.weights[j] & inside)
            if index.size < 16:
                continue
            av = pairs.reference[j].ravel().take(index).astype(np.float64)
            bv = warped_planes[j].ravel().take(index).astype(np.float64)
            moments = np.einsum("ij,ik->jk", np.stack([av, bv], axis=1), np.stack([av, bv], axis=1))  # no BLAS: no thread wake-ups
            plane_sums = np.array([index.size, av.sum(), bv.sum(), moments[0, 0], moments[1, 1], moments[0, 1]])
            sums += plane_sums
            n, sa, sb, _, sbb, sab = plane_sums
            variance_b = sbb - sb * sb / n
            gain = (sab - sa * sb / n) / variance_b if variance_b > 0 else 0.0
            intercept = (sa - gain * sb) / n
            grad_r, grad_c = np.gradient(warped_planes[j])
            ref_r, ref_c = reference_gradients[j]
            gr = 0.5 * (gain * grad_r.ravel().take(index).astype(np.float64) + ref_r.ravel().take(index))
            gc = 0.5 * (gain * grad_c.ravel().take(index).astype(np.float64) + ref_c.ravel().take(index))
            columns = [gr, gc]
            if estimate_rotation:
                rows, cols = np.divmod(index, width)
                columns.append(gc * (rows - (height - 1) / 2) - gr * (cols - (width - 1) / 2))
            columns.append(gain * bv + intercept - av)  # residual = J · δ
            system = np.stack(columns, axis=1)
            products = np.einsum("ij,ik->jk", system, system)
            normal += products[:unknowns, :unknowns]
            rhs += products[:unknowns, unknowns]
        if sums[0] == 0:
            raise ValueError("registration: the two cameras' slabs do not overlap at the estimated offset")
        correlation = _pooled_pearson(sums)
        try:
            update = np.linalg.solve(normal, rhs)
        except np.linalg.LinAlgError:
            logger.warning("registration: singular Gauss-Newton system (featureless slab); keeping the current estimate")
            return offset, theta, correlation, iteration
        offset = offset + rotation @ update[:2]
        d_theta = float(update[2]) if estimate_rotation else 0.0
        theta += d_theta
        if math.hypot(update[0], update[1]) + abs(d_theta) * radius < tolerance_px:
            return offset, theta, correlation, iteration
    logger.warning("registration: Gauss-Newton did not converge in %d iterations", GN_MAX_ITERATIONS)
    return offset, theta, correlation, GN_MAX_ITERATIONS


def _inside_frame(height: int, width: int, offset: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Output pixels whose backward-mapped source lies inside the frame (the transform's non-zero area)."""
    dr = (np.arange(height) - (height - 1) / 2)[:, None]
    dc = (np.arange(width) - (width - 1) / 2)[None, :]
    src_r = rotation[0, 0] * dr + rotation[0, 1] * dc + ((height - 1) / 2 - offset[0])
    src_c = rotation[1, 0] * dr + rotation[1, 1] * dc + ((width - 1) / 2 - offset[1])
    return (src_r >= 0) & (src_r <= height - 1) & (src_c >= 0) & (src_c <= width - 1)


def _pooled_pearson(sums: np.ndarray) -> float:
    """Pearson correlation from ``(n, Σa, Σb, Σa², Σb², Σab)``; NaN when undefined."""
    n, sa, sb, saa, sbb, sab = sums
    denominator = math.sqrt(max(saa - sa * sa / n, 0.0) * max(sbb - sb * sb / n, 0.0))
    return (sab - sa * sb / n) / denominator if denominator > 0 else float("nan")


def _estimate_fast(
    reference: np.ndarray, second: np.ndarray, transition_map: np.ndarray | None, config: FusionConfig
) -> RegistrationResult:
    slab_map = transition_map if config.registration_data == "adaptive_slab" else None
    pairs = _PlanePairs.from_stacks(reference, second, slab_map, config.registration_slab_cameras)
    f = pairs.factor
    row_grid, col_grid = _offsets(config.search_offsets_rows), _offsets(config.search_offsets_cols)
    row_step, col_step = config.search_offsets_rows[2], config.search_offsets_cols[2]
    row_range = ((row_grid[0] - row_step) / f, (row_grid[-1] + row_step) / f)
    col_range = ((col_grid[0] - col_step) / f, (col_grid[-1] + col_step) / f)
    coarse = f * _cross_correlation_peak(*pairs.projections(), row_range, col_range)
    # Gauss-Newton from coarse to fine grids; parameters travel in full-resolution coordinates
    levels = [pairs.downsampled(PYRAMID_FACTOR), pairs] if min(pairs.reference.shape[1:]) >= PYRAMID_MIN_SIZE else [pairs]
    offset, theta, iterations, correlation = coarse, 0.0, 0, float("nan")
    for level, grid in enumerate(levels):
        final = level == len(levels) - 1
        tolerance = (GN_TOLERANCE_PX if final else PYRAMID_TOLERANCE_PX) / grid.factor
        grid_offset, theta, correlation, spent = _gauss_newton(
            grid, grid.to_grid(offset, theta), theta, estimate_rotation=config.estimate_rotation, tolerance_px=tolerance
        )
        offset = grid.from_grid(grid_offset, theta)
        iterations += spent
    return RegistrationResult(
        offset_y_px=float(offset[0]),
        offset_x_px=float(offset[1]),
        rotation_deg=math.degrees(theta),
        correlation=correlation,
        coarse_offset_y_px=float(coarse[0]),
        coarse_offset_x_px=float(coarse[1]),
        evaluations=iterations,
        method="fast",
    )
