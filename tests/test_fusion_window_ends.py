"""`isoview fuse --window 2` end to end on the demo's acquisition: the applied parameters at every timepoint,
the first and last included."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from flows.cli import app
from isoview_core.layout import (
    FUSION_RECORD_SUFFIX,
    PairId,
    default_fused_root,
    pair_series_files,
)
from isoview_core.synthetic import (
    GROUND_TRUTH_NAME,
    GroundTruth,
    SimulationConfig,
    simulate_acquisition,
)

DEMO = SimulationConfig(shape=(48, 192, 160), timepoints=8, seed=0)  # what `isoview demo` records


@pytest.fixture(scope="module")
def fused_with_window_two(tmp_path_factory):
    """The demo's acquisition corrected and fused by the CLI with ``--window 2``, as the demo fuses it."""
    acquisition = tmp_path_factory.mktemp("window") / "acquisition"
    simulate_acquisition(acquisition, DEMO)
    runner = CliRunner()
    for command in (["correct", str(acquisition)], ["fuse", str(acquisition), "--window", "2", "--no-diagnostics"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
    return acquisition


@pytest.mark.parametrize("pair", [0, 1])
def test_every_applied_parameter_is_the_truth(fused_with_window_two, pair: int) -> None:
    truth = GroundTruth.load(fused_with_window_two / GROUND_TRUTH_NAME).pairs[pair]
    series = PairId(specimen=0, timepoint=0, cameras=(2 * pair, 2 * pair + 1), view=(0, 90)[pair], channel=pair)
    records = sorted(pair_series_files(default_fused_root(fused_with_window_two), series, FUSION_RECORD_SUFFIX))
    assert len(records) == DEMO.timepoints
    for path in records:
        record = json.loads(path.read_text())
        applied = record["applied"]
        assert abs(applied["offset_x_px"] - truth.offset_x_px) <= 0.1, (path.name, applied)
        assert abs(applied["offset_y_px"] - truth.offset_y_px) <= 0.1, (path.name, applied)
        assert abs(applied["intensity_ratio"] / truth.intensity_ratio - 1) <= 0.01, (path.name, applied)
