"""Entry point of camera-pair registration: check the inputs, then run the fast or the original method (§3.7)."""

from __future__ import annotations

import math

import numpy as np

from isoview_core.fusion.config import FusionConfig
from isoview_core.fusion.registration.fast import estimate_fast
from isoview_core.fusion.registration.model import (
    RegistrationMethod,
    RegistrationResult,
)

__all__ = ["estimate_registration"]


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
        (:func:`~isoview_core.fusion.orientation.orient_second_camera`), not transformed.
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
        from isoview_core.fusion.registration.original import estimate_original  # here: it imports SciPy's optimize and scikit-image

        return estimate_original(reference, second, transition_map, scaling, config)
    return estimate_fast(reference, second, transition_map, config)


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
