"""Robust LOESS smoothing of a parameter series: MATLAB ``smooth(y, span, 'rloess')``.

See ALGORITHMS.md §4.3. The original pipeline calls the curve-fitting toolbox
without an abscissa, so the samples sit at positions ``1 … n``; this module
reproduces the toolbox implementation of the R2016–R2017 era, vectorised over
the samples (every local fit of one pass is one batched least-squares solve).
"""

from __future__ import annotations

import logging
import math

import numpy as np

__all__ = ["rloess"]

logger = logging.getLogger(__name__)

_EPS = np.finfo(np.float64).eps


def rloess(
    y: np.ndarray, span: float, *, degree: int = 2, robust_iterations: int = 5, stable: bool = True
) -> np.ndarray:
    """Smooth a series by robust locally weighted regression (MATLAB ``smooth(y, span, 'rloess')``).

    Parameters
    ----------
    y : ndarray
        1-D series sampled at positions ``1 … n`` (the position, never a
        timepoint value, is the abscissa). NaN marks a missing sample; it is
        imputed from its local fit.
    span : float
        Number of samples in each local fit; a value below 1 is a fraction of
        ``n`` (``ceil(span * n)`` samples). Forced odd for a series without NaN.
    degree : {1, 2}, optional
        Degree of the local polynomial: 2 is ``rloess``, 1 is ``rlowess``.
    robust_iterations : int, optional
        Robust re-fits after the initial fit (the toolbox uses 5); 0 gives the
        non-robust ``loess``.
    stable : bool, optional
        Fall back to a lower degree wherever a local fit is rank-deficient or
        its value would leave its window's data range by more than the
        window's spread (see Notes); the default. False solves every fit at
        `degree` like the toolbox, which can invent values far outside the
        data on short or robustly down-weighted windows.

    Returns
    -------
    ndarray
        Smoothed series (float64) of the input's length, NaN positions imputed.
        A series with fewer valid samples than the local polynomial has
        coefficients is returned unchanged (with a logged warning).

    Raises
    ------
    ValueError
        `y` is not 1-D or holds infinite values, `span` is not a positive finite
        number, `degree` is not 1 or 2, or `robust_iterations` is negative.

    Notes
    -----
    With ``s = min(floor(span), n)`` samples per fit (``s = 1`` returns the data):

    * Complete series: ``s`` is forced odd (20 → 21), ``h = (s - 1) / 2``. Sample
      ``i`` is fitted on the ``s`` samples ``i - h … i + h`` shifted to stay
      inside ``1 … n`` (end windows are shifted, not shrunk), with tricube
      weights normalised by the largest distance in the window. If the forced
      odd ``s`` exceeds ``n``, every sample is in every window and the weights
      are normalised by ``s - i`` (mirrored at the far end), as the toolbox does.
    * Series with NaN: ``s`` is not forced odd; the window of every sample, NaN
      positions included, is the ``s`` nearest valid samples, all samples tied
      with the ``s``-th distance included. If every tricube weight of a window
      is below machine epsilon, all its weights become 1.
    * Each local fit is a weighted least-squares polynomial in ``x - x_i``; the
      smoothed value is its constant term.
    * Each robust iteration computes the residuals ``r``, the scale
      ``max(1e8 * eps * max|y|, median|r|)`` over the whole series and bisquare
      weights ``(1 - (r / 6 scale)^2)^2`` (0 beyond ``6 scale``), then refits
      every sample on the previous window (NaN positions removed) with weights
      tricube × bisquare. A window holding a sample of robust weight 0 is
      replaced by the ``s`` nearest samples of positive robust weight. Where
      tricube × bisquare vanishes on a whole window, the bisquare weights alone
      are used (the toolbox would divide by zero).
    * Port safeguard (``stable=True``, the default): every smoothed value stays
      within its window's range widened by the window's spread on either side
      (``[min - spread, max + spread]`` of the window's valid samples). A local
      fit that is rank-deficient (smallest singular value of its weighted
      design, on offsets scaled to [-1, 1], below 1e-8 of the largest) or whose
      value leaves that interval falls back to degree 1, then to the weighted
      mean. A robust refit whose weighted mean still leaves it (its window
      replaced by far samples) keeps the previous iteration's value. The
      toolbox's robust fits invent values where down-weighting leaves a
      quadratic too few effective samples: quadratic fits on 5-sample windows
      interpolate, the median residual is 0 and every sample not fitted
      exactly is rejected (``[7.3165, 7.3099, 7.3086, 7.3092, 7.3155]`` with
      span 5 gives 3.656 at samples 2 and 4). Where no fit falls back the
      result equals the toolbox's.

    With ``stable=False`` every fit is solved at `degree`, rank-deficient ones by
    their minimum-norm least-squares solution (the toolbox's basic solution can
    differ from it).

    References
    ----------
    .. [1] W. S. Cleveland, "Robust locally weighted regression and smoothing
       scatterplots", J. Am. Stat. Assoc. 74 (368), 829–836 (1979).
    .. [2] MathWorks Curve Fitting Toolbox, ``smooth`` (methods ``'loess'`` and
       ``'rloess'``), R2016a–R2017b.
    """
    y = np.array(y, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"rloess smooths a 1-D series; got an array of shape {y.shape}")
    if np.isinf(y).any():
        raise ValueError("rloess: the series holds infinite values; mark missing samples with NaN")
    if not (math.isfinite(span) and span > 0):
        raise ValueError(f"rloess: span must be a positive number of samples or a fraction in (0, 1); got {span}")
    if degree not in (1, 2):
        raise ValueError(f"rloess: the local polynomial degree must be 1 or 2; got {degree}")
    if robust_iterations < 0:
        raise ValueError(f"rloess: robust_iterations must be >= 0; got {robust_iterations}")

    n = y.size
    s = math.ceil(span * n) if span < 1 else span
    s = min(math.floor(s), n)
    if s <= 1:
        return y
    valid = ~np.isnan(y)
    if np.count_nonzero(valid) < degree + 1:
        logger.warning(
            "rloess: %d valid sample(s) of %d cannot support a degree-%d local fit; series left unsmoothed",
            np.count_nonzero(valid), n, degree,
        )
        return y

    positions = np.arange(n)
    if valid.all():
        s = 2 * (s // 2) + 1
        windows, in_window = _shifted_windows(n, s)
    else:
        windows, in_window = _nearest_windows(positions[valid], positions, s)
    bounds = _widened_window_ranges(y, windows, in_window) if stable else None
    # Beyond n the toolbox's end windows keep their nominal reach s - i (one more than the
    # largest distance present), so no sample of the window gets weight 0.
    reach_margin = 1.0 if valid.all() and s > n else 0.0
    fitted = _local_fit(y, windows, in_window, degree=degree, bounds=bounds, reach_margin=reach_margin)

    max_abs_y = np.nanmax(np.abs(y))
    for _ in range(robust_iterations):
        robust = _bisquare_weights(y - fitted, max_abs_y)
        rejected = (in_window & (robust[windows] <= 0)).any(axis=1)
        refit_windows, refit_in = windows, in_window
        if rejected.any():
            kept_windows, kept_in = _nearest_windows(np.flatnonzero(robust > 0), positions[rejected], s)
            width = max(windows.shape[1], kept_windows.shape[1])
            refit_windows = _pad(windows, width)
            refit_in = _pad(in_window, width)
            refit_windows[rejected] = _pad(kept_windows, width)
            refit_in[rejected] = _pad(kept_in, width)
        refitted = _local_fit(y, refit_windows, refit_in, degree=degree, bounds=bounds, robust=robust)
        # a window replaced by far samples can leave no fit inside the bounds: keep the last value
        fitted = np.where(np.isnan(refitted) & ~np.isnan(fitted), fitted, refitted)
    return fitted


def _widened_window_ranges(y: np.ndarray, windows: np.ndarray, in_window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, its window's range widened by the window's spread on either side: ``(min - spread, max + spread)``."""
    values = np.where(in_window, y[windows], np.nan)
    lo, hi = np.nanmin(values, axis=1), np.nanmax(values, axis=1)
    return lo - (hi - lo), hi + (hi - lo)


def _shifted_windows(n: int, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``s`` consecutive samples centred on each sample, shifted to stay in ``0 … n-1``."""
    h = s // 2
    first = np.clip(np.arange(n) - h, 0, max(n - s, 0))
    windows = first[:, None] + np.arange(s)
    in_window = windows < n
    return np.minimum(windows, n - 1), in_window


def _nearest_windows(candidates: np.ndarray, centres: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` candidates nearest to each centre, every candidate tied with the k-th distance included.

    `candidates` are sorted sample positions. Returns window indices of shape
    ``(len(centres), width)`` and the mask of the entries that belong to each window.
    """
    m = candidates.size
    if m <= k:
        windows = np.broadcast_to(candidates, (centres.size, m)).copy()
        return windows, np.ones(windows.shape, dtype=bool)
    # The k nearest candidates form a run candidates[l : l + k] that holds the nearest
    # candidate, so l lies in [nearest - k, nearest]; the k-th distance is the smallest
    # largest distance over those runs.
    nearest = np.searchsorted(candidates, centres)
    starts = np.clip(nearest[:, None] - k + np.arange(k + 1), 0, m - k)
    reach = np.maximum(centres[:, None] - candidates[starts], candidates[starts + k - 1] - centres[:, None])
    kth_distance = reach.min(axis=1)
    lo = np.searchsorted(candidates, centres - kth_distance, side="left")
    hi = np.searchsorted(candidates, centres + kth_distance, side="right")
    width = int((hi - lo).max())
    slots = lo[:, None] + np.arange(width)
    in_window = slots < hi[:, None]
    return candidates[np.minimum(slots, m - 1)], in_window


def _pad(array: np.ndarray, width: int) -> np.ndarray:
    """Copy of a (rows, w) window array widened to `width` columns (new entries: 0 / False)."""
    padded = np.zeros((array.shape[0], width), dtype=array.dtype)
    padded[:, : array.shape[1]] = array
    return padded


def _bisquare_weights(residuals: np.ndarray, max_abs_y: float) -> np.ndarray:
    """Robust weights from the median absolute residual of the whole series (NaN residual → 0)."""
    finite = ~np.isnan(residuals)
    scale = max(1e8 * _EPS * max_abs_y, float(np.median(np.abs(residuals[finite]))))
    if scale == 0.0:  # an all-zero series fitted exactly: every sample is an inlier
        return finite.astype(np.float64)
    u = np.zeros_like(residuals)
    scaled = residuals[finite] / (6.0 * scale)
    u[finite] = np.where(np.abs(scaled) < 1.0, (1.0 - scaled**2) ** 2, 0.0)
    return u


def _local_fit(
    y: np.ndarray,
    windows: np.ndarray,
    in_window: np.ndarray,
    *,
    degree: int,
    bounds: tuple[np.ndarray, np.ndarray] | None,
    robust: np.ndarray | None = None,
    reach_margin: float = 0.0,
) -> np.ndarray:
    """Constant term of the weighted local polynomial fit of every sample on its window.

    With `bounds` (``(low, high)`` per sample), a fit that is rank-deficient or whose value
    leaves its bounds falls back to the next lower degree, and a sample whose weighted mean
    (degree 0) still leaves them (a window of far samples) is NaN. Without, every fit is solved
    at `degree` (minimum-norm if rank-deficient).
    """
    centres = np.arange(windows.shape[0])
    offsets = (windows - centres[:, None]).astype(np.float64)
    distance = np.where(in_window, np.abs(offsets), 0.0)
    reach = distance.max(axis=1, keepdims=True) + reach_margin
    scaled = np.divide(distance, reach, out=np.zeros_like(distance), where=reach > 0)
    weight = np.where(in_window, (1.0 - scaled**3) ** 3, 0.0)
    unweighted = ((weight < _EPS) | ~in_window).all(axis=1)
    weight[unweighted] = in_window[unweighted]
    if robust is not None:
        robust_in_window = np.where(in_window, robust[windows], 0.0)
        weight = weight * robust_in_window
        # tricube x bisquare can vanish on a whole window (its only inliers at the tricube's edge)
        lost = (weight <= 0).all(axis=1)
        weight[lost] = robust_in_window[lost]

    if bounds is None:
        kernel, _ = _equivalent_kernel(offsets, weight, degree)
        return (kernel * np.where(weight > 0, np.nan_to_num(y[windows]), 0.0)).sum(axis=1)
    # Centring on the series' median makes a constant series come back exactly (a kernel
    # sums to 1 only up to rounding).
    centre = float(np.nanmedian(y))
    samples = np.where(weight > 0, np.nan_to_num(y[windows] - centre), 0.0)
    low, high = bounds
    fitted = np.full(windows.shape[0], np.nan)
    pending = (weight > 0).any(axis=1)
    for fit_degree in range(degree, -1, -1):
        rows = np.flatnonzero(pending)
        if rows.size == 0:
            break
        # offsets scaled to [-1, 1] let the rank test weigh the polynomial's terms evenly
        kernel, full_rank = _equivalent_kernel(offsets[rows] / reach[rows], weight[rows], fit_degree)
        value = (kernel * samples[rows]).sum(axis=1) + centre
        accepted = (full_rank | (fit_degree == 0)) & (low[rows] <= value) & (value <= high[rows])
        fitted[rows[accepted]] = value[accepted]
        pending[rows[accepted]] = False
    return fitted


def _equivalent_kernel(offsets: np.ndarray, weight: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the weights ``k`` with ``fit(0) = sum_j k_j y_j`` of the weighted polynomial fit, and its full rank.

    A rank-deficient fit gets the minimum-norm least-squares kernel (singular values below
    ``1e-15`` of the largest dropped, as ``numpy.linalg.pinv``); it is flagged rank-deficient
    when its smallest singular value is below ``1e-8`` of the largest, since the minimum-norm
    solution then splits the value between the constant and the higher terms.
    """
    root = np.sqrt(weight)
    design = root[:, :, None] * offsets[:, :, None] ** np.arange(degree + 1)
    u, singular, vt = np.linalg.svd(design, full_matrices=False)
    largest = singular[:, :1]
    inverse = np.divide(1.0, singular, out=np.zeros_like(singular), where=singular > 1e-15 * largest)
    # first row of pinv(design) = V[0, :] diag(1/s) U^T
    kernel = np.einsum("rk,rk,rjk->rj", vt[:, :, 0], inverse, u) * root
    return kernel, singular[:, -1] > 1e-8 * largest[:, 0]
