"""Fusion and multi-view deconvolution of the two orthogonal views against the simulator's truth (issue 16, step 3-4).

Done when: the isotropic volume's bead FWHM within 15 % between z, y and x, its axial FWHM at least 2x better than
VW00's own, and its per-plane NCC with the sharp specimen higher than either view alone (with deconvolution,
higher still); blockwise and in threads equal to one-shot; memory bounded by the block size, not the volume's.
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import zarr
from scipy import ndimage

from isoview_core.formats.scratch import ScratchVolume
from isoview_core.isotropic import IsotropicConfig, IsotropicGrid, isotropic_grid, nominal_vw90_to_vw00, resample_onto_grid
from isoview_core.isotropic.deconvolution import (
    FWHM_PER_SIGMA,
    GaussianPsf,
    IsotropicDeconvolutionConfig,
    deconvolve_views,
    presmoothing_sigmas_um,
    residual_covariance_um2,
    target_sigma_um,
)
from isoview_core.isotropic.fusion import (
    IsotropicFusionConfig,
    IsotropicVolume,
    block_region,
    content_grid,
    fuse_views,
    output_grid,
    placed_views,
    sample_onto_grid,
)
from isoview_core.isotropic.weights import blending_weights, content_weights, content_weights_halo
from isoview_core.synthetic import OrthogonalViews, OrthogonalViewsConfig, measure_point_source, simulate_orthogonal_views
from test_synthetic_orthogonal import CONFIG  # 96 um cubes, 1 um pixels, 2 um z steps; PSF 2 x 8 um FWHM: resolvable on a 1 um grid


STAGE = IsotropicConfig(voxel_um=1.0)
PSF = GaussianPsf(lateral_fwhm_um=CONFIG.psf_lateral_fwhm_um, axial_fwhm_um=CONFIG.psf_axial_fwhm_um)
LIGHT = IsotropicFusionConfig(content_sigmas_um=(1.0, 2.0))
"""Content weights with a small halo (12 voxels): block-size tests stay cheap."""


@pytest.fixture(scope="module")
def views() -> OrthogonalViews:
    return simulate_orthogonal_views(CONFIG)


@pytest.fixture(scope="module")
def fused(views: OrthogonalViews) -> IsotropicVolume:
    return fuse_views(views.vw00, views.voxel00, views.vw90, views.voxel90, views.vw90_to_vw00, config=STAGE)


@pytest.fixture(scope="module")
def deconvolved(views: OrthogonalViews) -> IsotropicVolume:
    return deconvolve_views(views.vw00, views.voxel00, views.vw90, views.voxel90, views.vw90_to_vw00, psf00=PSF, psf90=PSF, config=STAGE)


@pytest.fixture(scope="module")
def singles(views: OrthogonalViews, fused: IsotropicVolume) -> tuple[np.ndarray, np.ndarray]:
    """Each view alone resampled onto the fused grid (nan outside its volume)."""
    order = STAGE.interpolation_order
    return (
        resample_onto_grid(views.vw00, views.voxel00, np.eye(4), fused.grid, order=order, outside=np.nan),
        resample_onto_grid(views.vw90, views.voxel90, views.vw90_to_vw00, fused.grid, order=order, outside=np.nan),
    )


def _bead_fwhm(volume: np.ndarray, voxel: tuple[float, float, float], beads_um: np.ndarray) -> np.ndarray:
    """Median (z, y, x) FWHM of the beads, um."""
    return np.median([measure_point_source(volume, bead, voxel).fwhm_um for bead in beads_um], axis=0)


def _plane_ncc(volume: np.ndarray, truth: np.ndarray, overlap: np.ndarray) -> float:
    """Mean over the z-planes that cut the specimen of the Pearson correlation with the truth inside the overlap.

    A plane cuts the specimen where the truth's standard deviation there exceeds 1e-3 of its peak (beyond the body,
    only the Gaussians' far tails remain, of 1e-30 ADU: their correlation with noise is meaningless).
    """
    scores = []
    for plane, sharp, inside in zip(volume, truth, overlap, strict=True):
        if inside.sum() < 100 or sharp[inside].std() < 1e-3 * truth.max():
            continue
        a = plane[inside].astype(np.float64) - plane[inside].mean()
        b = sharp[inside].astype(np.float64) - sharp[inside].mean()
        scores.append(float(a @ b) / math.sqrt(float(a @ a) * float(b @ b)))
    return float(np.mean(scores))


def _ramp(distance_um: np.ndarray, width_um: float) -> np.ndarray:
    """The raised cosine of the blending, 0 at and beyond a face."""
    return np.where(distance_um > 0, 0.5 - 0.5 * np.cos(np.pi * np.clip(distance_um / width_um, 0, 1)), 0.0)


# --- weights ------------------------------------------------------------------------------------------------------


def test_blending_rises_as_a_raised_cosine_from_the_faces_of_an_unrotated_view() -> None:
    grid = IsotropicGrid(shape=(24, 36, 36), voxel_um=1.0, origin_um=(-2.0, -3.0, -3.0))
    weights = blending_weights((10, 30, 30), (2.0, 1.0, 1.0), np.eye(4), grid, width_um=10.0)
    line = weights[11, 18]  # z = 9 um (voxel 4.5, 10 um from both faces), y = 15 um (14.5 um from the nearer face)
    x_um = -3.0 + np.arange(36)
    np.testing.assert_allclose(line, _ramp(np.minimum(x_um + 0.5, 29.5 - x_um), 10.0), atol=1e-6)
    assert line[2] == 0.0 and line[33] == 0.0  # x = -1 and 30 um: outside the view
    assert line[3] == pytest.approx(0.5 - 0.5 * np.cos(np.pi * 0.05), abs=1e-6)  # its first voxel keeps a little weight
    assert line[8] == pytest.approx(0.5 - 0.5 * np.cos(np.pi * 0.55), abs=1e-6)
    np.testing.assert_array_equal(line[13:23], 1.0)  # x = 10 ... 19 um: at least 10 um from both faces
    assert weights[:2].max() == 0.0  # z = -2 and -1 um: outside, and on the view's face (half a 2 um voxel before z = 0)
    assert weights[2, 18, 18] == pytest.approx(0.5 - 0.5 * np.cos(np.pi * 0.1), abs=1e-6)  # z = 0: 1 um inside


def test_blending_of_a_turned_view_follows_its_own_axes() -> None:
    shape, voxel = (12, 30, 40), (2.0, 1.0, 1.0)
    to_output = nominal_vw90_to_vw00(shape, voxel, (50, 30, 30), (1.0, 1.0, 1.0)) @ _small_turn(1.5)
    grid = isotropic_grid((50, 30, 30), (1.0, 1.0, 1.0), 1.0)  # the view is 40 um along output z, 24 um along x
    weights = blending_weights(shape, voxel, to_output, grid, width_um=6.0)
    points = np.stack(np.meshgrid(*(np.arange(n, dtype=float) for n in grid.shape), indexing="ij"), axis=-1).reshape(-1, 3)
    inside_view = (np.c_[points, np.ones(len(points))] @ np.linalg.inv(to_output).T)[:, :3] / voxel
    extent = np.asarray(shape) - 0.5
    expected = np.prod(_ramp(np.minimum(inside_view + 0.5, extent - inside_view) * voxel, 6.0), axis=1)
    np.testing.assert_allclose(weights.reshape(-1), expected, atol=1e-5)
    assert 0.55 < np.mean(weights > 0) < 0.75 and np.mean(weights == 1.0) > 0.1


def _small_turn(degrees: float) -> np.ndarray:
    """4 x 4 rotation by ``degrees`` about y."""
    angle = np.radians(degrees)
    turn = np.eye(4)
    turn[[0, 0, 2, 2], [0, 2, 0, 2]] = np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)
    return turn


def test_content_weight_of_white_noise_is_its_high_pass_variance() -> None:
    noise = np.random.default_rng(4).normal(0.0, 3.0, (48, 48, 48)).astype(np.float32)
    sigmas = (1.0, 3.0)
    weights = content_weights(noise, 1.0, sigmas)
    delta = np.zeros((21, 21, 21))
    delta[10, 10, 10] = 1.0
    kernel = ndimage.gaussian_filter(delta, sigmas[0], mode="constant")
    expected = 9.0 * (1.0 - 2.0 * kernel[10, 10, 10] + np.sum(kernel**2))  # variance of (delta - G) * noise
    halo = content_weights_halo(1.0, sigmas)
    interior = weights[halo:-halo, halo:-halo, halo:-halo]
    assert np.median(interior) == pytest.approx(expected, rel=0.03)
    blurred = content_weights(ndimage.gaussian_filter(noise, 1.5), 1.0, sigmas)[halo:-halo, halo:-halo, halo:-halo]
    assert np.median(blurred) < 0.1 * np.median(interior)  # the sharper view of a region gets the weight


def test_content_weight_ignores_the_edge_of_the_footprint() -> None:
    flat = np.full((30, 30, 30), 500.0, dtype=np.float32)
    flat[:, :, :12] = np.nan
    weights = content_weights(flat, 1.0, (2.0, 6.0))
    assert np.all(weights[:, :, :12] == 0.0)
    assert weights.max() < 1e-3  # a flat region has no content, however close to where the view ends
    naive = content_weights(np.nan_to_num(flat), 1.0, (2.0, 6.0))
    assert naive[:, :, 12:].max() > 1e3  # the jump to nothing would have looked like content


# --- fusion -------------------------------------------------------------------------------------------------------


def test_fused_grid_is_isotropic_and_covers_vw00(fused: IsotropicVolume, views: OrthogonalViews) -> None:
    assert fused.grid.shape == views.specimen_iso.shape == (95, 96, 96)
    assert fused.voxel_um == 1.0 and fused.values.dtype == np.float32
    assert np.all(np.isfinite(fused.values))


def test_weighted_fusion_halves_neither_vw00s_axial_blur_nor_makes_it_isotropic(fused, views, singles) -> None:
    vw00 = _bead_fwhm(views.vw00, views.voxel00, views.beads_um)
    vw90 = _bead_fwhm(singles[1], (1.0, 1.0, 1.0), views.beads_um)
    fusion = _bead_fwhm(fused.values, (1.0, 1.0, 1.0), views.beads_um)
    np.testing.assert_allclose(vw00, [8.0, 2.0, 2.0], rtol=0.05)  # the simulator's PSF, plus the bead
    np.testing.assert_allclose(vw90, [2.0, 2.0, 8.0], rtol=0.05)  # VW90's detection axis is VW00's x
    # both views weigh about the same at a bead: the mean of a z-rod and an x-rod is a cross, 4.5-5 um wide
    assert 0.5 * vw00[0] < fusion[0] < 0.7 * vw00[0] and 0.5 * vw90[2] < fusion[2] < 0.7 * vw90[2]
    assert fusion[1] == pytest.approx(2.0, rel=0.05)
    assert fusion.max() / fusion.min() > 2.0  # not isotropic: that takes the deconvolution


def test_weighted_fusion_correlates_better_with_the_specimen_than_either_view(fused, views, singles) -> None:
    overlap = np.isfinite(singles[0]) & np.isfinite(singles[1])
    alone = [_plane_ncc(single, views.specimen_iso, overlap) for single in singles]
    together = _plane_ncc(fused.values, views.specimen_iso, overlap)
    assert together > max(alone) + 0.005, (together, alone)  # 0.772 against 0.759 and 0.762


def test_outside_vw90_the_fusion_is_vw00(fused: IsotropicVolume, singles) -> None:
    vw00, vw90 = singles
    alone = ~np.isfinite(vw90)
    assert 0.1 < alone.mean() < 0.5
    np.testing.assert_allclose(fused.values[alone], vw00[alone], rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("block_size", [24, 40])
def test_fusion_block_by_block_equals_the_fusion_in_one_block(views: OrthogonalViews, block_size: int) -> None:
    def fuse(size: int) -> np.ndarray:
        stage = STAGE.model_copy(update={"block_size": size})
        return fuse_views(views.vw00, views.voxel00, views.vw90, views.voxel90, views.vw90_to_vw00, config=stage, fusion=LIGHT).values

    whole = fuse(128)
    np.testing.assert_allclose(fuse(block_size), whole, rtol=1e-5, atol=1e-6 * np.abs(whole).max())


def test_fusion_and_deconvolution_in_threads_equal_them_in_one_thread(views: OrthogonalViews) -> None:
    def run(threads: int) -> tuple[np.ndarray, np.ndarray]:
        stage = STAGE.model_copy(update={"block_size": 32, "threads": threads})
        args = (views.vw00, views.voxel00, views.vw90, views.voxel90, views.vw90_to_vw00)
        fused = fuse_views(*args, config=stage, fusion=LIGHT).values
        one_pass = IsotropicDeconvolutionConfig(iterations=1)
        return fused, deconvolve_views(*args, psf00=PSF, psf90=PSF, config=stage, fusion=LIGHT, deconvolution=one_pass).values

    for alone, threaded in zip(run(1), run(3), strict=True):
        np.testing.assert_array_equal(threaded, alone)


def test_views_resampled_onto_the_grid_once_serve_its_regions_and_its_coarsening(views: OrthogonalViews) -> None:
    placed = placed_views(views.vw00, views.voxel00, views.vw90, views.voxel90, views.vw90_to_vw00)
    grid = output_grid(*placed, STAGE)
    on_grid = sample_onto_grid(placed[1], grid, config=STAGE.model_copy(update={"block_size": 24}))
    region, _ = block_region(grid, (slice(10, 30), slice(5, 40), slice(0, 17)), (3, 3, 3))
    np.testing.assert_array_equal(on_grid.sampled(region, 3), on_grid.samples[7:33, 2:43, 0:20])
    np.testing.assert_allclose(on_grid.sampled(region, 3), placed[1].sampled(region, 3), rtol=0, atol=1e-3 * np.nanmax(views.vw90))
    coarse, _ = block_region(content_grid(grid), (slice(2, 9), slice(0, 12), slice(4, 10)), (0, 0, 0))
    np.testing.assert_array_equal(on_grid.sampled(coarse, 1), on_grid.samples[4:17:2, 0:23:2, 8:19:2])
    shifted = IsotropicGrid(shape=(5, 6, 7), voxel_um=grid.voxel_um, origin_um=tuple(o + 0.3 for o in grid.origin_um))
    np.testing.assert_array_equal(on_grid.sampled(shifted, 1), placed[1].sampled(shifted, 1))  # not on the grid: interpolated


def test_fusion_of_views_resampled_onto_the_grid_first_is_the_same_fusion(views: OrthogonalViews, fused, singles) -> None:
    args = (views.vw00, views.voxel00, views.vw90, views.voxel90, views.vw90_to_vw00)
    samples = [np.full(fused.grid.shape, -1.0, dtype=np.float32) for _ in range(2)]
    on_grid = fuse_views(*args, config=STAGE.model_copy(update={"block_size": 24}), samples=samples).values
    for sample, single in zip(samples, singles, strict=True):  # every voxel written: the views' own samples
        np.testing.assert_allclose(sample, single, rtol=1e-5, atol=1e-3)
    # The content weights then come from the cubic samples of every other voxel rather than from a linear
    # interpolation of the view there: weights differ where the views do (up to 30 % of a bead's peak), the result
    # does not as a whole. Where VW90 is absent, the fusion is VW00 either way.
    overlap = np.isfinite(singles[0]) & np.isfinite(singles[1])
    scores = [_plane_ncc(volume, views.specimen_iso, overlap) for volume in (on_grid, fused.values)]
    assert abs(scores[0] - scores[1]) < 0.003, scores
    np.testing.assert_allclose(on_grid[~np.isfinite(singles[1])], fused.values[~np.isfinite(singles[1])], rtol=1e-5, atol=1e-3)
    assert np.median(np.abs(on_grid - fused.values)[overlap]) < 0.01 * np.abs(fused.values).max()


def test_fusion_writes_into_a_zarr_sink(views: OrthogonalViews) -> None:
    stage = STAGE.model_copy(update={"block_size": 48})
    grid = isotropic_grid(views.vw00.shape, views.voxel00, 1.0)
    sink = zarr.create_array(store=zarr.storage.MemoryStore(), shape=grid.shape, chunks=(32, 32, 32), dtype="float32")
    result = fuse_views(views.vw00, views.voxel00, views.vw90, views.voxel90, views.vw90_to_vw00, config=stage, fusion=LIGHT, out=sink)
    assert result.values is sink
    expected = fuse_views(views.vw00, views.voxel00, views.vw90, views.voxel90, views.vw90_to_vw00, config=stage, fusion=LIGHT)
    np.testing.assert_array_equal(sink[...], expected.values)


def test_fusion_rejects_what_it_cannot_place(views: OrthogonalViews) -> None:
    args = (views.vw00, views.voxel00, views.vw90, views.voxel90)
    with pytest.raises(ValueError, match=r"needs \(95, 96, 96\)"):
        fuse_views(*args, views.vw90_to_vw00, config=STAGE, out=np.empty((95, 96, 95), dtype=np.float32))
    with pytest.raises(ValueError, match="4 x 4 affine"):
        fuse_views(*args, views.vw90_to_vw00[:3], config=STAGE)
    with pytest.raises(ValueError, match="VW90 voxel size"):
        fuse_views(views.vw00, views.voxel00, views.vw90, (2.0, 0.0, 1.0), views.vw90_to_vw00, config=STAGE)


# --- deconvolution ------------------------------------------------------------------------------------------------


def test_deconvolution_makes_the_resolution_isotropic_at_the_target(deconvolved, views) -> None:
    vw00 = _bead_fwhm(views.vw00, views.voxel00, views.beads_um)
    result = _bead_fwhm(deconvolved.values, (1.0, 1.0, 1.0), views.beads_um)
    assert result.max() / result.min() <= 1.15, result
    assert result[0] <= vw00[0] / 2, (result, vw00)
    target = IsotropicDeconvolutionConfig().target_ratio * CONFIG.psf_lateral_fwhm_um
    np.testing.assert_allclose(result, target, rtol=0.15)  # 1.6 um along every axis, where the views had 8 and 2


def test_deconvolution_correlates_with_the_specimen_better_than_the_fusion(deconvolved, fused, views, singles) -> None:
    overlap = np.isfinite(singles[0]) & np.isfinite(singles[1])
    together = _plane_ncc(fused.values, views.specimen_iso, overlap)
    sharpened = _plane_ncc(deconvolved.values, views.specimen_iso, overlap)
    assert sharpened > together + 0.05, (sharpened, together)  # 0.881 against 0.772


def test_deconvolution_stays_bounded_where_one_view_is_masked_to_zero_and_the_other_sees_the_specimen(views: OrthogonalViews, deconvolved) -> None:
    masked = views.vw00.copy()
    masked[:, :, : masked.shape[2] // 2] = 0  # a fused view's background mask, cutting through the specimen
    result = deconvolve_views(masked, views.voxel00, views.vw90, views.voxel90, views.vw90_to_vw00, psf00=PSF, psf90=PSF, config=STAGE).values
    # the brightest voxels are deconvolved beads either way (far above the views' 2000); unclipped ratios reach 1e8
    assert result.max() < 1.5 * deconvolved.values.max(), (result.max(), deconvolved.values.max())


def test_the_wiener_butterworth_back_projector_needs_fewer_iterations_than_the_matched_one(deconvolved, views) -> None:
    matched = deconvolve_views(
        views.vw00, views.voxel00, views.vw90, views.voxel90, views.vw90_to_vw00, psf00=PSF, psf90=PSF, config=STAGE,
        deconvolution=IsotropicDeconvolutionConfig(back_projector="matched"),
    )  # fmt: skip
    unmatched = _bead_fwhm(deconvolved.values, (1.0, 1.0, 1.0), views.beads_um)
    classical = _bead_fwhm(matched.values, (1.0, 1.0, 1.0), views.beads_um)
    assert unmatched[0] < 0.8 * classical[0] and unmatched[2] < 0.8 * classical[2], (unmatched, classical)


@pytest.mark.parametrize("block_size", [32, 48])
def test_deconvolution_block_by_block_equals_the_deconvolution_in_one_block(views: OrthogonalViews, block_size: int) -> None:
    def deconvolve(size: int) -> np.ndarray:
        stage = STAGE.model_copy(update={"block_size": size})
        return deconvolve_views(
            views.vw00, views.voxel00, views.vw90, views.voxel90, views.vw90_to_vw00, psf00=PSF, psf90=PSF,
            config=stage, fusion=LIGHT, deconvolution=IsotropicDeconvolutionConfig(iterations=1),
        ).values  # fmt: skip

    whole = deconvolve(128)
    np.testing.assert_allclose(deconvolve(block_size), whole, rtol=1e-3, atol=1e-5 * np.abs(whole).max())


def test_the_residual_blur_is_the_view_minus_the_target() -> None:
    turn = _small_turn(90.0)[:3, :3]
    residual = residual_covariance_um2(PSF, turn, 1.6 / FWHM_PER_SIGMA, 1.0)
    axial, lateral, target = (np.array([8.0, 2.0, 1.6]) / FWHM_PER_SIGMA) ** 2
    np.testing.assert_allclose(np.diag(residual), [lateral - target + 1 / 12, lateral - target + 1 / 12, axial - target + 1 / 12], atol=1e-12)
    assert presmoothing_sigmas_um(PSF, 1.6 / FWHM_PER_SIGMA) == (0.0, 0.0, 0.0)
    wide = 2.5 / FWHM_PER_SIGMA  # wider than the lateral PSF: no residual across, the view smoothed to it instead
    residual = residual_covariance_um2(PSF, turn, wide, 1.0)
    np.testing.assert_allclose(np.diag(residual), [1 / 12, 1 / 12, axial - wide**2 + 1 / 12], atol=1e-12)
    np.testing.assert_allclose(presmoothing_sigmas_um(PSF, wide), [0.0, *[np.sqrt(wide**2 - lateral)] * 2], atol=1e-12)


def test_the_target_is_at_least_the_grids_sampling_limit() -> None:
    config = IsotropicDeconvolutionConfig()
    assert target_sigma_um(PSF, PSF, 1.0, config) * FWHM_PER_SIGMA == pytest.approx(config.target_ratio * 2.0)  # 1.6 um
    assert target_sigma_um(PSF, PSF, 2.0, config) * FWHM_PER_SIGMA == pytest.approx(config.min_target_voxels * 2.0)  # 3.2 um


def test_deconvolution_on_a_grid_coarser_than_the_lateral_psf_is_isotropic_at_its_sampling_limit() -> None:
    """The benchmark's case: PSF 1 x 4 um, 0.406 um pixels, the default 0.8125 um grid (the target is 1.6 voxels, 1.3 um)."""
    small = simulate_orthogonal_views(OrthogonalViewsConfig(shape00=(64, 256, 256), shape90=(64, 256, 256)))
    psf = GaussianPsf(lateral_fwhm_um=small.config.psf_lateral_fwhm_um, axial_fwhm_um=small.config.psf_axial_fwhm_um)
    args = (small.vw00, small.voxel00, small.vw90, small.voxel90, small.vw90_to_vw00)
    result = deconvolve_views(*args, psf00=psf, psf90=psf)
    voxel = (small.iso_voxel_um,) * 3
    widths = _bead_fwhm(result.values, voxel, small.beads_um)
    vw00 = _bead_fwhm(small.vw00, small.voxel00, small.beads_um)
    assert widths.max() / widths.min() <= 1.15 and widths[0] <= vw00[0] / 2, (widths, vw00)  # 1.38, 1.27, 1.36 against VW00's 4.08
    singles = [
        resample_onto_grid(volume, voxel_um, transform, result.grid, order=3, outside=np.nan)
        for volume, voxel_um, transform in ((small.vw00, small.voxel00, np.eye(4)), (small.vw90, small.voxel90, small.vw90_to_vw00))
    ]
    overlap = np.isfinite(singles[0]) & np.isfinite(singles[1])
    alone = [_plane_ncc(np.nan_to_num(single), small.specimen_iso, overlap) for single in singles]
    fused = _plane_ncc(fuse_views(*args).values, small.specimen_iso, overlap)
    deconvolved = _plane_ncc(result.values, small.specimen_iso, overlap)
    assert deconvolved > max(*alone, fused) + 0.01, (deconvolved, fused, alone)  # 0.951 against 0.928, 0.927 and 0.921


# --- memory -------------------------------------------------------------------------------------------------------


def _peak_bytes(run) -> int:
    """Peak of the numpy (and Python) allocations traced while ``run()`` runs."""
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_volume_when_views_output_scratch_and_samples_are_files(tmp_path) -> None:
    stage = IsotropicConfig(voxel_um=1.0, block_size=16, interpolation_order=1, threads=2)
    fusion = IsotropicFusionConfig(content_sigmas_um=(0.5, 1.0))
    deconvolution = IsotropicDeconvolutionConfig(iterations=1)
    peaks, outputs = {}, []
    for shape in ((24, 48, 48), (48, 96, 96)):  # 8x the voxels
        rng = np.random.default_rng(0)
        folder = tmp_path / "x".join(map(str, shape))
        folder.mkdir()
        vw00, vw90 = (ScratchVolume.copy_of(folder / f"{name}.raw", rng.integers(100, 1000, shape, dtype=np.uint16)) for name in ("vw00", "vw90"))
        transform = nominal_vw90_to_vw00(shape, (2.0, 1.0, 1.0), shape, (2.0, 1.0, 1.0))
        grid_shape = isotropic_grid(shape, (2.0, 1.0, 1.0), 1.0).shape
        out, scratch, samples00, samples90 = (
            ScratchVolume.create(folder / name, grid_shape, np.float32) for name in ("out.raw", "scratch.raw", "vw00-on-grid.raw", "vw90-on-grid.raw")
        )
        args = (vw00, (2.0, 1.0, 1.0), vw90, (2.0, 1.0, 1.0), transform)
        fusing = _peak_bytes(lambda: fuse_views(*args, config=stage, fusion=fusion, out=out))
        deconvolving = _peak_bytes(
            lambda: deconvolve_views(
                *args, psf00=PSF, psf90=PSF, config=stage, fusion=fusion, deconvolution=deconvolution, out=out, scratch=scratch, samples=(samples00, samples90)
            )
        )
        peaks[shape] = (fusing, deconvolving)
        outputs.append(out.nbytes)
    small, large = peaks.values()
    # One volume-sized float32 temporary would add the output's growth (3.1 MB); what does grow is per-shape state
    # outside the volume (scipy's FFT plan cache, a few hundred kB depending on earlier tests).
    allowed = 0.25 * (outputs[1] - outputs[0])
    assert large[0] - small[0] < allowed and large[1] - small[1] < allowed, (peaks, allowed)
    region = (16 + 2 * content_weights_halo(1.0, fusion.content_sigmas_um)) ** 3 * 4  # one float32 block and its halo
    assert large[0] < 40 * region, (large, region)
