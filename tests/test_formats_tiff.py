"""OME-TIFF round trips, physical sizes and metadata."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile

from isoview_core.errors import FormatError
from isoview_core.formats import read_volume, write_volume
from isoview_core.formats.tiff import read_tiff, tiff_voxel_size, write_tiff


@pytest.fixture
def volume() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 65536, (4, 9, 11), dtype=np.uint16)


@pytest.mark.parametrize("compression", ["zlib", None])
def test_volume_round_trip_with_physical_sizes(tmp_path: Path, volume: np.ndarray, compression: str | None) -> None:
    path = write_tiff(tmp_path / "v.ome.tif", volume, voxel_size_um=(2.031, 0.406, 0.406), compression=compression)
    back = read_tiff(path)
    assert back.dtype == volume.dtype
    np.testing.assert_array_equal(back, volume)
    assert tiff_voxel_size(path) == (2.031, 0.406, 0.406)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome
        assert tif.series[0].axes == "ZYX"
        assert tif.pages[0].compression == (
            tifffile.COMPRESSION.ADOBE_DEFLATE if compression else tifffile.COMPRESSION.NONE
        )


def test_image_round_trip(tmp_path: Path, volume: np.ndarray) -> None:
    path = write_tiff(tmp_path / "xyProjection.tif", volume[0], voxel_size_um=(2.0, 0.5, 0.25))
    np.testing.assert_array_equal(read_tiff(path), volume[0])
    assert tiff_voxel_size(path) == (1.0, 0.5, 0.25)
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == "YX"


def test_metadata_is_stored_as_map_annotation(tmp_path: Path, volume: np.ndarray) -> None:
    path = write_tiff(tmp_path / "v.ome.tif", volume, metadata={"camera": 2, "specimen": 0, "wavelength": 488})
    with tifffile.TiffFile(path) as tif:
        xml = tif.ome_metadata
    assert '<M K="camera">2</M>' in xml
    assert '<M K="wavelength">488</M>' in xml


def test_existing_output_is_kept_unless_overwrite(tmp_path: Path, volume: np.ndarray) -> None:
    path = write_tiff(tmp_path / "v.tif", volume)
    with pytest.raises(FileExistsError):
        write_tiff(path, volume + 1)
    np.testing.assert_array_equal(read_tiff(path), volume)
    write_tiff(path, volume + 1, overwrite=True)
    np.testing.assert_array_equal(read_tiff(path), volume + 1)
    assert [p.name for p in tmp_path.iterdir()] == ["v.tif"]


def test_invalid_input_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="2-D or 3-D"):
        write_tiff(tmp_path / "v.tif", np.zeros((2, 2, 2, 2), dtype=np.uint16))
    with pytest.raises(FormatError, match="voxel size"):
        write_tiff(tmp_path / "v.tif", np.zeros((2, 2), dtype=np.uint16), voxel_size_um=(1.0, 0.0, 1.0))
    assert list(tmp_path.iterdir()) == []


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff at all")
    with pytest.raises(FormatError, match=r"bad\.tif"):
        read_tiff(bad)
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((3, 3), dtype=np.uint16))
    with pytest.raises(FormatError, match="not an OME-TIFF"):
        tiff_voxel_size(plain)


def test_dispatch(tmp_path: Path, volume: np.ndarray) -> None:
    path = write_volume(tmp_path / "v.ome.tif", volume, voxel_size_um=(3.0, 0.5, 0.5), attributes={"timepoint": 12})
    np.testing.assert_array_equal(read_volume(path), volume)
    assert tiff_voxel_size(path) == (3.0, 0.5, 0.5)
    with pytest.raises(FormatError, match="only be stored in OME-Zarr"):
        write_volume(tmp_path / "w.tif", volume, pyramid_levels=1)


def test_zlib_data_is_a_standard_stream_at_the_chosen_level(tmp_path: Path, volume: np.ndarray) -> None:
    path = write_tiff(tmp_path / "v.ome.tif", volume)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        tif.filehandle.seek(page.dataoffsets[0])
        strip = tif.filehandle.read(page.databytecounts[0])
    np.testing.assert_array_equal(np.frombuffer(zlib.decompress(strip), np.uint16), volume[0].ravel()[: page.rowsperstrip * 11])
    assert strip[1] >> 6 == 1  # zlib header FLEVEL 1: levels 2-5 (tifffile's default, 6, writes 2)
