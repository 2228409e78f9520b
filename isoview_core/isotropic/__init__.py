"""The isotropic volume from the two orthogonal views (issue 16): geometry, resampling, 3D rigid registration.

VW00 (cameras 0 + 1, looking along the specimen's z) and VW90 (cameras 2 + 3, looking along its x) each have
their poor axial resolution along their own detection axis; registered onto one isotropic grid of VW00's
frame they can be combined into a volume of the same resolution along every axis.

Examples
--------
>>> from isoview_core.isotropic import register_views
>>> result = register_views(vw00, (2.0, 1.0, 1.0), vw90, (2.0, 1.0, 1.0))  # doctest: +SKIP
>>> result.matrix(), result.quality  # doctest: +SKIP
"""

from isoview_core.isotropic.config import IsotropicConfig
from isoview_core.isotropic.geometry import (
    NOMINAL_ROTATION,
    IsotropicGrid,
    index_to_physical,
    isotropic_grid,
    nominal_vw90_to_vw00,
    resample_onto_grid,
    rigid_transform,
    rotation_angle_deg,
    volume_centre_um,
)
from isoview_core.isotropic.pyramid import SampledView, view_at_resolution
from isoview_core.isotropic.registration import LevelRecord, ViewRegistration, register_views

__all__ = [
    "NOMINAL_ROTATION",
    "IsotropicConfig",
    "IsotropicGrid",
    "LevelRecord",
    "SampledView",
    "ViewRegistration",
    "index_to_physical",
    "isotropic_grid",
    "nominal_vw90_to_vw00",
    "register_views",
    "resample_onto_grid",
    "rigid_transform",
    "rotation_angle_deg",
    "view_at_resolution",
    "volume_centre_um",
]
