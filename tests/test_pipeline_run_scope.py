import threading

import pytest

from isoview_core.pipeline.run_scope import RunScopedSetting


def recording_setting():
    calls = []
    setting = RunScopedSetting(lambda: calls.append("make") or "before", lambda before: calls.append(f"undo {before}"))
    return setting, calls


def test_the_setting_is_made_by_the_first_run_and_undone_with_what_it_returned_by_the_last():
    setting, calls = recording_setting()
    assert not setting.active
    with setting.held():
        with setting.held():
            assert calls == ["make"] and setting.active
        assert calls == ["make"] and setting.active
    assert calls == ["make", "undo before"] and not setting.active
    with setting.held():
        pass
    assert calls == ["make", "undo before", "make", "undo before"]


def test_runs_overlapping_in_threads_make_and_undo_it_once():
    setting, calls = recording_setting()
    first_started, second_ended = threading.Event(), threading.Event()

    def first_run():
        with setting.held():
            first_started.set()
            second_ended.wait(5)

    worker = threading.Thread(target=first_run)
    worker.start()
    first_started.wait(5)
    with setting.held():
        pass
    assert calls == ["make"]  # the second run ended while the first still held it
    second_ended.set()
    worker.join()
    assert calls == ["make", "undo before"]


def test_a_failing_run_undoes_it():
    setting, calls = recording_setting()
    with pytest.raises(RuntimeError, match="job failed"), setting.held():
        raise RuntimeError("job failed")
    assert calls == ["make", "undo before"] and not setting.active
