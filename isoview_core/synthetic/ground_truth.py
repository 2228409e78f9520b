"""Ground truth of a synthetic acquisition (``ground_truth.json``): what every stage should recover.

Small numbers only; images are regenerated from :attr:`GroundTruth.config` with the package's
functions: :func:`~isoview_core.synthetic.foreground_mask` (segmentation truth),
:func:`~isoview_core.synthetic.sharp_specimen` (fusion truth),
:func:`~isoview_core.synthetic.render_camera_signal` (noise-free camera image).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from isoview_core.formats.atomic import write_text_atomically
from isoview_core.synthetic.camera import DefectKind, camera_defects
from isoview_core.synthetic.config import CAMERAS, SimulationConfig, camera_role
from isoview_core.synthetic.specimen import specimen_drift


class PairTruth(BaseModel):
    """Transform between the cameras of a pair, in the fusion convention of :class:`PairConfig`.

    After flipping the second camera's columns, ``aligned(y, x) = second_flipped(y - offset_y_px,
    x - offset_x_px)`` matches the reference, and ``intensity_ratio`` times the second camera's
    background-subtracted signal matches the reference's.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cameras: tuple[int, int]
    view: int
    channel: int
    offset_x_px: float
    offset_y_px: float
    rotation_deg: float = 0.0
    intensity_ratio: float


class CameraTruth(BaseModel):
    """sCMOS properties of one camera."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    camera: int
    channel: int
    background_level: float
    """Offset (mean dark level) in ADU; the 3rd percentile of the dark frame lies ~2 read noises lower."""
    read_noise: float
    """Gaussian read noise, ADU (standard deviation)."""
    defective_pixels: list[tuple[int, int, DefectKind]]
    """``[y, x, kind]`` of every defective pixel, the same at every timepoint."""


class TimepointTruth(BaseModel):
    """Specimen motion at one timepoint, relative to timepoint 0."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timepoint: int
    drift: tuple[float, float, float]
    """(dz, dy, dx) in voxels of view 0 (cameras 0/1)."""
    drift_view90: tuple[float, float, float]
    """The same motion in voxels of view 90 (cameras 2/3): body axes z and x exchanged and rescaled."""


class GroundTruth(BaseModel):
    """Everything known about a synthetic acquisition; ``config`` regenerates every image.

    Images are not stored: ``foreground_mask(truth.config, timepoint, camera)`` gives the
    segmentation truth, ``sharp_specimen(truth.config, timepoint, view)`` the fusion truth.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    shape: tuple[int, int, int]
    """(Z, Y, X) of every camera stack."""
    timepoints: int
    seed: int
    specimen: int
    voxel_size_um: tuple[float, float, float]
    """(z, y, x) voxel size in µm."""
    pairs: list[PairTruth]
    cameras: list[CameraTruth]
    """Indexed by camera id."""
    per_timepoint: list[TimepointTruth]
    """Indexed by timepoint."""
    config: SimulationConfig

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        """Read a ``ground_truth.json``."""
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))

    def save(self, path: Path) -> None:
        """Write ``ground_truth.json`` atomically and durably (see :func:`~isoview_core.formats.atomic.write_text_atomically`)."""
        write_text_atomically(path, self.model_dump_json(indent=2))


def build_ground_truth(config: SimulationConfig) -> GroundTruth:
    """The ground truth of the acquisition that ``config`` describes (no image is rendered).

    Parameters
    ----------
    config : SimulationConfig
        Simulation parameters.

    Returns
    -------
    GroundTruth
        Pair transforms, camera offsets, noise and defects, per-timepoint drift, and ``config``.
    """
    pairs = [
        PairTruth(
            cameras=(2 * index, 2 * index + 1),
            view=camera_role(2 * index).view,
            channel=camera_role(2 * index).channel,
            offset_x_px=pair.offset_x_px,
            offset_y_px=pair.offset_y_px,
            intensity_ratio=pair.intensity_ratio,
        )
        for index, pair in enumerate(config.pairs)
    ]
    cameras = []
    for camera in CAMERAS:
        defects = camera_defects(config, camera)
        cameras.append(
            CameraTruth(
                camera=camera,
                channel=camera_role(camera).channel,
                background_level=config.background_levels_adu[camera],
                read_noise=config.read_noise_adu[camera],
                defective_pixels=[(int(row), int(col), kind) for row, col, kind in zip(defects.rows, defects.cols, defects.kinds)],
            )
        )
    per_timepoint = [
        TimepointTruth(timepoint=timepoint, drift=specimen_drift(config, timepoint, 0), drift_view90=specimen_drift(config, timepoint, 90))
        for timepoint in range(config.timepoints)
    ]
    return GroundTruth(
        shape=config.shape,
        timepoints=config.timepoints,
        seed=config.seed,
        specimen=config.specimen,
        voxel_size_um=config.voxel_size_um,
        pairs=pairs,
        cameras=cameras,
        per_timepoint=per_timepoint,
        config=config,
    )
