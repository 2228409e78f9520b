"""CodecConfig: validation, CLI parsing, zarr codecs and chunk/shard resolution."""

from __future__ import annotations

import pytest
import zarr.codecs
from hypothesis import given
from hypothesis import strategies as st

from isoview_core.formats import CodecConfig


def test_defaults_follow_the_spec() -> None:
    codec = CodecConfig()
    assert (codec.name, codec.level, codec.shuffle, codec.threads) == ("blosc-zstd", 3, "bitshuffle", 1)
    assert codec.resolved_chunks((50, 2048, 2048)) == (1, 2048, 2048)
    assert codec.resolved_shards((50, 2048, 2048)) == (16, 2048, 2048)
    assert codec.resolved_shards((5, 64, 48)) == (5, 64, 48)


@pytest.mark.parametrize(
    ("text", "name", "level", "shuffle"),
    [
        ("blosc-zstd:5", "blosc-zstd", 5, "bitshuffle"),
        ("blosc-lz4:5:shuffle", "blosc-lz4", 5, "shuffle"),
        ("blosc-lz4hc", "blosc-lz4hc", 3, "bitshuffle"),
        ("zstd:3", "zstd", 3, "bitshuffle"),
        ("zstd:-5", "zstd", -5, "bitshuffle"),
        ("gzip:9", "gzip", 9, "bitshuffle"),
        ("none", "none", 3, "bitshuffle"),
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
