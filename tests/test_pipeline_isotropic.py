"""The isotropic volume of each timepoint from its two fused views: registered, smoothed over time, fused, recorded."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import zarr

from isoview_core.config import ProcessingConfig
from isoview_core.formats.omezarr import ome_zarr_voxel_size, read_ome_zarr
from isoview_core.isotropic import IsotropicConfig, rotation_angle_deg
from isoview_core.isotropic.records import load_isotropic_record, load_registration
from isoview_core.isotropic.settings import IsotropicStageConfig
from isoview_core.layout import IsotropicId, IsotropicPaths, isotropic_series_path
from isoview_core.pipeline.isotropic import make_isotropic, timepoint_views
from isoview_core.results.series import published_timepoints, record_fingerprint
from isoview_core.synthetic import OrthogonalViewsConfig, measure_point_source, simulate_orthogonal_views, true_vw90_to_vw00, write_orthogonal_views
from isoview_core.synthetic.orthogonal import overlap_box_um
from isoview_core.temporal.config import TemporalConfig

SERIES = OrthogonalViewsConfig(
    shape00=(48, 96, 96),
    shape90=(48, 96, 96),
    voxel00_um=(2.0, 1.0, 1.0),
    voxel90_um=(2.0, 1.0, 1.0),
    n_beads=8,
    rotation_deg=1.2,
    translation_um=(3.0, -2.0, 4.0),
)
"""The registration tests' views (96 um cubes, 1 um pixels, PSF 1 x 4 um) at the default isotropic voxel, 2 um."""

TIMEPOINTS = 5


def _processing(tmp_path, **temporal) -> ProcessingConfig:
    return ProcessingConfig(
        acquisition=tmp_path / "acquisition",
        fused_dir=tmp_path / "fused",
        isotropic=IsotropicStageConfig(registration=IsotropicConfig(block_size=32), pyramid_levels=1, psf_lateral_fwhm_um=1.0, psf_axial_fwhm_um=4.0),
        temporal=TemporalConfig(**({"window": 2} | temporal)),
    )


def _errors(applied: np.ndarray, config: OrthogonalViewsConfig, voxel_um: float) -> tuple[float, float]:
    """Translation error at the centre of the overlap (isotropic voxels) and rotation error (degrees) against the truth."""
    truth = true_vw90_to_vw00(config)
    low, high = overlap_box_um(config)
    centre = np.append((low + high) / 2, 1.0)
    at_centre = applied @ np.linalg.solve(truth, centre)
    return float(np.linalg.norm(at_centre[:3] - centre[:3]) / voxel_um), rotation_angle_deg(applied[:3, :3].T @ truth[:3, :3])


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Five timepoints of the same specimen (fresh noise each), TM2's VW90 replaced by noise: a corrupted timepoint."""
    root = tmp_path_factory.mktemp("isotropic")
    for t in range(TIMEPOINTS):
        write_orthogonal_views(root / "fused", SERIES.model_copy(update={"seed": t}), timepoint=t)
    corrupted = timepoint_views(root / "fused", 0, 2)[0].view90
    level = zarr.open_array(corrupted / "0", mode="r+")
    level[:] = np.random.default_rng(2).integers(100, 140, level.shape, dtype=np.uint16)
    config = _processing(root)
    report = make_isotropic(config, specimen=0)
    return config, report


def test_every_timepoint_gets_a_volume_with_the_smoothed_registration_within_the_issue_bounds(series) -> None:
    config, report = series
    assert report.errors == [] and report.waiting == []
    assert sorted(record.timepoint for record in report.made) == list(range(TIMEPOINTS))
    for t in range(TIMEPOINTS):
        paths = IsotropicPaths(config.resolved_isotropic_dir(), IsotropicId(0, t, (0, 0)))
        record = load_isotropic_record(paths.record)
        assert record.source == "smoothed" and record.window == (0, 4)  # 2w + 1 = 5 timepoints: shifted, never shrunk
        translation, rotation = _errors(record.applied_matrix(), SERIES, record.voxel_um)
        assert translation <= 0.3 and rotation <= 0.1, (t, translation, rotation)  # the corrupted TM2 included
    corrupted = load_registration(IsotropicPaths(config.resolved_isotropic_dir(), IsotropicId(0, 2, (0, 0))).registration)
    assert not corrupted.registration.reliable


def test_the_volume_is_isotropic_ome_zarr_with_a_pyramid_and_matches_the_specimen(series) -> None:
    config, _ = series
    paths = IsotropicPaths(config.resolved_isotropic_dir(), IsotropicId(0, 0, (0, 0)))
    record = load_isotropic_record(paths.record)
    assert ome_zarr_voxel_size(paths.volume) == (2.0, 2.0, 2.0) and record.voxel_um == 2.0
    assert read_ome_zarr(paths.volume).shape == record.shape and read_ome_zarr(paths.volume, level=1).shape[1] == -(-record.shape[1] // 2)
    views = simulate_orthogonal_views(SERIES.model_copy(update={"seed": 0}))
    truth = views.specimen_iso[: record.shape[0], : record.shape[1], : record.shape[2]]
    fused = read_ome_zarr(paths.volume)[:].astype(np.float64)[: truth.shape[0], : truth.shape[1], : truth.shape[2]]
    assert np.corrcoef(fused.ravel(), truth.ravel())[0, 1] > 0.8
    # deconvolved by default (with the PSF given, as the views' 1 um pixels undersample it): beads as wide along every
    # axis, at the 2 um grid's 1.6-voxel limit; the fusion alone measured 2.66 / 1.84 / 3.19 um
    assert record.deconvolution_iterations == 2
    beads = np.median([measure_point_source(fused, bead, (2.0, 2.0, 2.0)).fwhm_um for bead in views.beads_um], axis=0)
    assert beads.max() / beads.min() < 1.15 and beads.max() < 4.0, beads


def test_every_volume_is_published_in_the_live_time_series(series) -> None:
    config, _ = series
    root = config.resolved_isotropic_dir()
    movie = zarr.open_array(isotropic_series_path(root, 0, (0, 0)) / "0", mode="r")
    assert movie.shape[0] == TIMEPOINTS
    for t in range(TIMEPOINTS):
        paths = IsotropicPaths(root, IsotropicId(0, t, (0, 0)))
        np.testing.assert_array_equal(movie[t], read_ome_zarr(paths.volume)[:])
    assert published_timepoints(isotropic_series_path(root, 0, (0, 0))) == {
        t: record_fingerprint(IsotropicPaths(root, IsotropicId(0, t, (0, 0))).record) for t in range(TIMEPOINTS)
    }


def test_a_rerun_makes_nothing_twice_and_a_changed_window_remakes_without_the_unreliable_registration(series) -> None:
    config, _ = series
    again = make_isotropic(config, specimen=0)
    assert again.made == [] and again.registered == [] and len(again.skipped) == TIMEPOINTS
    narrower = make_isotropic(config.model_copy(update={"temporal": TemporalConfig(window=1)}), specimen=0, timepoints=[1, 2, 3])
    made = sorted(narrower.made, key=lambda record: record.timepoint)
    assert [record.window for record in made] == [(0, 2), (1, 3), (2, 4)]
    for record in made:  # at w = 1 no robust fit rejects TM2's registration: its quality keeps it out of the smoothing
        translation, rotation = _errors(record.applied_matrix(), SERIES, record.voxel_um)
        assert translation <= 0.3 and rotation <= 0.1, (record.timepoint, translation, rotation)


SMALL = SERIES.model_copy(update={"shape00": (24, 64, 64), "shape90": (24, 64, 64), "n_beads": 2, "bead_margin_um": 6.0, "translation_um": (1.0, 0.0, 1.0)})
"""One small timepoint for the failure paths."""


def test_the_scratch_a_killed_run_left_is_removed_by_the_next_run_once_untouched_for_an_hour(tmp_path) -> None:
    write_orthogonal_views(tmp_path / "fused", SMALL)
    config = _processing(tmp_path)
    folder = IsotropicPaths(config.resolved_isotropic_dir(), IsotropicId(0, 0, (0, 0))).folder
    killed, running = folder / ".isotropic-grid.partial-killed", folder / ".isotropic-grid.partial-running"
    for scratch in (killed, running):
        scratch.mkdir(parents=True)
        (scratch / "grid.raw").write_bytes(b"\0" * 64)
    hours_ago = time.time() - 2 * 3600
    for path in (killed / "grid.raw", killed):
        os.utime(path, (hours_ago, hours_ago))
    report = make_isotropic(config, specimen=0)
    assert len(report.made) == 1 and not killed.exists() and running.exists()


def test_a_full_scratch_disk_is_one_error_naming_the_volume_and_leaves_nothing_behind(tmp_path, monkeypatch) -> None:
    from isoview_core.formats.scratch import ScratchVolume

    write_orthogonal_views(tmp_path / "fused", SMALL)
    full = OSError(28, "No space left on device")

    def no_space(cls, *args, **kwargs):
        raise full

    monkeypatch.setattr(ScratchVolume, "create", classmethod(no_space))
    report = make_isotropic(_processing(tmp_path), specimen=0)
    volume = IsotropicPaths(_processing(tmp_path).resolved_isotropic_dir(), IsotropicId(0, 0, (0, 0))).volume
    assert report.made == [] and report.errors == [f"{volume}: cannot make the isotropic volume: {full}"]
    assert [path.name for path in volume.parent.iterdir()] == [volume.name.replace(".ome.zarr", ".registration.json")]
