"""The original (multiFuse) registration, kept for MATLAB parity: high-pass, grid search, fminuncFA (§3.7).

Data: the adaptive slab around the transition surface (:func:`~.slabs.extract_slab`), minus the
slab background offset (:func:`~.slabs.slab_background_offset`), high-passed plane by plane
(:func:`highpass_plane`, with the even-window median of MATLAB's ``medfilt2``,
:func:`matlab_median_filter`). Then the coarse grid search with the original score and tie rule
(:func:`coarse_grid_search`), and the fine optimisation of ``-Pearson`` on slab plane 0 with
``fminuncFA`` (:func:`minimize_fminuncfa`) or the toolbox optimisers.

References
----------
.. [1] Chhetri, R. K. et al. (2015). Whole-animal functional and developmental imaging with
   isotropic spatial resolution. Nature Methods 12, 1171-1178 (``multiFuse``).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage, optimize
from skimage.filters import rank

from isoview_core.fusion.config import FusionConfig
from isoview_core.fusion.registration.model import RegistrationResult, search_offsets
from isoview_core.fusion.registration.slabs import (
    extract_slab,
    slab_background_offset,
    slab_half_widths,
)
from isoview_core.fusion.transform import transform_volume
from isoview_core.numerics.filters import gaussian_taps
from isoview_core.numerics.rounding import round_half_away, to_u16

__all__ = ["coarse_grid_search", "estimate_original", "highpass_plane", "matlab_median_filter", "minimize_fminuncfa"]

logger = logging.getLogger(__name__)


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


def estimate_original(
    reference: np.ndarray, second: np.ndarray, transition_map: np.ndarray | None, scaling: float, config: FusionConfig
) -> RegistrationResult:
    """The original (multiFuse) registration: slab data, coarse grid search, then ``-Pearson`` minimised (§3.7).

    Called by :func:`~isoview_core.fusion.registration.estimate_registration`, which checks the
    inputs.

    Parameters
    ----------
    reference, second : ndarray
        (Z, Y, X) corrected stacks of equal shape, the second already oriented.
    transition_map : ndarray or None
        (Y, X) pre-registration transition map ``avg₀`` (1-based planes, 0 = empty); required
        when ``config.registration_data == "adaptive_slab"``, unused for ``"mip"`` (the later
        port's unfiltered full-depth maximum-intensity projections).
    scaling : float
        Axial step / lateral pixel size (divides the high-pass's column window and Gaussian).
    config : FusionConfig
        ``registration_data``, ``registration_slab_cameras``, ``fusion_background_percentile``,
        ``fusion_subsample_slices``, ``registration_median_range``, ``registration_gauss_*``,
        ``search_offsets_rows/cols``, ``estimate_rotation``, ``optimizer*``,
        ``registration_cost_planes``, ``registration_cost_mask`` and ``min_valid_pixels``.

    Returns
    -------
    RegistrationResult
        ``method="original"``; ``correlation`` is ``-f`` at the solution, ``evaluations`` counts
        cost evaluations.

    References
    ----------
    .. [1] Chhetri, R. K. et al. (2015). Whole-animal functional and developmental imaging with
       isotropic spatial resolution. Nature Methods 12, 1171-1178 (``multiFuse``).
    """
    a, b = _original_data(reference, second, transition_map, scaling, config)
    coarse_r, coarse_c, _ = coarse_grid_search(a, b, search_offsets(config.search_offsets_rows), search_offsets(config.search_offsets_cols))
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
