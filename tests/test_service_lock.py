import subprocess
import sys

import pytest

from isoview_core.errors import IsoviewError
from isoview_core.layout import (
    JOURNAL_NAME,
    SERVICE_DIR_NAME,
    WATCHER_LOCK_NAME,
    journal_path,
    watcher_lock_path,
)
from isoview_core.service.lock import WatcherLock


def test_a_second_watcher_is_refused_with_the_holder_named(tmp_path):
    path = watcher_lock_path(tmp_path)
    with WatcherLock(path, tmp_path / "acq"), pytest.raises(IsoviewError, match=r"another watcher is already processing it \(\{\"pid\""):
        with WatcherLock(path, tmp_path / "acq"):
            pass
    with WatcherLock(path, tmp_path / "acq"):  # released on exit
        pass


def test_a_killed_holder_does_not_block_the_restart(tmp_path):
    path = tmp_path / WATCHER_LOCK_NAME
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from isoview_core.service.lock import WatcherLock; import time\nwith WatcherLock({str(path)!r}, 'acq'): print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(IsoviewError):
        WatcherLock(path, "acq").__enter__()
    holder.kill()
    holder.wait()
    with WatcherLock(path, "acq"):
        pass


def test_the_lock_file_and_the_folders_made_for_it_are_removed_on_release_but_not_folders_with_outputs(tmp_path):
    fused = tmp_path / "acq.fused"
    with WatcherLock(watcher_lock_path(fused), tmp_path / "acq"):
        assert watcher_lock_path(fused).is_file()
    assert list(tmp_path.iterdir()) == []  # a watcher that did nothing leaves nothing
    with WatcherLock(watcher_lock_path(fused), tmp_path / "acq"):
        journal_path(fused).write_text("{}\n")
    assert [path.name for path in fused.rglob("*")] == [SERVICE_DIR_NAME, JOURNAL_NAME]
