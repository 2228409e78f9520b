"""KLB round trips through pyklb, header checks, atomic writes."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from isoview_core.errors import FormatError
from isoview_core.formats import read_volume, write_volume
from isoview_core.formats.klb import (
    klb_voxel_size,
    read_klb,
    read_klb_header,
    write_klb,
)


@pytest.fixture
def volume() -> np.ndarray:
    return np.random.default_rng(2).integers(0, 65536, (6, 20, 30), dtype=np.uint16)


@settings(max_examples=25, deadline=None)
@given(
    data=hnp.arrays(
        dtype=st.sampled_from([np.uint16, np.uint8, np.int16, np.float32]),
        shape=hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=12),
    ),
    voxel_size=st.tuples(*[st.sampled_from([0.406, 1.0, 2.031, 5.0])] * 3),
)
def test_round_trip_is_bit_exact(tmp_path_factory: pytest.TempPathFactory, data: np.ndarray, voxel_size: tuple) -> None:
    path = tmp_path_factory.mktemp("klb") / "volume.klb"
    write_klb(path, data, voxel_size_um=voxel_size)
    back = read_klb(path)
    assert back.dtype == data.dtype
    assert back.shape == data.shape
    assert back.tobytes() == data.tobytes()
    assert klb_voxel_size(path) == voxel_size


def test_header_records_shape_block_shape_and_compression(tmp_path: Path, volume: np.ndarray) -> None:
    path = write_klb(tmp_path / "v.klb", volume, block_shape=(2, 8, 16), compression="zlib", threads=2)
    header = read_klb_header(path)
    assert header.shape == volume.shape
    assert header.block_shape == (2, 8, 16)
    assert header.compression == "zlib"
    assert header.dtype == np.uint16
    np.testing.assert_array_equal(read_klb(path, threads=2), volume)


def test_non_contiguous_input_and_2d_image(tmp_path: Path, volume: np.ndarray) -> None:
    view = volume[:, ::2, ::-1]
    np.testing.assert_array_equal(read_klb(write_klb(tmp_path / "view.klb", view)), view)
    image = volume[0]
    assert read_klb(write_klb(tmp_path / "image.klb", image)).shape == (1, *image.shape)


def test_columns_are_the_fast_klb_axis(tmp_path: Path) -> None:
    volume = np.arange(2 * 3 * 5, dtype=np.uint16).reshape(2, 3, 5)
    path = write_klb(tmp_path / "v.klb", volume, compression="none")
    assert read_klb_header(path).shape == (2, 3, 5)
    raw = path.read_bytes()
    assert struct.unpack("<5I", raw[1:21]) == (5, 3, 2, 1, 1)  # xyzct
    assert raw.endswith(volume.tobytes())  # one uncompressed block, x fastest, then y, then z


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda raw: raw[:-10], "truncated or corrupt"),
        (lambda raw: raw[:200], "not a KLB file"),
        (lambda raw: raw[:1] + struct.pack("<I", 10**9) + raw[5:], "truncated KLB file .* header alone needs"),
        (lambda raw: b"\x02" + b"\xff" * 400, "corrupt KLB header"),
        (lambda raw: b"garbage" * 100, "not a KLB file"),
        (lambda raw: b"", "not a KLB file"),
    ],
)
def test_corrupt_files_raise_instead_of_aborting(tmp_path: Path, volume: np.ndarray, damage, message: str) -> None:
    good = write_klb(tmp_path / "good.klb", volume)
    bad = tmp_path / "bad.klb"
    bad.write_bytes(damage(good.read_bytes()))
    with pytest.raises(FormatError, match=rf"bad\.klb: .*{message}"):
        read_klb(bad)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"nothing\.klb"):
        read_klb(tmp_path / "nothing.klb")


def test_existing_output_is_kept_unless_overwrite(tmp_path: Path, volume: np.ndarray) -> None:
    path = write_klb(tmp_path / "v.klb", volume)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_klb(path, volume + 1)
    np.testing.assert_array_equal(read_klb(path), volume)
    write_klb(path, volume + 1, overwrite=True)
    np.testing.assert_array_equal(read_klb(path), volume + 1)
    assert [p.name for p in tmp_path.iterdir()] == ["v.klb"]


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="KLB stores"):
        write_klb(tmp_path / "v.klb", np.zeros((2, 2, 2, 2), dtype=np.uint16))
    with pytest.raises(FormatError, match="KLB stores"):
        write_klb(tmp_path / "v.klb", np.zeros((2, 2), dtype=bool))
    assert list(tmp_path.iterdir()) == []


def test_dispatch(tmp_path: Path, volume: np.ndarray) -> None:
    path = write_volume(tmp_path / "v.klb", volume, voxel_size_um=(2.5, 0.406, 0.406), attributes={"camera": 1})
    np.testing.assert_array_equal(read_volume(path), volume)
    assert klb_voxel_size(path) == (2.5, 0.406, 0.406)
    with pytest.raises(FormatError, match="only be stored in OME-Zarr"):
        write_volume(tmp_path / "w.klb", volume, labels=volume > 0)
