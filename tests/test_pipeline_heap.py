import threading

import numpy as np
import psutil
import pytest

from isoview_core.pipeline import heap
from isoview_core.pipeline.heap import glibc, release_free_memory, releases_free_memory

pytestmark = pytest.mark.skipif(glibc() is None, reason="glibc's heap: the C library of Linux builds (CI's)")

MIB = 2**20


def _freed_inside_a_thread_heap() -> int:
    """Resident bytes a worker thread's heap keeps after freeing 96 MiB of 1 MiB image buffers, between live small ones."""
    process = psutil.Process()
    np.empty(24 * MIB, np.uint8)  # freed at once: glibc raises its mmap threshold to 24 MiB, so 1 MiB blocks come from the heap
    before = process.memory_info().rss
    buffers, keepers = [], []
    for _ in range(96):
        buffers.append(np.ones(MIB, np.uint8))
        keepers.append(np.ones(64, np.uint8).tobytes() * 8)  # small live blocks between them: the heap's top cannot shrink
    del buffers
    return process.memory_info().rss - before


def test_memory_a_worker_freed_goes_back_to_the_system_when_its_job_ends():
    kept = {}

    def worker():
        kept["freed"] = _freed_inside_a_thread_heap()
        release_free_memory()
        kept["released"] = psutil.Process().memory_info().rss

    rss = psutil.Process().memory_info().rss
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert kept["freed"] > 64 * MIB, "the heap did not keep the freed buffers: the test no longer shows what it checks"
    assert kept["released"] - rss < 32 * MIB


def test_a_job_releases_the_free_memory_when_it_returns_and_when_it_fails(monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "release_free_memory", lambda: calls.append("released"))

    @releases_free_memory
    def job(value):
        if value < 0:
            raise ValueError("bad value")
        return value * 2

    assert job(3) == 6 and calls == ["released"]
    with pytest.raises(ValueError, match="bad value"):
        job(-1)
    assert calls == ["released", "released"]
