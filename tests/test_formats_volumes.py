"""Volume dispatch (isoview_core.formats.volumes): the reader and writer chosen from the file name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from omezarr_helpers import VOXEL, labels, volume  # noqa: F401 (fixtures)

from isoview_core.errors import FormatError
from isoview_core.formats import read_volume, write_volume
from isoview_core.formats.omezarr import read_ome_zarr_attributes, read_ome_zarr_labels


def test_dispatch(tmp_path: Path, volume: np.ndarray, labels: np.ndarray) -> None:
    path = write_volume(
        tmp_path / "v.ome.zarr", volume, voxel_size_um=VOXEL, labels=labels, attributes={"camera": 3}, pyramid_levels=1
    )
    lazy = read_volume(path)
    assert isinstance(lazy, zarr.Array)
    np.testing.assert_array_equal(lazy[2:5], volume[2:5])
    np.testing.assert_array_equal(read_ome_zarr_labels(path)[:], labels)
    assert read_ome_zarr_attributes(path) == {"camera": 3}
    with pytest.raises(FormatError, match="3-D"):
        write_volume(tmp_path / "image.ome.zarr", volume[0])
