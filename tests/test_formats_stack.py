"""Raw .stack reading (StackFile) and the read_volume/write_volume dispatch."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from isoview_core.errors import FormatError, IsoviewError, StackSizeError
from isoview_core.formats import StackFile, read_volume, volume_format, write_volume
from isoview_core.formats.stack import write_stack

DEPTH, HEIGHT, WIDTH = 5, 6, 7
PLANE_BYTES = 2 * HEIGHT * WIDTH


@pytest.fixture
def volume() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 65536, (DEPTH, HEIGHT, WIDTH), dtype=np.uint16)


@pytest.fixture
def stack_path(tmp_path: Path, volume: np.ndarray) -> Path:
    path = tmp_path / "SPC00_TM00000_ANG000_CM0_CHN00_PH0.stack"
    write_stack(path, volume)
    return path


def _truncate(path: Path, nbytes: int) -> None:
    with open(path, "r+b") as file:
        file.truncate(nbytes)


def test_encoding_is_little_endian_planes_rows_columns(stack_path: Path, volume: np.ndarray) -> None:
    raw = stack_path.read_bytes()
    assert len(raw) == volume.size * 2
    assert raw[:2] == int(volume[0, 0, 0]).to_bytes(2, "little")
    assert raw[2:4] == int(volume[0, 0, 1]).to_bytes(2, "little")
    assert raw[2 * WIDTH : 2 * WIDTH + 2] == int(volume[0, 1, 0]).to_bytes(2, "little")
    assert raw[PLANE_BYTES : PLANE_BYTES + 2] == int(volume[1, 0, 0]).to_bytes(2, "little")


def test_memmap_reads_the_exact_volume_read_only(stack_path: Path, volume: np.ndarray) -> None:
    stack = StackFile(stack_path, WIDTH, HEIGHT, expected_depth=DEPTH)
    assert stack.shape == (DEPTH, HEIGHT, WIDTH)
    assert stack.depth == DEPTH
    assert stack.nbytes == volume.nbytes
    assert stack.path == stack_path
    mapped = stack.memmap()
    assert mapped.dtype == np.dtype("<u2")
    np.testing.assert_array_equal(mapped, volume)
    assert not mapped.flags.writeable


@pytest.mark.parametrize(("start", "stop"), [(0, DEPTH), (2, 4), (4, 5), (3, 3)])
def test_read_planes_returns_only_the_requested_planes(
    stack_path: Path, volume: np.ndarray, start: int, stop: int
) -> None:
    planes = StackFile(stack_path, WIDTH, HEIGHT).read_planes(start, stop)
    assert planes.shape == (stop - start, HEIGHT, WIDTH)
    np.testing.assert_array_equal(planes, volume[start:stop])


def test_read_planes_fills_a_reused_buffer(stack_path: Path, volume: np.ndarray) -> None:
    stack = StackFile(stack_path, WIDTH, HEIGHT)
    buffer = np.zeros((2, HEIGHT, WIDTH), dtype=np.uint16)
    for start in (0, 2):
        result = stack.read_planes(start, start + 2, out=buffer)
        assert result is buffer
        np.testing.assert_array_equal(buffer, volume[start : start + 2])


def test_read_planes_rejects_bad_ranges_and_buffers(stack_path: Path) -> None:
    stack = StackFile(stack_path, WIDTH, HEIGHT)
    with pytest.raises(ValueError, match=r"\[4, 6\)"):
        stack.read_planes(4, 6)
    with pytest.raises(ValueError, match="out must be"):
        stack.read_planes(0, 2, out=np.zeros((2, HEIGHT, WIDTH), dtype=np.float32))


def test_read_planes_detects_a_file_shrunk_after_checking(stack_path: Path) -> None:
    stack = StackFile(stack_path, WIDTH, HEIGHT)
    _truncate(stack_path, 2 * PLANE_BYTES)
    with pytest.raises(StackSizeError, match=stack_path.name):
        stack.read_planes(0, DEPTH)


def test_message_names_file_bytes_dimensions_and_xml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = Path("SPM00/TM00012/ANG000/SPC00_TM00012_ANG000_CM2_CHN01_PH0.stack")
    relative.parent.mkdir(parents=True)
    relative.touch()
    _truncate(relative, 48 * 2048 * 2048 * 2)  # a sparse file: no data is written
    with pytest.raises(StackSizeError) as caught:
        StackFile(relative, 2048, 2048, expected_depth=50, xml_name="ch1.xml")
    assert str(caught.value) == (
        "SPM00/TM00012/ANG000/SPC00_TM00012_ANG000_CM2_CHN01_PH0.stack: "
        "402653184 bytes, expected 419430400 for 2048x2048x50 uint16 from ch1.xml"
    )


def test_truncated_stack_is_rejected(stack_path: Path) -> None:
    _truncate(stack_path, DEPTH * PLANE_BYTES - 100)
    with pytest.raises(StackSizeError) as caught:
        StackFile(stack_path, WIDTH, HEIGHT, expected_depth=DEPTH, xml_name="ch0.xml")
    message = str(caught.value)
    assert stack_path.name in message
    assert str(DEPTH * PLANE_BYTES - 100) in message
    assert str(DEPTH * PLANE_BYTES) in message
    assert "not a whole number" in message
    assert f"{WIDTH}x{HEIGHT}x{DEPTH}" in message and "ch0.xml" in message


def test_partial_plane_is_rejected_without_xml_depth(stack_path: Path) -> None:
    _truncate(stack_path, 3 * PLANE_BYTES + 10)
    with pytest.raises(StackSizeError) as caught:
        StackFile(stack_path, WIDTH, HEIGHT)
    message = str(caught.value)
    assert stack_path.name in message
    assert str(3 * PLANE_BYTES + 10) in message and str(3 * PLANE_BYTES) in message
    assert "not a whole number" in message
    assert " from " not in message


def test_fewer_planes_than_the_xml_declares_is_rejected(stack_path: Path) -> None:
    _truncate(stack_path, 3 * PLANE_BYTES)
    with pytest.raises(StackSizeError) as caught:
        StackFile(stack_path, WIDTH, HEIGHT, expected_depth=DEPTH, xml_name="ch0.xml")
    assert str(caught.value) == (
        f"{stack_path}: {3 * PLANE_BYTES} bytes, expected {DEPTH * PLANE_BYTES} "
        f"for {WIDTH}x{HEIGHT}x{DEPTH} uint16 from ch0.xml"
    )


@pytest.mark.parametrize("expected_depth", [None, DEPTH])
def test_empty_stack_is_rejected(stack_path: Path, expected_depth: int | None) -> None:
    _truncate(stack_path, 0)
    with pytest.raises(
        StackSizeError, match=rf"{stack_path.name}: 0 bytes, expected {(expected_depth or 1) * PLANE_BYTES}"
    ):
        StackFile(stack_path, WIDTH, HEIGHT, expected_depth=expected_depth)


def test_size_errors_are_isoview_value_errors(stack_path: Path) -> None:
    _truncate(stack_path, 1)
    with pytest.raises(IsoviewError):
        StackFile(stack_path, WIDTH, HEIGHT)
    with pytest.raises(ValueError):
        StackFile(stack_path, WIDTH, HEIGHT)


def test_extra_planes_are_kept_with_a_warning(
    stack_path: Path, volume: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="isoview_core.formats.stack"):
        stack = StackFile(stack_path, WIDTH, HEIGHT, expected_depth=DEPTH - 2, xml_name="ch0.xml")
    assert stack.depth == DEPTH
    np.testing.assert_array_equal(stack.read_planes(DEPTH - 1, DEPTH), volume[-1:])
    assert "5 planes on disk, 3 declared in ch0.xml" in caplog.text


def test_missing_stack_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"missing\.stack"):
        StackFile(tmp_path / "missing.stack", WIDTH, HEIGHT)


def test_raw_file_is_never_modified(stack_path: Path) -> None:
    before = stack_path.read_bytes()
    stack = StackFile(stack_path, WIDTH, HEIGHT)
    stack.memmap()
    stack.read_planes(0, DEPTH)
    assert stack_path.read_bytes() == before


# --- read_volume / write_volume dispatch -------------------------------------------------


def test_read_volume_maps_a_stack(stack_path: Path, volume: np.ndarray) -> None:
    mapped = read_volume(stack_path, plane_shape=(HEIGHT, WIDTH), expected_depth=DEPTH)
    assert isinstance(mapped, np.memmap)
    np.testing.assert_array_equal(mapped, volume)


def test_read_volume_needs_the_plane_shape_of_a_stack(stack_path: Path) -> None:
    with pytest.raises(FormatError, match="plane_shape"):
        read_volume(stack_path)


def test_write_volume_never_writes_raw_stacks(tmp_path: Path, volume: np.ndarray) -> None:
    with pytest.raises(FormatError, match="never written"):
        write_volume(tmp_path / "out.stack", volume)
    assert not (tmp_path / "out.stack").exists()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.stack", "stack"),
        ("a.klb", "klb"),
        ("a.tif", "tiff"),
        ("a.TIFF", "tiff"),
        ("a.ome.tif", "tiff"),
        ("a.zarr", "zarr"),
        ("a.ome.zarr", "zarr"),
    ],
)
def test_volume_format_from_suffix(name: str, kind: str) -> None:
    assert volume_format(name) == kind


def test_unknown_suffix_is_named(tmp_path: Path, volume: np.ndarray) -> None:
    expected = r"volume.h5: unknown volume format '\.h5' \(expected \.stack, \.klb, \.tif, \.ome\.zarr\)"
    with pytest.raises(FormatError, match=expected):
        read_volume(tmp_path / "volume.h5")
    with pytest.raises(FormatError, match=expected):
        write_volume(tmp_path / "volume.h5", volume)


@pytest.mark.parametrize("name", ["missing.klb", "missing.tif", "missing.ome.zarr"])
def test_missing_volume_is_a_format_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(FormatError, match=name):
        read_volume(tmp_path / name)
