"""Geometry of the two orthogonal views: affines, the nominal transform, resampling onto an isotropic grid."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.transform import Rotation

from isoview_core.isotropic import (
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
from isoview_core.synthetic import nominal_vw90_to_vw00 as simulator_nominal

VOXEL = (2.0, 0.8, 0.7)
ORIGIN = (3.0, -1.5, 0.25)


def test_index_to_physical_places_voxels_and_round_trips() -> None:
    affine = index_to_physical(VOXEL, ORIGIN)
    index = np.array([5.0, 7.0, 11.0, 1.0])
    np.testing.assert_allclose(affine @ index, [3.0 + 10.0, -1.5 + 5.6, 0.25 + 7.7, 1.0])
    points = np.random.default_rng(0).uniform(-50, 50, (4, 20))
    points[3] = 1.0
    np.testing.assert_allclose(affine @ np.linalg.inv(affine) @ points, points, atol=1e-12)


def test_index_to_physical_rejects_a_bad_voxel_size() -> None:
    with pytest.raises(ValueError, match="three positive sizes"):
        index_to_physical((2.0, 0.0, 1.0))


def test_rigid_transform_round_trips_and_measures_its_angle() -> None:
    rotation = Rotation.from_rotvec(np.radians(1.7) * np.array([0.6, 0.0, -0.8])).as_matrix()
    transform = rigid_transform(rotation, (12.0, -4.0, 7.5))
    points = np.vstack([np.random.default_rng(1).uniform(-100, 100, (3, 10)), np.ones(10)])
    np.testing.assert_allclose(np.linalg.inv(transform) @ transform @ points, points, atol=1e-10)
    assert rotation_angle_deg(transform) == pytest.approx(1.7, abs=1e-9)
    assert rotation_angle_deg(rotation.T @ rotation) == pytest.approx(0.0, abs=1e-6)


def test_nominal_turns_vw90_z_into_vw00_x_and_x_into_minus_z() -> None:
    np.testing.assert_array_equal(NOMINAL_ROTATION @ [1.0, 0.0, 0.0], [0.0, 0.0, 1.0])  # VW90 z -> VW00 +x
    np.testing.assert_array_equal(NOMINAL_ROTATION @ [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0])  # VW90 x -> VW00 -z
    np.testing.assert_array_equal(NOMINAL_ROTATION @ [0.0, 1.0, 0.0], [0.0, 1.0, 0.0])
    assert np.linalg.det(NOMINAL_ROTATION) == pytest.approx(1.0)


def test_nominal_maps_the_centre_of_vw90_onto_the_centre_of_vw00() -> None:
    shape90, voxel90, shape00, voxel00 = (40, 90, 110), (2.5, 0.5, 0.5), (60, 100, 120), (2.0, 1.0, 1.0)
    nominal = nominal_vw90_to_vw00(shape90, voxel90, shape00, voxel00)
    centre90 = volume_centre_um(shape90, voxel90)
    np.testing.assert_allclose(nominal @ [*centre90, 1.0], [*volume_centre_um(shape00, voxel00), 1.0], atol=1e-12)
    np.testing.assert_allclose(centre90, [48.75, 22.25, 27.25])
    # one um further along VW90's z is one um further along VW00's x
    np.testing.assert_allclose(nominal @ [*(centre90 + [1.0, 0, 0]), 1.0] - nominal @ [*centre90, 1.0], [0, 0, 1.0, 0])


@pytest.mark.parametrize(
    ("shape90", "voxel90", "shape00", "voxel00"),
    [((48, 96, 96), (2.0, 1.0, 1.0), (48, 96, 96), (2.0, 1.0, 1.0)), ((30, 70, 90), (3.0, 0.4, 0.5), (64, 80, 100), (2.0, 0.41, 0.41))],
)
def test_nominal_agrees_with_the_simulator(shape90, voxel90, shape00, voxel00) -> None:
    np.testing.assert_allclose(
        nominal_vw90_to_vw00(shape90, voxel90, shape00, voxel00), simulator_nominal(shape90, voxel90, shape00, voxel00), atol=1e-12
    )


def test_isotropic_grid_covers_the_view_from_its_first_voxel() -> None:
    grid = isotropic_grid((48, 96, 96), (2.0, 1.0, 1.0), 2.0)
    assert grid.shape == (48, 48, 48)  # extents 94, 95, 95 um: 47 steps of 2 um, plus the first voxel
    assert isotropic_grid((48, 96, 96), (2.0, 1.0, 1.0), 0.5).shape == (189, 191, 191)
    np.testing.assert_allclose(grid.centre_um(), [47.0, 47.0, 47.0])
    with pytest.raises(ValueError, match="positive"):
        isotropic_grid((48, 96, 96), (2.0, 1.0, 1.0), 0.0)


def _analytic(points: np.ndarray) -> np.ndarray:
    """A smooth test function of physical (z, y, x) points (um), wavelengths of tens of um."""
    z, y, x = points
    return np.sin(2 * np.pi * z / 41.0 + 0.3) * np.cos(2 * np.pi * y / 37.0) + 0.5 * np.sin(2 * np.pi * (x + 0.5 * z) / 29.0)


def _view_of_analytic(shape: tuple[int, int, int], voxel, origin, view_to_output: np.ndarray) -> np.ndarray:
    """A view that samples :func:`_analytic` (defined in the output frame) at its voxels, in its own frame."""
    index = np.indices(shape, dtype=np.float64).reshape(3, -1)
    physical = index_to_physical(voxel, origin) @ np.vstack([index, np.ones(index.shape[1])])
    return _analytic((view_to_output @ physical)[:3]).reshape(shape)


def _turned() -> np.ndarray:
    """The nominal transform of the test views, turned by 1.8 degrees and shifted by (6, -4, 9) um."""
    nominal = nominal_vw90_to_vw00((40, 90, 100), VOXEL, (40, 90, 100), VOXEL)
    small = Rotation.from_rotvec(np.radians(1.8) * np.array([0.48, 0.6, 0.64])).as_matrix()
    return rigid_transform(small, (6.0, -4.0, 9.0)) @ nominal


@pytest.mark.parametrize(("order", "interior_tolerance"), [(1, 0.02), (3, 5e-4)])
def test_resampling_a_known_function_through_a_known_transform_recovers_it(order: int, interior_tolerance: float) -> None:
    transform = _turned()
    view = _view_of_analytic((40, 90, 100), VOXEL, ORIGIN, transform)
    grid = IsotropicGrid(shape=(34, 30, 36), voxel_um=2.3, origin_um=(5.0, 4.0, 3.0))
    resampled = resample_onto_grid(view, VOXEL, transform, grid, origin_um=ORIGIN, order=order, block_size=16, outside=np.nan)

    index = np.indices(grid.shape, dtype=np.float64).reshape(3, -1)
    physical = grid.index_to_physical() @ np.vstack([index, np.ones(index.shape[1])])
    source = (np.linalg.inv(index_to_physical(VOXEL, ORIGIN)) @ np.linalg.inv(transform) @ physical)[:3]
    from_edge = np.minimum(source, np.array([39, 89, 99])[:, None] - source).min(axis=0).reshape(grid.shape)
    inside = from_edge >= 0
    assert 0.3 < inside.mean() < 0.99  # the grid reaches beyond the view on some side: both branches are tested
    np.testing.assert_array_equal(np.isfinite(resampled), inside)
    error = np.abs(resampled - _analytic(physical[:3]).reshape(grid.shape))
    # linear: h^2 / 8 |f''| with h = 2 um axially; cubic: fourth order, away from the view's borders where the
    # spline's boundary condition (reflection) costs accuracy
    assert error[from_edge >= 3].max() < interior_tolerance
    assert error[inside].max() < 0.02


@pytest.mark.parametrize("order", [1, 3])
def test_blockwise_resampling_equals_one_shot(order: int) -> None:
    transform = _turned()
    view = np.random.default_rng(2).normal(size=(40, 90, 100)).astype(np.float32)
    grid = IsotropicGrid(shape=(40, 41, 43), voxel_um=2.0)
    blocks = resample_onto_grid(view, VOXEL, transform, grid, origin_um=ORIGIN, order=order, block_size=9)
    whole = resample_onto_grid(view, VOXEL, transform, grid, origin_um=ORIGIN, order=order, block_size=64)
    assert np.count_nonzero(whole) > 0.5 * whole.size
    np.testing.assert_allclose(blocks, whole, rtol=0, atol=1e-5)


@pytest.mark.parametrize("order", [1, 3])
def test_smoothed_resampling_block_by_block_equals_resampling_the_smoothed_view(order: int) -> None:
    transform = _turned()
    view = np.random.default_rng(3).normal(size=(40, 90, 100)).astype(np.float32)
    grid = IsotropicGrid(shape=(40, 41, 43), voxel_um=2.0)
    sigmas_um = (0.0, 1.6, 2.1)
    smoothed = ndimage.gaussian_filter(view, np.divide(sigmas_um, VOXEL), mode="reflect", truncate=4.0)
    expected = resample_onto_grid(smoothed, VOXEL, transform, grid, origin_um=ORIGIN, order=order, block_size=64)
    blocks = resample_onto_grid(view, VOXEL, transform, grid, origin_um=ORIGIN, order=order, block_size=9, smoothing_um=sigmas_um)
    assert np.count_nonzero(expected) > 0.5 * expected.size
    np.testing.assert_allclose(blocks, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("order", [1, 3])
@pytest.mark.parametrize("sigmas_um", [None, (0.9, 1.6, 0.0)])
def test_an_axis_aligned_view_is_resampled_by_separable_operators_to_the_general_paths_values(order: int, sigmas_um) -> None:
    view = np.random.default_rng(4).normal(100.0, 10.0, size=(40, 90, 100)).astype(np.float32)
    grid = IsotropicGrid(shape=(45, 41, 43), voxel_um=2.1, origin_um=(-3.0, 5.5, 2.0))  # beyond the view on two sides
    scaled = rigid_transform(np.eye(3), (1.5, -2.0, 0.5))
    # an off-diagonal term far below any interpolation's resolution takes the general (3-D) path
    general = scaled.copy()
    general[0, 1] = 1e-300
    separable = resample_onto_grid(view, VOXEL, scaled, grid, order=order, block_size=16, outside=np.nan, smoothing_um=sigmas_um)
    expected = resample_onto_grid(view, VOXEL, general, grid, order=order, block_size=16, outside=np.nan, smoothing_um=sigmas_um)
    inside = np.isfinite(expected)
    assert 0.3 < inside.mean() < 0.95
    np.testing.assert_array_equal(np.isfinite(separable), inside)
    np.testing.assert_allclose(separable[inside], expected[inside], rtol=0, atol=1e-3)


def test_resampling_temporaries_are_bounded_by_the_block_not_the_volume() -> None:
    transform = _turned()
    grid = IsotropicGrid(shape=(48, 48, 48), voxel_um=1.5)

    def peak_temporaries(view: np.ndarray, block_size: int) -> int:
        tracemalloc.start()
        out = resample_onto_grid(view, VOXEL, transform, grid, origin_um=ORIGIN, order=3, block_size=block_size)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak - out.nbytes

    rng = np.random.default_rng(3)
    view, larger = rng.normal(size=(40, 90, 100)).astype(np.float32), rng.normal(size=(80, 180, 200)).astype(np.float32)
    blocks, blocks_of_larger, one_shot = peak_temporaries(view, 16), peak_temporaries(larger, 16), peak_temporaries(view, 48)
    # the same grid from an 8x larger view: only the sub-volumes under the blocks are read
    assert blocks_of_larger < 1.5 * blocks
    assert blocks_of_larger < larger.nbytes / 2
    assert one_shot > 4 * blocks


def test_resampling_rejects_what_it_cannot_do() -> None:
    grid = IsotropicGrid(shape=(4, 4, 4), voxel_um=1.0)
    with pytest.raises(ValueError, match="order"):
        resample_onto_grid(np.zeros((4, 4, 4)), (1, 1, 1), np.eye(4), grid, order=2)
    with pytest.raises(ValueError, match="volume"):
        resample_onto_grid(np.zeros((4, 4)), (1, 1, 1), np.eye(4), grid)
