"""CodecConfig: validation, CLI parsing, zarr codecs and chunk/shard resolution."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
import zarr.codecs
import zarr.registry
import zarr.storage
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from isoview_core.formats import CodecConfig
from isoview_core.formats.jpegls import CODEC_NAME, JpegLsCodec


def test_defaults_follow_the_spec() -> None:
    codec = CodecConfig()
    assert (codec.name, codec.level, codec.shuffle, codec.threads) == ("blosc-zstd", 1, "shuffle", 1)
    assert codec.resolved_chunks((50, 2048, 2048)) == (1, 2048, 2048)
    assert codec.resolved_shards((50, 2048, 2048)) == (16, 2048, 2048)
    assert codec.resolved_shards((5, 64, 48)) == (5, 64, 48)


@pytest.mark.parametrize(
    ("text", "name", "level", "shuffle"),
    [
        ("blosc-zstd:5", "blosc-zstd", 5, "shuffle"),
        ("blosc-lz4:5:shuffle", "blosc-lz4", 5, "shuffle"),
        ("blosc-lz4hc", "blosc-lz4hc", 1, "shuffle"),
        ("zstd:3", "zstd", 3, "shuffle"),
        ("zstd:-5", "zstd", -5, "shuffle"),
        ("gzip:9", "gzip", 9, "shuffle"),
        ("none", "none", 1, "shuffle"),
    ],
)
def test_parse_cli_form(text: str, name: str, level: int, shuffle: str) -> None:
    codec = CodecConfig.parse(text)
    assert (codec.name, codec.level, codec.shuffle) == (name, level, shuffle)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lzma:3", "unknown codec 'lzma:3'"),
        ("blosc-zstd:high", "not an integer"),
        ("blosc-zstd:3:reverse", "shuffle must be one of"),
        ("blosc-zstd:3:shuffle:extra", "unknown codec"),
        ("blosc-zstd:10", r"out of range \[0, 9\]"),
        ("gzip:-1", r"out of range \[0, 9\]"),
        ("zstd:23", r"out of range \[-131072, 22\]"),
    ],
)
def test_parse_rejects_bad_input_clearly(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CodecConfig.parse(text)


def test_none_ignores_the_level() -> None:
    assert CodecConfig(name="none", level=99).zarr_compressors() == ()


@pytest.mark.parametrize(
    "fields",
    [
        {"threads": 0},
        {"chunk_shape": (0, 4, 4)},
        {"chunk_shape": (4, 4, 4), "shard_shape": (6, 4, 4)},
        {"name": "bzip2"},
        {"unknown": 1},
    ],
)
def test_invalid_configs_are_rejected(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CodecConfig.model_validate(fields)


def test_blosc_codec_carries_name_level_and_shuffle() -> None:
    (codec,) = CodecConfig.parse("blosc-lz4:5:shuffle").zarr_compressors()
    assert isinstance(codec, zarr.codecs.BloscCodec)
    assert (codec.cname.value, codec.clevel, codec.shuffle.value) == ("lz4", 5, "shuffle")


@pytest.mark.parametrize(("text", "codec_type"), [("zstd:7", zarr.codecs.ZstdCodec), ("gzip:4", zarr.codecs.GzipCodec)])
def test_plain_codecs_carry_the_level(text: str, codec_type: type) -> None:
    (codec,) = CodecConfig.parse(text).zarr_compressors()
    assert isinstance(codec, codec_type)
    assert codec.level == int(text.split(":")[1])


@pytest.mark.parametrize(
    ("chunks", "shards", "shape", "resolved_chunks", "resolved_shards"),
    [
        ((4, 32, 32), None, (10, 64, 64), (4, 32, 32), (12, 64, 64)),
        ((3, 64, 64), None, (50, 64, 64), (3, 64, 64), (18, 64, 64)),
        ((1, 256, 256), (16, 1024, 1024), (40, 600, 300), (1, 256, 256), (16, 768, 512)),
        ((8, 512, 512), (16, 1024, 1024), (5, 100, 100), (5, 100, 100), (5, 100, 100)),
        (None, (4, 64, 64), (10, 64, 64), (1, 64, 64), (4, 64, 64)),
    ],
)
def test_chunks_and_shards_are_clipped_and_compatible(
    chunks: tuple[int, int, int] | None,
    shards: tuple[int, int, int] | None,
    shape: tuple[int, int, int],
    resolved_chunks: tuple[int, int, int],
    resolved_shards: tuple[int, int, int],
) -> None:
    codec = CodecConfig(chunk_shape=chunks, shard_shape=shards)
    assert codec.resolved_chunks(shape) == resolved_chunks
    assert codec.resolved_shards(shape) == resolved_shards


dims = st.integers(1, 40)
shapes = st.tuples(dims, dims, dims)


@given(shape=shapes, chunks=st.none() | shapes, multiples=st.none() | st.tuples(*[st.integers(1, 4)] * 3))
def test_resolved_shards_are_whole_chunks_covering_at_most_the_volume(
    shape: tuple[int, int, int], chunks: tuple[int, int, int] | None, multiples: tuple[int, int, int] | None
) -> None:
    shards = (
        None if chunks is None or multiples is None else tuple(c * m for c, m in zip(chunks, multiples, strict=True))
    )
    codec = CodecConfig(chunk_shape=chunks, shard_shape=shards)
    resolved_chunks = codec.resolved_chunks(shape)
    resolved_shards = codec.resolved_shards(shape)
    for n, c, s in zip(shape, resolved_chunks, resolved_shards, strict=True):
        assert 1 <= c <= n
        assert s % c == 0
        assert s - c < n  # no shard holds a chunk lying wholly outside the volume


# --- jpegls: the lossless JPEG-LS archival codec ------------------------------------------------


def test_jpegls_is_a_serializer_without_compressors() -> None:
    codec = CodecConfig.parse("jpegls")
    assert codec.name == "jpegls"
    assert codec.zarr_compressors() == ()
    assert isinstance(codec.zarr_serializer(), JpegLsCodec)
    # Always lossless: the level (and shuffle) are ignored, as for "none".
    assert CodecConfig.parse("jpegls:99").zarr_serializer() == JpegLsCodec()


def test_other_codecs_keep_zarrs_default_serializer() -> None:
    serializer = CodecConfig().zarr_serializer()
    assert isinstance(serializer, zarr.codecs.BytesCodec)
    assert serializer.to_dict() == {"name": "bytes", "configuration": {"endian": "little"}}


def test_jpegls_needs_one_plane_chunks() -> None:
    with pytest.raises(ValueError, match=r"jpegls encodes one plane per chunk"):
        CodecConfig(name="jpegls", chunk_shape=(2, 64, 64))
    assert CodecConfig(name="jpegls", chunk_shape=(1, 64, 64)).resolved_chunks((5, 100, 100)) == (1, 64, 64)


def test_jpegls_codec_is_registered_and_serialises_by_name() -> None:
    assert zarr.registry.get_codec_class(CODEC_NAME) is JpegLsCodec
    assert JpegLsCodec().to_dict() == {"name": "imagecodecs_jpegls"}
    assert JpegLsCodec.from_dict({"name": "imagecodecs_jpegls"}) == JpegLsCodec()
    assert JpegLsCodec.from_dict({"name": "imagecodecs_jpegls", "configuration": {}}) == JpegLsCodec()
    with pytest.raises(ValueError, match="takes no configuration"):
        JpegLsCodec.from_dict({"name": "imagecodecs_jpegls", "configuration": {"level": 2}})


def _jpegls_array(
    shape: tuple[int, ...], dtype: str, chunks: tuple[int, ...], shards: tuple[int, ...] | None
) -> zarr.Array:
    return zarr.create_array(
        zarr.storage.MemoryStore(),
        shape=shape,
        dtype=dtype,
        chunks=chunks,
        shards=shards,
        serializer=JpegLsCodec(),
        compressors=None,
        fill_value=0,
    )


planes = st.sampled_from([np.uint16, np.uint8]).flatmap(
    lambda dtype: hnp.arrays(
        dtype,
        st.tuples(st.integers(1, 4), st.integers(1, 24), st.integers(1, 24)),
        elements=st.integers(0, int(np.iinfo(dtype).max)),
    )
)


@settings(max_examples=150, deadline=None)
@given(data=planes, sharded=st.booleans())
@example(data=np.array([[[0, 65535], [65535, 0]]], dtype=np.uint16), sharded=True)
@example(data=np.full((2, 3, 5), 65535, dtype=np.uint16), sharded=False)
@example(data=np.array([[[0, 255, 0, 255, 1]]], dtype=np.uint8), sharded=True)
def test_jpegls_is_bit_exact_on_arbitrary_planes(data: np.ndarray, sharded: bool) -> None:
    depth, height, width = data.shape
    array = _jpegls_array(data.shape, data.dtype.name, (1, height, width), (depth, height, width) if sharded else None)
    array[:] = data
    restored = array[:]
    assert restored.dtype == data.dtype
    np.testing.assert_array_equal(restored, data)


def test_jpegls_encodes_two_dimensional_chunks() -> None:
    data = np.random.default_rng(1).integers(0, 65536, (17, 31), dtype=np.uint16)
    array = _jpegls_array(data.shape, "uint16", (8, 31), None)  # edge chunk padded, still one plane
    array[:] = data
    np.testing.assert_array_equal(array[:], data)


@pytest.mark.parametrize("dtype", ["float32", "int16", "uint32", "bool"])
def test_jpegls_rejects_other_types_at_array_creation(dtype: str) -> None:
    for shards in (None, (4, 8, 8)):
        with pytest.raises(ValueError, match=r"stores only uint8 or uint16 data, got"):
            _jpegls_array((4, 8, 8), dtype, (1, 8, 8), shards)


def test_jpegls_rejects_multi_plane_chunks() -> None:
    with pytest.raises(ValueError, match=r"one 2-D plane per chunk"):  # unsharded: at creation
        _jpegls_array((4, 8, 8), "uint16", (2, 8, 8), None)
    array = _jpegls_array((4, 8, 8), "uint16", (2, 8, 8), (4, 8, 8))  # inside a shard: at the first write
    with pytest.raises(ValueError, match=r"one 2-D plane per chunk"):
        array[:] = 1
