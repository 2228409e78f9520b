"""KLB volumes (Keller lab block format, ALGORITHMS.md §1.6) through ``pyklb``.

Volumes are ``(z, y, x)`` arrays stored with KLB-x = columns (the port's
convention; legacy MATLAB files have rows and columns swapped, see §1.6).

``pyklb`` 0.3 quirks handled here:

* ``pixelspacing_tczyx`` must be a list or tuple (a numpy array raises
  "truth value of an array is ambiguous"), while ``blocksize_xyzct`` must be a
  ``uint32`` numpy array in x, y, z, c, t order (a tuple raises TypeError).
* The array must be C-contiguous.
* ``readfull`` drops leading singleton axes, so a one-plane volume comes back 2-D.
* A corrupt or truncated file makes the C++ reader abort the whole process
  (``std::bad_array_new_length``) instead of raising, so the header is
  checked here, in Python, before ``pyklb`` reads a file.
* The header's metadata field is not supported by ``pyklb``.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pyklb

from isoview_core.errors import FormatError
from isoview_core.formats.atomic import atomic_output

__all__ = ["KlbHeader", "klb_voxel_size", "read_klb", "read_klb_header", "write_klb"]

_FIXED_HEADER = struct.Struct("<B5I5fBB256s5I")
_VERSION = 2
_DTYPES = ("u1", "u2", "u4", "u8", "i1", "i2", "i4", "i8", "f4", "f8")
_COMPRESSIONS = ("none", "bzip2", "zlib")


class KlbHeader:
    """The checked header of a KLB file, in ``(z, y, x)`` order.

    Attributes
    ----------
    shape : tuple of int
        Volume shape ``(z, y, x)``.
    voxel_size_um : tuple of float
        Pixel spacing ``(z, y, x)``.
    block_shape : tuple of int
        Compression block shape ``(z, y, x)``.
    dtype : numpy.dtype
        Voxel type.
    compression : str
        ``"none"``, ``"bzip2"`` or ``"zlib"``.
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        voxel_size_um: tuple[float, float, float],
        block_shape: tuple[int, int, int],
        dtype: np.dtype,
        compression: str,
    ) -> None:
        self.shape = shape
        self.voxel_size_um = voxel_size_um
        self.block_shape = block_shape
        self.dtype = dtype
        self.compression = compression

    def __repr__(self) -> str:
        return (
            f"KlbHeader(shape={self.shape}, voxel_size_um={self.voxel_size_um}, "
            f"block_shape={self.block_shape}, dtype={self.dtype}, compression={self.compression!r})"
        )


def _float32_value(value: float) -> float:
    """The shortest decimal that a float32 header field stands for (0.4, not 0.4000000059604645)."""
    return float(str(np.float32(value)))


def read_klb_header(path: str | os.PathLike[str]) -> KlbHeader:
    """Read and check the header of a KLB file without ``pyklb``.

    Parameters
    ----------
    path : str or os.PathLike
        KLB file.

    Returns
    -------
    KlbHeader
        Shape, voxel size, block shape, data type and compression.

    Raises
    ------
    FormatError
        The file is missing, is not a version-2 KLB file, is truncated, or
        holds more than one channel or timepoint.
    """
    name = os.fspath(path)
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            fixed = file.read(_FIXED_HEADER.size)
            if len(fixed) < _FIXED_HEADER.size or fixed[0] != _VERSION:
                raise FormatError(f"{name}: not a KLB file (no version-{_VERSION} KLB header)")
            fields = _FIXED_HEADER.unpack(fixed)
            xyzct, spacing, type_code, compression, blocks = (
                fields[1:6],
                fields[6:11],
                fields[11],
                fields[12],
                fields[14:19],
            )
            if min(xyzct) < 1 or min(blocks) < 1 or type_code >= len(_DTYPES) or compression >= len(_COMPRESSIONS):
                raise FormatError(f"{name}: corrupt KLB header")
            header_bytes = _FIXED_HEADER.size + 8 * math.prod(
                math.ceil(n / b) for n, b in zip(xyzct, blocks, strict=True)
            )
            if header_bytes > size:
                raise FormatError(f"{name}: truncated KLB file ({size} bytes, its header alone needs {header_bytes})")
            # Block offsets are cumulative: the last one is the size of all compressed data.
            file.seek(header_bytes - 8)
            expected = header_bytes + struct.unpack("<Q", file.read(8))[0]
    except OSError as exc:
        raise FormatError(f"{name}: cannot read KLB file ({exc.strerror})") from exc
    if size != expected:
        raise FormatError(f"{name}: truncated or corrupt KLB file ({size} bytes, its header implies {expected})")
    if xyzct[3] != 1 or xyzct[4] != 1:
        raise FormatError(f"{name}: KLB holds {xyzct[3]} channels x {xyzct[4]} timepoints, not one volume")
    return KlbHeader(
        shape=(xyzct[2], xyzct[1], xyzct[0]),
        voxel_size_um=(_float32_value(spacing[2]), _float32_value(spacing[1]), _float32_value(spacing[0])),
        block_shape=(blocks[2], blocks[1], blocks[0]),
        dtype=np.dtype(_DTYPES[type_code]).newbyteorder("<"),
        compression=_COMPRESSIONS[compression],
    )


def read_klb(path: str | os.PathLike[str], threads: int = 1) -> np.ndarray:
    """Read a KLB volume.

    Parameters
    ----------
    path : str or os.PathLike
        KLB file written by the port (KLB-x = columns).
    threads : int, optional
        Decompression threads.

    Returns
    -------
    numpy.ndarray
        ``(z, y, x)`` array; a 2-D image reads as one plane ``(1, y, x)``.

    Raises
    ------
    FormatError
        Missing, corrupt or multi-channel/timepoint file.
    """
    header = read_klb_header(path)
    try:
        array = pyklb.readfull(os.fspath(path), numthreads=threads)
    except (OSError, TypeError) as exc:
        raise FormatError(f"{os.fspath(path)}: cannot read KLB file ({exc})") from exc
    return array.reshape(header.shape)


def klb_voxel_size(path: str | os.PathLike[str]) -> tuple[float, float, float]:
    """Voxel size ``(z, y, x)`` in micrometers stored in a KLB header.

    Parameters
    ----------
    path : str or os.PathLike
        KLB file.

    Returns
    -------
    tuple of float
        The pixel spacing, as the shortest decimals matching the stored float32 values.
    """
    return read_klb_header(path).voxel_size_um


def write_klb(
    path: str | os.PathLike[str],
    array: np.ndarray,
    *,
    voxel_size_um: Sequence[float] = (1.0, 1.0, 1.0),
    threads: int = 1,
    block_shape: Sequence[int] | None = None,
    compression: Literal["bzip2", "zlib", "none"] = "bzip2",
    overwrite: bool = False,
) -> Path:
    """Write a volume as KLB, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file.
    array : numpy.ndarray
        ``(z, y, x)`` volume or ``(y, x)`` image, any KLB type (uint16 for camera data).
    voxel_size_um : tuple of float, optional
        Voxel size ``(z, y, x)``; stored as ``pixelspacing_tczyx = (1, 1, z, y, x)``.
    threads : int, optional
        Compression threads.
    block_shape : tuple of int, optional
        Compression block ``(z, y, x)``; ``pyklb`` chooses (e.g. 8x96x96) by default.
    compression : {"bzip2", "zlib", "none"}, optional
        Block compression; bzip2 like the reference pipeline.
    overwrite : bool, optional
        Replace an existing file (after the new one is complete).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    FormatError
        Unsupported shape or type, or ``pyklb`` failed.
    FileExistsError
        `path` exists and `overwrite` is false.
    """
    name = os.fspath(path)
    if array.ndim not in (2, 3) or array.dtype.str.lstrip("<>=|") not in _DTYPES:
        raise FormatError(
            f"{name}: KLB stores 2-D or 3-D arrays of {', '.join(_DTYPES)}, got {array.dtype} {array.shape}"
        )
    if len(voxel_size_um) != 3 or min(voxel_size_um) <= 0:
        raise FormatError(f"{name}: voxel size must be 3 positive values (z, y, x), got {voxel_size_um}")
    volume = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    options: dict[str, object] = {
        "numthreads": threads,
        "pixelspacing_tczyx": [1.0, 1.0, *(float(v) for v in voxel_size_um)],
        "compression": compression,
    }
    if block_shape is not None:
        if len(block_shape) != 3 or min(block_shape) < 1:
            raise FormatError(f"{name}: block shape must be 3 positive values (z, y, x), got {block_shape}")
        z, y, x = block_shape
        options["blocksize_xyzct"] = np.array([x, y, z, 1, 1], dtype=np.uint32)
    with atomic_output(path, overwrite=overwrite) as tmp:
        try:
            pyklb.writefull(volume, os.fspath(tmp), **options)
        except (OSError, TypeError, ValueError) as exc:
            raise FormatError(f"{name}: cannot write KLB file ({exc})") from exc
    return Path(path)
