"""Pyramid levels (isoview_core.formats.omezarr.pyramid): 2x2 means rounded half away from zero, in the volume's type."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from isoview_core.formats.omezarr import read_ome_zarr, write_ome_zarr


def test_mean_rounds_half_up_and_keeps_dtype(tmp_path: Path) -> None:
    planes = np.array([[[1, 2], [2, 2]], [[65535, 65535], [65535, 65534]]], dtype=np.uint16)  # means 1.75, 65534.75
    path = write_ome_zarr(tmp_path / "r.ome.zarr", planes, pyramid_levels=1)
    np.testing.assert_array_equal(read_ome_zarr(path, 1)[:], np.array([[[2]], [[65535]]], dtype=np.uint16))
    halves = np.array([[[1, 2], [1, 2]]], dtype=np.uint16)  # mean 1.5 -> 2
    path = write_ome_zarr(tmp_path / "h.ome.zarr", halves, pyramid_levels=1)
    assert read_ome_zarr(path, 1)[0, 0, 0] == 2


def test_signed_mean_rounds_half_away_from_zero(tmp_path: Path) -> None:
    planes = np.array([[[-1, -2], [-2, -2]], [[-1, -2], [-1, -2]], [[1, 2], [1, 2]]], dtype=np.int16)
    path = write_ome_zarr(tmp_path / "s.ome.zarr", planes, pyramid_levels=1)  # means -1.75, -1.5, 1.5
    np.testing.assert_array_equal(read_ome_zarr(path, 1)[:, 0, 0], np.array([-2, -2, 2], dtype=np.int16))
