"""The UI's fusion artifacts: the parameter table and the links to the diagnostic PNGs."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import Artifact

from flows.artifacts import publish_fusion_parameters
from isoview_core.fusion.records import FusionRecord
from isoview_core.layout import FusedPaths, PairId, parameters_over_time_figure
from isoview_core.records import FusionParameters


def test_diagnostic_links_are_absolute_file_uris_for_a_relative_output_root(prefect_harness, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parameters = FusionParameters(offset_x_px=7.3, offset_y_px=-4.6, rotation_deg=0.0, intensity_ratio=1.25, transition_z=23.0)
    record = FusionRecord(timepoint=3, cameras=(0, 1), view=0, channel=0, blending="adaptive", window=(1, 5), estimated=parameters, applied=parameters)
    paths = FusedPaths(tmp_path / "acq.fused", PairId(0, 3, (0, 1), 0, 0))
    paths.diagnostics.mkdir(parents=True)
    paths.figure("registration").write_bytes(b"png")
    parameters_over_time_figure(tmp_path / "acq.fused", (0, 1)).write_bytes(b"png")

    flow(publish_fusion_parameters)(0, [record], tmp_path.relative_to(tmp_path) / "acq.fused")  # artifacts belong to a run

    links = Artifact.get("fusion-diagnostics-spm00").data
    assert f"({paths.figure('registration').as_uri()})" in links
    assert f"({parameters_over_time_figure(tmp_path / 'acq.fused', (0, 1)).as_uri()})" in links
