"""Raw archive (isoview_core.archive): lossless, verified, idempotent; raw deleted only on request after verification.

Also the raw-data guard of the suite (tests/raw_guard.py): it must catch library code that writes or deletes raw data.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import isoview_core.archive as archive_module
from isoview_core.acquisition import CameraStack, discover_acquisition
from isoview_core.archive import (
    ArchiveConfig,
    ArchiveVerificationError,
    _delete_verified_raw,
    archive_paths,
    archive_stack,
    finished_archive_record,
    load_archive_record,
)
from isoview_core.formats.codecs import CodecConfig
from isoview_core.formats.omezarr import read_ome_zarr
from isoview_core.formats.stack import StackFile

ON = ArchiveConfig(enabled=True)
DELETE = ArchiveConfig(enabled=True, delete_raw_after_verify=True)


def _stacks(root: Path) -> list[CameraStack]:
    return discover_acquisition(root).timepoint(0, 0).stacks


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _flip_plane(monkeypatch: pytest.MonkeyPatch, plane: int) -> None:
    """Make the verification's read-back of the archive return one flipped bit in `plane`."""
    real = archive_module._read_archive_planes

    def flipped(archive, start, stop):
        planes = np.array(real(archive, start, stop), copy=True)
        if start <= plane < stop:
            planes[plane - start, 7, 9] ^= 1
        return planes

    monkeypatch.setattr(archive_module, "_read_archive_planes", flipped)


def test_archive_is_bit_exact_and_recorded_and_the_raw_stack_kept_by_default(acquisition_copy):
    for stack in _stacks(acquisition_copy):
        raw_bytes = stack.path.read_bytes()
        before = os.stat(stack.path)
        record = archive_stack(stack, acquisition_copy, ON)

        expected_archive = acquisition_copy.parent / "acquisition.archive" / stack.path.relative_to(acquisition_copy).parent / stack.path.name.replace(".stack", ".ome.zarr")
        assert record.archive_path == expected_archive
        decoded = read_ome_zarr(record.archive_path)[:]
        assert decoded.dtype == np.uint16 and decoded.shape == stack.shape_zyx
        assert decoded.astype("<u2").tobytes() == raw_bytes  # bit for bit

        assert record.raw_path == stack.path
        assert record.raw_size == len(raw_bytes) == before.st_size
        assert record.raw_mtime_ns == before.st_mtime_ns
        assert record.sha256 == hashlib.sha256(raw_bytes).hexdigest()
        assert record.codec == CodecConfig(name="blosc-zstd", level=3)
        assert record.verified and record.verified_at is not None
        assert not record.deleted_raw
        assert stack.path.name in record.message and "verified" in record.message
        assert (record.specimen, record.timepoint, record.camera, record.channel) == (0, 0, stack.camera, stack.channel)
        assert load_archive_record(archive_paths(stack, acquisition_copy, ON).record) == record

        assert stack.path.read_bytes() == raw_bytes  # raw untouched and kept
        assert os.stat(stack.path).st_mtime_ns == before.st_mtime_ns


def test_archive_reads_the_raw_stack_in_slabs_never_whole(acquisition_copy, monkeypatch):
    stack = _stacks(acquisition_copy)[0]
    slabs = []
    real = StackFile.read_planes

    def counting(self, start, stop, out=None):
        slabs.append(stop - start)
        return real(self, start, stop, out=out)

    monkeypatch.setattr(StackFile, "read_planes", counting)
    monkeypatch.setattr(StackFile, "memmap", lambda self: pytest.fail("whole-stack memmap"))
    archive_stack(stack, acquisition_copy, ON.model_copy(update={"codec": CodecConfig(name="blosc-zstd", level=3, shard_shape=(8, 192, 160))}))
    depth = stack.shape_zyx[0]
    assert max(slabs) == 8 and sum(slabs) == 2 * depth  # copy + second read for the verification


def test_rerun_skips_a_verified_archive_and_redoes_a_changed_raw_stack(acquisition_copy, monkeypatch):
    stack = _stacks(acquisition_copy)[1]
    first = archive_stack(stack, acquisition_copy, ON)
    assert finished_archive_record(stack, acquisition_copy, ON) == first

    def must_not_run(*args, **kwargs):
        raise AssertionError("archived again")

    with monkeypatch.context() as patch:
        patch.setattr(archive_module, "_write_and_verify", must_not_run)
        patch.setattr(archive_module, "_verified_record", must_not_run)
        assert archive_stack(stack, acquisition_copy, ON) == first

    os.utime(stack.path, ns=(first.raw_mtime_ns + 10**9, first.raw_mtime_ns + 10**9))  # the raw file was rewritten
    assert finished_archive_record(stack, acquisition_copy, ON) is None
    second = archive_stack(stack, acquisition_copy, ON)
    assert second.verified and second.raw_mtime_ns == first.raw_mtime_ns + 10**9 and second.sha256 == first.sha256


def test_raw_stack_deleted_only_with_delete_raw_after_verify(acquisition_copy):
    stack = _stacks(acquisition_copy)[2]
    digest = _sha256(stack.path)
    kept = archive_stack(stack, acquisition_copy, ON)
    assert stack.path.is_file() and not kept.deleted_raw

    record = archive_stack(stack, acquisition_copy, DELETE)  # deletion newly asked: re-verified, then deleted
    assert record.verified and record.deleted_raw
    assert not stack.path.exists()
    assert stack.path.name in record.message and "deleted" in record.message
    assert load_archive_record(archive_paths(stack, acquisition_copy, DELETE).record) == record
    decoded = read_ome_zarr(record.archive_path)[:]
    assert hashlib.sha256(decoded.astype("<u2").tobytes()).hexdigest() == digest == record.sha256
    assert archive_stack(stack, acquisition_copy, DELETE) == record  # rerun: nothing left to do

    with pytest.raises(ValidationError, match="needs enabled"):
        ArchiveConfig(delete_raw_after_verify=True)


def test_corrupted_archive_fails_verification_keeps_the_raw_stack_and_says_so(acquisition_copy, monkeypatch):
    stack = _stacks(acquisition_copy)[3]
    digest = _sha256(stack.path)
    _flip_plane(monkeypatch, plane=5)
    with pytest.raises(ArchiveVerificationError, match=stack.path.name) as raised:
        archive_stack(stack, acquisition_copy, DELETE)
    message = str(raised.value)
    assert "plane 5 differs" in message and "raw stack kept" in message and "\n" not in message

    assert stack.path.is_file() and _sha256(stack.path) == digest
    record = load_archive_record(archive_paths(stack, acquisition_copy, DELETE).record)
    assert record is not None and not record.verified and not record.deleted_raw
    assert record.message == message and record.verified_at is not None
    assert finished_archive_record(stack, acquisition_copy, DELETE) is None  # a rerun archives again

    monkeypatch.undo()
    assert archive_stack(stack, acquisition_copy, ON).verified


def test_an_archive_damaged_after_verification_stops_a_later_deletion(acquisition_copy, monkeypatch):
    stack = _stacks(acquisition_copy)[0]
    archive_stack(stack, acquisition_copy, ON)
    _flip_plane(monkeypatch, plane=47)
    with pytest.raises(ArchiveVerificationError, match="plane 47 differs"):
        archive_stack(stack, acquisition_copy, DELETE)
    assert stack.path.is_file()


def test_raw_stack_changed_between_verification_and_deletion_is_kept(acquisition_copy, monkeypatch):
    stack = _stacks(acquisition_copy)[1]
    real = archive_module._verified_record

    def then_touch(*args, **kwargs):
        record = real(*args, **kwargs)
        os.utime(stack.path, ns=(record.raw_mtime_ns + 5_000_000, record.raw_mtime_ns + 5_000_000))  # same size, new mtime
        return record

    monkeypatch.setattr(archive_module, "_verified_record", then_touch)
    with pytest.raises(ArchiveVerificationError, match=f"{stack.path.name}: changed since its archive was verified"):
        archive_stack(stack, acquisition_copy, DELETE)
    assert stack.path.is_file()
    record = load_archive_record(archive_paths(stack, acquisition_copy, DELETE).record)
    assert record is not None and record.verified and not record.deleted_raw and "raw stack kept" in record.message


def test_delete_verified_raw_refuses_unverified_records_and_other_files(acquisition_copy):
    stack = _stacks(acquisition_copy)[0]
    record = archive_stack(stack, acquisition_copy, ON)
    unverified = record.model_copy(update={"verified": False})
    assert not _delete_verified_raw(stack.path, unverified).deleted_raw
    other = _stacks(acquisition_copy)[1].path
    assert not _delete_verified_raw(other, record).deleted_raw
    with open(stack.path, "ab") as handle:  # grown by one byte since verification
        handle.write(b"\0")
    refused = _delete_verified_raw(stack.path, record)
    assert not refused.deleted_raw and "changed since" in refused.message
    assert stack.path.is_file() and other.is_file()


def test_archive_paths_mirror_the_acquisition_and_honour_the_root(acquisition_copy, tmp_path):
    stack = _stacks(acquisition_copy)[0]
    paths = archive_paths(stack, acquisition_copy, ArchiveConfig(root=tmp_path / "vault"))
    stem = "SPC00_TM00000_ANG000_CM0_CHN00_PH0"
    assert paths.archive == tmp_path / "vault" / "SPM00" / "TM00000" / "ANG000" / f"{stem}.ome.zarr"
    assert paths.record == tmp_path / "vault" / "SPM00" / "TM00000" / "ANG000" / f"{stem}.archive.json"
    with pytest.raises(ValueError, match="not inside the acquisition"):
        archive_paths(stack, tmp_path / "elsewhere", ON)


@pytest.mark.filterwarnings("ignore:Logger 'prefect.task_runs' attempted to send logs to the API")
def test_archive_task_journals_work_once(prefect_harness, acquisition_copy, tmp_path):
    from isoview_core.config import ProcessingConfig
    from isoview_core.service.journal import read_journal
    from tasks.archive import archive_stack_task

    config = ProcessingConfig(acquisition=acquisition_copy, fused_dir=tmp_path / "fused")
    stack = _stacks(acquisition_copy)[0]
    record = archive_stack_task(config, ON, stack)
    assert record.verified and stack.path.is_file()
    assert archive_stack_task(config, ON, stack) == record  # skipped, not journaled again
    archived = [entry for entry in read_journal(config) if entry["event"] == "archived"]
    assert len(archived) == 1 and archived[0]["camera"] == stack.camera and archived[0]["verified"] is True


# --- the raw-data guard (tests/raw_guard.py) ---------------------------------------------------


def _run_as(relative_file: str, source: str, **names) -> None:
    """Run `source` as if it were code of the repository file `relative_file` (for the guard's call-stack rule)."""
    import raw_guard

    code = compile(source, os.path.join(raw_guard.REPOSITORY, relative_file), "exec")
    exec(code, {"__name__": "probe", **names})  # noqa: S102 - a probe posing as library code


def test_guard_catches_library_code_writing_or_deleting_raw_data(raw_data_guard, acquisition_copy):
    assert raw_data_guard.active
    stack = _stacks(acquisition_copy)[0]
    timepoint = stack.path.parent.parent
    with raw_data_guard.capture() as caught:
        _run_as("isoview_core/_probe.py", "open(path, 'ab').close()", path=stack.path)
        _run_as("flows/_probe.py", "import os; os.replace(a, b)", a=timepoint / "ch0.xml", b=timepoint / "ch0.xml")
        _run_as("tasks/_probe.py", "import os; os.truncate(path, os.path.getsize(path))", path=stack.path)
    assert len(caught) == 3, caught
    assert f"open of raw stack {stack.path}" in caught[0] and "isoview_core/_probe.py:1" in caught[0]
    assert "os.rename of channel XML" in caught[1] and "flows/_probe.py" in caught[1]
    assert "os.truncate of raw stack" in caught[2] and "tasks/_probe.py" in caught[2]


def test_guard_blames_the_caller_of_pass_through_writers_and_sees_rmtree(raw_data_guard, acquisition_copy):
    from isoview_core.formats.stack import write_stack

    stack = _stacks(acquisition_copy)[0]
    volume = np.zeros((1, 2, 2), dtype=np.uint16)
    with raw_data_guard.capture() as caught:
        write_stack(stack.path, volume)  # a test may damage its copy
        _run_as("isoview_core/correction/_probe.py", "write_stack(path, volume)", write_stack=write_stack, path=stack.path, volume=volume)
        _run_as("isoview_core/_probe.py", "import shutil; shutil.rmtree(folder)", folder=stack.path.parent)
    assert len(caught) == 1 + 4, caught  # the probe's write_stack, then rmtree's unlink of each of the 4 stacks
    assert "isoview_core/correction/_probe.py:1" in caught[0]
    assert all("os.remove of raw stack" in message and "isoview_core/_probe.py" in message for message in caught[1:])
    assert not stack.path.parent.exists()


def test_guard_allows_tests_the_simulator_reads_and_the_verified_deletion(raw_data_guard, acquisition_copy):
    stack = _stacks(acquisition_copy)[1]
    with raw_data_guard.capture() as caught:
        _run_as("isoview_core/_probe.py", "open(path, 'rb').read(10)", path=stack.path)  # reading is fine
        _run_as("isoview_core/synthetic/_probe.py", "open(path, 'r+b').close()", path=stack.path)
        _run_as("isoview_core/_probe.py", "open(folder / 'SPM00_TM000000_CHN00.xml', 'w').close()", folder=stack.path.parent)
        open(stack.path, "r+b").close()
        archive_stack(stack, acquisition_copy, DELETE)  # the one allowed deletion
    assert caught == []
    assert not stack.path.exists()


def test_guard_rules_on_names_and_frames(acquisition_copy, tmp_path):
    import raw_guard

    timepoint = acquisition_copy / "SPM00" / "TM00000"
    assert raw_guard.raw_kind("SPC00_TM00000_ANG000_CM0_CHN00_PH0.stack") == "raw stack"
    assert raw_guard.raw_kind(os.fsencode(acquisition_copy / "SPM00" / "Background_3.tif")) == "dark frame"
    assert raw_guard.raw_kind(timepoint / "ch1.xml") == "channel XML"
    (tmp_path / "out").mkdir()
    assert raw_guard.raw_kind(tmp_path / "out" / "ch1.xml") is None  # not beside raw data
    assert raw_guard.raw_kind(timepoint / "SPM00_TM000000_CM00_CHN00.ome.zarr") is None
    assert raw_guard.suspect_paths("open", ("f.stack", "r", os.O_RDONLY)) == []
    assert raw_guard.suspect_paths("open", ("f.stack", None, os.O_WRONLY | os.O_CREAT)) == ["f.stack"]

    repo = raw_guard.REPOSITORY
    library = (os.path.join(repo, "isoview_core", "correction", "timepoint.py"), "correct_camera_stack", 1)
    test = (os.path.join(repo, "tests", "test_x.py"), "test_y", 1)
    numpy_frame = (np.__file__, "tofile", 1)
    archive = (os.path.join(repo, "isoview_core", "archive.py"), "_delete_verified_raw", 1)
    other_archive = (os.path.join(repo, "isoview_core", "archive.py"), "archive_stack", 1)
    writer = (os.path.join(repo, "isoview_core", "formats", "stack.py"), "write_stack", 1)
    simulator = (os.path.join(repo, "isoview_core", "synthetic", "acquisition.py"), "_write_timepoint", 1)
    assert raw_guard.judge([numpy_frame, library, test]) == ("violation", library)
    assert raw_guard.judge([numpy_frame, test, library])[0] == "allowed"
    assert raw_guard.judge([archive, other_archive, test]) == ("allowed", archive)
    assert raw_guard.judge([other_archive, test]) == ("violation", other_archive)
    assert raw_guard.judge([writer, simulator, library]) == ("allowed", simulator)
    assert raw_guard.judge([writer, library, test]) == ("violation", library)
    assert raw_guard.judge([numpy_frame]) == ("pass", None)
