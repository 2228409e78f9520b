"""Tests of the two simulated orthogonal views and their truth (isoview_core.synthetic.orthogonal)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from isoview_core.formats.omezarr import ome_zarr_voxel_size, read_ome_zarr
from isoview_core.synthetic import (
    GROUND_TRUTH_NAME,
    FWHM_PER_SIGMA,
    OrthogonalTruth,
    OrthogonalViews,
    OrthogonalViewsConfig,
    measure_point_source,
    nominal_vw90_to_vw00,
    simulate_orthogonal_views,
    true_vw90_to_vw00,
    write_orthogonal_views,
)

CONFIG = OrthogonalViewsConfig(
    shape00=(48, 96, 96),
    shape90=(48, 96, 96),
    voxel00_um=(2.0, 1.0, 1.0),
    voxel90_um=(2.0, 1.0, 1.0),
    iso_voxel_um=1.0,
    psf_lateral_fwhm_um=2.0,
    psf_axial_fwhm_um=8.0,
    n_nuclei=60,
    n_beads=20,
    rotation_axis=(0.3, 0.8, -0.5),
    rotation_deg=1.7,
    translation_um=(5.0, -3.0, 7.0),
)
"""Small views (96 µm cubes, 1 µm pixels, 2 µm z steps) with a PSF 4x longer along each view's detection axis."""


@pytest.fixture(scope="module")
def views() -> OrthogonalViews:
    return simulate_orthogonal_views(CONFIG)


def _apply(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(n, 3) points (z, y, x) through a 4 x 4 affine on column vectors."""
    return points @ affine[:3, :3].T + affine[:3, 3]


def _beads_in(volume: np.ndarray, voxel: tuple[float, float, float], expected_um: np.ndarray):
    """Point sources measured near each expected position."""
    return [measure_point_source(volume, position, voxel) for position in expected_um]


def test_truth_is_rigid_and_turns_the_configured_angle_about_the_configured_axis_away_from_nominal(views: OrthogonalViews) -> None:
    rotation = views.vw90_to_vw00[:3, :3]
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(views.vw90_to_vw00[3], [0, 0, 0, 1])
    nominal = nominal_vw90_to_vw00(CONFIG.shape90, CONFIG.voxel90_um, CONFIG.shape00, CONFIG.voxel00_um)
    small = rotation @ nominal[:3, :3].T
    assert np.degrees(np.arccos((np.trace(small) - 1) / 2)) == pytest.approx(1.7, abs=1e-9)
    small_xyz = small[::-1, ::-1]  # right-handed axis from the antisymmetric part, in (x, y, z)
    axis_xyz = np.array([small_xyz[2, 1] - small_xyz[1, 2], small_xyz[0, 2] - small_xyz[2, 0], small_xyz[1, 0] - small_xyz[0, 1]])
    configured = np.array(CONFIG.rotation_axis) / np.linalg.norm(CONFIG.rotation_axis)
    np.testing.assert_allclose(axis_xyz[::-1] / np.linalg.norm(axis_xyz), configured, atol=1e-9)
    centre = np.array([47.0, 95.0, 95.0]) / 2 * [2.0, 1.0, 1.0]  # both volumes: (shape - 1) / 2 * voxel
    np.testing.assert_allclose(_apply(views.vw90_to_vw00, centre[None])[0], centre + [5.0, -3.0, 7.0], atol=1e-9)


def test_nominal_maps_vw90s_centre_onto_vw00s_and_its_detection_axis_onto_x() -> None:
    shape90, voxel90, shape00, voxel00 = (40, 80, 120), (2.5, 0.5, 0.5), (50, 100, 90), (2.0, 1.0, 1.0)
    nominal = nominal_vw90_to_vw00(shape90, voxel90, shape00, voxel00)
    centre90 = np.array([39 * 2.5, 79 * 0.5, 119 * 0.5]) / 2
    np.testing.assert_allclose(_apply(nominal, centre90[None])[0], [49.0, 49.5, 44.5], atol=1e-12)
    np.testing.assert_array_equal(nominal[:3, :3] @ [1, 0, 0], [0, 0, 1])  # VW90's z -> VW00's +x
    np.testing.assert_array_equal(nominal[:3, :3] @ [0, 0, 1], [-1, 0, 0])  # VW90's x -> VW00's -z
    np.testing.assert_array_equal(nominal[:3, :3] @ [0, 1, 0], [0, 1, 0])
    unmoved = CONFIG.model_copy(update={"rotation_deg": 0.0, "translation_um": (0.0, 0.0, 0.0)})
    np.testing.assert_allclose(true_vw90_to_vw00(unmoved), nominal_vw90_to_vw00(CONFIG.shape90, CONFIG.voxel90_um, CONFIG.shape00, CONFIG.voxel00_um))


def test_beads_sit_in_vw00_where_the_truth_puts_them(views: OrthogonalViews) -> None:
    assert views.beads_um.shape == (20, 3)
    found = np.array([source.center_um for source in _beads_in(views.vw00, views.voxel00, views.beads_um)])
    error_voxels = np.abs(found - views.beads_um) / views.voxel00
    assert error_voxels.max() < 0.5, error_voxels.max(axis=0)
    assert np.median(error_voxels) < 0.1


def test_beads_seen_by_vw90_land_on_the_truth_through_the_transform_and_not_through_the_nominal(views: OrthogonalViews) -> None:
    expected90 = _apply(np.linalg.inv(views.vw90_to_vw00), views.beads_um)
    found90 = np.array([source.center_um for source in _beads_in(views.vw90, views.voxel90, expected90)])
    voxel90_in_vw00 = np.abs(views.vw90_to_vw00[:3, :3]) @ views.voxel90
    error_voxels = np.abs(_apply(views.vw90_to_vw00, found90) - views.beads_um) / voxel90_in_vw00
    assert error_voxels.max() < 0.5, error_voxels.max(axis=0)
    assert np.median(error_voxels) < 0.1
    nominal = nominal_vw90_to_vw00(CONFIG.shape90, CONFIG.voxel90_um, CONFIG.shape00, CONFIG.voxel00_um)
    assert np.linalg.norm(_apply(nominal, found90) - views.beads_um, axis=1).min() > 5.0


def test_each_views_axial_fwhm_along_its_own_z_is_3_to_5_times_its_lateral(views: OrthogonalViews) -> None:
    own = np.hypot([CONFIG.psf_axial_fwhm_um, CONFIG.psf_lateral_fwhm_um, CONFIG.psf_lateral_fwhm_um], FWHM_PER_SIGMA * CONFIG.bead_sigma_um)
    for volume, voxel, to_view in ((views.vw00, views.voxel00, np.eye(4)), (views.vw90, views.voxel90, np.linalg.inv(views.vw90_to_vw00))):
        fwhm = np.median([source.fwhm_um for source in _beads_in(volume, voxel, _apply(to_view, views.beads_um))], axis=0)
        assert 3.0 <= fwhm[0] / fwhm[1] <= 5.0 and 3.0 <= fwhm[0] / fwhm[2] <= 5.0, fwhm
        np.testing.assert_allclose(fwhm, own, rtol=0.1)


def test_in_the_output_frame_vw90_is_elongated_along_x(views: OrthogonalViews) -> None:
    step, offsets = 0.5, np.arange(-12.0, 12.01, 0.5)
    grid = np.stack(np.meshgrid(offsets, offsets, offsets, indexing="ij"), axis=-1).reshape(-1, 3)
    to_vw90 = np.linalg.inv(views.vw90_to_vw00)
    coefficients = ndimage.spline_filter(views.vw90.astype(np.float64), order=3)
    fwhms = []
    for bead in views.beads_um[:6]:
        samples = _apply(to_vw90, bead + grid) / views.voxel90
        resampled = ndimage.map_coordinates(coefficients, samples.T, order=3, prefilter=False).reshape((len(offsets),) * 3)
        fwhms.append(measure_point_source(resampled, (12.0, 12.0, 12.0), (step, step, step)).fwhm_um)
    fwhm = np.median(fwhms, axis=0)
    assert np.argmax(fwhm) == 2 and 3.0 <= fwhm[2] / fwhm[0] <= 5.0 and 3.0 <= fwhm[2] / fwhm[1] <= 5.0, fwhm
    np.testing.assert_allclose(fwhm, views.ground_truth()["bead_fwhm_um"]["vw90"], rtol=0.15)


def test_specimen_grid_has_the_configured_voxel_and_covers_vw00(views: OrthogonalViews) -> None:
    assert views.iso_voxel_um == 1.0 and views.specimen_iso.dtype == np.float32
    assert views.specimen_iso.shape == (95, 96, 96)  # voxels 0 .. 94 µm along z, 0 .. 95 µm along y and x
    extent00 = (np.array(CONFIG.shape00) - 1) * CONFIG.voxel00_um
    last = (np.array(views.specimen_iso.shape) - 1) * views.iso_voxel_um
    assert np.all(last <= extent00) and np.all(extent00 - last < views.iso_voxel_um)
    for bead in views.beads_um:
        near = tuple(slice(int(c) - 2, int(c) + 3) for c in np.rint(bead / views.iso_voxel_um))
        peak = np.array(np.unravel_index(np.argmax(views.specimen_iso[near]), (5, 5, 5))) + np.rint(bead).astype(int) - 2
        assert np.all(np.abs(peak * views.iso_voxel_um - bead) <= views.iso_voxel_um / 2 + 1e-9)
    default_iso = simulate_orthogonal_views(CONFIG.model_copy(update={"iso_voxel_um": None}))
    assert default_iso.iso_voxel_um == 2.0 and default_iso.specimen_iso.shape == (48, 48, 48)


def test_each_view_is_the_sharp_specimen_blurred_and_seen_through_the_truth(views: OrthogonalViews) -> None:
    sigma_um = np.array([CONFIG.psf_axial_fwhm_um, CONFIG.psf_lateral_fwhm_um, CONFIG.psf_lateral_fwhm_um]) / FWHM_PER_SIGMA
    nominal = nominal_vw90_to_vw00(CONFIG.shape90, CONFIG.voxel90_um, CONFIG.shape00, CONFIG.voxel00_um)

    def ncc(volume: np.ndarray, voxel: tuple[float, float, float], to_vw00: np.ndarray, psf_in_vw00: np.ndarray) -> float:
        blurred = ndimage.gaussian_filter(views.specimen_iso, psf_in_vw00 / views.iso_voxel_um, mode="constant")
        positions = np.indices(volume.shape).reshape(3, -1).T * voxel
        predicted = ndimage.map_coordinates(blurred, (_apply(to_vw00, positions) / views.iso_voxel_um).T, order=1)
        return float(np.corrcoef(predicted, volume.ravel().astype(float))[0, 1])

    assert ncc(views.vw00, views.voxel00, np.eye(4), sigma_um) > 0.98
    assert ncc(views.vw90, views.voxel90, views.vw90_to_vw00, sigma_um[::-1]) > 0.98  # VW90's axial PSF lies along x
    assert ncc(views.vw90, views.voxel90, nominal, sigma_um[::-1]) < 0.8
    assert ncc(views.vw00, views.voxel00, np.eye(4), sigma_um[::-1]) < 0.96
    assert ncc(views.vw90, views.voxel90, views.vw90_to_vw00, sigma_um) < 0.96


def test_the_seed_fixes_every_voxel(views: OrthogonalViews) -> None:
    again = simulate_orthogonal_views(CONFIG)
    for name in ("vw00", "vw90", "specimen_iso", "beads_um", "vw90_to_vw00"):
        np.testing.assert_array_equal(getattr(again, name), getattr(views, name))
    other = simulate_orthogonal_views(CONFIG.model_copy(update={"seed": 1}))
    assert not np.array_equal(other.vw00, views.vw00)
    assert np.abs(other.beads_um[0] - views.beads_um[0]).max() > 1.0


def test_written_views_and_ground_truth_round_trip(tmp_path: Path, views: OrthogonalViews) -> None:
    truth_path = write_orthogonal_views(tmp_path, CONFIG)
    assert truth_path == tmp_path / GROUND_TRUTH_NAME
    written = json.loads(truth_path.read_text(encoding="utf-8"))
    assert written == views.ground_truth()
    truth = OrthogonalTruth.load(truth_path)
    assert truth.config == CONFIG
    np.testing.assert_array_equal(truth.vw90_to_vw00, views.vw90_to_vw00)
    np.testing.assert_array_equal(truth.beads_um, views.beads_um)
    assert truth.iso_shape == views.specimen_iso.shape and truth.iso_voxel_um == views.iso_voxel_um
    np.testing.assert_allclose(truth.psf_fwhm_um["vw00"], (8.0, 2.0, 2.0))
    folder = tmp_path / "SPM00" / "TM000000"
    for name, volume, voxel in (("CM00_CM01_VW00", views.vw00, views.voxel00), ("CM02_CM03_VW90", views.vw90, views.voxel90)):
        path = folder / f"SPM00_TM000000_{name}_CHN00.ome.zarr"
        np.testing.assert_array_equal(read_ome_zarr(path)[...], volume)
        assert ome_zarr_voxel_size(path) == pytest.approx(voxel)
    with pytest.raises(FileExistsError):
        write_orthogonal_views(tmp_path, CONFIG)


def test_views_that_do_not_overlap_or_beads_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="views overlap on"):
        OrthogonalViewsConfig.model_validate(CONFIG.model_dump() | {"translation_um": (0.0, 0.0, 90.0)})
    with pytest.raises(ValueError, match="beads fit"):
        simulate_orthogonal_views(CONFIG.model_copy(update={"bead_separation_um": 60.0}))
