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


KEPT_DURING_A_RUN = """
import numpy as np
import psutil
from isoview_core.pipeline.heap import heap_kept_for_run, releases_free_memory

MIB = 2**20
process = psutil.Process()

@releases_free_memory
def job():
    buffer = np.ones(96 * MIB, np.uint8)  # image-sized: glibc would give it a mapping of its own, unmapped when freed
    return int(buffer[-1])

base = process.memory_info().rss
with heap_kept_for_run():
    job()
    kept = process.memory_info().rss - base
    job()  # the same block again, from the kept memory
    reused = process.memory_info().rss - base
released = process.memory_info().rss - base
print(kept // MIB, reused // MIB, released // MIB)
"""


def test_a_run_keeps_what_its_jobs_free_for_the_next_job_and_hands_it_back_when_it_ends():
    environment = {name: value for name, value in os.environ.items() if not name.startswith("MALLOC_") and name != "GLIBC_TUNABLES"}
    child = subprocess.run([sys.executable, "-c", KEPT_DURING_A_RUN], env=environment, capture_output=True, text=True, check=True)
    kept, reused, released = (int(value) for value in child.stdout.split())
    assert kept >= 90, "the freed 96 MiB left the process during the run"
    assert reused < kept + 16, "the second job did not reuse the first one's memory"
    assert released < 16, "the kept memory was not handed back when the run ended"


KEPT_FOR_WORKER_THREADS = """
import sys
import threading
import numpy as np
import psutil
from isoview_core.pipeline.heap import heap_kept_for_run, releases_free_memory, share_main_heap

MIB = 2**20
process = psutil.Process()
if sys.argv[1] == "shared":
    assert share_main_heap()

@releases_free_memory
def job():
    buffer = np.ones(96 * MIB, np.uint8)  # larger than a thread's own heap (64 MB): glibc would map it on its own
    return int(buffer[-1])

def in_a_worker_thread():
    worker = threading.Thread(target=job)
    worker.start()
    worker.join()

base = process.memory_info().rss
with heap_kept_for_run():
    in_a_worker_thread()
    kept = process.memory_info().rss - base
    in_a_worker_thread()
    reused = process.memory_info().rss - base
print(kept // MIB, reused // MIB)
"""


@pytest.mark.parametrize("heaps", ["shared", "own"])
def test_worker_threads_reuse_the_memory_of_earlier_jobs_when_they_share_the_main_heap(heaps):
    environment = {name: value for name, value in os.environ.items() if not name.startswith("MALLOC_") and name != "GLIBC_TUNABLES"}
    child = subprocess.run(
        [sys.executable, "-c", KEPT_FOR_WORKER_THREADS, heaps], env=environment, capture_output=True, text=True, check=True
    )
    kept, reused = (int(value) for value in child.stdout.split())
    if heaps == "shared":
        assert kept >= 90 and reused < kept + 16, "the worker's freed 96 MiB were not kept for the next job"
    else:  # the reason for sharing: a thread's own heaps map such a block on its own and unmap it when freed
        assert kept < 16


def test_the_main_heap_is_not_shared_when_the_environment_tunes_the_heap(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert heap.share_main_heap() is False


def test_a_heap_tuned_by_the_environment_is_left_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    with heap.heap_kept_for_run():
        assert not heap._kept_heap.active
