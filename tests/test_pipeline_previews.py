"""Diagnostics off the critical path: a pair's outputs are published first, its figures drawn later from small previews."""

from __future__ import annotations

import numpy as np
import pytest

from isoview_core.config import ProcessingConfig
from isoview_core.formats.omezarr import read_ome_zarr
from isoview_core.layout import FusedPaths, PairId
from isoview_core.pipeline.correction import process_dataset
from isoview_core.pipeline.pair import estimate_pair_parameters, fuse_pair
from isoview_core.pipeline.previews import ESTIMATE, FUSION, draw_pair_diagnostics, pending_previews
from isoview_core.synthetic import SimulationConfig, simulate_acquisition

PAIR = PairId(0, 0, (0, 1), 0, 0)
SHAPE = (22, 96, 80)
FIGURES = {"registration", "intensity_correction", "blending_weights", "fusion_result", "fused_overview"}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """One pair estimated and fused with diagnostics on, in slabs of 8 planes (the last one partial); nothing drawn yet."""
    root = tmp_path_factory.mktemp("previews")
    simulate_acquisition(root / "acquisition", SimulationConfig(shape=SHAPE, timepoints=1, seed=3))
    config = ProcessingConfig(acquisition=root / "acquisition", fused_dir=root / "fused")
    assert all(report.errors == [] for report in process_dataset(config))
    corrected, fused = config.resolved_corrected_dir(), config.resolved_fused_dir()
    estimate = estimate_pair_parameters(corrected, PAIR, config.fusion, output_root=fused)
    paths = FusedPaths(fused, PAIR)
    after_estimate = (paths.estimate.is_file(), paths.preview(ESTIMATE).is_file(), paths.figures())
    fuse_pair(
        corrected, PAIR, config.fusion, output_root=fused, estimated=estimate.parameters, applied=estimate.parameters, window=(0, 0), slab_planes=8
    )
    return config, paths, after_estimate


def test_outputs_are_published_before_any_figure_is_drawn(published):
    config, paths, (estimate_written, estimate_preview, figures_after_estimate) = published
    assert estimate_written and estimate_preview and figures_after_estimate == []
    assert paths.record.is_file() and paths.preview(FUSION).is_file()
    assert paths.figures() == []
    assert pending_previews(config.resolved_fused_dir(), PAIR) == [paths.preview(ESTIMATE), paths.preview(FUSION)]


def test_the_fusion_preview_holds_the_published_volume_s_reductions(published):
    _, paths, _ = published
    volume = np.asarray(read_ome_zarr(paths.volume)[:])
    with np.load(paths.preview(FUSION)) as preview:
        middle = int(preview["middle"])
        assert int(preview["depth"]) == SHAPE[0] and middle == SHAPE[0] // 2
        np.testing.assert_array_equal(preview["planes"][2], volume[middle])
        np.testing.assert_array_equal(preview["xz"][2], volume.max(axis=2).T)
        np.testing.assert_array_equal(preview["overview"], volume[preview["overview_indices"]])
        assert preview["planes"].shape == (3, *SHAPE[1:]) and preview["xz"].shape == (3, SHAPE[1], SHAPE[0])
        assert preview["transition_map"].shape == SHAPE[1:] and preview["transition_map"].max() > 0


def test_drawing_writes_every_figure_once_and_removes_the_previews(published):
    config, paths, _ = published
    drawn = draw_pair_diagnostics(config.resolved_fused_dir(), PAIR, config.fusion)
    assert {path.stem for path in drawn} == FIGURES and sorted(drawn) == paths.figures()
    assert pending_previews(config.resolved_fused_dir(), PAIR) == []
    assert draw_pair_diagnostics(config.resolved_fused_dir(), PAIR, config.fusion) == []
