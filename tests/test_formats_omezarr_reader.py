"""OME-Zarr readers (isoview_core.formats.omezarr.reader): problems named in their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from omezarr_helpers import labels, volume, written  # noqa: F401 (fixtures)

from isoview_core.errors import FormatError
from isoview_core.formats.omezarr import (
    read_ome_zarr,
    read_ome_zarr_labels,
    write_ome_zarr,
)


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
