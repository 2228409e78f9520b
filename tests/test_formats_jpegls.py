"""The lossless JPEG-LS archival codec (isoview_core.formats.jpegls) in OME-Zarr outputs, and the files it wrote so far."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr
from omezarr_helpers import (  # noqa: F401 (fixtures)
    VOXEL,
    array_metadata,
    labels,
    reference_mean_2x2,
    volume,
    write_labelled,
    written,
)

from isoview_core.formats import CodecConfig, OmeZarrWriter, is_complete
from isoview_core.formats.omezarr import (
    ome_zarr_voxel_size,
    read_ome_zarr,
    read_ome_zarr_attributes,
    read_ome_zarr_labels,
    read_ome_zarr_planes,
    write_ome_zarr,
)


@pytest.fixture
def written_jpegls(tmp_path: Path, volume: np.ndarray, labels: np.ndarray) -> Path:
    return write_labelled(tmp_path / "archive.ome.zarr", volume, labels, codec=CodecConfig(name="jpegls"))


def test_jpegls_round_trips_levels_and_labels_bit_exactly(
    written_jpegls: Path, written: Path, volume: np.ndarray, labels: np.ndarray
) -> None:
    assert is_complete(written_jpegls)
    np.testing.assert_array_equal(read_ome_zarr(written_jpegls)[:], volume)
    np.testing.assert_array_equal(read_ome_zarr_labels(written_jpegls)[:], labels)
    for level in (1, 2):  # the same pyramid as with the default codec, bit for bit
        np.testing.assert_array_equal(read_ome_zarr(written_jpegls, level)[:], read_ome_zarr(written, level)[:])
        np.testing.assert_array_equal(
            read_ome_zarr_labels(written_jpegls, level=level)[:], read_ome_zarr_labels(written, level=level)[:]
        )


def test_jpegls_is_named_in_the_array_metadata(written_jpegls: Path) -> None:
    for level in range(3):
        (sharding,) = array_metadata(written_jpegls / str(level))["codecs"]
        assert sharding["name"] == "sharding_indexed"
        assert sharding["configuration"]["chunk_shape"][0] == 1
        assert sharding["configuration"]["codecs"] == [{"name": "imagecodecs_jpegls"}]
        # label images always use the fast label codec (bit shuffle + lz4)
        (sharding,) = array_metadata(written_jpegls / "labels" / "segmentation" / str(level))["codecs"]
        assert [codec["name"] for codec in sharding["configuration"]["codecs"]] == ["bytes", "blosc"]
        assert sharding["configuration"]["codecs"][1]["configuration"]["cname"] == "lz4"


def test_jpegls_output_reads_with_plain_zarr(written_jpegls: Path, volume: np.ndarray, labels: np.ndarray) -> None:
    np.testing.assert_array_equal(zarr.open_array(str(written_jpegls / "0"), mode="r")[:], volume)
    # A fresh process needs only ``import isoview_core.formats`` to register the codec.
    script = (
        "import sys, numpy as np, zarr, isoview_core.formats\n"
        "a = zarr.open_array(sys.argv[1], mode='r')\n"
        "print(a.dtype, a.shape, int(np.asarray(a[:], dtype=np.int64).sum()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(written_jpegls / "labels" / "segmentation" / "0")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == f"uint8 {labels.shape} {int(labels.sum())}"


def test_jpegls_output_of_the_streaming_writer(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    stack = rng.poisson(400, (40, 64, 48)).astype(np.uint16)
    stack[:, :8] = 0
    stack[3, 5, 7] = 65535
    codec = CodecConfig.parse("jpegls")
    with OmeZarrWriter(tmp_path / "s.ome.zarr", stack.shape, codec=codec, pyramid_levels=1) as writer:
        for z in range(0, len(stack), writer.slab_depth):
            writer.write(z, stack[z : z + writer.slab_depth])
    np.testing.assert_array_equal(read_ome_zarr(writer.path)[:], stack)
    np.testing.assert_array_equal(read_ome_zarr(writer.path, 1)[:], reference_mean_2x2(stack))
    stored = sum(f.stat().st_size for f in (writer.path / "0" / "c").rglob("*") if f.is_file())
    assert stored < stack.nbytes / 2  # it does compress


def test_jpegls_rejects_a_float_volume_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"JPEG-LS codec .* stores only uint8 or uint16 data, got float32"):
        write_ome_zarr(tmp_path / "f.ome.zarr", np.ones((4, 8, 8), np.float32), codec=CodecConfig(name="jpegls"))
    assert list(tmp_path.iterdir()) == []


# --- files written so far -----------------------------------------------------------------------


FIXTURE = Path(__file__).parent / "data" / "jpegls_3b6e585.ome.zarr"
"""A JPEG-LS OME-Zarr (one reduced level) written by :class:`~isoview_core.formats.jpegls.JpegLsCodec` at commit
3b6e585, before the renovation: every archive written so far must stay readable, bit for bit."""


def fixture_volume() -> np.ndarray:
    """The (5, 16, 12) uint16 volume stored in :data:`FIXTURE` (integer arithmetic: no generator to drift)."""
    z, y, x = np.meshgrid(np.arange(5), np.arange(16), np.arange(12), indexing="ij")
    volume = ((z * 40503 + y * 1297 + x * 7919 + (x * y) % 13 * 911) % 65536).astype(np.uint16)
    volume[:, :3] = 0
    volume[2, 7, 5] = 65535
    return volume


def test_jpegls_archives_written_so_far_read_bit_exactly() -> None:
    expected = fixture_volume()
    digest = "4221c5cfeaaed83dee4582a68e36ce98600891bb39bec0d47cd793e1add98034"
    assert hashlib.sha256(expected.tobytes()).hexdigest() == digest
    assert array_metadata(FIXTURE / "0")["codecs"][0]["configuration"]["codecs"] == [{"name": "imagecodecs_jpegls"}]
    np.testing.assert_array_equal(read_ome_zarr(FIXTURE)[:], expected)
    np.testing.assert_array_equal(read_ome_zarr_planes(FIXTURE, 1, 4), expected[1:4])
    np.testing.assert_array_equal(read_ome_zarr(FIXTURE, 1)[:], reference_mean_2x2(expected))
    assert ome_zarr_voxel_size(FIXTURE, 1) == (2.0, 0.8125, 0.8125)
    assert read_ome_zarr_attributes(FIXTURE) == {"specimen": 0, "timepoint": 3, "camera": 1, "channel": 0}
