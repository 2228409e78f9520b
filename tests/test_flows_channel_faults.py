"""A channel XML that cannot be read, in the service: ``process-acquisition`` (``isoview run``) and
the watcher (``isoview watch``) correct the timepoint's other channel, fuse its pair and report the
XML as one problem; live, the windows around the failed pair are fused with its estimate imputed."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
from prefect.artifacts import Artifact
from test_pipeline_correction_channels import corrected_stacks, corrupt_channel_xml

from flows.acquisition import process_acquisition
from flows.fusion import fuse_window
from flows.service_config import ServiceConfig, WatchConfig
from flows.submission import InProcessSubmitter
from flows.watcher import AcquisitionWatcher
from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError
from isoview_core.layout import FUSION_RECORD_SUFFIX, output_files
from isoview_core.pipeline.correction import process_dataset
from isoview_core.service.journal import read_problems
from isoview_core.synthetic import SimulationConfig, simulate_acquisition
from isoview_core.temporal.config import TemporalConfig

GOOD_PAIRS = [
    "SPM00_TM000000_CM00_CM01_VW00_CHN00.fusion.json",
    "SPM00_TM000000_CM02_CM03_VW90_CHN01.fusion.json",
    "SPM00_TM000001_CM02_CM03_VW90_CHN01.fusion.json",
]
"""Every pair of the 2-timepoint acquisition but TM1's cameras 0+1, whose ch0.xml is corrupted."""


def fused_pairs(config: ProcessingConfig) -> list[str]:
    """The ``fusion.json`` (written last) of every fused pair."""
    return sorted(path.name for path in output_files(config.resolved_fused_dir(), FUSION_RECORD_SUFFIX))


def test_run_corrects_the_other_channel_fuses_its_pair_and_reports_the_xml_once(prefect_harness, acquisition_copy: Path, caplog):
    xml = corrupt_channel_xml(acquisition_copy)
    config = ProcessingConfig(acquisition=acquisition_copy, save_diagnostics=False)

    with pytest.raises(IsoviewError) as raised, caplog.at_level(logging.WARNING):
        process_acquisition(acquisition_copy, config=config)

    message = str(raised.value)
    assert f"{acquisition_copy}: 1 error(s): SPM00 TM000001: 1 error(s): {xml}: malformed XML" in message
    assert message.count(str(xml)) == 1 and "\n" not in message
    assert len(corrected_stacks(config, range(2))) == 6
    assert fused_pairs(config) == GOOD_PAIRS
    assert f"SPM00 TM000001 cameras 0+1: not fused, {xml}: malformed XML" in caplog.text  # the fusion says why


def test_the_watcher_reports_the_xml_as_one_problem_and_processes_the_rest(prefect_harness, acquisition_copy: Path):
    xml = corrupt_channel_xml(acquisition_copy)
    config = ServiceConfig(
        processing=ProcessingConfig(acquisition=acquisition_copy, save_diagnostics=False),
        watch=WatchConfig(scan_interval_s=0.1, settle_s=0.2, idle_timeout_s=2.0),
    )

    summary = AcquisitionWatcher(config, InProcessSubmitter(config)).run()

    [problem] = read_problems(config.processing)
    assert problem["timepoints"] == [1] and f"{xml}: malformed XML" in problem["message"]
    assert summary.problems == [problem["message"]]
    assert problem["message"] in str(Artifact.get("isoview-problems").data)  # the UI lists it
    assert len(corrected_stacks(config.processing, range(2))) == 6
    assert fused_pairs(config.processing) == GOOD_PAIRS


@pytest.fixture(scope="module")
def corrected_three_timepoints(tmp_path_factory: pytest.TempPathFactory) -> ProcessingConfig:
    """A tiny 3-timepoint acquisition whose TM1 ch0.xml is corrupted, corrected; window 1."""
    root = tmp_path_factory.mktemp("three") / "acquisition"
    simulate_acquisition(root, SimulationConfig(shape=(24, 96, 80), timepoints=3, seed=11))
    corrupt_channel_xml(root)
    config = ProcessingConfig(acquisition=root, temporal=TemporalConfig(window=1), save_diagnostics=False)
    process_dataset(config)
    return config


def test_a_live_window_over_the_failed_pair_is_fused_with_its_estimate_imputed(prefect_harness, corrected_three_timepoints):
    config = corrected_three_timepoints

    records = fuse_window(config.acquisition, 0, [0], config, acquisition_finished=False)

    assert sorted((record.cameras, record.window) for record in records) == [((0, 1), (0, 2)), ((2, 3), (0, 2))]
    assert all(math.isfinite(value) for record in records for value in record.applied.model_dump().values())
