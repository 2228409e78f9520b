"""Two orthogonal views of one specimen, with the known rigid transform between them: the truth of the isotropic volume.

IsoView's VW00 (cameras 0+1) looks along the specimen's z, VW90 (cameras 2+3) along its x (Chhetri et al.
2015). This module simulates both fused views of one timepoint at one wavelength, each blurred by the same
anisotropic point-spread function (PSF) oriented along its own detection axis (its stack axis z), together with
the exact rigid transform between them, sub-resolution beads for resolution measurements and the sharp
specimen on an isotropic grid: what registration, fusion and deconvolution of the two views should recover.

Convention
----------
* Arrays are (z, y, x); physical positions are vectors (z, y, x) in micrometres. Voxel ``(k, j, i)`` of a view
  sits at ``(k dz, j dy, i dx)`` in that view's own frame (origin at voxel 0, no centring).
* The output frame is VW00's. The truth ``vw90_to_vw00`` is a 4 x 4 affine on column vectors ``(z, y, x, 1)``:
  ``p00 = R p90 + t`` with ``R = R_small R_nominal``. ``R_nominal`` is the right-handed rotation by +90 degrees
  about y (``x' = z``, ``z' = -x``: VW90's detection axis z turns into VW00's +x, its x into VW00's -z, as in the
  BigStitcher export); ``R_small`` turns by ``rotation_deg`` about ``rotation_axis``; ``t = c00 + translation_um
  - R c90``, with ``c = (shape - 1) / 2 * voxel`` a volume's centre. That is the nominal placement (centre onto
  centre, :func:`nominal_vw90_to_vw00`), turned by ``R_small`` about VW00's centre, then shifted by
  ``translation_um``.

Specimen (VW00 frame)
---------------------
An ellipsoidal body with uniform cytoplasm and an error-function edge, centred in the views' overlap; nuclei,
isotropic Gaussians inside the body; beads, isotropic Gaussians much smaller than the PSF, apart from each other
and from the nuclei, away from both views' borders.

Image formation
---------------
A Gaussian blurred by a Gaussian PSF is a Gaussian with the summed covariances, so nuclei and beads are rendered
blurred, analytically, at each view's voxel centres (the PSF is aligned with the view's axes, so every blurred
blob is separable there). The body's edge is blurred in the planar approximation: across the surface, its
error-function profile widens by the PSF's variance along the surface normal (the body's radii of curvature,
tens of micrometres, are large against the PSF). Then Poisson photon noise, Gaussian read noise and an offset,
the model of :mod:`isoview_core.synthetic.camera`, rounded to uint16. No huge array is built: every image is
evaluated where it is sampled.

The sharp specimen is the specimen's mean over each voxel of an isotropic grid in the VW00 frame (exact for the
Gaussians, the smooth body point-sampled), without PSF: float32, in the views' units (ADU above the offset).

References
----------
R. K. Chhetri et al., "Whole-animal functional and developmental imaging with isotropic spatial resolution",
Nat. Methods 12, 1171-1178 (2015); S. Preibisch et al., "Efficient Bayesian-based multiview deconvolution",
Nat. Methods 11, 645-648 (2014).

Notes
-----
One module of some 700 lines, half of them docstrings: the configuration, the truth, the rendering and the bead
measurement all rest on the one geometric convention above, and are read together when checking it.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, model_validator
from scipy import special
from scipy.optimize import curve_fit

from isoview_core.formats.atomic import write_text_atomically
from isoview_core.formats.omezarr import write_ome_zarr
from isoview_core.layout import FusedPaths, PairId
from isoview_core.metadata import DEFAULT_PIXEL_PITCH_UM
from isoview_core.synthetic.acquisition import GROUND_TRUTH_NAME
from isoview_core.synthetic.specimen import GAUSSIAN_SUPPORT, NUCLEUS_RADIUS

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
"""Full width at half maximum of a Gaussian, in standard deviations."""

LATERAL_PIXEL_UM = DEFAULT_PIXEL_PITCH_UM / 16.0
"""Pixel of the 16x detection objectives: 6.5 µm sensor pitch / 16 = 0.40625 µm."""

NOMINAL_ROTATION = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
"""``R_nominal`` on (z, y, x) vectors: +90 degrees about y, right-handed (VW90's z -> VW00's +x, x -> -z)."""
NOMINAL_ROTATION.flags.writeable = False

TRANSFORM_CONVENTION = (
    "arrays (z, y, x); positions (z, y, x) in um, voxel (k, j, i) of a view at (k dz, j dy, i dx) of its own frame; "
    "vw90_to_vw00 maps column vectors (z, y, x, 1): p00 = R p90 + t, R = R_small R_nominal"
)
"""The convention of :class:`OrthogonalTruth`, in words, written into ``ground_truth.json``."""

MAX_BEAD_TRIALS = 200
"""Random candidate positions tried per bead before giving up."""

_SPECIMEN_STREAM, _VW00_NOISE_STREAM, _VW90_NOISE_STREAM = 0, 1, 2

Triple = tuple[float, float, float]


class OrthogonalViewsConfig(BaseModel):
    """Everything that defines the two simulated views; with the seed it fixes every voxel.

    Defaults follow the microscope (16x objectives, 2 µm z step, a light-sheet PSF 4x longer along the detection
    axis) on a volume small enough to render in seconds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    shape00: tuple[PositiveInt, PositiveInt, PositiveInt] = Field((64, 256, 256), description="VW00 volume (z, y, x), voxels.")
    shape90: tuple[PositiveInt, PositiveInt, PositiveInt] = Field((64, 256, 256), description="VW90 volume (z, y, x), voxels.")
    voxel00_um: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = Field(
        (2.0, LATERAL_PIXEL_UM, LATERAL_PIXEL_UM), description="VW00 voxel (z step, pixel, pixel), µm."
    )
    voxel90_um: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = Field(
        (2.0, LATERAL_PIXEL_UM, LATERAL_PIXEL_UM), description="VW90 voxel (z step, pixel, pixel), µm."
    )
    iso_voxel_um: PositiveFloat | None = Field(
        None, description="Voxel of the sharp specimen's isotropic grid; None: twice the finest lateral pixel (accuracy vs cost)."
    )
    psf_lateral_fwhm_um: PositiveFloat = Field(1.0, description="PSF FWHM across each view's detection axis.")
    psf_axial_fwhm_um: PositiveFloat = Field(4.0, description="PSF FWHM along each view's detection axis (its z): 3-5x the lateral.")
    body_semi_axes: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = Field(
        (0.38, 0.32, 0.35), description="Body ellipsoid semi-axes (z, y, x) as fractions of the views' overlap."
    )
    body_edge_um: PositiveFloat = Field(1.0, description="Width (sigma) of the body's error-function edge.")
    cytoplasm_adu: NonNegativeFloat = Field(300.0, description="Uniform cytoplasm signal inside the body.")
    n_nuclei: NonNegativeInt = 300
    nucleus_sigma_um: tuple[PositiveFloat, PositiveFloat] = Field((1.0, 2.0), description="Range of nucleus Gaussian sigmas.")
    nucleus_peak_adu: PositiveFloat = Field(1200.0, description="Brightest nucleus's sharp peak above the cytoplasm.")
    n_beads: NonNegativeInt = 30
    bead_sigma_um: PositiveFloat = Field(0.1, description="Bead Gaussian sigma: a sub-resolution point source.")
    bead_peak_adu: PositiveFloat = Field(2000.0, description="A bead's peak in either view's image, above the background.")
    bead_separation_um: PositiveFloat = Field(12.0, description="Least distance between beads; beads keep half of it from nucleus centres.")
    bead_margin_um: NonNegativeFloat = Field(10.0, description="Least distance of a bead from either view's borders.")
    rotation_axis: Triple = Field((0.3, 0.8, -0.5), description="Axis (z, y, x) of the small rotation R_small; any length.")
    rotation_deg: float = Field(1.5, ge=-10.0, le=10.0, description="Angle of R_small, right-handed (the issue asks up to 2).")
    translation_um: Triple = Field((6.0, -4.5, 8.0), description="Extra shift (z, y, x) of VW90's centre in VW00, µm (issue: up to 20).")
    background_adu: NonNegativeFloat = Field(100.0, description="Camera offset of both views.")
    read_noise_adu: NonNegativeFloat = Field(1.6, description="Gaussian read noise (standard deviation).")
    electrons_per_adu: PositiveFloat = Field(0.46, description="Poisson noise acts on the signal times this (Orca Flash 4.0).")
    seed: NonNegativeInt = 0

    @model_validator(mode="after")
    def _check_geometry(self) -> OrthogonalViewsConfig:
        if self.nucleus_sigma_um[0] > self.nucleus_sigma_um[1]:
            raise ValueError(f"nucleus_sigma_um {self.nucleus_sigma_um}: expected (min, max)")
        if max(self.body_semi_axes) >= 0.5:
            raise ValueError(f"body_semi_axes {self.body_semi_axes}: fractions must stay below 0.5 to fit the overlap")
        if not np.any(self.rotation_axis):
            raise ValueError("rotation_axis (0, 0, 0) has no direction")
        low, high = overlap_box_um(self)
        if np.any(high - low <= 2 * self.bead_margin_um):
            raise ValueError(
                f"the views overlap on {np.round(high - low, 1).tolist()} µm (z, y, x) only: less than twice bead_margin_um "
                f"{self.bead_margin_um} on some axis; shrink translation_um or the margin, or enlarge the views"
            )
        return self

    @property
    def resolved_iso_voxel_um(self) -> float:
        """``iso_voxel_um``, or twice the finest lateral pixel of the two views when it is None."""
        if self.iso_voxel_um is not None:
            return self.iso_voxel_um
        return 2.0 * min(self.voxel00_um[1:] + self.voxel90_um[1:])

    @property
    def psf_sigma_um(self) -> np.ndarray:
        """PSF standard deviations (z, y, x) in a view's own frame, µm: axial along z."""
        return np.array([self.psf_axial_fwhm_um, self.psf_lateral_fwhm_um, self.psf_lateral_fwhm_um]) / FWHM_PER_SIGMA


class OrthogonalTruth(BaseModel):
    """The truth of two simulated orthogonal views (``ground_truth.json``); ``config`` regenerates every image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    convention: str = TRANSFORM_CONVENTION
    shape00: tuple[int, int, int]
    shape90: tuple[int, int, int]
    voxel00_um: Triple
    voxel90_um: Triple
    vw90_to_vw00: list[list[float]]
    """4 x 4 truth, VW90 µm -> VW00 µm (module docstring)."""
    nominal_vw90_to_vw00: list[list[float]]
    """4 x 4 start of a registration: 90 degrees about y, centre onto centre."""
    iso_voxel_um: float
    iso_shape: tuple[int, int, int]
    """Shape of the sharp specimen's grid: voxel ``(k, j, i)`` at ``(k, j, i) * iso_voxel_um`` in VW00."""
    beads_um: list[Triple]
    """Bead centres (z, y, x) in the VW00 frame."""
    psf_fwhm_um: dict[str, Triple]
    """Per view (``vw00``, ``vw90``): PSF FWHM along the z, y and x axes of the output frame, on the line through its peak."""
    bead_fwhm_um: dict[str, Triple]
    """The same for a bead's image (PSF and bead size combined): what a fit to a bead's profile should find."""
    config: OrthogonalViewsConfig

    @classmethod
    def load(cls, path: Path) -> OrthogonalTruth:
        """Read a ``ground_truth.json``."""
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))

    def save(self, path: Path) -> None:
        """Write ``ground_truth.json`` atomically and durably."""
        write_text_atomically(path, self.model_dump_json(indent=2))


@dataclass(frozen=True, eq=False)
class OrthogonalViews:
    """Two simulated orthogonal views, the sharp specimen and the truth between them.

    Attributes
    ----------
    config : OrthogonalViewsConfig
        What was simulated.
    vw00, vw90 : ndarray
        (z, y, x) uint16 views, each in its own frame.
    voxel00, voxel90 : tuple of float
        Their voxel sizes (z, y, x), µm.
    specimen_iso : ndarray
        (z, y, x) float32 sharp specimen on the isotropic grid of the VW00 frame, ADU above the offset.
    iso_voxel_um : float
        Its voxel size.
    vw90_to_vw00 : ndarray
        4 x 4 truth, VW90 µm -> VW00 µm.
    beads_um : ndarray
        (n, 3) bead centres (z, y, x) in the VW00 frame, µm.
    """

    config: OrthogonalViewsConfig
    vw00: np.ndarray
    vw90: np.ndarray
    voxel00: Triple
    voxel90: Triple
    specimen_iso: np.ndarray
    iso_voxel_um: float
    vw90_to_vw00: np.ndarray
    beads_um: np.ndarray

    def ground_truth(self) -> dict[str, Any]:
        """The content of ``ground_truth.json`` as JSON values (:class:`OrthogonalTruth`)."""
        return orthogonal_ground_truth(self.config).model_dump(mode="json")


class PointSource(NamedTuple):
    """A point source measured in an image (:func:`measure_point_source`)."""

    center_um: np.ndarray
    """(z, y, x) centre in the image's frame (voxel ``k`` at ``k * voxel``), µm."""
    fwhm_um: np.ndarray
    """(z, y, x) FWHM of the profiles through the brightest voxel, µm."""
    peak: tuple[int, int, int]
    """Brightest voxel near the expected position."""


@dataclass(frozen=True)
class _Specimen:
    """The specimen in the VW00 frame, µm: a body and isotropic Gaussian blobs (nuclei, then beads)."""

    body_center: np.ndarray
    body_semi_axes: np.ndarray
    body_edge: float
    cytoplasm: float
    blob_centers: np.ndarray
    blob_sigmas: np.ndarray
    blob_peaks: np.ndarray
    n_beads: int

    @property
    def beads(self) -> np.ndarray:
        """(n, 3) bead centres."""
        return self.blob_centers[len(self.blob_centers) - self.n_beads :]


def nominal_vw90_to_vw00(
    shape90: Sequence[int], voxel90: Sequence[float], shape00: Sequence[int], voxel00: Sequence[float]
) -> np.ndarray:
    """The nominal transform from VW90 to VW00: 90 degrees about y, VW90's volume centre onto VW00's.

    Parameters
    ----------
    shape90, shape00 : sequence of int
        Volume shapes (z, y, x).
    voxel90, voxel00 : sequence of float
        Voxel sizes (z, y, x), µm.

    Returns
    -------
    ndarray
        4 x 4 affine on (z, y, x, 1) in µm: ``p00 = R p90 + t`` with ``R`` = :data:`NOMINAL_ROTATION` and
        ``t = c00 - R c90``, ``c = (shape - 1) / 2 * voxel``.

    References
    ----------
    R. K. Chhetri et al., Nat. Methods 12, 1171-1178 (2015): the views' detection axes are orthogonal.
    """
    return _affine(NOMINAL_ROTATION, _centre(shape00, voxel00) - NOMINAL_ROTATION @ _centre(shape90, voxel90))


def true_vw90_to_vw00(config: OrthogonalViewsConfig) -> np.ndarray:
    """The simulated truth from VW90 to VW00 (module docstring), without rendering anything.

    Parameters
    ----------
    config : OrthogonalViewsConfig
        Shapes, voxel sizes, small rotation and translation.

    Returns
    -------
    ndarray
        4 x 4 rigid affine on (z, y, x, 1) in µm: ``R = R_small R_nominal``, ``t = c00 + translation_um - R c90``.
    """
    rotation = _rotation(config.rotation_axis, config.rotation_deg) @ NOMINAL_ROTATION
    centre00 = _centre(config.shape00, config.voxel00_um)
    return _affine(rotation, centre00 + np.asarray(config.translation_um) - rotation @ _centre(config.shape90, config.voxel90_um))


def overlap_box_um(config: OrthogonalViewsConfig) -> tuple[np.ndarray, np.ndarray]:
    """Where both views see the specimen: the intersection of VW00's volume and VW90's bounding box, in VW00.

    Parameters
    ----------
    config : OrthogonalViewsConfig
        The views and the truth between them.

    Returns
    -------
    low, high : ndarray
        (z, y, x) corners in the VW00 frame, µm; ``high <= low`` on some axis when the views do not overlap.
    """
    transform = true_vw90_to_vw00(config)
    corners = np.array(list(itertools.product(*((0.0, extent) for extent in _extent(config.shape90, config.voxel90_um)))))
    mapped = corners @ transform[:3, :3].T + transform[:3, 3]
    return np.maximum(mapped.min(axis=0), 0.0), np.minimum(mapped.max(axis=0), _extent(config.shape00, config.voxel00_um))


def orthogonal_ground_truth(config: OrthogonalViewsConfig) -> OrthogonalTruth:
    """The truth of the views that ``config`` describes (no image is rendered).

    Parameters
    ----------
    config : OrthogonalViewsConfig
        What to simulate.

    Returns
    -------
    OrthogonalTruth
        Transform (true and nominal), beads, isotropic grid and PSF widths in the output frame.
    """
    truth = true_vw90_to_vw00(config)
    psf = {"vw00": np.diag(config.psf_sigma_um**2), "vw90": truth[:3, :3] @ np.diag(config.psf_sigma_um**2) @ truth[:3, :3].T}
    bead = np.eye(3) * config.bead_sigma_um**2
    return OrthogonalTruth(
        shape00=config.shape00,
        shape90=config.shape90,
        voxel00_um=config.voxel00_um,
        voxel90_um=config.voxel90_um,
        vw90_to_vw00=truth.tolist(),
        nominal_vw90_to_vw00=nominal_vw90_to_vw00(config.shape90, config.voxel90_um, config.shape00, config.voxel00_um).tolist(),
        iso_voxel_um=config.resolved_iso_voxel_um,
        iso_shape=_iso_shape(config),
        beads_um=[tuple(bead_um) for bead_um in _specimen(config).beads.tolist()],
        psf_fwhm_um={view: tuple(_profile_fwhm(covariance).tolist()) for view, covariance in psf.items()},
        bead_fwhm_um={view: tuple(_profile_fwhm(covariance + bead).tolist()) for view, covariance in psf.items()},
        config=config,
    )


def simulate_orthogonal_views(config: OrthogonalViewsConfig) -> OrthogonalViews:
    """Render both views, the sharp specimen and the truth.

    Parameters
    ----------
    config : OrthogonalViewsConfig
        What to simulate; the seed makes the result deterministic.

    Returns
    -------
    OrthogonalViews
        uint16 views with PSF and noise, the float32 sharp specimen on the isotropic grid, truth and beads.

    Raises
    ------
    ValueError
        If the beads do not fit the overlap with their separation and margin.

    References
    ----------
    S. Preibisch et al., Nat. Methods 11, 645-648 (2014): multiview imaging with per-view anisotropic PSFs.
    """
    specimen = _specimen(config)
    truth = true_vw90_to_vw00(config)
    views = [_render_view(specimen, config, view) for view in (0, 90)]
    iso = config.resolved_iso_voxel_um
    return OrthogonalViews(
        config=config,
        vw00=views[0],
        vw90=views[1],
        voxel00=config.voxel00_um,
        voxel90=config.voxel90_um,
        specimen_iso=_render(specimen, _iso_shape(config), (iso, iso, iso), np.eye(4), np.zeros(3), profile=_voxel_mean_profile),
        iso_voxel_um=iso,
        vw90_to_vw00=truth,
        beads_um=specimen.beads.copy(),
    )


def write_orthogonal_views(root: Path, config: OrthogonalViewsConfig, *, timepoint: int = 0, overwrite: bool = False) -> Path:
    """Write both views as the fused outputs of a timepoint would be, and their ``ground_truth.json``.

    Parameters
    ----------
    root : Path
        Output root (a fused root's layout): VW00 as cameras (0, 1) view 0 and VW90 as cameras (2, 3) view 90, both
        channel 0, specimen 0, in ``root/SPM00/TM<timepoint>/`` (OME-Zarr with their voxel sizes), then
        ``root/SPM00/TM<timepoint>/ground_truth.json``
        (``root/ground_truth.json`` for timepoint 0 too).
    config : OrthogonalViewsConfig
        What to simulate (one config per timepoint: a series varies its transform or seed).
    timepoint : int
        The timepoint the views are written as.
    overwrite : bool
        Replace volumes already there instead of refusing.

    Returns
    -------
    Path
        The ground truth file (:class:`OrthogonalTruth`), written last, once both volumes are complete. Each view
        is rendered into memory-mapped scratch files beside it, so full-size views (4.6 GB each) need little memory;
        the sharp specimen is not rendered.

    Raises
    ------
    FileExistsError
        If a volume exists already and ``overwrite`` is False.
    """
    root = Path(root)
    specimen = _specimen(config)
    truth = orthogonal_ground_truth(config)
    for cameras, view, voxel in (((0, 1), 0, config.voxel00_um), ((2, 3), 90, config.voxel90_um)):
        paths = FusedPaths(root, PairId(specimen=0, timepoint=timepoint, cameras=cameras, view=view, channel=0))
        paths.folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".orthogonal-render-", dir=paths.folder) as scratch:  # full-size views exceed memory
            volume = _render_view(specimen, config, view, scratch=Path(scratch))
            write_ome_zarr(paths.volume, volume, voxel_size_um=voxel, overwrite=overwrite)
            del volume
    truth.save(paths.folder / GROUND_TRUTH_NAME)
    if timepoint == 0:
        truth.save(root / GROUND_TRUTH_NAME)
    return root / GROUND_TRUTH_NAME if timepoint == 0 else paths.folder / GROUND_TRUTH_NAME


def measure_point_source(
    volume: np.ndarray,
    near_um: Sequence[float],
    voxel_size_um: Sequence[float],
    *,
    search_radius_um: float = 3.0,
    half_width_um: float = 10.0,
) -> PointSource:
    """Centre and FWHM of a point source (a bead) along each axis of a volume.

    The brightest voxel within ``search_radius_um`` of ``near_um`` is taken as the peak; along each axis, a
    Gaussian plus a constant is fitted by least squares to the profile through it. For a Gaussian spot the
    profile's width is the spot's conditional width along that axis, whatever the peak voxel's offset across it.

    Parameters
    ----------
    volume : ndarray
        (z, y, x) image.
    near_um : sequence of float
        Expected centre (z, y, x) in the volume's frame (voxel ``k`` at ``k * voxel``), µm.
    voxel_size_um : sequence of float
        Voxel size (z, y, x), µm.
    search_radius_um : float
        Half-size of the box searched for the peak, µm.
    half_width_um : float
        Half-length of each fitted profile, µm; about twice the widest FWHM expected.

    Returns
    -------
    PointSource
        Centre and FWHM (z, y, x) in µm, and the peak voxel.

    Raises
    ------
    ValueError
        If the volume is not 3-D, ``near_um`` lies outside it, or a profile cannot be fitted.

    References
    ----------
    R. W. Cole, T. Jinadasa and C. M. Brown, "Measuring and interpreting point spread functions to determine
    confocal microscope resolution and ensure quality control", Nat. Protoc. 6, 1929-1941 (2011).
    """
    volume = np.asarray(volume)
    voxel = np.asarray(voxel_size_um, dtype=float)
    if volume.ndim != 3:
        raise ValueError(f"volume of shape {volume.shape}: expected (z, y, x)")
    near = np.asarray(near_um, dtype=float) / voxel
    shape = np.asarray(volume.shape)
    if np.any(near < -0.5) or np.any(near > shape - 0.5):
        raise ValueError(f"near_um {list(near_um)} lies outside the volume of {volume.shape} voxels of {voxel.tolist()} µm")
    reach = search_radius_um / voxel
    low = np.clip(np.floor(near - reach), 0, shape - 1).astype(int)
    high = np.clip(np.ceil(near + reach) + 1, low + 1, shape).astype(int)
    box = volume[tuple(slice(a, b) for a, b in zip(low, high))]
    peak = tuple(int(index) for index in low + np.unravel_index(np.argmax(box), box.shape))
    center, fwhm = np.zeros(3), np.zeros(3)
    for axis in range(3):
        half = int(np.ceil(half_width_um / voxel[axis]))
        start, stop = max(peak[axis] - half, 0), min(peak[axis] + half + 1, volume.shape[axis])
        line = list(peak)
        line[axis] = slice(start, stop)
        mean, sigma = _fit_gaussian(np.arange(start, stop, dtype=float), volume[tuple(line)].astype(float))
        center[axis], fwhm[axis] = mean * voxel[axis], FWHM_PER_SIGMA * sigma * voxel[axis]
    return PointSource(center_um=center, fwhm_um=fwhm, peak=peak)


# --- specimen ---------------------------------------------------------------------------------------------------


def _specimen(config: OrthogonalViewsConfig) -> _Specimen:
    """Body, nuclei and beads of ``config`` in the VW00 frame, from the seed."""
    low, high = overlap_box_um(config)
    center, semi = (low + high) / 2, np.asarray(config.body_semi_axes) * (high - low)
    rng = np.random.default_rng([config.seed, _SPECIMEN_STREAM])
    nuclei = center + semi * _uniform_in_ball(rng, config.n_nuclei, NUCLEUS_RADIUS)
    nucleus_sigmas = rng.uniform(*config.nucleus_sigma_um, size=config.n_nuclei)
    nucleus_peaks = config.nucleus_peak_adu * rng.uniform(0.6, 1.0, size=config.n_nuclei)
    beads = _place_beads(config, nuclei, low, high, rng)
    bead_widths = np.sqrt(config.psf_sigma_um**2 + config.bead_sigma_um**2)
    bead_peak = config.bead_peak_adu * np.prod(bead_widths) / config.bead_sigma_um**3  # blurred peak = bead_peak_adu
    return _Specimen(
        body_center=center,
        body_semi_axes=semi,
        body_edge=config.body_edge_um,
        cytoplasm=config.cytoplasm_adu,
        blob_centers=np.concatenate([nuclei, beads]),
        blob_sigmas=np.concatenate([nucleus_sigmas, np.full(len(beads), config.bead_sigma_um)]),
        blob_peaks=np.concatenate([nucleus_peaks, np.full(len(beads), bead_peak)]),
        n_beads=len(beads),
    )


def _place_beads(config: OrthogonalViewsConfig, nuclei: np.ndarray, low: np.ndarray, high: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n_beads, 3) positions in both views, ``bead_margin_um`` from their borders, apart from beads and nuclei."""
    margin, separation = config.bead_margin_um, config.bead_separation_um
    to_vw90 = np.linalg.inv(true_vw90_to_vw00(config))
    extent90 = _extent(config.shape90, config.voxel90_um)
    beads: list[np.ndarray] = []
    for candidate in rng.uniform(low + margin, high - margin, size=(MAX_BEAD_TRIALS * config.n_beads, 3)):
        if len(beads) == config.n_beads:
            break
        in90 = to_vw90[:3, :3] @ candidate + to_vw90[:3, 3]
        inside90 = np.all((in90 >= margin) & (in90 <= extent90 - margin))
        clear = _distance(nuclei, candidate) >= separation / 2 and _distance(np.asarray(beads), candidate) >= separation
        if inside90 and clear:
            beads.append(candidate)
    if len(beads) < config.n_beads:
        raise ValueError(
            f"only {len(beads)} of {config.n_beads} beads fit the views' overlap {np.round(high - low, 1).tolist()} µm "
            f"with bead_separation_um {separation} and bead_margin_um {margin}: ask for fewer beads or a larger volume"
        )
    return np.asarray(beads, dtype=float).reshape(-1, 3)


def _distance(points: np.ndarray, point: np.ndarray) -> float:
    """Least distance from ``point`` to ``points`` (inf for none)."""
    return float(np.min(np.linalg.norm(points - point, axis=1), initial=np.inf)) if len(points) else np.inf


def _uniform_in_ball(rng: np.random.Generator, count: int, radius: float) -> np.ndarray:
    """``count`` points uniformly distributed in the ball of ``radius``, (count, 3)."""
    directions = rng.standard_normal((count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return directions * radius * rng.uniform(size=(count, 1)) ** (1 / 3)


# --- image formation --------------------------------------------------------------------------------------------

Profile = Callable[[np.ndarray, float], np.ndarray]
"""1-D factor of a Gaussian blob: offsets from its centre and its sigma, both in voxels -> weights (peak 1)."""


def _point_profile(offsets: np.ndarray, sigma: float) -> np.ndarray:
    """The Gaussian at the voxel centres."""
    return np.exp(-(offsets**2) / (2 * sigma * sigma))


def _voxel_mean_profile(offsets: np.ndarray, sigma: float) -> np.ndarray:
    """The Gaussian's mean over each voxel (width 1): ``sigma sqrt(pi / 2) [erf((o + 1/2) / (sqrt 2 sigma)) - erf(...)]``."""
    scale = np.sqrt(2.0) * sigma
    return sigma * np.sqrt(np.pi / 2) * (special.erf((offsets + 0.5) / scale) - special.erf((offsets - 0.5) / scale))


def _render_view(specimen: _Specimen, config: OrthogonalViewsConfig, view: int, *, scratch: Path | None = None) -> np.ndarray:
    """View 0 or 90 of ``specimen`` with PSF and noise, uint16; in memory-mapped files in ``scratch`` if given."""
    shape, voxel, to_vw00, stream = (
        (config.shape00, config.voxel00_um, np.eye(4), _VW00_NOISE_STREAM)
        if view == 0
        else (config.shape90, config.voxel90_um, true_vw90_to_vw00(config), _VW90_NOISE_STREAM)
    )

    def array(name: str, dtype: type) -> np.ndarray:
        if scratch is None:
            return np.empty(shape, dtype=dtype)
        return np.lib.format.open_memmap(scratch / name, mode="w+", dtype=dtype, shape=tuple(shape))

    signal = _render(specimen, shape, voxel, to_vw00, config.psf_sigma_um, profile=_point_profile, out=array("signal.npy", np.float32))
    return _digitize(signal, config, stream, out=array("view.npy", np.uint16))


def _render(
    specimen: _Specimen,
    shape: Sequence[int],
    voxel: Sequence[float],
    to_vw00: np.ndarray,
    psf_sigma: np.ndarray,
    *,
    profile: Profile,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Noise-free image (z, y, x) float32 of ``specimen`` blurred by an axis-aligned Gaussian PSF, in a view's frame.

    ``to_vw00`` maps the view's µm to VW00's; ``psf_sigma`` (z, y, x) µm is along the view's axes (zeros: no PSF);
    ``profile`` samples the blurred blobs (at voxel centres, or averaged over voxels); ``out``: where (float32).
    """
    voxel = np.asarray(voxel, dtype=float)
    rotation, shift = to_vw00[:3, :3], to_vw00[:3, 3]
    covariance = rotation @ np.diag(psf_sigma**2) @ rotation.T
    rows, cols = (np.arange(size) * step for size, step in zip(shape[1:], voxel[1:]))
    image = np.empty(tuple(shape), dtype=np.float32) if out is None else out
    for plane in range(shape[0]):
        points = [rotation[a, 0] * plane * voxel[0] + shift[a] + rotation[a, 1] * rows[:, None] + rotation[a, 2] * cols[None, :] for a in range(3)]
        image[plane] = _body(specimen, points, covariance)
    centers = (specimen.blob_centers - shift) @ rotation  # rows: R^T (c - t), in the view's frame
    widths = np.sqrt(specimen.blob_sigmas[:, None] ** 2 + psf_sigma[None, :] ** 2)
    peaks = specimen.blob_peaks * specimen.blob_sigmas**3 / np.prod(widths, axis=1)
    for center, width, peak in zip(centers / voxel, widths / voxel, peaks):
        _add_blob(image, center, width, float(peak), profile)
    return image


def _body(specimen: _Specimen, points: list[np.ndarray], covariance: np.ndarray) -> np.ndarray:
    """Blurred body at VW00 positions ``points`` (z, y, x arrays), PSF ``covariance`` in VW00 (planar approximation).

    The edge is ``erfc(d / (sqrt 2 s)) / 2`` with ``d`` the signed distance to the surface, to first order
    ``(r - 1) / |grad r|`` for the ellipsoidal radius ``r``, and ``s^2 = body_edge^2 + n^T C n`` along the normal ``n``.
    """
    gradient = [(p - c) / (a * a) for p, c, a in zip(points, specimen.body_center, specimen.body_semi_axes)]
    radius = np.sqrt(sum((g * a) ** 2 for g, a in zip(gradient, specimen.body_semi_axes)))
    norm2 = sum(g * g for g in gradient)
    along_normal = sum(covariance[a, b] * gradient[a] * gradient[b] for a in range(3) for b in range(3))
    along_normal = np.divide(along_normal, norm2, out=np.zeros_like(norm2), where=norm2 > 0)
    reach = np.divide(radius, np.sqrt(norm2), out=np.full_like(norm2, specimen.body_semi_axes.max()), where=norm2 > 0)
    distance = (radius - 1) * reach
    return specimen.cytoplasm * 0.5 * special.erfc(distance / np.sqrt(2 * (specimen.body_edge**2 + along_normal)))


def _add_blob(image: np.ndarray, center: np.ndarray, sigma: np.ndarray, peak: float, profile: Profile) -> None:
    """Add an axis-aligned Gaussian (voxels) of ``peak`` to ``image`` within ``GAUSSIAN_SUPPORT`` sigmas (+1 voxel)."""
    region, factors = [], []
    for c, s, size in zip(center, sigma, image.shape):
        start, stop = max(int(np.ceil(c - GAUSSIAN_SUPPORT * s - 1)), 0), min(int(np.floor(c + GAUSSIAN_SUPPORT * s + 1)) + 1, size)
        if start >= stop:
            return
        region.append(slice(start, stop))
        factors.append(profile(np.arange(start, stop) - c, float(s)))
    image[tuple(region)] += (peak * factors[0][:, None, None] * factors[1][None, :, None] * factors[2][None, None, :]).astype(np.float32)


def _digitize(signal: np.ndarray, config: OrthogonalViewsConfig, stream: int, *, out: np.ndarray | None = None) -> np.ndarray:
    """``offset + Poisson(s e) / e + N(0, read_noise)``, rounded to uint16 (into ``out`` if given), plane by plane
    (``signal`` is overwritten)."""
    rng = np.random.default_rng([config.seed, stream])
    electrons = config.electrons_per_adu
    out = np.empty(signal.shape, dtype=np.uint16) if out is None else out
    for plane, values in enumerate(signal):
        counts = rng.poisson(np.maximum(values, 0) * electrons) / electrons
        values[...] = counts + config.background_adu + config.read_noise_adu * rng.standard_normal(values.shape)
        out[plane] = np.clip(np.rint(values), 0, 65535)
    return out


# --- geometry and measurement -----------------------------------------------------------------------------------


def _rotation(axis: Sequence[float], degrees: float) -> np.ndarray:
    """Right-handed rotation by ``degrees`` about ``axis`` (z, y, x), on (z, y, x) vectors.

    Rodrigues' formula in (x, y, z), where the cross product is right-handed, then both indices reversed.
    """
    x, y, z = np.asarray(axis, dtype=float)[::-1] / np.linalg.norm(axis)
    cross = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    angle = np.radians(degrees)
    rotation_xyz = np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross
    return rotation_xyz[::-1, ::-1]


def _affine(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """4 x 4 affine ``[[R, t], [0, 1]]``."""
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = rotation, translation
    return affine


def _extent(shape: Sequence[int], voxel: Sequence[float]) -> np.ndarray:
    """Position (z, y, x) µm of a volume's last voxel: the volume spans ``[0, extent]``."""
    return (np.asarray(shape) - 1) * np.asarray(voxel, dtype=float)


def _centre(shape: Sequence[int], voxel: Sequence[float]) -> np.ndarray:
    """Position (z, y, x) µm of a volume's centre."""
    return _extent(shape, voxel) / 2


def _iso_shape(config: OrthogonalViewsConfig) -> tuple[int, int, int]:
    """Shape of the isotropic grid covering VW00's volume from its voxel 0."""
    steps = np.floor(_extent(config.shape00, config.voxel00_um) / config.resolved_iso_voxel_um + 1e-9).astype(int) + 1
    return int(steps[0]), int(steps[1]), int(steps[2])


def _profile_fwhm(covariance: np.ndarray) -> np.ndarray:
    """FWHM (z, y, x) of a Gaussian of ``covariance`` along each axis, on the line through its peak."""
    return FWHM_PER_SIGMA / np.sqrt(np.diag(np.linalg.inv(covariance)))


def _gaussian(x: np.ndarray, amplitude: float, mean: float, sigma: float, offset: float) -> np.ndarray:
    return amplitude * np.exp(-((x - mean) ** 2) / (2 * sigma * sigma)) + offset


def _fit_gaussian(positions: np.ndarray, profile: np.ndarray) -> tuple[float, float]:
    """``(mean, sigma)`` in samples of a Gaussian plus constant fitted to ``profile``."""
    if len(positions) < 4:
        raise ValueError(f"a profile of {len(positions)} samples is too short to fit a Gaussian and a background")
    offset, amplitude = profile.min(), profile.max() - profile.min()
    above = np.count_nonzero(profile - offset > amplitude / 2)
    guess = (amplitude, positions[np.argmax(profile)], max(above / FWHM_PER_SIGMA, 0.5), offset)
    bounds = ([0.0, positions[0], 0.1, -np.inf], [np.inf, positions[-1], positions[-1] - positions[0], np.inf])
    try:
        (_, mean, sigma, _), _ = curve_fit(_gaussian, positions, profile, p0=guess, bounds=bounds)
    except RuntimeError as error:
        raise ValueError(f"no Gaussian fits the profile {np.round(profile, 1).tolist()}: {error}") from error
    return float(mean), float(sigma)
