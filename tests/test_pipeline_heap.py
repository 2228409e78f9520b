import threading

import numpy as np
import psutil
import pytest

from isoview_core.pipeline import heap
from isoview_core.pipeline.heap import glibc, release_free_memory, releases_free_memory

pytestmark = pytest.mark.skipif(glibc() is None, reason="glibc's heap: the C library of Linux builds (CI's)")

MIB = 2**20


def _freed_in_a_thread_heap_then_released() -> int:
    """Resident bytes that :func:`release_free_memory` hands back after a worker thread freed 256 MiB of 1 MiB image
    buffers between small blocks it still holds (so that its heap cannot simply shrink from the top)."""
    process = psutil.Process()
    np.empty(24 * MIB, np.uint8)  # freed at once: glibc raises its mmap threshold to (at least) 24 MiB, so 1 MiB blocks come from the heap
    buffers, keepers = [], []
    for _ in range(256):
        buffers.append(np.ones(MIB, np.uint8))
        keepers.append(np.ones(64, np.uint8).tobytes() * 8)
    del buffers
    kept = process.memory_info().rss
    release_free_memory()
    return kept - process.memory_info().rss


def test_memory_a_worker_freed_goes_back_to_the_system_when_its_job_ends():
    released = {}
    thread = threading.Thread(target=lambda: released.update(bytes=_freed_in_a_thread_heap_then_released()))
    thread.start()
    thread.join()
    # without the trim the heap keeps them (the resident set does not move); a glibc that returned them by itself would too
    assert released["bytes"] > 128 * MIB


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
