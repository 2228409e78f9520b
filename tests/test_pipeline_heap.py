import os
import subprocess
import sys

import pytest

from isoview_core.pipeline import heap
from isoview_core.pipeline.heap import glibc, releases_free_memory

pytestmark = pytest.mark.skipif(glibc() is None, reason="glibc's heap: the C library of Linux builds (CI's)")

MIB = 2**20


# Run in a fresh interpreter: a test before it in the same process may have fixed glibc's mmap threshold
# (``flows.memory.apply_mmap_threshold``), and 1 MiB blocks would then be mapped and unmapped, never kept in a heap.
FREED_IN_A_THREAD_HEAP_THEN_RELEASED = """
import threading
import numpy as np
import psutil
from isoview_core.pipeline.heap import release_free_memory

MIB = 2**20

def freed_then_released(released):
    process = psutil.Process()
    np.empty(24 * MIB, np.uint8)  # freed at once: glibc raises its mmap threshold to 24 MiB, so 1 MiB blocks come from the heap
    buffers, keepers = [], []
    for _ in range(256):  # small blocks kept between them: the heap cannot simply shrink from its top
        buffers.append(np.ones(MIB, np.uint8))
        keepers.append(np.ones(64, np.uint8).tobytes() * 8)
    del buffers
    kept = process.memory_info().rss
    release_free_memory()
    released.append(kept - process.memory_info().rss)

released = []
worker = threading.Thread(target=freed_then_released, args=(released,))  # a worker thread's heap is its own arena
worker.start()
worker.join()
print(released[0])
"""


def test_memory_a_worker_freed_goes_back_to_the_system_when_its_job_ends():
    environment = {name: value for name, value in os.environ.items() if not name.startswith("MALLOC_") and name != "GLIBC_TUNABLES"}
    child = subprocess.run(
        [sys.executable, "-c", FREED_IN_A_THREAD_HEAP_THEN_RELEASED], env=environment, capture_output=True, text=True, check=True
    )
    # without the trim the heap keeps the 256 MiB (the resident set does not move); a glibc that returned them by itself would too
    assert int(child.stdout) > 128 * MIB


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
