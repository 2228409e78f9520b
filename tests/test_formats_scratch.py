"""Scratch volumes: numpy slicing over a raw file, copies of zarr arrays slab by slab, no mapping kept open."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from isoview_core.formats.scratch import ScratchVolume


def _mapped_paths() -> set[str]:
    """Files this process has mapped now."""
    return {line.split(maxsplit=5)[-1].strip() for line in Path("/proc/self/maps").read_text().splitlines() if line.count(" ") >= 5}


def test_a_scratch_volume_reads_back_what_was_written_like_a_numpy_array(tmp_path: Path) -> None:
    expected = np.zeros((5, 7, 9), dtype=np.float32)
    volume = ScratchVolume.create(tmp_path / "grid.raw", expected.shape, np.float32)
    assert (volume.shape, volume.ndim, volume.dtype, volume.nbytes) == ((5, 7, 9), 3, np.dtype(np.float32), expected.nbytes)
    block = (slice(1, 4), slice(2, 7), slice(0, 5))
    values = np.arange(3 * 5 * 5, dtype=np.float32).reshape(3, 5, 5)
    volume[block] = values
    expected[block] = values
    np.testing.assert_array_equal(volume[:], expected)
    np.testing.assert_array_equal(volume[2:5, ::2, 3], expected[2:5, ::2, 3])
    assert (tmp_path / "grid.raw").stat().st_size == expected.nbytes


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc to see the mappings")
def test_no_mapping_outlives_an_access(tmp_path: Path) -> None:
    volume = ScratchVolume.create(tmp_path / "grid.raw", (4, 64, 64), np.uint16)
    volume[1:3] = 7
    assert int(volume[2, 5, 5]) == 7
    assert str(volume.path) not in _mapped_paths()  # pages touched would otherwise stay in the resident set


def test_a_copy_of_a_zarr_array_is_made_slab_by_slab_and_equals_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = rng.integers(0, 60000, (37, 20, 30), dtype=np.uint16)
    source = zarr.create_array(store=zarr.storage.MemoryStore(), shape=data.shape, chunks=(1, 20, 30), dtype="uint16")
    source[...] = data
    reads: list[tuple] = []

    class Counted:
        shape, dtype = source.shape, source.dtype

        def __getitem__(self, key):
            reads.append(key)
            return source[key]

    copy = ScratchVolume.copy_of(tmp_path / "view.raw", Counted(), slab_planes=16)
    np.testing.assert_array_equal(copy[:], data)
    assert reads == [slice(0, 16), slice(16, 32), slice(32, 37)]
