"""Session fixtures: small synthetic acquisitions built once, with the simulator's ground truth."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from isoview_core.synthetic import SimulationConfig, simulate_acquisition

SMALL = SimulationConfig(shape=(48, 192, 160), timepoints=2, seed=3)


@pytest.fixture(scope="session")
def small_config() -> SimulationConfig:
    """The simulation settings of the shared small acquisition."""
    return SMALL


@pytest.fixture(scope="session")
def small_acquisition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-timepoint, 4-camera nested acquisition (read-only: copy it before changing anything)."""
    root = tmp_path_factory.mktemp("raw") / "acquisition"
    simulate_acquisition(root, SMALL)
    return root


@pytest.fixture()
def acquisition_copy(small_acquisition: Path, tmp_path: Path) -> Path:
    """A private copy of the small acquisition that a test may damage."""
    target = tmp_path / "acquisition"
    shutil.copytree(small_acquisition, target)
    return target


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API and database for the whole session (started once: it takes seconds)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session", autouse=True)
def raw_data_guard():
    """Fail the session if isoview code modified or deleted raw data (rules: tests/raw_guard.py).

    Only ``isoview_core.archive._delete_verified_raw`` may delete raw data; tests and the
    simulator may write it. Violations are collected during the session and reported here.
    """
    from raw_guard import GUARD

    GUARD.start()
    yield GUARD
    GUARD.stop()
    if GUARD.violations:
        pytest.fail(GUARD.report(), pytrace=False)
