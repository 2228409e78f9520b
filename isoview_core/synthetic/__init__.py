"""Synthetic IsoView acquisitions with known ground truth, for tests, benchmarks and the demo.

An analytic specimen (``specimen``) imaged by four cameras (``optics``) with sCMOS noise and
defects (``camera``), written in the nested raw layout, optionally in real time
(``acquisition``), with everything a stage should recover in ``ground_truth.json``
(``ground_truth``). The two orthogonal views of one timepoint, with the rigid transform between them, beads and
the sharp specimen on an isotropic grid, come from ``orthogonal``. Faults can be injected for the quality checks (``config``): a pair's offset
jumping at one timepoint (:class:`OffsetJump`), a camera going dark (:class:`DarkCamera`).

Examples
--------
>>> from isoview_core.synthetic import SimulationConfig, simulate_acquisition
>>> truth = simulate_acquisition(tmp_path / "acq", SimulationConfig(timepoints=2))  # doctest: +SKIP
>>> truth.pairs[0].offset_x_px  # doctest: +SKIP
7.3
"""

from isoview_core.synthetic.acquisition import GROUND_TRUTH_NAME, simulate_acquisition
from isoview_core.synthetic.camera import (
    CameraDefects,
    DefectKind,
    camera_defects,
    camera_planes,
    dark_frame,
    render_camera_stack,
)
from isoview_core.synthetic.config import (
    CameraRole,
    DarkCamera,
    OffsetJump,
    PairConfig,
    SimulationConfig,
    camera_role,
)
from isoview_core.synthetic.ground_truth import (
    CameraTruth,
    GroundTruth,
    PairTruth,
    TimepointTruth,
    build_ground_truth,
)
from isoview_core.synthetic.optics import (
    camera_sampling,
    foreground_mask,
    render_camera_signal,
)
from isoview_core.synthetic.orthogonal import (
    FWHM_PER_SIGMA,
    NOMINAL_ROTATION,
    OrthogonalTruth,
    OrthogonalViews,
    OrthogonalViewsConfig,
    PointSource,
    measure_point_source,
    nominal_vw90_to_vw00,
    orthogonal_ground_truth,
    overlap_box_um,
    simulate_orthogonal_views,
    true_vw90_to_vw00,
    write_orthogonal_views,
)
from isoview_core.synthetic.specimen import sharp_specimen, specimen_drift, view90_to_view0_um

__all__ = [
    "FWHM_PER_SIGMA",
    "GROUND_TRUTH_NAME",
    "NOMINAL_ROTATION",
    "CameraDefects",
    "CameraRole",
    "CameraTruth",
    "DarkCamera",
    "DefectKind",
    "GroundTruth",
    "OffsetJump",
    "OrthogonalTruth",
    "OrthogonalViews",
    "OrthogonalViewsConfig",
    "PairConfig",
    "PairTruth",
    "PointSource",
    "SimulationConfig",
    "TimepointTruth",
    "build_ground_truth",
    "camera_defects",
    "camera_planes",
    "camera_role",
    "camera_sampling",
    "dark_frame",
    "foreground_mask",
    "measure_point_source",
    "nominal_vw90_to_vw00",
    "orthogonal_ground_truth",
    "overlap_box_um",
    "render_camera_signal",
    "render_camera_stack",
    "sharp_specimen",
    "simulate_acquisition",
    "simulate_orthogonal_views",
    "specimen_drift",
    "true_vw90_to_vw00",
    "view90_to_view0_um",
    "write_orthogonal_views",
]
