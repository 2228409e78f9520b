"""The service journal: work found finished on disk but missing from the journal is journaled once, on reconciliation."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from isoview_core.config import ProcessingConfig
from isoview_core.fusion.records import load_fusion_record
from isoview_core.layout import FUSION_RECORD_SUFFIX, output_files
from isoview_core.pipeline.correction import process_dataset
from isoview_core.pipeline.fusion import fuse
from isoview_core.service.journal import read_journal, reconcile_journal, record_work
from isoview_core.synthetic import SimulationConfig, simulate_acquisition
from isoview_core.temporal.config import TemporalConfig

TIMEPOINTS = 2


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corrected and fused 2-timepoint acquisition whose work was never journaled (the library does not journal)."""
    root = tmp_path_factory.mktemp("journal") / "acquisition"
    simulate_acquisition(root, SimulationConfig(shape=(16, 64, 48), timepoints=TIMEPOINTS, seed=5))
    config = _config(root)
    list(process_dataset(config))
    fuse(config, estimate_params=True, apply_fusion=True)
    return root


def _config(root: Path) -> ProcessingConfig:
    return ProcessingConfig(acquisition=root, temporal=TemporalConfig(window=1), save_diagnostics=False)


def _copy(processed: Path, tmp_path: Path) -> ProcessingConfig:
    """The processed outputs in a private place (their journal is changed by the test)."""
    source = _config(processed)
    target = tmp_path / "acquisition"
    config = ProcessingConfig(
        acquisition=processed,
        corrected_dir=target.with_suffix(".corrected"),
        fused_dir=target.with_suffix(".fused"),
        temporal=source.temporal,
        save_diagnostics=False,
    )
    shutil.copytree(source.resolved_corrected_dir(), config.resolved_corrected_dir())
    shutil.copytree(source.resolved_fused_dir(), config.resolved_fused_dir())
    return config


def _work(config: ProcessingConfig) -> Counter:
    journal = read_journal(config)
    return Counter((entry["event"], entry["timepoint"], entry.get("camera"), tuple(entry.get("cameras", ()))) for entry in journal)


def test_every_finished_output_is_journaled_once_and_only_once(processed: Path, tmp_path: Path) -> None:
    config = _copy(processed, tmp_path)
    record_work(config, "corrected", specimen=0, timepoint=1, camera=2, channel=1)  # journaled before the "kill"

    added = reconcile_journal(config)

    pairs = [(0, 1), (2, 3)]
    expected = Counter(
        [("corrected", t, camera, ()) for t in range(TIMEPOINTS) for camera in range(4)]
        + [(event, t, None, cameras) for event in ("estimated", "fused") for t in range(TIMEPOINTS) for cameras in pairs]
    )
    assert _work(config) == expected
    assert added == sum(expected.values()) - 1
    assert all(entry["recovered"] for entry in read_journal(config)[1:]) and "recovered" not in read_journal(config)[0]
    assert reconcile_journal(config) == 0  # a second start adds nothing
    records = [load_fusion_record(path) for path in output_files(config.resolved_fused_dir(), FUSION_RECORD_SUFFIX)]
    fused = [entry for entry in read_journal(config) if entry["event"] == "fused"]
    windows = {(record.timepoint, tuple(record.cameras), tuple(record.window)) for record in records}
    assert {(entry["timepoint"], tuple(entry["cameras"]), tuple(entry["window"])) for entry in fused} == windows
    assert {entry["specimen"] for entry in read_journal(config)} == {0}


def test_an_unreadable_record_is_left_to_the_work_that_redoes_it(processed: Path, tmp_path: Path) -> None:
    config = _copy(processed, tmp_path)
    damaged = output_files(config.resolved_fused_dir(), FUSION_RECORD_SUFFIX)[0]
    damaged.write_text('{"timepoint": 0, "cam')  # torn by a power cut during a --no-fsync run

    added = reconcile_journal(config)

    assert added == TIMEPOINTS * 4 + 2 * TIMEPOINTS * 2 - 1
    assert sum(1 for entry in read_journal(config) if entry["event"] == "fused") == 2 * TIMEPOINTS - 1
