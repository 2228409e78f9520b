"""The UI's fusion artifacts: the parameter table and the links to the diagnostic PNGs."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image
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
    for figure in (paths.figure("registration"), paths.figure("fusion_result"), parameters_over_time_figure(tmp_path / "acq.fused", (0, 1))):
        Image.fromarray(np.full((600, 1800, 3), 200, np.uint8)).save(figure)

    flow(publish_fusion_parameters)(0, [record], tmp_path.relative_to(tmp_path) / "acq.fused")  # artifacts belong to a run

    links = Artifact.get("fusion-diagnostics-spm00").data
    assert f"({paths.figure('registration').as_uri()})" in links
    assert f"({parameters_over_time_figure(tmp_path / 'acq.fused', (0, 1)).as_uri()})" in links


def test_the_latest_fusion_result_and_the_parameters_over_time_are_shown_in_the_artifact(prefect_harness, tmp_path):
    root = tmp_path / "acq.fused"
    parameters = FusionParameters(offset_x_px=7.3, offset_y_px=-4.6, rotation_deg=0.0, intensity_ratio=1.25, transition_z=23.0)
    records = [
        FusionRecord(timepoint=t, cameras=(0, 1), view=0, channel=0, blending="adaptive", window=(0, 4), estimated=parameters, applied=parameters)
        for t in (2, 3)
    ]
    shades = {2: 40, 3: 220}
    for record in records:
        figure = FusedPaths(root, PairId(0, record.timepoint, (0, 1), 0, 0)).figure("fusion_result")
        figure.parent.mkdir(parents=True)
        Image.fromarray(np.full((600, 1800, 3), shades[record.timepoint], np.uint8)).save(figure)
    Image.fromarray(np.full((300, 1200, 3), 90, np.uint8)).save(parameters_over_time_figure(root, (0, 1)))

    flow(publish_fusion_parameters)(0, records, root)

    markdown = Artifact.get("fusion-diagnostics-spm00").data
    shown = [Image.open(io.BytesIO(base64.b64decode(data))) for data in re.findall(r"data:image/jpeg;base64,([A-Za-z0-9+/=]+)", markdown)]
    assert [image.size for image in shown] == [(900, 300), (900, 225)]  # scaled to the artifact's width, aspect kept
    assert abs(int(np.asarray(shown[0]).mean()) - shades[3]) <= 2  # the latest timepoint's picture, not TM2's
    assert "TM000003 cameras 0+1: fusion_result" in markdown
