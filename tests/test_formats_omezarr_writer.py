"""OME-Zarr writer (isoview_core.formats.omezarr.writer): content, sharding, codecs, atomicity, input checks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import zarr.storage
from hypothesis import given, settings
from hypothesis import strategies as st
from omezarr_helpers import array_metadata, labels, reference_mean_2x2, volume, written  # noqa: F401 (fixtures)

from isoview_core.errors import FormatError
from isoview_core.formats import CodecConfig, OmeZarrWriter, is_complete
from isoview_core.formats.omezarr import (
    read_ome_zarr,
    read_ome_zarr_attributes,
    read_ome_zarr_labels,
    write_ome_zarr,
)


def test_round_trip_of_levels_and_labels(written: Path, volume: np.ndarray, labels: np.ndarray) -> None:
    assert is_complete(written)
    np.testing.assert_array_equal(read_ome_zarr(written)[:], volume)
    level1 = reference_mean_2x2(volume)
    level2 = reference_mean_2x2(level1)
    assert read_ome_zarr(written, 1).shape == (20, 7, 5)
    assert read_ome_zarr(written, 2).shape == (20, 4, 3)
    np.testing.assert_array_equal(read_ome_zarr(written, 1)[:], level1)
    np.testing.assert_array_equal(read_ome_zarr(written, 2)[:], level2)
    label_image = read_ome_zarr_labels(written)
    assert label_image.dtype == np.uint8
    np.testing.assert_array_equal(label_image[:], labels)
    np.testing.assert_array_equal(read_ome_zarr_labels(written, level=1)[:], labels[:, ::2, ::2])


def test_writer_works_inside_a_running_event_loop(tmp_path: Path, volume: np.ndarray) -> None:
    async def notebook_cell() -> Path:
        return write_ome_zarr(tmp_path / "n.ome.zarr", volume, codec=CodecConfig(threads=2))

    np.testing.assert_array_equal(read_ome_zarr(asyncio.run(notebook_cell()))[:], volume)


def test_sharded_one_plane_chunks_by_default(written: Path) -> None:
    array = read_ome_zarr(written)
    assert array.chunks == (1, 13, 10)
    assert array.shards == (16, 13, 10)
    (sharding,) = array_metadata(written / "0")["codecs"]
    assert sharding["name"] == "sharding_indexed"
    inner = sharding["configuration"]
    assert inner["chunk_shape"] == [1, 13, 10]
    assert [codec["name"] for codec in inner["codecs"]] == ["bytes", "blosc"]
    blosc = {"cname": "zstd", "clevel": 1, "shuffle": "shuffle", "typesize": 2}
    assert blosc.items() <= inner["codecs"][1]["configuration"].items()
    shard_files = sorted(
        p.relative_to(written / "0").as_posix() for p in (written / "0" / "c").rglob("*") if p.is_file()
    )
    assert shard_files == ["c/0/0/0", "c/1/0/0"]  # 20 planes: two shards, one file each


@pytest.mark.parametrize(
    ("codec", "expected"),
    [
        (
            CodecConfig.parse("blosc-lz4:5:shuffle"),
            [("bytes", {}), ("blosc", {"cname": "lz4", "clevel": 5, "shuffle": "shuffle"})],
        ),
        (CodecConfig.parse("zstd:7"), [("bytes", {}), ("zstd", {"level": 7})]),
        (CodecConfig.parse("gzip:2"), [("bytes", {}), ("gzip", {"level": 2})]),
        (CodecConfig.parse("none"), [("bytes", {})]),
    ],
)
def test_codec_config_is_honoured(tmp_path: Path, volume: np.ndarray, codec: CodecConfig, expected: list) -> None:
    path = write_ome_zarr(tmp_path / "c.ome.zarr", volume, codec=codec)
    inner = array_metadata(path / "0")["codecs"][0]["configuration"]["codecs"]
    assert [codec["name"] for codec in inner] == [name for name, _ in expected]
    for codec_meta, (_, configuration) in zip(inner, expected, strict=True):
        assert configuration.items() <= codec_meta.get("configuration", {}).items()
    np.testing.assert_array_equal(read_ome_zarr(path)[:], volume)


def test_compression_level_changes_size(tmp_path: Path) -> None:
    smooth = np.tile(np.arange(64, dtype=np.uint16), (8, 64, 1)) * 7

    def stored_bytes(text: str) -> int:
        path = write_ome_zarr(tmp_path / f"{text.replace(':', '_')}.ome.zarr", smooth, codec=CodecConfig.parse(text))
        return sum(f.stat().st_size for f in (path / "0" / "c").rglob("*") if f.is_file())

    assert stored_bytes("none") == smooth.nbytes + 8 * 16 + 4  # raw chunks + shard index (offset, size per chunk) + crc
    assert stored_bytes("blosc-zstd:9") < stored_bytes("blosc-zstd:0")


def test_unaligned_out_of_order_slabs_are_correct(tmp_path: Path, volume: np.ndarray) -> None:
    codec = CodecConfig(shard_shape=(4, 13, 10), threads=3)
    with OmeZarrWriter(tmp_path / "u.ome.zarr", volume.shape, codec=codec, pyramid_levels=1) as writer:
        assert writer.slab_depth == 4
        for start in (9, 0, 3, 15, 6, 12, 18):
            stop = min(start + 3, len(volume))
            writer.write(start, volume[start:stop])
    np.testing.assert_array_equal(read_ome_zarr(writer.path)[:], volume)
    np.testing.assert_array_equal(read_ome_zarr(writer.path, 1)[:], reference_mean_2x2(volume))


@pytest.mark.parametrize(("step", "order", "rereads"), [(16, 1, False), (5, 1, False), (5, -1, True)])
def test_slabs_in_plane_order_never_read_shards_back(
    tmp_path: Path, volume: np.ndarray, monkeypatch: pytest.MonkeyPatch, step: int, order: int, rereads: bool
) -> None:
    shard_reads = []
    get = zarr.storage.LocalStore.get

    async def counting_get(self: zarr.storage.LocalStore, key: str, *args: object, **kwargs: object) -> object:
        found = await get(self, key, *args, **kwargs)
        if "/c/" in key and found is not None:
            shard_reads.append(key)
        return found

    monkeypatch.setattr(zarr.storage.LocalStore, "get", counting_get)
    with OmeZarrWriter(tmp_path / "a.ome.zarr", volume.shape, pyramid_levels=1) as writer:
        for start in list(range(0, len(volume), step))[::order]:
            writer.write(start, volume[start : start + step])
    assert bool(shard_reads) == rereads
    np.testing.assert_array_equal(read_ome_zarr(writer.path)[:], volume)


def test_output_appears_only_when_complete(tmp_path: Path, volume: np.ndarray) -> None:
    path = tmp_path / "a.ome.zarr"
    with OmeZarrWriter(path, volume.shape) as writer:
        writer.write(0, volume[:16])
        assert not path.exists() and not is_complete(path)
        (partial,) = tmp_path.iterdir()
        assert partial.name.startswith("a.ome.zarr.partial-")
        assert not is_complete(partial)
        writer.write(16, volume[16:])
    assert [p.name for p in tmp_path.iterdir()] == ["a.ome.zarr"]
    assert is_complete(path)


def test_exception_leaves_no_output_and_no_partial(tmp_path: Path, volume: np.ndarray) -> None:
    with (
        pytest.raises(RuntimeError, match="camera unplugged"),
        OmeZarrWriter(tmp_path / "a.ome.zarr", volume.shape) as writer,
    ):
        writer.write(0, volume[:16])
        raise RuntimeError("camera unplugged")
    assert list(tmp_path.iterdir()) == []


def test_missing_planes_discard_the_output(tmp_path: Path, volume: np.ndarray) -> None:
    with (
        pytest.raises(FormatError, match=r"4 of 20 planes never written \(first: 16\)"),
        OmeZarrWriter(tmp_path / "a.ome.zarr", volume.shape) as writer,
    ):
        writer.write(0, volume[:16])
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(written: Path, volume: np.ndarray) -> None:
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_ome_zarr(written, volume[:2])
    np.testing.assert_array_equal(read_ome_zarr(written)[:], volume)
    with pytest.raises(RuntimeError), OmeZarrWriter(written, volume.shape, overwrite=True):
        raise RuntimeError("failed")  # a failed replacement keeps the old output
    np.testing.assert_array_equal(read_ome_zarr(written)[:], volume)
    write_ome_zarr(written, volume[:2] + 1, overwrite=True)
    np.testing.assert_array_equal(read_ome_zarr(written)[:], volume[:2] + 1)
    assert read_ome_zarr_attributes(written) == {}
    assert not (written / "labels").exists()
    assert [p.name for p in written.parent.iterdir()] == [written.name]


def test_write_checks_its_input(tmp_path: Path, volume: np.ndarray, labels: np.ndarray) -> None:
    writer = OmeZarrWriter(tmp_path / "a.ome.zarr", volume.shape, label_name="segmentation")
    with pytest.raises(RuntimeError, match="outside its with-block"):
        writer.write(0, volume)
    with pytest.raises(FormatError), writer:
        with pytest.raises(FormatError, match=r"shape \(n, 13, 10\)"):
            writer.write(0, volume[:, :5], labels[:, :5])
        with pytest.raises(FormatError, match=r"planes \[18, 22\)"):
            writer.write(18, volume[:4], labels[:4])
        with pytest.raises(FormatError, match="float64 cannot be stored as uint16"):
            writer.write(0, volume.astype(float), labels)
        with pytest.raises(FormatError, match="labels must be given"):
            writer.write(0, volume)
        with pytest.raises(FormatError, match="2 label planes for 3 image planes"):
            writer.write(0, volume[:3], labels[:2])
        writer.write(0, volume[:2].astype(np.uint8), labels[:2].astype(bool))  # safe casts are fine
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shape": (4, 4)}, "3-D"),
        ({"shape": (0, 4, 4)}, "non-empty"),
        ({"dtype": "complex64"}, "unsupported voxel type"),
        ({"voxel_size_um": (1.0, -1.0, 1.0)}, "voxel size"),
        ({"pyramid_levels": -1}, "pyramid_levels"),
        ({"dtype": "uint64", "pyramid_levels": 1}, "not supported"),
        ({"label_name": "a/b"}, "invalid label name"),
        ({"attributes": {"when": object()}}, "cannot be stored as JSON"),
    ],
)
def test_writer_rejects_bad_options(tmp_path: Path, kwargs: dict, message: str) -> None:
    options = {"shape": (4, 4, 4)} | kwargs
    with pytest.raises(FormatError, match=message):
        OmeZarrWriter(tmp_path / "a.ome.zarr", **options)


def test_memmapped_input_streams(tmp_path: Path, volume: np.ndarray) -> None:
    raw = tmp_path / "raw.bin"
    volume.tofile(raw)
    mapped = np.memmap(raw, dtype=np.uint16, mode="r", shape=volume.shape)
    np.testing.assert_array_equal(read_ome_zarr(write_ome_zarr(tmp_path / "m.ome.zarr", mapped))[:], volume)


dims = st.integers(1, 9)


@settings(max_examples=20, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 12), dims, dims),
    chunk=st.tuples(st.integers(1, 4), dims, dims),
    multiple=st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(1, 2)),
    levels=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_round_trip_over_shapes_chunks_and_shards(
    tmp_path_factory: pytest.TempPathFactory,
    shape: tuple[int, int, int],
    chunk: tuple[int, int, int],
    multiple: tuple[int, int, int],
    levels: int,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    volume = rng.integers(0, 65536, shape, dtype=np.uint16)
    labels = rng.integers(0, 4, shape, dtype=np.uint8)
    codec = CodecConfig(chunk_shape=chunk, shard_shape=tuple(c * m for c, m in zip(chunk, multiple, strict=True)))
    path = write_ome_zarr(
        tmp_path_factory.mktemp("h") / "v.ome.zarr", volume, labels=labels, codec=codec, pyramid_levels=levels
    )
    array = read_ome_zarr(path)
    assert array.chunks == codec.resolved_chunks(shape)
    assert array.shards == codec.resolved_shards(shape)
    np.testing.assert_array_equal(array[:], volume)
    np.testing.assert_array_equal(read_ome_zarr_labels(path)[:], labels)
    expected = volume
    for level in range(1, levels + 1):
        expected = reference_mean_2x2(expected)
        np.testing.assert_array_equal(read_ome_zarr(path, level)[:], expected)
