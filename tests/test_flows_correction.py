from flows.correction import correct_timepoint
from isoview_core.config import ProcessingConfig
from isoview_core.correction.timepoint import corrected_paths, is_stack_corrected


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
    from isoview_core.correction.timepoint import correct_timepoint as correct_in_process
    from isoview_core.formats.omezarr import read_ome_zarr
    from isoview_core.service.config import ExecutionConfig

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


def test_a_truncated_stack_fails_the_flow_with_its_name_and_the_others_are_corrected(prefect_harness, acquisition_copy, tmp_path):
    import pytest

    from isoview_core.acquisition import discover_acquisition
    from isoview_core.errors import IsoviewError

    stack = discover_acquisition(acquisition_copy).timepoint(0, 0).stacks[2]
    with open(stack.path, "r+b") as handle:
        handle.truncate(stack.expected_bytes - 1000)
    config = ProcessingConfig(acquisition=acquisition_copy)
    with pytest.raises(IsoviewError, match=stack.path.name):
        correct_timepoint(acquisition_copy, 0, 0, config)
    done = [is_stack_corrected(corrected_paths(config.resolved_corrected_dir(), 0, 0, camera, channel)) for camera, channel in [(0, 0), (1, 0), (2, 1), (3, 1)]]
    assert done == [True, True, False, True]


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
