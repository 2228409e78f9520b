"""glibc's mmap threshold of the service's processes: fixed by the service config, the user's variable wins."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from flows.memory import THRESHOLD_VARIABLE, MmapThreshold, apply_mmap_threshold

REPOSITORY = Path(__file__).resolve().parents[1]

# In a fresh process: free a 4 MiB block (glibc's adaptive threshold rises to 4 MiB), then allocate an image-sized
# 1 MiB buffer and measure how much of it got a memory mapping of its own (mallinfo2's hblkhd).
ONE_MIB_BUFFER = """
import ctypes, json, os, sys
from flows.memory import THRESHOLD_VARIABLE, apply_mmap_threshold

class MallocInfo(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
libc.mallinfo2.restype = MallocInfo
threshold = apply_mmap_threshold(None if sys.argv[1] == "adaptive" else int(sys.argv[1]))
libc.free(libc.malloc(4 << 20))
before = libc.mallinfo2().hblkhd
buffer = libc.malloc(1 << 20)
print(json.dumps({"source": threshold.source, "bytes": threshold.bytes, "mapped": libc.mallinfo2().hblkhd - before,
                  "exported": os.environ.get(THRESHOLD_VARIABLE)}))
"""


def _one_mib_buffer(setting: str) -> dict:
    # glibc's allocator settings removed: any of them (Dask sets MALLOC_TRIM_THRESHOLD_ in this process) fixes the threshold
    environment = {name: value for name, value in os.environ.items() if not name.startswith("MALLOC_") and name != "GLIBC_TUNABLES"}
    result = subprocess.run([sys.executable, "-c", ONE_MIB_BUFFER, setting], cwd=REPOSITORY, env=environment, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_a_fixed_threshold_keeps_image_buffers_in_mappings_of_their_own_after_a_larger_one_was_freed():
    adaptive, fixed = _one_mib_buffer("adaptive"), _one_mib_buffer("131072")
    assert adaptive == {"source": "adaptive", "bytes": None, "mapped": 0, "exported": None}  # from the heap: what the fix avoids
    assert fixed["source"] == "config" and fixed["bytes"] == 131072 and fixed["mapped"] >= 1 << 20
    assert fixed["exported"] == "131072"  # the processes it starts (Dask workers, served runs) get it too


def test_the_users_variable_wins_and_none_keeps_glibcs_default(monkeypatch):
    monkeypatch.setenv(THRESHOLD_VARIABLE, "65536")
    assert apply_mmap_threshold(131072) == MmapThreshold(65536, "environment")
    monkeypatch.delenv(THRESHOLD_VARIABLE)
    assert apply_mmap_threshold(None) == MmapThreshold(None, "adaptive") and THRESHOLD_VARIABLE not in os.environ
