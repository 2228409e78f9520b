"""OME-Zarr readers (isoview_core.formats.omezarr.reader): problems named in their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from omezarr_helpers import labels, volume, written  # noqa: F401 (fixtures)

from isoview_core.errors import FormatError
from isoview_core.formats.codecs import CodecConfig
from isoview_core.formats.omezarr import (
    read_ome_zarr,
    read_ome_zarr_labels,
    read_ome_zarr_planes,
    write_ome_zarr,
)
from isoview_core.formats.shards import PlaneShardReader


def test_readers_name_the_problem(tmp_path: Path, written: Path) -> None:
    with pytest.raises(FormatError, match=r"missing\.ome\.zarr"):
        read_ome_zarr(tmp_path / "missing.ome.zarr")
    plain = tmp_path / "plain.zarr"
    zarr.create_group(str(plain), zarr_format=3)
    with pytest.raises(FormatError, match="not an OME-Zarr image"):
        read_ome_zarr(plain)
    with pytest.raises(FormatError, match=r"level 3 does not exist \(levels 0..2\)"):
        read_ome_zarr(written, 3)
    with pytest.raises(FormatError, match="no label image 'nuclei' \\(found: segmentation\\)"):
        read_ome_zarr_labels(written, "nuclei")
    unlabeled = write_ome_zarr(tmp_path / "u.ome.zarr", np.zeros((1, 2, 2), np.uint16))
    with pytest.raises(FormatError, match="no label images"):
        read_ome_zarr_labels(unlabeled)


def test_planes_of_other_layouts_are_read_through_zarr_into_any_out(tmp_path: Path, volume: np.ndarray) -> None:
    # Two planes per chunk: not the layout read straight from the shard files.
    path = write_ome_zarr(tmp_path / "v.ome.zarr", volume, codec=CodecConfig(chunk_shape=(2, 13, 10), shard_shape=(4, 13, 10)))
    assert PlaneShardReader.for_array(path / "0") is None
    for start, stop in [(0, 20), (3, 8), (19, 20)]:
        assert np.array_equal(read_ome_zarr_planes(path, start, stop), volume[start:stop])
        contiguous = np.zeros((stop - start, 13, 10), np.uint16)
        strided = np.zeros((stop - start, 13, 20), np.uint16)[:, :, ::2]
        wider = np.zeros((stop - start, 13, 10), np.int64)
        for out in (contiguous, strided, wider):
            assert read_ome_zarr_planes(path, start, stop, out=out) is out
            assert np.array_equal(out, volume[start:stop])
