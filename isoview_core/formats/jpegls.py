"""Lossless JPEG-LS as a zarr v3 array-to-bytes codec: the project's archival codec.

:class:`JpegLsCodec` (codec name ``"imagecodecs_jpegls"``) stores each chunk,
one ``(1, Y, X)`` or ``(Y, X)`` plane of ``uint8`` or ``uint16``, as a lossless
JPEG-LS image (``imagecodecs.jpegls_encode`` with ``level=0``, i.e. CharLS with
``NEAR = 0``) and decodes it back bit-exactly. On corrected IsoView stacks it
compresses 3.8 % better than KLB's bzip2 while writing 6.8x and reading 3.1x
faster (``benchmarks/results/codecs.json``).

It takes the place of zarr's ``bytes`` serializer, so it works unsharded and
as the inner codec of zarr's sharding codec (chunks ``(1, Y, X)`` inside
``(16, Y, X)`` shards, :class:`~isoview_core.formats.codecs.CodecConfig`'s
layout). JPEG-LS stores sample values, not bytes, so the data is
endianness-free and no bytes-to-bytes compressor is needed after it.

Reading data written with it needs this codec registered with zarr: importing
this module, or :mod:`isoview_core.formats` (which imports it), registers it::

    import isoview_core.formats  # registers "imagecodecs_jpegls"
    zarr.open_array("SPM00_TM000012_CM00_CHN00.ome.zarr/0")[:]

A reader without ``isoview_core`` installed cannot decode such arrays (zarr
reports the codec ``"imagecodecs_jpegls"`` as unknown); it would have to
register an equivalent codec under the same name.

Why this codec is still home-made: imagecodecs ships zarr 3 codecs
(``imagecodecs.zarr.Jpegls``, registered as ``"imagecodecs_jpegls"`` by the
``imagecodecs-zarr`` package) only in releases after 2026.3.6, and all of those
need Python >= 3.12; 2026.3.6, the last for the project's Python 3.11, has only
numcodecs (zarr 2) codecs. The upstream codec (2026.10.10) reads the files
written here bit for bit: same name, no configuration, one JPEG-LS image per
chunk (checked on ``tests/data/jpegls_3b6e585.ome.zarr``); it encodes with
``jpegls_encode``'s default level, which (on 2026.3.6) gives the same bytes as ``level=0``
here. Once the project moves to Python 3.12 it can replace this module without
touching an archive; ``tests/test_formats_jpegls.py`` keeps the archives
written so far readable.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import imagecodecs
import numpy as np
import zarr.registry
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.buffer import Buffer, NDBuffer
from zarr.core.chunk_grids import RegularChunkGrid
from zarr.core.common import JSON, parse_named_configuration

if TYPE_CHECKING:
    from typing import Self

    from zarr.core.array_spec import ArraySpec
    from zarr.core.chunk_grids import ChunkGrid
    from zarr.core.dtype.wrapper import TBaseDType, TBaseScalar, ZDType

__all__ = ["CODEC_NAME", "JpegLsCodec"]

CODEC_NAME = "imagecodecs_jpegls"
"""Name of the codec in zarr array metadata (``zarr.json``)."""

_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))


def _check_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """Return the native-endian form of `dtype`; raise if JPEG-LS cannot store it."""
    native = dtype.newbyteorder("=")
    if native not in _DTYPES:
        raise ValueError(
            f"the JPEG-LS codec ({CODEC_NAME!r}) stores only uint8 or uint16 data, got {dtype}; "
            "choose another codec (e.g. blosc-zstd) for this array"
        )
    return native


def _check_chunk_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """Return the ``(Y, X)`` plane of a chunk `shape`; raise unless it is ``(Y, X)`` or ``(1, ..., 1, Y, X)``."""
    if len(shape) < 2 or any(n != 1 for n in shape[:-2]) or min(shape) < 1:
        raise ValueError(
            f"the JPEG-LS codec ({CODEC_NAME!r}) encodes one 2-D plane per chunk: chunks must be "
            f"(1, Y, X) or (Y, X), got {tuple(shape)}"
        )
    return shape[-2], shape[-1]


@dataclass(frozen=True)
class JpegLsCodec(ArrayBytesCodec):
    """Lossless JPEG-LS serializer of one ``uint8``/``uint16`` plane per chunk.

    Registered with zarr as ``"imagecodecs_jpegls"`` when :mod:`isoview_core.formats`
    (or this module) is imported; any program that reads data written with it
    must import ``isoview_core`` first. It has no parameters: it is always
    lossless (JPEG-LS ``NEAR = 0``), bit-exact on every value including 0 and
    the type's maximum.

    Raises
    ------
    ValueError
        At array creation, for a data type other than ``uint8``/``uint16`` or
        (unsharded arrays) a chunk that is not one plane; inside a shard, a
        chunk that is not one plane is reported at the first write.

    Examples
    --------
    >>> import isoview_core.formats  # doctest: +SKIP
    >>> zarr.create_array(store, shape=(50, 2048, 2048), dtype="uint16", chunks=(1, 2048, 2048),
    ...                   shards=(16, 2048, 2048), serializer=JpegLsCodec(), compressors=None)  # doctest: +SKIP
    """

    is_fixed_size = False

    @classmethod
    def from_dict(cls, data: dict[str, JSON]) -> Self:
        _, configuration = parse_named_configuration(data, CODEC_NAME, require_configuration=False)
        if configuration:
            raise ValueError(f"codec {CODEC_NAME!r} takes no configuration, got {configuration}")
        return cls()

    def to_dict(self) -> dict[str, JSON]:
        return {"name": CODEC_NAME}

    def evolve_from_array_spec(self, array_spec: ArraySpec) -> Self:
        # Called when array metadata is built, for this codec at the top level and inside a
        # sharding codec: the one hook that sees the data type of sharded arrays at creation.
        # (Its shape is the array's at the top level, the inner chunk's inside a shard, hence
        # only the type is checked here; chunk shapes in validate() and at encoding.)
        _check_dtype(array_spec.dtype.to_native_dtype())
        return self

    def validate(
        self,
        *,
        shape: tuple[int, ...],
        dtype: ZDType[TBaseDType, TBaseScalar],
        chunk_grid: ChunkGrid,
    ) -> None:
        _check_dtype(dtype.to_native_dtype())
        if not isinstance(chunk_grid, RegularChunkGrid):
            raise TypeError(f"the JPEG-LS codec ({CODEC_NAME!r}) needs a regular chunk grid")
        _check_chunk_shape(tuple(chunk_grid.chunk_shape))

    def _encode_sync(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        plane_shape = _check_chunk_shape(tuple(chunk_spec.shape))
        dtype = _check_dtype(chunk_spec.dtype.to_native_dtype())
        plane = np.ascontiguousarray(chunk_array.as_numpy_array(), dtype=dtype).reshape(plane_shape)
        encoded = imagecodecs.jpegls_encode(plane, level=0)  # level 0: NEAR = 0, lossless
        return chunk_spec.prototype.buffer.from_bytes(encoded)

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        plane_shape = _check_chunk_shape(tuple(chunk_spec.shape))
        dtype = _check_dtype(chunk_spec.dtype.to_native_dtype())
        plane = imagecodecs.jpegls_decode(chunk_bytes.as_numpy_array())
        if plane.shape != plane_shape or plane.dtype != dtype:
            raise ValueError(
                f"corrupt {CODEC_NAME!r} chunk: decoded a {plane.shape} {plane.dtype} image "
                f"for a {plane_shape} {dtype} plane"
            )
        return chunk_spec.prototype.nd_buffer.from_numpy_array(plane.reshape(chunk_spec.shape))

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        # CharLS releases the GIL: chunks compress in parallel in the loop's executor (like blosc).
        return await asyncio.to_thread(self._encode_sync, chunk_array, chunk_spec)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        return await asyncio.to_thread(self._decode_sync, chunk_bytes, chunk_spec)

    def compute_encoded_size(self, input_byte_length: int, _chunk_spec: ArraySpec) -> int:
        raise NotImplementedError(f"{CODEC_NAME!r} output size depends on the data")


zarr.registry.register_codec(CODEC_NAME, JpegLsCodec)
