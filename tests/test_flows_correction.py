import pytest
from prefect.testing.utilities import prefect_test_harness

from flows.correction import correct_timepoint
from isoview_core.config import ProcessingConfig
from isoview_core.correction.timepoint import corrected_paths, is_stack_corrected


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API and database for the whole session."""
    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_correct_timepoint_flow_corrects_every_camera(prefect_harness, small_acquisition, tmp_path):
    config = ProcessingConfig(acquisition=small_acquisition, corrected_dir=tmp_path / "corrected")
    records = correct_timepoint(small_acquisition, 0, 1, config)
    assert [(r.camera, r.channel) for r in records] == [(0, 0), (1, 0), (2, 1), (3, 1)]
    for record in records:
        assert record.timepoint == 1 and record.defective_pixels > 0
        assert is_stack_corrected(corrected_paths(config.resolved_corrected_dir(), 0, 1, record.camera, record.channel))
    assert correct_timepoint(small_acquisition, 0, 1, config) == records  # finished stacks are read back, not redone
