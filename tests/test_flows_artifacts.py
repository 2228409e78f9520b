"""The UI's fusion artifacts: the parameter table and the links to the diagnostic PNGs."""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import Artifact

from flows.artifacts import publish_fusion_parameters
from isoview_core.fusion.records import FusionRecord
from isoview_core.layout import FusedPaths, PairId
from isoview_core.records import FusionParameters


def test_diagnostic_links_are_absolute_file_uris_for_a_relative_output_root(prefect_harness, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parameters = FusionParameters(offset_x_px=7.3, offset_y_px=-4.6, rotation_deg=0.0, intensity_ratio=1.25, transition_z=23.0)
    record = FusionRecord(timepoint=3, cameras=(0, 1), view=0, channel=0, blending="adaptive", window=(1, 5), estimated=parameters, applied=parameters)
    figures = FusedPaths(tmp_path / "acq.fused", PairId(0, 3, (0, 1), 0, 0)).diagnostics
    figures.mkdir(parents=True)
    (figures / "registration.png").write_bytes(b"png")
    (tmp_path / "acq.fused" / "diagnostics" / "parameters_over_time_cam0_1.png").write_bytes(b"png")

    flow(publish_fusion_parameters)(0, [record], tmp_path.relative_to(tmp_path) / "acq.fused")  # artifacts belong to a run

    links = Artifact.get("fusion-diagnostics-spm00").data
    assert f"({(figures / 'registration.png').as_uri()})" in links
    assert f"({(tmp_path / 'acq.fused' / 'diagnostics' / 'parameters_over_time_cam0_1.png').as_uri()})" in links
