"""Worker processes for the batch drivers: the count the machine affords, and the same outputs as one worker."""

from __future__ import annotations

import numpy as np
import pytest

from isoview_core.config import ProcessingConfig
from isoview_core.formats.omezarr import read_ome_zarr
from isoview_core.fusion.records import load_fusion_record
from isoview_core.layout import FUSION_RECORD_SUFFIX, output_files
from isoview_core.pipeline.correction import process_dataset
from isoview_core.pipeline.fusion import fuse
from isoview_core.pipeline.parallel import InlineExecutor, worker_count

GIB = 2**30


@pytest.mark.parametrize(
    ("available_gib", "cores", "expected"),
    [(64, 16, 16), (16, 16, 6), (2, 16, 1), (0.1, 4, 1)],  # 1 GiB stacks, 2 stacks a worker, 80 % of the memory
)
def test_worker_count_is_bounded_by_cores_and_memory(available_gib, cores, expected):
    count = worker_count(None, stack_bytes=GIB, stacks_per_worker=2.0, available_bytes=int(available_gib * GIB), cores=cores)
    assert count == expected
    assert worker_count(3, stack_bytes=GIB, stacks_per_worker=2.0, available_bytes=0, cores=1) == 3  # asked for: as given


def test_the_inline_executor_hands_exceptions_to_the_caller():
    future = InlineExecutor().submit(int, "not a number")
    with pytest.raises(ValueError):
        future.result()


def test_two_workers_write_what_one_writes(small_acquisition, tmp_path):
    planes = []
    outputs = {}
    for workers in (1, 2):
        config = ProcessingConfig(
            acquisition=small_acquisition, corrected_dir=tmp_path / f"c{workers}", fused_dir=tmp_path / f"f{workers}", save_diagnostics=workers == 2
        )
        reports = process_dataset(config, workers=workers, progress=planes.append if workers == 2 else None)
        assert [error for report in reports for error in report.errors] == []
        report = fuse(config, workers=workers)
        assert report.errors == [] and len(report.fused) == 4
        outputs[workers] = config
    assert sum(planes) == 2 * 2 * 4 * 48  # two passes over the 48 planes of 4 stacks of 2 timepoints, streamed by the worker threads
    for root in ("corrected_dir", "fused_dir"):
        one, two = (output_files(getattr(outputs[w], root)) for w in (1, 2))
        assert [path.name for path in one] == [path.name for path in two] and len(one) >= 4
        for a, b in zip(one, two):
            np.testing.assert_array_equal(read_ome_zarr(a)[:], read_ome_zarr(b)[:], err_msg=a.name)
    one, two = (output_files(outputs[w].fused_dir, FUSION_RECORD_SUFFIX) for w in (1, 2))
    assert [load_fusion_record(a).model_dump(exclude={"timings_s"}) for a in one] == [load_fusion_record(b).model_dump(exclude={"timings_s"}) for b in two]
    assert len(list(outputs[2].fused_dir.rglob("*.png"))) == 4 * 5 + 2  # every pair's figures, drawn by the workers, and 2 series
