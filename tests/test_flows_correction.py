from collections import Counter

import flows.correction
import tasks.correction
from flows.correction import correct_timepoint
from isoview_core.config import ProcessingConfig
from isoview_core.layout import corrected_paths, is_stack_corrected
from isoview_core.pipeline.correction import correct_camera_stack


def test_correct_timepoint_flow_corrects_every_camera(prefect_harness, small_acquisition, tmp_path):
    config = ProcessingConfig(acquisition=small_acquisition, corrected_dir=tmp_path / "corrected")
    records = correct_timepoint(small_acquisition, 0, 1, config)
    assert [(r.camera, r.channel) for r in records] == [(0, 0), (1, 0), (2, 1), (3, 1)]
    for record in records:
        assert record.timepoint == 1 and record.defective_pixels > 0
        assert is_stack_corrected(corrected_paths(config.resolved_corrected_dir(), 0, 1, record.camera, record.channel))
    assert correct_timepoint(small_acquisition, 0, 1, config) == records  # finished stacks are read back, not redone


def test_correct_timepoint_runs_on_a_dask_local_cluster(prefect_harness, small_acquisition, tmp_path):
    from flows.runners import make_task_runner
    from flows.service_config import ExecutionConfig
    from isoview_core.formats.omezarr import read_ome_zarr
    from isoview_core.pipeline.correction import correct_timepoint as correct_in_process

    config = ProcessingConfig(acquisition=small_acquisition, corrected_dir=tmp_path / "dask", fused_dir=tmp_path / "fused")
    on_dask = correct_timepoint.with_options(task_runner=make_task_runner(ExecutionConfig(task_runner="dask", max_workers=2)))
    records = on_dask(small_acquisition, 0, 0, config)
    reference = ProcessingConfig(acquisition=small_acquisition, corrected_dir=tmp_path / "reference")
    correct_in_process(reference, 0, 0)
    assert len(records) == 4
    for record in records:
        dask_paths = corrected_paths(config.resolved_corrected_dir(), 0, 0, record.camera, record.channel)
        local_paths = corrected_paths(reference.resolved_corrected_dir(), 0, 0, record.camera, record.channel)
        assert (read_ome_zarr(dask_paths.volume)[:] == read_ome_zarr(local_paths.volume)[:]).all()


def _count_corrections(monkeypatch, fail_first: BaseException | None = None) -> Counter:
    """Count the correction attempts per camera in `correct_stack_task` (its retries included); `fail_first` is raised by
    the first attempt of every stack."""
    attempts: Counter = Counter()

    def counted(acquisition, stack, config):
        attempts[stack.camera] += 1
        if fail_first is not None and attempts[stack.camera] == 1:
            raise fail_first
        return correct_camera_stack(acquisition, stack, config)

    monkeypatch.setattr(tasks.correction, "correct_camera_stack", counted)
    monkeypatch.setattr(flows.correction, "correct_stack_task", tasks.correction.correct_stack_task.with_options(retry_delay_seconds=0))
    return attempts


def test_a_truncated_stack_fails_the_flow_with_its_name_without_a_retry_and_the_others_are_corrected(prefect_harness, acquisition_copy, tmp_path, monkeypatch):
    import pytest

    from isoview_core.acquisition import discover_acquisition
    from isoview_core.errors import IsoviewError

    stack = discover_acquisition(acquisition_copy).timepoint(0, 0).stacks[2]
    with open(stack.path, "r+b") as handle:
        handle.truncate(stack.expected_bytes - 1000)
    config = ProcessingConfig(acquisition=acquisition_copy)
    attempts = _count_corrections(monkeypatch)
    with pytest.raises(IsoviewError, match=stack.path.name):
        correct_timepoint(acquisition_copy, 0, 0, config)
    done = [is_stack_corrected(corrected_paths(config.resolved_corrected_dir(), 0, 0, camera, channel)) for camera, channel in [(0, 0), (1, 0), (2, 1), (3, 1)]]
    assert done == [True, True, False, True]
    assert attempts == {0: 1, 1: 1, 2: 1, 3: 1}  # bad input fails the same way every time: not retried


def test_a_transient_io_error_is_retried(prefect_harness, small_acquisition, tmp_path, monkeypatch):
    import errno

    config = ProcessingConfig(acquisition=small_acquisition, corrected_dir=tmp_path / "corrected", fused_dir=tmp_path / "fused")
    attempts = _count_corrections(monkeypatch, fail_first=OSError(errno.EIO, "Input/output error (the network share dropped out)"))
    records = correct_timepoint(small_acquisition, 0, 0, config)
    assert len(records) == 4 and attempts == {0: 2, 1: 2, 2: 2, 3: 2}


def test_a_failed_acquisition_run_reports_its_progress_short_of_100_percent(prefect_harness, acquisition_copy, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterType,
    )

    from flows.acquisition import process_acquisition
    from isoview_core.acquisition import discover_acquisition

    stack = discover_acquisition(acquisition_copy).timepoint(0, 1).stacks[0]
    stack.path.write_bytes(bytes(stack.expected_bytes))  # all zero: TM1 fails, TM0 is corrected
    config = ProcessingConfig(acquisition=acquisition_copy, corrected_dir=tmp_path / "corrected", fused_dir=tmp_path / "fused")
    state = process_acquisition(acquisition_copy, config=config, fuse=False, return_state=True)
    assert state.is_failed()
    with get_client(sync_client=True) as client:
        [progress] = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]), type=ArtifactFilterType(any_=["progress"]))
        )
    assert progress.data == 50.0 and progress.description.endswith("2 timepoints; 1 of 2 steps done, 1 failed")


def test_the_flow_publishes_a_table_of_its_stacks(prefect_harness, small_acquisition, tmp_path):
    import json

    from prefect.artifacts import Artifact

    config = ProcessingConfig(acquisition=small_acquisition, corrected_dir=tmp_path / "corrected", fused_dir=tmp_path / "fused")
    records = correct_timepoint(small_acquisition, 0, 0, config)
    artifact = Artifact.get("correction-spm00-tm000000")
    rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert [row["camera"] for row in rows] == [record.camera for record in records]
    assert [row["dead pixels"] for row in rows] == [record.defective_pixels for record in records]
    assert rows[0]["compression"] == round(records[0].compression_ratio, 2)


def test_a_flow_refuses_paths_outside_the_data_roots(prefect_harness, small_acquisition, tmp_path, monkeypatch):
    import pytest

    from isoview_core.errors import IsoviewError

    monkeypatch.setenv("ISOVIEW_DATA_ROOTS", str(tmp_path))
    with pytest.raises(IsoviewError, match="outside the allowed data roots"):
        correct_timepoint(small_acquisition, 0, 0, ProcessingConfig(acquisition=small_acquisition, corrected_dir=tmp_path / "c"))
    other = ProcessingConfig(acquisition=tmp_path / "elsewhere")
    monkeypatch.delenv("ISOVIEW_DATA_ROOTS")
    with pytest.raises(IsoviewError, match="config given is for another acquisition"):
        correct_timepoint(small_acquisition, 0, 0, other)


def test_only_transient_errors_count_as_transient():
    import errno
    from xml.etree.ElementTree import ParseError

    from isoview_core.errors import (
        FormatError,
        MetadataError,
        StackContentError,
        StackSizeError,
    )
    from tasks.retries import is_transient

    def raised(error: Exception, during: Exception | None = None, cause: Exception | None = None) -> Exception:
        try:
            try:
                if during is not None:
                    raise during
            finally:
                if cause is not None:
                    raise error from cause
                raise error
        except Exception as caught:  # noqa: BLE001 - the test builds exception chains
            return caught

    disk_full = OSError(errno.ENOSPC, "No space left on device")
    assert is_transient(disk_full) and is_transient(MemoryError())
    assert is_transient(raised(FormatError("x.stack: cannot read raw stack (Input/output error)"), cause=OSError(errno.EIO, "I/O")))
    assert not is_transient(StackSizeError("x.stack: 97304 bytes, expected 98304")) and not is_transient(StackContentError("every pixel is 0"))
    assert not is_transient(raised(MetadataError("ch0.xml: malformed XML"), during=ParseError("unclosed token")))
