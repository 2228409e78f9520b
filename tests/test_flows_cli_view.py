"""``isoview view``: opens a result folder through the napari plugin, follows it with ``--live``, says what is missing."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.cli.view import MISSING_NAPARI
from isoview_core.formats.omezarr import write_ome_zarr
from isoview_core.layout import corrected_paths
from isoview_core.results.series import append_timepoint

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # npe2's pydantic-v1 style models, at import
    import napari
    import npe2
    from napari.components import ViewerModel

runner = CliRunner()


@pytest.fixture()
def series(tmp_path) -> Path:
    """A fused root with one series of two published timepoints."""
    path = tmp_path / "acq.fused" / "SPM00_VW00_CHN00.ome.zarr"
    for timepoint in (0, 1):
        data = np.full((4, 16, 16), 200 + 100 * timepoint, dtype=np.uint16)
        volume = write_ome_zarr(tmp_path / f"TM{timepoint}.ome.zarr", data, voxel_size_um=(2.0, 0.5, 0.5))
        append_timepoint(path, volume, timepoint=timepoint, fingerprint=str(timepoint), attributes={"view": 0, "channel": 0})
    return path


@pytest.fixture()
def window(monkeypatch):
    """napari without a window: ``napari.Viewer`` is the Qt-free model, ``napari.run`` and the live timer are recorded."""
    npe2.PluginManager.instance().discover()
    opened: dict = {"viewers": [], "runs": 0, "follow": []}

    class Viewer(ViewerModel):
        def __init__(self, title: str) -> None:
            super().__init__(title=title)
            opened["viewers"].append(self)

    def run() -> None:
        opened["runs"] += 1

    monkeypatch.setattr(napari, "Viewer", Viewer)
    monkeypatch.setattr(napari, "run", run)
    monkeypatch.setattr("isoview_napari.live.follow", lambda viewer, interval: opened["follow"].append((viewer, interval)))
    return opened


def test_view_opens_the_root_through_the_plugin_and_runs_napari(series, window):
    result = runner.invoke(app, ["view", str(series.parent)])
    assert result.exit_code == 0, result.output
    (viewer,) = window["viewers"]
    assert [layer.name for layer in viewer.layers] == ["VW00 CHN00"] and viewer.layers[0].data.shape == (2, 4, 16, 16)
    assert viewer.title == "isoview: acq.fused"
    assert window["runs"] == 1 and window["follow"] == []


def test_view_live_follows_the_series_at_the_interval_given(series, window):
    result = runner.invoke(app, ["view", str(series), "--live", "--interval", "2"])
    assert result.exit_code == 0, result.output
    (viewer,) = window["viewers"]
    assert window["follow"] == [(viewer, 2.0)] and window["runs"] == 1


def test_view_live_on_a_corrected_root_says_there_is_nothing_to_follow(tmp_path, window):
    root = tmp_path / "acq.corrected"
    data = np.arange(4 * 16 * 16, dtype=np.uint16).reshape(4, 16, 16)
    attributes = {"specimen": 0, "timepoint": 0, "camera": 0, "channel": 0}
    write_ome_zarr(corrected_paths(root, 0, 0, 0, 0).volume, data, labels=data > 500, voxel_size_um=(2.0, 0.5, 0.5), attributes=attributes)
    result = runner.invoke(app, ["view", str(root), "--live"])
    assert result.exit_code == 0, result.output
    assert "no time series to follow" in result.output and window["follow"] == [] and window["runs"] == 1
    (viewer,) = window["viewers"]
    assert [layer.name for layer in viewer.layers] == ["CM00 CHN00", "CM00 CHN00 segmentation"]


def test_view_without_napari_says_how_to_install_it_in_one_line(series, monkeypatch):
    monkeypatch.setitem(sys.modules, "napari", None)  # import napari raises ImportError
    result = runner.invoke(app, ["view", str(series.parent)])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {MISSING_NAPARI}"
    assert "pip install 'isoview[viewer]'" in result.output


@pytest.mark.parametrize(("arguments", "message"), [
    (["view", "{tmp}"], "no IsoView time series or corrected / fused volumes"),
    (["view", "{tmp}/missing"], "no IsoView time series or corrected / fused volumes"),
    (["view", "{tmp}", "--live", "--interval", "0"], "Invalid value for '--interval'"),
])
def test_view_refuses_what_it_cannot_open_before_any_window(tmp_path, window, arguments, message):
    result = runner.invoke(app, [argument.format(tmp=tmp_path) for argument in arguments])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert window["viewers"] == [] and window["runs"] == 0
