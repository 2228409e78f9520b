"""The fuse-window flow: figures drawn by a task of their own, after the fused outputs are published."""

from __future__ import annotations

from isoview_core.config import ProcessingConfig
from isoview_core.layout import FusedPaths, PairId, parameters_over_time_figure
from isoview_core.pipeline.correction import process_dataset

FIGURES = {"registration", "intensity_correction", "blending_weights", "fusion_result", "fused_overview"}


def test_fuse_window_draws_every_figure_after_its_pair_is_published(prefect_harness, small_acquisition, tmp_path):
    from flows.fusion import fuse_window

    config = ProcessingConfig(acquisition=small_acquisition, corrected_dir=tmp_path / "corrected", fused_dir=tmp_path / "fused")
    process_dataset(config)

    records = fuse_window(config.acquisition, 0, [0, 1], config)

    assert len(records) == 4
    for record in records:
        paths = FusedPaths(config.resolved_fused_dir(), PairId(0, record.timepoint, record.cameras, record.view, record.channel))
        figures = paths.figures()
        assert {figure.stem for figure in figures} == FIGURES
        assert not list(paths.diagnostics.glob("*.npz")), "a preview was left undrawn"
        published = paths.record.stat().st_mtime_ns
        assert all(figure.stat().st_mtime_ns >= published for figure in figures), "a figure was drawn before its pair was published"
    assert parameters_over_time_figure(config.resolved_fused_dir(), (0, 1)).is_file()
