"""The fast camera-pair registration (default): upsampled cross-correlation, then plane-pair Gauss-Newton (§3.7).

``method="fast"`` (default)
    1. Data: the planes of the adaptive slab's range (at most 16, evenly spaced), block-averaged
       to at most about 1 Mpixel per plane (factor 2 for 2048 x 2048) and band-passed
       (Gaussian σ 2 px minus Gaussian σ 8 px, full-resolution pixels); with
       ``registration_data="mip"``, up to 16 evenly spaced planes of the whole stack, every pixel.
    2. Coarse: zero-padded FFT cross-correlation of the two slab projections (the original's slab
       data), its peak searched inside the configured offset grid (extended by one step), refined
       to 1/100 px by the matrix-multiply upsampled DFT (Guizar-Sicairos et al. [1]_).
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

References
----------
.. [1] Guizar-Sicairos, M., Thurman, S. T. & Fienup, J. R. (2008). Efficient subpixel image
   registration algorithms. Optics Letters 33(2), 156-158.
.. [2] Lucas, B. D. & Kanade, T. (1981). An iterative image registration technique with an
   application to stereo vision. Proc. 7th IJCAI, 674-679.
.. [3] Benhimane, S. & Malis, E. (2004). Real-time image-based tracking of planes using
   efficient second-order minimization. Proc. IEEE/RSJ IROS, 943-948.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import fft

from isoview_core.fusion.config import FusionConfig
from isoview_core.fusion.registration.model import RegistrationResult, search_offsets
from isoview_core.fusion.registration.slabs import slab_half_widths
from isoview_core.fusion.transform import transform_volume
from isoview_core.numerics.compiled import compiled
from isoview_core.numerics.filters import correlate_middle_axis, correlate_rows

__all__ = ["estimate_fast"]

logger = logging.getLogger(__name__)

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


def _working_factor(shape: tuple[int, int]) -> int:
    """Block-averaging factor that brings a plane to at most about :data:`WORKING_PIXELS` pixels."""
    return max(1, math.ceil(math.sqrt(shape[0] * shape[1] / WORKING_PIXELS)))


def _block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """float32 means of ``factor x factor`` blocks over the last two axes (incomplete blocks dropped)."""
    stack = image.reshape(-1, *image.shape[-2:])
    means = np.empty((stack.shape[0], stack.shape[1] // factor, stack.shape[2] // factor), dtype=np.float32)
    _block_means(stack, factor, means)
    return means.reshape(*image.shape[:-2], *means.shape[1:])


@compiled
def _block_means(stack: np.ndarray, factor: int, out: np.ndarray) -> None:
    """``out[p, i, j]``: float32 mean of block ``(i, j)`` of plane ``p`` of a (P, H, W) stack of any dtype and strides.

    The values are cast to float32 and summed along each block row, then the row sums from the first row down,
    then divided by ``factor²`` in float32: numpy's ``reshape(...).sum(-1, dtype=float32).sum(-2) / f²`` bit for
    bit (and exact for 16-bit and bool values, whose block sums stay below 2**24). One pass, any strides: 5 ms per
    flipped 2048 x 2048 uint16 plane against 8 ms for numpy's strided integer sums, 0.6 ms per 1024 x 1024 float32
    plane against 8.5 ms for the reshaped sums (the coarse Gauss-Newton level).
    """
    planes, rows, cols = out.shape
    area = np.float32(factor * factor)
    line = np.empty(cols, dtype=np.float32)
    total = np.empty(cols, dtype=np.float32)
    for plane in range(planes):
        for row in range(rows):
            for dr in range(factor):
                source = stack[plane, row * factor + dr]
                for col in range(cols):
                    line[col] = np.float32(source[col * factor])
                for dc in range(1, factor):
                    for col in range(cols):
                        line[col] += np.float32(source[col * factor + dc])
                if dr == 0:
                    total[:] = line
                else:
                    total += line
            for col in range(cols):
                out[plane, row, col] = total[col] / area


def _gaussian_weights(sigma: float) -> np.ndarray:
    """SciPy's ``gaussian_filter`` taps for ``sigma`` (truncated at 4 sigma), as its ``correlate1d`` uses them."""
    taps = np.arange(-int(4.0 * sigma + 0.5), int(4.0 * sigma + 0.5) + 1)
    weights = np.exp(-0.5 / (sigma * sigma) * taps**2)
    return weights / weights.sum()


def _gaussian_planes(planes: np.ndarray, sigma: float) -> None:
    """``ndimage.gaussian_filter(plane, sigma, mode="nearest")`` of each plane of a (P, h, w) float32 stack, in place.

    Bit for bit (rows, then columns, float32 between the passes; the compiled correlation is SciPy's symmetric
    ``correlate1d``). The band-pass of 16 planes of 1024 x 1024 takes 0.16 CPU-s, where SciPy's two Gaussians alone take 0.65.
    """
    weights = _gaussian_weights(sigma)
    correlate_middle_axis(planes, weights)
    correlate_rows(planes, weights)


def _bandpass(planes: np.ndarray, factor: int) -> np.ndarray:
    """Difference of Gaussians (σ :data:`LOWPASS_SIGMA_PX`, :data:`HIGHPASS_SIGMA_PX` full-resolution px) of a (P, h, w) float32 stack, in place."""
    smooth = planes.copy()
    _gaussian_planes(smooth, LOWPASS_SIGMA_PX / factor)
    _gaussian_planes(planes, HIGHPASS_SIGMA_PX / factor)
    return np.subtract(smooth, planes, out=planes)


def _bandpassed_planes(volume: np.ndarray, planes: list[int], factor: int) -> np.ndarray:
    """Band-passed block means of the planes ``planes`` of a (Z, Y, X) stack (any strides), (P, h, w) float32."""
    means = np.empty((len(planes), volume.shape[1] // factor, volume.shape[2] // factor), dtype=np.float32)
    for index, z in enumerate(planes):
        _block_means(volume[z : z + 1], factor, means[index : index + 1])
    return _bandpass(means, factor)


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
            bandpassed = [_bandpassed_planes(volume, list(planes), f) for volume in (reference, second)]
            return cls(bandpassed[0], bandpassed[1], np.ones(bandpassed[0].shape, dtype=bool), f, reference.shape[1:])
        lower, upper = slab_half_widths(transition_map, reference.shape[0], slab_half_width)
        covered = _block_mean(transition_map > 0, f)
        # in the map's integer type: block sums are float32 either way, exact below 2**24 (a float64 copy cost 64 MB)
        surface_sum = _block_mean(np.where(transition_map > 0, transition_map - 1, 0).astype(transition_map.dtype, copy=False), f)
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
            _bandpassed_planes(reference, planes, f),
            _bandpassed_planes(second, planes, f),
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
    height, width = pairs.reference.shape[1:]
    radius = math.hypot(height / 2, width / 2)
    unknowns = 3 if estimate_rotation else 2
    correlation = float("nan")
    warped_planes = np.empty_like(pairs.second)  # one buffer for every iteration's warp
    for iteration in range(1, GN_MAX_ITERATIONS + 1):
        rotation = _rotation_matrix(theta)
        inside = _inside_frame(height, width, offset, rotation)
        transform_volume(pairs.second, offset[0], offset[1], math.degrees(theta), outside=0.0, out=warped_planes)
        normal = np.zeros((unknowns, unknowns))
        rhs = np.zeros(unknowns)
        sums = np.zeros(6)  # n, Σa, Σb, Σa², Σb², Σab over every plane
        _accumulate_normal_equations(pairs.reference, warped_planes, pairs.weights, inside, sums, normal, rhs)
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


@compiled
def _accumulate_normal_equations(
    reference: np.ndarray, warped: np.ndarray, weights: np.ndarray, inside: np.ndarray, sums: np.ndarray, normal: np.ndarray, rhs: np.ndarray
) -> None:
    """Add every plane's moments and Gauss-Newton normal equations (:func:`_gauss_newton`) to ``sums``, ``normal``, ``rhs``.

    Voxels: ``weights[j] & inside``; planes with fewer than 16 are skipped. Per plane, a first pass sums
    ``(n, Σa, Σb, Σa², Σb², Σab)`` in float64 and fits the gain and offset, a second sums the products of the
    columns ``(J_r, J_c[, J_θ], residual)``, with the gradients of numpy's ``gradient`` (float32, central inside,
    one-sided at the edges); a 3 x 3 ``normal`` estimates the rotation too. No gathered copies: on 16 planes of
    1024 x 1024 with a third of each plane in the slab, 50-60 ms per iteration, where numpy's gathers, gradients
    and ``einsum`` took 380-440.
    """
    planes, height, width = reference.shape
    rotation = normal.shape[0] == 3
    centre_row, centre_col = (height - 1) / 2, (width - 1) / 2
    two, one = np.float32(2.0), np.float32(1.0)  # numpy's float32 steps: central inside, one-sided at the edges
    for plane in range(planes):
        count, sum_a, sum_b, sum_aa, sum_bb, sum_ab = 0, 0.0, 0.0, 0.0, 0.0, 0.0
        for row in range(height):
            for col in range(width):
                if weights[plane, row, col] and inside[row, col]:
                    a, b = np.float64(reference[plane, row, col]), np.float64(warped[plane, row, col])
                    count += 1
                    sum_a += a
                    sum_b += b
                    sum_aa += a * a
                    sum_bb += b * b
                    sum_ab += a * b
        if count < 16:
            continue
        sums[0] += count
        sums[1] += sum_a
        sums[2] += sum_b
        sums[3] += sum_aa
        sums[4] += sum_bb
        sums[5] += sum_ab
        variance_b = sum_bb - sum_b * sum_b / count
        gain = (sum_ab - sum_a * sum_b / count) / variance_b if variance_b > 0 else 0.0
        intercept = (sum_a - gain * sum_b) / count
        # upper triangle of the products of the columns (J_r, J_c, J_θ, residual), in scalars
        rr, rc, rt, re, cc, ct, ce, tt, te = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        first, second = reference[plane], warped[plane]
        for row in range(height):
            above, below = max(row - 1, 0), min(row + 1, height - 1)
            row_step = two if 0 < row < height - 1 else one
            for col in range(width):
                if not (weights[plane, row, col] and inside[row, col]):
                    continue
                left, right = max(col - 1, 0), min(col + 1, width - 1)
                col_step = two if 0 < col < width - 1 else one
                warped_r = np.float64((second[below, col] - second[above, col]) / row_step)
                warped_c = np.float64((second[row, right] - second[row, left]) / col_step)
                jacobian_r = 0.5 * (gain * warped_r + np.float64((first[below, col] - first[above, col]) / row_step))
                jacobian_c = 0.5 * (gain * warped_c + np.float64((first[row, right] - first[row, left]) / col_step))
                residual = gain * np.float64(second[row, col]) + intercept - np.float64(first[row, col])
                rr += jacobian_r * jacobian_r
                rc += jacobian_r * jacobian_c
                re += jacobian_r * residual
                cc += jacobian_c * jacobian_c
                ce += jacobian_c * residual
                if rotation:
                    jacobian_t = jacobian_c * (row - centre_row) - jacobian_r * (col - centre_col)
                    rt += jacobian_r * jacobian_t
                    ct += jacobian_c * jacobian_t
                    tt += jacobian_t * jacobian_t
                    te += jacobian_t * residual
        normal[0, 0] += rr
        normal[0, 1] += rc
        normal[1, 0] += rc
        normal[1, 1] += cc
        rhs[0] += re
        rhs[1] += ce
        if rotation:
            normal[0, 2] += rt
            normal[2, 0] += rt
            normal[1, 2] += ct
            normal[2, 1] += ct
            normal[2, 2] += tt
            rhs[2] += te


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


def estimate_fast(
    reference: np.ndarray, second: np.ndarray, transition_map: np.ndarray | None, config: FusionConfig
) -> RegistrationResult:
    """The fast registration: upsampled cross-correlation, then plane-pair Gauss-Newton (§3.7, module docstring).

    Called by :func:`~isoview_core.fusion.registration.estimate_registration`, which checks the
    inputs.

    Parameters
    ----------
    reference, second : ndarray
        (Z, Y, X) corrected stacks of equal shape, the second already oriented.
    transition_map : ndarray or None
        (Y, X) pre-registration transition map ``avg₀`` (1-based planes, 0 = empty); its slab
        chooses the voxels when ``config.registration_data == "adaptive_slab"``; otherwise
        ignored (plane pairs over the full depth, every pixel).
    config : FusionConfig
        ``registration_data``, ``registration_slab_cameras``, ``search_offsets_rows/cols``
        (the cross-correlation peak is searched in this grid extended by one step) and
        ``estimate_rotation``.

    Returns
    -------
    RegistrationResult
        ``method="fast"``; ``correlation`` is the Pearson correlation of the band-passed slab
        voxels after registration, ``evaluations`` counts Gauss-Newton iterations.

    References
    ----------
    .. [1] Guizar-Sicairos, M., Thurman, S. T. & Fienup, J. R. (2008). Efficient subpixel image
       registration algorithms. Optics Letters 33(2), 156-158.
    .. [2] Lucas, B. D. & Kanade, T. (1981). An iterative image registration technique with an
       application to stereo vision. Proc. 7th IJCAI, 674-679.
    .. [3] Benhimane, S. & Malis, E. (2004). Real-time image-based tracking of planes using
       efficient second-order minimization. Proc. IEEE/RSJ IROS, 943-948.
    """
    slab_map = transition_map if config.registration_data == "adaptive_slab" else None
    pairs = _PlanePairs.from_stacks(reference, second, slab_map, config.registration_slab_cameras)
    f = pairs.factor
    row_grid, col_grid = search_offsets(config.search_offsets_rows), search_offsets(config.search_offsets_cols)
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
