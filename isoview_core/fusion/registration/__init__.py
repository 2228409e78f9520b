"""Camera-pair registration: the in-plane rigid transform that maps camera 2 onto camera 1 (ALGORITHMS.md §3.7).

The model is one 2-D rigid transform for every plane of the (oriented) second camera: a
translation ``(offset_y_px, offset_x_px)`` (rows, columns; the original's ``bestXOffset``,
``bestYOffset``) and a rotation ``rotation_deg`` about the plane centre, applied by
:func:`~isoview_core.fusion.transform.transform_volume`. :func:`estimate_registration`
(:mod:`.estimate`) checks the inputs and runs one of two methods, each in its own module:

``method="fast"`` (default, :mod:`.fast`)
    Upsampled FFT cross-correlation of the slab projections, then Gauss-Newton least squares on
    plane pairs of band-passed, block-averaged data; more precise than the original (the
    module's docstring says how and why it differs).

``method="original"`` (multiFuse, :mod:`.original`)
    Adaptive slab around the transition surface, high-pass, coarse grid search with the
    original score and tie rule, then ``fminuncFA`` on ``-Pearson``. Kept for parity.

Both take their data from the adaptive slab around the transition surface (:mod:`.slabs`);
the result model is shared (:mod:`.model`). The original method's module is imported when it is used
(it needs SciPy's optimize and scikit-image, 0.1 CPU-s at every start-up otherwise).

The quantities reported as ``correlation`` differ by method: the original's ``-f`` (Pearson
correlation of high-passed slab plane 0), or for the fast method the Pearson correlation of the
band-passed slab voxels after registration. Compare them within one method only.

References
----------
.. [1] Chhetri, R. K. et al. (2015). Whole-animal functional and developmental imaging with
   isotropic spatial resolution. Nature Methods 12, 1171-1178 (``multiFuse``).
"""

from isoview_core.fusion.registration.estimate import estimate_registration
from isoview_core.fusion.registration.model import (
    RegistrationMethod,
    RegistrationResult,
)
from isoview_core.fusion.registration.slabs import (
    extract_slab,
    slab_background_offset,
    slab_half_widths,
)

__all__ = [
    "RegistrationMethod",
    "RegistrationResult",
    "estimate_registration",
    "extract_slab",
    "slab_background_offset",
    "slab_half_widths",
]
