"""Compression and chunk layout of OME-Zarr outputs, as one validated model.

Importing this module registers the lossless JPEG-LS codec
(:mod:`isoview_core.formats.jpegls`, ``"imagecodecs_jpegls"``) with zarr, so
that any program importing :mod:`isoview_core.formats` reads archives written with it.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import zarr.codecs
from pydantic import BaseModel, ConfigDict, Field, model_validator
from zarr.abc.codec import ArrayBytesCodec, BytesBytesCodec

from isoview_core.formats.jpegls import JpegLsCodec  # also registers it with zarr

__all__ = ["CodecConfig", "CodecName", "ShuffleName"]

CodecName = Literal["blosc-zstd", "blosc-lz4", "blosc-lz4hc", "blosc-zlib", "zstd", "gzip", "jpegls", "none"]
ShuffleName = Literal["bitshuffle", "shuffle", "noshuffle"]

# Inclusive level ranges of each codec (zstd accepts its negative "fast" levels).
_LEVEL_RANGE: dict[str, tuple[int, int]] = {
    "blosc": (0, 9),
    "zstd": (-131072, 22),
    "gzip": (0, 9),
}

DEFAULT_SHARD_DEPTH = 16
"""Planes per shard by default: one shard file per 16 planes (8 MiB chunks of 2048x2048 uint16)."""


def _clip(shape: tuple[int, ...], limit: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(max(1, min(s, n)) for s, n in zip(shape, limit, strict=True))


class CodecConfig(BaseModel):
    """How OME-Zarr volumes are compressed and laid out on disk.

    Defaults: one plane per chunk, 16 planes per shard (ALGORITHMS.md §2.10),
    blosc-zstd level 1 with byte shuffle, the fastest codec that keeps within
    10 % of KLB's compression ratio on corrected stacks
    (``benchmarks/bench_codecs.py``: 98 % of KLB's ratio, 30x its write speed).

    Attributes
    ----------
    name : str
        ``blosc-<cname>`` (blosc container around zstd, lz4, lz4hc or zlib),
        ``zstd`` or ``gzip`` (plain zarr v3 codecs), ``jpegls``, or ``none``.
        ``jpegls`` is the archival codec: lossless JPEG-LS of each plane
        (:class:`~isoview_core.formats.jpegls.JpegLsCodec`, stored as
        ``"imagecodecs_jpegls"``), 3.8 % smaller than KLB's bzip2 and 6.8x
        faster to write on corrected stacks (``benchmarks/results/codecs.json``).
        It takes ``uint8``/``uint16`` volumes only (``uint8`` labels included)
        and one-plane chunks; readers must import :mod:`isoview_core.formats`
        to decode it.
    level : int
        Compression level: 0-9 for blosc and gzip, up to 22 for zstd (negative
        zstd levels are its fast modes). Ignored by ``none`` and ``jpegls``
        (always lossless).
    shuffle : str
        Byte or bit shuffle applied by blosc before compression; ignored by the
        other codecs.
    chunk_shape : tuple of int, optional
        ``(z, y, x)`` chunk (the unit of compression); default one plane,
        ``(1, Y, X)``. Clipped to the volume shape. ``jpegls`` needs ``z = 1``.
    shard_shape : tuple of int, optional
        ``(z, y, x)`` shard (the unit of storage: one file per shard); default
        ``(min(16, Z), Y, X)``. Must be a multiple of the chunk shape; clipped to
        the volume shape rounded up to whole chunks.
    blocksize : int
        Blosc block size in bytes (0: blosc's choice). 1 MiB by default: at low levels blosc picks
        blocks of tens of kB, and 1 MiB blocks double zstd-1's speed on camera planes and compress
        slightly better (``benchmarks/bench_codecs.py``).
    threads : int
        Number of threads that compress chunks concurrently for one writer.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: CodecName = "blosc-zstd"
    level: int = 1
    shuffle: ShuffleName = "shuffle"
    chunk_shape: tuple[int, int, int] | None = None
    shard_shape: tuple[int, int, int] | None = None
    threads: int = Field(default=1, ge=1)
    blocksize: int = Field(default=1 << 20, ge=0)

    @model_validator(mode="after")
    def _check(self) -> CodecConfig:
        family = self.name.split("-")[0]
        if family in _LEVEL_RANGE:
            low, high = _LEVEL_RANGE[family]
            if not low <= self.level <= high:
                raise ValueError(f"compression level {self.level} out of range [{low}, {high}] for {self.name}")
        for label, shape in (("chunk_shape", self.chunk_shape), ("shard_shape", self.shard_shape)):
            if shape is not None and min(shape) < 1:
                raise ValueError(f"{label} must be positive, got {shape}")
        if (
            self.chunk_shape
            and self.shard_shape
            and any(s % c for s, c in zip(self.shard_shape, self.chunk_shape, strict=True))
        ):
            raise ValueError(f"shard_shape {self.shard_shape} is not a multiple of chunk_shape {self.chunk_shape}")
        if self.name == "jpegls" and self.chunk_shape and self.chunk_shape[0] != 1:
            raise ValueError(
                f"jpegls encodes one plane per chunk: chunk_shape must be (1, y, x), got {self.chunk_shape}"
            )
        return self

    @classmethod
    def parse(cls, text: str) -> CodecConfig:
        """Build a configuration from the CLI form ``name[:level[:shuffle]]``.

        Parameters
        ----------
        text : str
            For example ``"blosc-zstd:5"``, ``"blosc-lz4:5:shuffle"``, ``"zstd:3"``, ``"jpegls"``, ``"none"``.

        Returns
        -------
        CodecConfig
            With the other fields at their defaults.

        Raises
        ------
        ValueError
            Unknown codec or shuffle name, non-integer or out-of-range level.
        """
        name, *rest = text.strip().split(":")
        if name not in get_args(CodecName) or len(rest) > 2:
            raise ValueError(
                f"unknown codec {text!r}: expected name[:level[:shuffle]] with name one of "
                f"{', '.join(get_args(CodecName))}"
            )
        fields: dict[str, object] = {"name": name}
        if rest:
            try:
                fields["level"] = int(rest[0])
            except ValueError:
                raise ValueError(f"codec {text!r}: level {rest[0]!r} is not an integer") from None
        if len(rest) == 2:
            if rest[1] not in get_args(ShuffleName):
                raise ValueError(f"codec {text!r}: shuffle must be one of {', '.join(get_args(ShuffleName))}")
            fields["shuffle"] = rest[1]
        return cls.model_validate(fields)

    def zarr_compressors(self) -> tuple[BytesBytesCodec, ...]:
        """Zarr v3 bytes-to-bytes codecs applied to each chunk.

        Returns
        -------
        tuple of zarr.abc.codec.BytesBytesCodec
            Empty for ``none`` and ``jpegls`` (JPEG-LS is the serializer, see
            :meth:`zarr_serializer`). Blosc's type size is left for zarr to set
            from each array's data type (2 for uint16 volumes, 1 for uint8 labels).
        """
        if self.name in ("none", "jpegls"):
            return ()
        if self.name == "zstd":
            return (zarr.codecs.ZstdCodec(level=self.level),)
        if self.name == "gzip":
            return (zarr.codecs.GzipCodec(level=self.level),)
        cname = self.name.removeprefix("blosc-")
        return (zarr.codecs.BloscCodec(cname=cname, clevel=self.level, shuffle=self.shuffle, blocksize=self.blocksize),)

    def zarr_serializer(self) -> ArrayBytesCodec:
        """Zarr v3 array-to-bytes codec that turns each chunk into bytes (before the compressors).

        Returns
        -------
        zarr.abc.codec.ArrayBytesCodec
            :class:`~isoview_core.formats.jpegls.JpegLsCodec` for ``jpegls``;
            otherwise zarr's default for numeric types, the little-endian
            ``bytes`` codec (whose endianness zarr drops for ``uint8``).
        """
        if self.name == "jpegls":
            return JpegLsCodec()
        return zarr.codecs.BytesCodec(endian="little")

    def resolved_chunks(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """Chunk shape used for a volume of `shape` ``(z, y, x)``.

        Parameters
        ----------
        shape : tuple of int
            Volume shape.

        Returns
        -------
        tuple of int
            `chunk_shape` (default ``(1, Y, X)``) clipped to `shape`.
        """
        return _clip(self.chunk_shape or (1, shape[1], shape[2]), shape)

    def resolved_shards(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """Shard shape used for a volume of `shape` ``(z, y, x)``.

        Parameters
        ----------
        shape : tuple of int
            Volume shape.

        Returns
        -------
        tuple of int
            `shard_shape` (default ``(min(16, Z), Y, X)``, in whole chunks)
            clipped to `shape` rounded up to whole chunks, hence always a
            multiple of :meth:`resolved_chunks`.
        """
        chunks = self.resolved_chunks(shape)
        covering = tuple(math.ceil(max(n, 1) / c) * c for n, c in zip(shape, chunks, strict=True))
        default = (math.ceil(DEFAULT_SHARD_DEPTH / chunks[0]) * chunks[0], covering[1], covering[2])
        # Each chunk edge is either the configured one (a validated shard_shape, the default
        # and the covering extent are multiples of it) or the whole extent (the shard clips to it).
        return _clip(self.shard_shape or default, covering)
