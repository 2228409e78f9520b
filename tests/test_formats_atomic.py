"""Durable publication (isoview_core.formats.atomic): fsync before the rename, the folder after it, and nothing when off."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from durability_log import DurabilityLog
from omezarr_helpers import labels, volume, written  # noqa: F401 (fixtures)

from isoview_core.formats import (
    is_complete,
    read_volume,
    remove_stale_partials,
    write_volume,
)
from isoview_core.formats.atomic import (
    FSYNC_VARIABLE,
    append_text,
    atomic_output,
    fsync_enabled,
    make_durable,
    set_fsync,
    write_text_atomically,
)


@pytest.fixture()
def log(monkeypatch: pytest.MonkeyPatch) -> DurabilityLog:
    """fsync on (whatever the environment says), and every fsync and rename of the test logged."""
    monkeypatch.setenv(FSYNC_VARIABLE, "1")
    return DurabilityLog.install(monkeypatch)


VOLUME = np.arange(4 * 24 * 20, dtype=np.uint16).reshape(4, 24, 20)


@pytest.mark.parametrize("name", ["volume.ome.zarr", "volume.ome.tif", "volume.klb"])
def test_every_file_and_folder_of_an_output_is_fsynced_before_its_rename_and_its_folder_after(log, tmp_path, name):
    final = tmp_path / name
    labels = VOLUME > 500 if name.endswith("zarr") else None
    write_volume(final, VOLUME, labels=labels)
    log.assert_durably_published(final)
    if final.is_dir():
        assert len(list(final.rglob("*"))) > 10  # the zarr tree: metadata, shards and their folders, all checked


def test_replacing_a_folder_output_publishes_the_new_one_durably_before_the_old_one_goes(log, tmp_path):
    final = tmp_path / "volume.ome.zarr"
    write_volume(final, VOLUME)
    write_volume(final, VOLUME + 1, overwrite=True)
    published, _ = log.assert_durably_published(final)
    [(_, _, old)] = [event for event in log.events[:published] if event[0] == "rename" and event[1] == final]  # moved aside
    assert not old.exists() and np.array_equal(read_volume(final)[:], VOLUME + 1)


def test_folders_created_for_an_output_are_fsynced_after_it_is_published(log, tmp_path):
    final = tmp_path / "new" / "deeper" / "record.json"
    write_text_atomically(final, "{}")
    published, _ = log.assert_durably_published(final)
    for folder in (tmp_path / "new", tmp_path):  # they gained the entries "deeper" and "new"
        assert any(i > published for i in log.fsynced_at(folder))


def test_a_failed_output_is_neither_published_nor_fsynced(log, tmp_path):
    with pytest.raises(RuntimeError), atomic_output(tmp_path / "out.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert log.fsyncs() == 0 and list(tmp_path.iterdir()) == []


def test_appended_lines_are_fsynced_and_the_folder_when_the_file_is_created(log, tmp_path):
    journal = tmp_path / "journal.jsonl"
    append_text(journal, '{"event": "corrected"}\n')
    created = log.fsynced_at(journal)
    assert created and any(i > created[0] for i in log.fsynced_at(tmp_path))
    append_text(journal, '{"event": "fused"}\n')
    assert len(log.fsynced_at(journal)) == 2 and len(log.fsynced_at(tmp_path)) == 1
    assert journal.read_text().splitlines() == ['{"event": "corrected"}', '{"event": "fused"}']


def test_make_durable_fsyncs_an_output_and_its_folders_up_to_the_root(log, tmp_path):
    output = tmp_path / "a" / "b" / "volume.ome.zarr"
    (output / "0").mkdir(parents=True)
    (output / "0" / "zarr.json").write_text("{}")
    make_durable(output, root=tmp_path / "a")
    for entry in (output, output / "0", output / "0" / "zarr.json", tmp_path / "a" / "b", tmp_path / "a"):
        assert log.fsynced_at(entry), entry
    assert not log.fsynced_at(tmp_path)
    with pytest.raises(ValueError, match="not below"):
        make_durable(output, root=tmp_path / "elsewhere")


def test_with_fsync_off_outputs_are_published_without_any_fsync(log, tmp_path):
    set_fsync(False)
    assert not fsync_enabled() and os.environ[FSYNC_VARIABLE] == "0"
    write_volume(tmp_path / "v.ome.zarr", VOLUME, labels=VOLUME > 500)
    write_volume(tmp_path / "v.ome.tif", VOLUME)
    write_text_atomically(tmp_path / "sub" / "record.json", "{}")
    append_text(tmp_path / "journal.jsonl", "{}\n")
    assert log.fsyncs() == 0
    assert (tmp_path / "v.ome.zarr" / "zarr.json").is_file() and (tmp_path / "sub" / "record.json").read_text() == "{}"
    set_fsync(True)
    assert fsync_enabled()


def test_remove_stale_partials(tmp_path: Path, written: Path) -> None:
    old_dir = tmp_path / "b.ome.zarr.partial-0123abcd"
    (old_dir / "0").mkdir(parents=True)
    (old_dir / "0" / "chunk").write_bytes(b"x")
    old_file = tmp_path / "c.klb.partial-89abcdef"
    old_file.write_bytes(b"x")
    fresh = tmp_path / "d.ome.zarr.partial-00000000"
    fresh.mkdir()
    an_hour_ago = time.time() - 3700
    for entry in (old_dir, old_dir / "0", old_dir / "0" / "chunk", old_file):
        os.utime(entry, (an_hour_ago, an_hour_ago))
    assert remove_stale_partials(tmp_path) == [old_dir, old_file]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([written.name, fresh.name])
    assert remove_stale_partials(tmp_path, older_than_s=0) == [fresh]
    assert remove_stale_partials(tmp_path / "missing") == []
    assert is_complete(written)
