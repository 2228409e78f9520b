import os
from types import SimpleNamespace

from isoview_core.config import ProcessingConfig
from tasks.caching import finished_output_cache_key


def _key_of(tmp_path, **config):
    raw, record = tmp_path / "raw.stack", tmp_path / "out.json"

    def files(config: ProcessingConfig, stack: str) -> tuple[list, list]:
        assert stack == "CM00"  # called with the task's parameters as keywords
        return [raw], [record]

    key = finished_output_cache_key(files)
    context = SimpleNamespace(task=SimpleNamespace(name="correct-stack"))
    return raw, record, lambda: key(context, {"config": ProcessingConfig(acquisition=tmp_path, **config), "stack": "CM00"})


def test_a_finished_output_gives_a_key_that_follows_its_files_and_config(tmp_path):
    raw, record, key = _key_of(tmp_path)
    raw.write_bytes(b"raw")
    assert key() is None  # no output yet
    record.write_text("{}")
    first = key()
    assert first.startswith("isoview-correct-stack-") and key() == first
    os.utime(raw, ns=(0, 1))
    assert key() != first  # an input changed: computed again
    assert _key_of(tmp_path, timepoints=[1])[2]() not in (None, key())  # another config: another key


def test_overwrite_or_a_file_gone_means_no_key(tmp_path):
    raw, record, key = _key_of(tmp_path, overwrite=True)
    raw.write_bytes(b"raw")
    record.write_text("{}")
    assert key() is None
    raw, record, key = _key_of(tmp_path)
    raw.unlink()
    assert key() is None
