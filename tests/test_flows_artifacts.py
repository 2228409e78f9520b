"""The UI's fusion diagnostics artifact: links to the diagnostic PNGs and the latest pictures inline."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image
from prefect import flow
from prefect.artifacts import Artifact

from flows.artifacts import publish_fusion_figures
from isoview_core.layout import FusedPaths, PairId, parameters_over_time_figure


def test_diagnostic_links_are_absolute_file_uris_for_a_relative_output_root(prefect_harness, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = FusedPaths(tmp_path / "acq.fused", PairId(0, 3, (0, 1), 0, 0))
    paths.diagnostics.mkdir(parents=True)
    for figure in (paths.figure("registration"), paths.figure("fusion_result"), parameters_over_time_figure(tmp_path / "acq.fused", (0, 1))):
        Image.fromarray(np.full((600, 1800, 3), 200, np.uint8)).save(figure)

    flow(publish_fusion_figures)(0, [paths.pair], tmp_path.relative_to(tmp_path) / "acq.fused")  # artifacts belong to a run

    links = Artifact.get("fusion-diagnostics-spm00").data
    assert f"({paths.figure('registration').as_uri()})" in links
    assert f"({parameters_over_time_figure(tmp_path / 'acq.fused', (0, 1)).as_uri()})" in links


def test_the_latest_fusion_result_and_the_parameters_over_time_are_shown_in_the_artifact(prefect_harness, tmp_path):
    root = tmp_path / "acq.fused"
    pairs = [PairId(0, t, (0, 1), 0, 0) for t in (2, 3)]
    shades = {2: 40, 3: 220}
    for pair in pairs:
        figure = FusedPaths(root, pair).figure("fusion_result")
        figure.parent.mkdir(parents=True)
        Image.fromarray(np.full((600, 1800, 3), shades[pair.timepoint], np.uint8)).save(figure)
    Image.fromarray(np.full((300, 1200, 3), 90, np.uint8)).save(parameters_over_time_figure(root, (0, 1)))

    flow(publish_fusion_figures)(0, pairs[::-1], root)

    markdown = Artifact.get("fusion-diagnostics-spm00").data
    shown = [Image.open(io.BytesIO(base64.b64decode(data))) for data in re.findall(r"data:image/jpeg;base64,([A-Za-z0-9+/=]+)", markdown)]
    assert [image.size for image in shown] == [(900, 300), (900, 225)]  # scaled to the artifact's width, aspect kept
    assert abs(int(np.asarray(shown[0]).mean()) - shades[3]) <= 2  # the latest timepoint's picture, not TM2's
    assert "TM000003 cameras 0+1: fusion_result" in markdown
