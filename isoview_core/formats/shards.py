"""Direct writing and reading of whole shards of a zarr v3 array laid out one plane per chunk.

For the layout the pipeline writes (inner chunks of one full plane, shards of whole planes,
``bytes`` + one blosc / zstd / gzip compressor or the JPEG-LS serializer alone, the default
``bytes`` + ``crc32c`` shard index at the end) a shard is just the compressed planes one after
the other followed by the index of their (offset, length) pairs and its CRC32C. Building it here,
and storing it with one file write, skips zarr's generic per-chunk machinery (buffer merging,
event-loop hand-offs), which costs about as much as the compression itself. Reading decodes each
plane straight into the caller's array. Anything else falls back to zarr.

Why this hand-written path stays beside zarr's own: measured side by side with zarr 3.1.6's sharded path
(its ``BatchedCodecPipeline``; zarr >= 3.2, where ``FusedCodecPipeline`` lives, needs Python >= 3.12) in
``benchmarks/bench_correction.py`` ("default through zarr's sharding codec", ``benchmarks/results/correction.json``,
64 x 2048 x 2048 stack, one core, at 7f17637), the whole correction ran at 532 against 375 MB/s (write stage 0.62
against 0.79 s; zarr reads a shard back for each slab of its planes written after the first) at 0.93x against 1.03x
the stack's memory, and reading the planes back at 4095 against 872 MB/s, for the same bytes on disk (at ea59bd9, with
whole shards written at once: 326 against 203, and 2967 against 651). The one pipeline setting zarr 3.1.6 offers, ``codec_pipeline.batch_size``, does not close
the gap (16 was slower than the default 1 in a quick check).

References
----------
Zarr v3 sharding codec specification, ``sharding_indexed``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import google_crc32c
import imagecodecs
import numcodecs
import numpy as np

from isoview_core.formats.jpegls import CODEC_NAME as _JPEGLS_NAME

_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}
_EMPTY = np.iinfo(np.uint64).max
_LITTLE_ENDIAN_BYTES = {"name": "bytes", "configuration": {"endian": "little"}}
_SINGLE_BYTE_BYTES = {"name": "bytes"}  # what zarr writes for 1-byte types, which have no endianness
_JPEGLS = {"name": _JPEGLS_NAME}


class _PlaneCodec(NamedTuple):
    """The inner codecs of a shard: one plane to its chunk bytes, and those bytes back into a plane.

    ``decode_into(chunk, plane)`` writes into ``plane``, a C-contiguous plane of the array's
    (little-endian) type, without an intermediate array.
    """

    encode: Callable[[np.ndarray], bytes]
    decode_into: Callable[[memoryview, np.ndarray], object]


class _Layout(NamedTuple):
    """Planes of the array and per shard, plane shape, data type and inner codecs of an array in the supported layout."""

    depth: int
    shard_planes: int
    plane_shape: tuple[int, ...]
    dtype: np.dtype[Any]
    codec: _PlaneCodec


def _compressor(codec: dict[str, Any]) -> numcodecs.abc.Codec | None:
    """The numcodecs codec that encodes exactly like zarr's codec ``codec`` (a zarr.json entry)."""
    name, config = codec["name"], codec.get("configuration", {})
    if name == "blosc":
        return numcodecs.Blosc.from_config(
            {
                "cname": config["cname"],
                "clevel": config["clevel"],
                "shuffle": _SHUFFLE[config["shuffle"]],
                "blocksize": config.get("blocksize", 0),
                "typesize": config["typesize"],
            }
        )
    if name == "zstd":
        return numcodecs.Zstd(level=config["level"], checksum=config.get("checksum", False))
    if name == "gzip":
        return numcodecs.GZip(level=config["level"])
    return None


def _copy_into(chunk: memoryview, plane: np.ndarray) -> None:
    """Decode an uncompressed chunk: its bytes are the plane's."""
    plane.reshape(-1).view(np.uint8)[:] = np.frombuffer(chunk, dtype=np.uint8)


def _gunzip_into(gzip: numcodecs.GZip, chunk: memoryview, plane: np.ndarray) -> None:
    """Decode a gzip chunk with libdeflate, which writes into ``plane``.

    numcodecs' GZip decompresses into new bytes and copies them; libdeflate (imagecodecs) decodes
    in place and nearly 3x faster (reading 16 corrected 2048 x 2048 uint16 planes written at gzip
    level 1: 100 against 273-287 CPU-ms). It reads one gzip member: data in several members (or
    of the wrong size) go to numcodecs.
    """
    if imagecodecs.gzip_decode(chunk, out=plane.reshape(-1).view(np.uint8)).nbytes != plane.nbytes:
        gzip.decode(chunk, out=plane)


def _plane_codec(inner: list[dict[str, Any]]) -> _PlaneCodec | None:
    """The codec of inner chunk codecs ``inner`` (zarr.json entries), or None when not handled here."""
    if inner == [_JPEGLS]:  # as isoview_core.formats.jpegls.JpegLsCodec: lossless (level 0), values not bytes
        return _PlaneCodec(
            lambda plane: imagecodecs.jpegls_encode(plane, level=0),
            lambda chunk, plane: imagecodecs.jpegls_decode(chunk, out=plane),  # checks shape and type
        )
    if not inner or inner[0] not in (_LITTLE_ENDIAN_BYTES, _SINGLE_BYTE_BYTES) or len(inner) > 2:
        return None
    if len(inner) == 1:
        return _PlaneCodec(lambda plane: plane.tobytes(), _copy_into)
    compressor = _compressor(inner[1])
    if compressor is None:
        return None
    # numcodecs' Blosc and Zstd decode straight into a given contiguous buffer, its GZip does not.
    decode_into = partial(_gunzip_into, compressor) if isinstance(compressor, numcodecs.GZip) else compressor.decode
    return _PlaneCodec(lambda plane: bytes(compressor.encode(plane)), decode_into)


def _plane_shard_layout(array_dir: Path) -> _Layout | None:
    """The layout of the array stored in ``array_dir`` when it is the supported one, else None."""
    metadata = json.loads((array_dir / "zarr.json").read_text())
    shape = tuple(metadata["shape"])
    shard = tuple(metadata["chunk_grid"]["configuration"]["chunk_shape"])
    key_encoding = metadata["chunk_key_encoding"]
    if key_encoding["name"] != "default" or key_encoding.get("configuration", {}).get("separator", "/") != "/":
        return None
    if len(metadata["codecs"]) != 1 or metadata["codecs"][0]["name"] != "sharding_indexed":
        return None
    sharding = metadata["codecs"][0]["configuration"]
    index_codecs = [codec["name"] for codec in sharding["index_codecs"]]
    if (
        len(shape) != 3
        or tuple(sharding["chunk_shape"]) != (1, *shape[1:])
        or shard[1:] != shape[1:]
        or sharding.get("index_location", "end") != "end"
        or index_codecs != ["bytes", "crc32c"]
        or sharding["index_codecs"][0] != _LITTLE_ENDIAN_BYTES
    ):
        return None
    codec = _plane_codec(sharding["codecs"])
    if codec is None:
        return None
    return _Layout(shape[0], shard[0], shape[1:], np.dtype(metadata["data_type"]).newbyteorder("<"), codec)


class PlaneShardReader:
    """Reads planes of an array in the layout above straight from its shard files (no zarr machinery)."""

    def __init__(self, array_dir: Path, layout: _Layout) -> None:
        self._dir = array_dir
        self._shard_planes = layout.shard_planes
        self._plane_shape = layout.plane_shape
        self._dtype = layout.dtype
        self._decode_into = layout.codec.decode_into

    @classmethod
    def for_array(cls, array_dir: Path) -> PlaneShardReader | None:
        """A reader for the array stored in ``array_dir``, or None when its layout is not supported."""
        layout = _plane_shard_layout(array_dir)
        return None if layout is None else cls(array_dir, layout)

    def read(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Planes ``[start, stop)`` as a (Z, Y, X) array (``out`` when given); absent planes (never written) are zeros.

        Planes of ``out`` that are C-contiguous and of the array's type are decoded straight into it;
        any other ``out`` (strided, another type) goes through one scratch plane, converted as it is copied.
        """
        out = np.empty((stop - start, *self._plane_shape), dtype=self._dtype) if out is None else out
        scratch: np.ndarray | None = None
        for shard in range(start // self._shard_planes, (stop - 1) // self._shard_planes + 1):
            first, last = max(start, shard * self._shard_planes), min(stop, (shard + 1) * self._shard_planes)
            key = self._dir / "c" / str(shard) / "0" / "0"
            if not key.is_file():
                out[first - start : last - start] = 0
                continue
            data = memoryview(key.read_bytes())  # chunks are sliced from it without copies
            index = np.frombuffer(data, dtype="<u8", count=2 * self._shard_planes, offset=len(data) - 4 - 16 * self._shard_planes)
            for plane in range(first, last):
                offset, length = (int(value) for value in index[2 * (plane % self._shard_planes) : 2 * (plane % self._shard_planes) + 2])
                target = out[plane - start]
                if offset == _EMPTY:
                    target[...] = 0
                elif target.flags.c_contiguous and target.dtype == self._dtype:
                    self._decode_into(data[offset : offset + length], target)
                else:
                    scratch = np.empty(self._plane_shape, dtype=self._dtype) if scratch is None else scratch
                    self._decode_into(data[offset : offset + length], scratch)
                    target[...] = scratch
        return out


class PlaneShardWriter:
    """Writes whole shards of one existing array, from planes given in order; built only for the layout described above.

    Planes are encoded as they come, a few at a time if need be, and each shard is stored with one file write once all
    of its planes are in: a caller streams planes through a buffer of a few planes, not of a shard.
    """

    def __init__(self, array_dir: Path, layout: _Layout, threads: int) -> None:
        self._dir = array_dir
        self._depth = layout.depth
        self.shard_planes = layout.shard_planes
        self._encode_plane = layout.codec.encode
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="shard-encode")
        self._pending: list[bytes] = []
        self._pending_start = 0

    @classmethod
    def for_array(cls, array_dir: Path, threads: int = 1) -> PlaneShardWriter | None:
        """A writer for the array stored in ``array_dir``, or None when its layout is not supported."""
        layout = _plane_shard_layout(array_dir)
        return None if layout is None else cls(array_dir, layout, threads)

    def close(self) -> None:
        """Stop the encoding threads (a shard still incomplete is not stored: :meth:`flush` it first)."""
        self._pool.shutdown()

    def continues(self, z_start: int) -> bool:
        """True when plane ``z_start`` is the next plane of the shard in progress, or starts a shard when none is."""
        if self._pending:
            return z_start == self._pending_start + len(self._pending)
        return z_start % self.shard_planes == 0

    def _encode(self, plane: np.ndarray) -> bytes:
        return self._encode_plane(np.ascontiguousarray(plane).astype(plane.dtype.newbyteorder("<"), copy=False))

    def write(self, z_start: int, planes: np.ndarray) -> None:
        """Encode planes ``[z_start, z_start + len(planes))``, which :meth:`continues` the shards written so far, and
        store every shard they complete (one file write each; the last shard of the array ends at its last plane)."""
        if not self.continues(z_start):
            raise ValueError(f"{self._dir}: plane {z_start} does not continue the shards written so far")
        # Always off the calling thread: numcodecs runs blosc with its own thread pool when called
        # from the main thread, which would silently use every core; in a worker it uses one.
        for plane, chunk in enumerate(self._pool.map(self._encode, planes), start=z_start):
            if not self._pending:
                self._pending_start = plane
            self._pending.append(chunk)
            if len(self._pending) == self.shard_planes or plane + 1 == self._depth:
                self.flush()

    def flush(self) -> None:
        """Store the shard in progress with the planes it has (the others are absent: read as the fill value)."""
        if not self._pending:
            return
        index = np.full((self.shard_planes, 2), _EMPTY, dtype="<u8")
        lengths = np.array([len(chunk) for chunk in self._pending], dtype=np.uint64)
        index[: len(self._pending), 0] = np.cumsum(lengths) - lengths  # a shard in progress starts at its first plane
        index[: len(self._pending), 1] = lengths
        index_bytes = index.tobytes()
        checksum = google_crc32c.value(index_bytes).to_bytes(4, "little")
        key = self._dir / "c" / str(self._pending_start // self.shard_planes) / "0" / "0"
        key.parent.mkdir(parents=True, exist_ok=True)
        with open(key, "wb") as handle:
            handle.writelines(self._pending)  # not joined first: a shard-sized copy in fresh memory costs more than the writes
            handle.write(index_bytes)
            handle.write(checksum)
        self._pending = []
