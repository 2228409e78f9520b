"""The fusion flows: fuse-window (figures drawn after the fused outputs are published), estimate-timepoint ahead of
the windows, draw-figures."""

from __future__ import annotations

from isoview_core.config import ProcessingConfig
from isoview_core.fusion.records import load_estimate
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


def test_figures_left_by_the_watcher_s_fusion_are_drawn_by_the_draw_figures_flow(prefect_harness, small_acquisition, tmp_path):
    from prefect.artifacts import Artifact

    from flows.fusion import draw_figures, fuse_window

    config = ProcessingConfig(acquisition=small_acquisition, corrected_dir=tmp_path / "corrected", fused_dir=tmp_path / "fused")
    process_dataset(config)
    records = fuse_window(config.acquisition, 0, [0], config, draw_figures=False)
    pairs = [FusedPaths(config.resolved_fused_dir(), PairId(0, r.timepoint, r.cameras, r.view, r.channel)) for r in records]
    assert len(pairs) == 2 and all(paths.record.is_file() and not paths.figures() for paths in pairs)
    assert all({preview.name for preview in paths.diagnostics.glob("*.npz")} == {"estimate.preview.npz", "fusion.preview.npz"} for paths in pairs)

    drawn = draw_figures(config.acquisition, 0, [0], config)

    assert sorted(drawn) == sorted(figure for paths in pairs for figure in paths.figures())
    for paths in pairs:
        assert {figure.stem for figure in paths.figures()} == FIGURES and not list(paths.diagnostics.glob("*.npz"))
    assert parameters_over_time_figure(config.resolved_fused_dir(), (0, 1)).is_file()
    assert "TM000000 cameras 0+1: fusion_result" in Artifact.get("fusion-diagnostics-spm00").data


def test_estimates_made_ahead_by_estimate_timepoint_are_the_fusion_s_own_and_not_made_again(prefect_harness, small_acquisition, tmp_path):
    from flows.fusion import estimate_timepoint, fuse_window

    ahead = ProcessingConfig(acquisition=small_acquisition, corrected_dir=tmp_path / "corrected", fused_dir=tmp_path / "ahead", save_diagnostics=False)
    process_dataset(ahead)
    together = ahead.model_copy(update={"fused_dir": tmp_path / "together"})
    reference = fuse_window(together.acquisition, 0, [0, 1], together)

    estimated = [path for t in (0, 1) for path in estimate_timepoint(ahead.acquisition, 0, t, ahead)]
    assert len(estimated) == 4 and not list(ahead.resolved_fused_dir().rglob("*.ome.zarr"))  # estimates only
    made = {path: path.stat().st_mtime_ns for path in estimated}
    records = fuse_window(ahead.acquisition, 0, [0, 1], ahead)

    assert {path: path.stat().st_mtime_ns for path in estimated} == made  # the fusion found them and made none again
    for path in estimated:
        same = together.resolved_fused_dir() / path.relative_to(ahead.resolved_fused_dir())
        assert load_estimate(path).model_dump(exclude={"timings_s"}) == load_estimate(same).model_dump(exclude={"timings_s"})
    key = lambda record: (record.timepoint, record.cameras)  # noqa: E731
    assert [r.model_dump(exclude={"timings_s"}) for r in sorted(records, key=key)] == [r.model_dump(exclude={"timings_s"}) for r in sorted(reference, key=key)]
    assert estimate_timepoint(ahead.acquisition, 0, 0, ahead) == []  # nothing left to estimate
