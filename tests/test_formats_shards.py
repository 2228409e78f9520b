import gzip
import tracemalloc

import numcodecs
import numpy as np
import pytest
import zarr

from isoview_core.formats.codecs import CodecConfig
from isoview_core.formats.omezarr import (
    OmeZarrWriter,
    read_ome_zarr,
    read_ome_zarr_labels,
    read_ome_zarr_planes,
    write_ome_zarr,
)
from isoview_core.formats.omezarr import writer as omezarr_writer
from isoview_core.formats.shards import PlaneShardReader, PlaneShardWriter, _gunzip_into

CODECS = ["blosc-zstd:1:shuffle", "blosc-lz4:5:bitshuffle", "blosc-zlib:3:noshuffle", "zstd:3", "gzip:5", "jpegls", "none"]


def _without_gzip_times(data: bytes) -> bytes:
    """Zero the 4-byte MTIME of every gzip member header (gzip stamps the second it compressed in)."""
    out = bytearray(data)
    start = out.find(b"\x1f\x8b\x08")
    while start != -1:
        out[start + 4 : start + 8] = bytes(4)
        start = out.find(b"\x1f\x8b\x08", start + 10)
    return bytes(out)


@pytest.mark.parametrize("planes_per_write", [4, 3])  # whole shards; writes across shard boundaries
@pytest.mark.parametrize("dtype", ["uint16", "uint8"])
@pytest.mark.parametrize("codec", ["blosc-zstd:1:shuffle", "blosc-lz4:5:bitshuffle", "zstd:3", "gzip:5", "jpegls", "none"])
def test_direct_shards_are_byte_identical_to_zarr(tmp_path, codec, dtype, planes_per_write):
    config = CodecConfig.parse(codec)
    volume = np.random.default_rng(0).poisson(40, (10, 24, 18)).astype(dtype)
    volume[:, :5] = 0
    shape = volume.shape
    options = dict(shape=shape, dtype=dtype, chunks=config.resolved_chunks(shape), shards=(4, 24, 18),
                   serializer=config.zarr_serializer(), compressors=config.zarr_compressors(), fill_value=0)
    reference = zarr.create_array(str(tmp_path / "zarr"), **options)
    reference[:] = volume
    zarr.create_array(str(tmp_path / "direct"), **options)
    writer = PlaneShardWriter.for_array(tmp_path / "direct")
    assert writer is not None
    for start in range(0, shape[0], planes_per_write):
        assert writer.continues(start)
        writer.write(start, volume[start : start + planes_per_write])
    writer.close()
    for shard in range(3):  # the last shard is partial: 2 of its 4 planes lie outside the array
        key = f"c/{shard}/0/0"
        assert _without_gzip_times((tmp_path / "direct" / key).read_bytes()) == _without_gzip_times((tmp_path / "zarr" / key).read_bytes())
    assert np.array_equal(zarr.open_array(str(tmp_path / "direct"), mode="r")[:], volume)


def test_the_writer_takes_the_direct_path_for_its_default_layout(tmp_path, monkeypatch):
    def zarr_path(*args):
        raise AssertionError("slab written through zarr, not the direct shard writers")

    monkeypatch.setattr(omezarr_writer, "_store_all", zarr_path)
    volume = np.random.default_rng(2).poisson(40, (16, 8, 8)).astype(np.uint16)
    labels = (volume > 40).astype(np.uint8)
    with OmeZarrWriter(tmp_path / "v.ome.zarr", volume.shape, label_name="segmentation", pyramid_levels=1) as writer:
        writer.write(0, volume, labels)  # image, labels and their pyramid levels
    assert np.array_equal(read_ome_zarr(writer.path)[:], volume)
    assert np.array_equal(read_ome_zarr_labels(writer.path)[:], labels)
    assert np.array_equal(read_ome_zarr_labels(writer.path, level=1)[:], labels[:, ::2, ::2])


def test_unsupported_layouts_fall_back_to_zarr(tmp_path):
    zarr.create_array(str(tmp_path / "a"), shape=(4, 8, 8), dtype="uint16", chunks=(2, 8, 8), shards=(4, 8, 8))
    zarr.create_array(str(tmp_path / "b"), shape=(4, 8, 8), dtype="uint16", chunks=(1, 8, 8))
    assert PlaneShardWriter.for_array(tmp_path / "a") is None  # two planes per chunk
    assert PlaneShardWriter.for_array(tmp_path / "b") is None  # not sharded


@pytest.mark.parametrize("codec", ["blosc-zstd:1:shuffle", "zstd:3", "none"])
def test_direct_reader_equals_zarr_for_any_plane_range(tmp_path, codec):
    volume = np.random.default_rng(1).poisson(40, (21, 16, 12)).astype(np.uint16)
    write_ome_zarr(tmp_path / "v.ome.zarr", volume, codec=CodecConfig.parse(codec))
    for start, stop in [(0, 21), (3, 5), (15, 21), (16, 17)]:
        assert np.array_equal(read_ome_zarr_planes(tmp_path / "v.ome.zarr", start, stop), volume[start:stop])


def _sharded(tmp_path, codec: str, volume: np.ndarray) -> PlaneShardReader:
    """`volume` written with `codec` in shards of 4 planes (the last one partial), and its direct reader."""
    config = CodecConfig.parse(codec).model_copy(update={"shard_shape": (4, *volume.shape[1:])})
    path = write_ome_zarr(tmp_path / "v.ome.zarr", volume, codec=config)
    reader = PlaneShardReader.for_array(path / "0")
    assert reader is not None, f"{codec} not read directly"
    return reader


@pytest.mark.parametrize("codec", CODECS)
def test_planes_are_decoded_into_any_out_as_zarr_decodes_them(tmp_path, codec):
    volume = np.random.default_rng(5).poisson(40, (10, 24, 18)).astype(np.uint16)
    reader = _sharded(tmp_path, codec, volume)
    plain = zarr.open_array(str(tmp_path / "v.ome.zarr" / "0"), mode="r")
    for start, stop in [(0, 10), (3, 5), (5, 10), (8, 9)]:
        expected = plain[start:stop]
        contiguous = np.full((stop - start, 24, 18), 7, np.uint16)
        assert reader.read(start, stop, out=contiguous) is contiguous
        strided = np.full((stop - start, 24, 36), 7, np.uint16)[:, :, ::2]
        reversed_z = np.full((stop - start, 24, 18), 7, np.uint16)[::-1]  # planes contiguous, z stride negative
        wider = np.full((stop - start, 24, 18), 7, np.int32)
        for out in (contiguous, strided, reversed_z, wider):
            reader.read(start, stop, out=out)
            assert np.array_equal(out, expected), (codec, start, stop, out.strides, out.dtype)
        assert np.array_equal(reader.read(start, stop), expected)


@pytest.mark.parametrize("codec", [codec for codec in CODECS if codec != "none"])
def test_compressed_planes_land_in_out_without_an_intermediate_plane(tmp_path, codec):
    volume = np.zeros((8, 256, 256), np.uint16)  # sparse: shards far smaller than a plane
    volume[:, ::16, ::16] = np.random.default_rng(6).integers(1, 999, (8, 16, 16))
    reader = _sharded(tmp_path, codec, volume)
    shard_bytes = max(path.stat().st_size for path in (tmp_path / "v.ome.zarr" / "0" / "c").rglob("0/0/0"))
    out = np.empty_like(volume)
    reader.read(0, 1, out=out[:1])  # codecs' one-time set-up
    tracemalloc.start()
    try:
        reader.read(0, 8, out=out)
        allocated = tracemalloc.get_traced_memory()[1] - shard_bytes  # beyond the shard file read
    finally:
        tracemalloc.stop()
    assert np.array_equal(out, volume)
    assert allocated < volume[0].nbytes // 4, f"{codec}: {allocated} bytes allocated reading {volume[0].nbytes}-byte planes"


def test_absent_shards_and_planes_read_as_zeros(tmp_path):
    volume = np.random.default_rng(7).poisson(40, (10, 8, 6)).astype(np.uint16) + 1
    reader = _sharded(tmp_path, "blosc-zstd", volume)
    (tmp_path / "v.ome.zarr" / "0" / "c" / "1" / "0" / "0").unlink()
    out = np.full((9, 8, 6), 7, np.uint16)
    reader.read(1, 10, out=out)
    assert np.array_equal(out, np.concatenate([volume[1:4], np.zeros((4, 8, 6), np.uint16), volume[8:10]]))


def test_gzip_chunks_of_several_members_are_decoded_whole():
    plane = np.random.default_rng(8).integers(0, 999, (6, 5), dtype=np.uint16)
    chunk = gzip.compress(plane[:2].tobytes()) + gzip.compress(plane[2:].tobytes())
    out = np.zeros_like(plane)
    _gunzip_into(numcodecs.GZip(), memoryview(chunk), out)
    assert np.array_equal(out, plane)
