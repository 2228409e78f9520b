"""Streaming, atomic writer of OME-Zarr 0.5 volumes: sharded levels, a pyramid and a label image, slab by slab.

Layout of one output ``<name>.ome.zarr``::

    zarr.json            {"ome": {"version": "0.5", "multiscales": [...]}, "isoview": {...}}
    0/ 1/ ...            level k: (Z, ceil(Y/2^k), ceil(X/2^k)), 2x2 mean per level
    labels/zarr.json     {"ome": {"version": "0.5", "labels": ["<label_name>"]}}
    labels/<label_name>/ uint8 label image, same levels (2x2 nearest), "image-label" metadata

Each slab is compressed and stored and its pyramid levels are computed from it, so the volume is never held
in memory and never read back. The output is built under ``<name>.partial-<random>`` and renamed into place
only when complete (see :mod:`isoview_core.formats.atomic`). Whole aligned shards of the default layout are
written by :mod:`isoview_core.formats.shards`; every other slab goes through zarr.

Why a private event loop rather than zarr's synchronous API: zarr compresses chunks with
``asyncio.to_thread``, i.e. in the running loop's default executor. zarr's own sync API runs every array
of the process on one global loop whose executor is sized once, process-wide (``threading.max_workers``,
fixed at its first use), so it cannot give each writer its :attr:`CodecConfig.threads` (one core per task in
the service, several in a manual run). Each writer therefore runs its zarr calls on its own loop thread
with an executor of exactly that many workers; like zarr's sync API it works from callers that already run
an event loop (notebooks, async tasks).
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import numpy as np
import numpy.typing as npt
import zarr
import zarr.api.asynchronous

from isoview_core.errors import FormatError
from isoview_core.formats.atomic import atomic_output
from isoview_core.formats.codecs import CodecConfig
from isoview_core.formats.omezarr.metadata import (
    ATTRIBUTES_KEY,
    AXES,
    image_attributes,
    image_label_attributes,
    json_ready,
    labels_attributes,
    ome_json,
)
from isoview_core.formats.omezarr.pyramid import mean_2x2, nearest_2x2, pyramid
from isoview_core.formats.shards import PlaneShardWriter

__all__ = ["LABEL_CODEC", "OmeZarrWriter", "write_ome_zarr"]

_T = TypeVar("_T")


class _PrivateLoop:
    """An event loop on its own thread whose default executor has `threads` workers (why: the module docstring)."""

    def __init__(self, threads: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="isoview-zarr")
        self._loop = asyncio.new_event_loop()
        self._loop.set_default_executor(self._executor)
        self._thread = threading.Thread(target=self._loop.run_forever, name="isoview-zarr-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._executor.shutdown()


#: Label images (0/1 masks, runs of equal bytes) with lz4 and no shuffle, whatever the image codec: on the mask of a
#: 64 x 2048 x 2048 stack 12.6 GB/s at a ratio of 174, against 0.94 GB/s and 210 with bit shuffle, which took 4 %
#: of ``isoview correct``'s CPU (``benchmarks/results/codecs.json``, ``labels``).
LABEL_CODEC = CodecConfig(name="blosc-lz4", level=5, shuffle="noshuffle")


class OmeZarrWriter:
    """Write an OME-Zarr 0.5 volume slab by slab, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Final output folder, e.g. ``SPM00_TM000012_CM00_CHN00.ome.zarr``.
    shape : tuple of int
        Volume shape ``(z, y, x)``.
    dtype : numpy dtype-like, optional
        Voxel type of the image (integer or float); ``uint16`` by default.
    voxel_size_um : tuple of float, optional
        Voxel size ``(z, y, x)`` in micrometers, stored as the level-0 scale.
    codec : CodecConfig, optional
        Compression, chunk and shard shapes, threads; :class:`CodecConfig` defaults if omitted.
    pyramid_levels : int, optional
        Number of reduced levels: level ``k`` halves y and x of level ``k-1``
        by 2x2 means (rounded half away from zero); z is never reduced.
    label_name : str, optional
        If given, a ``uint8`` label image ``labels/<label_name>`` with the same
        shape, chunks and levels (2x2 nearest) is written alongside; every
        :meth:`write` must then pass its labels.
    attributes : dict, optional
        Acquisition metadata (specimen, timepoint, camera, channel, XML
        fields...), stored as JSON under ``attrs["isoview"]`` of the root group.
    overwrite : bool, optional
        Replace an existing output at `path` once the new one is complete.
        Without it an existing output raises :class:`FileExistsError` on entry.

    Notes
    -----
    Use as a context manager. Everything is written under
    ``<path>.partial-<random>``, published at `path` on a clean exit once every
    plane has been written; on an exception (or missing planes) the temporary
    folder is removed and `path` is untouched.

    Slabs written in plane order, from the start of a shard, fill whole shards,
    each compressed and written exactly once however few planes each slab has
    (:attr:`slab_depth` planes per slab is the same). Other slabs are correct
    too, at the cost of re-reading the shards they share.

    Examples
    --------
    >>> with OmeZarrWriter("out.ome.zarr", stack.shape, voxel_size_um=(2.0, 0.4, 0.4)) as writer:  # doctest: +SKIP
    ...     for z in range(0, stack.depth, writer.slab_depth):
    ...         writer.write(z, correct(stack.read_planes(z, min(z + writer.slab_depth, stack.depth))))
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        shape: Sequence[int],
        dtype: npt.DTypeLike = "uint16",
        *,
        voxel_size_um: Sequence[float] = (1.0, 1.0, 1.0),
        codec: CodecConfig | None = None,
        pyramid_levels: int = 0,
        label_name: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        self._path = Path(path)
        if len(shape) != 3 or min(shape) < 1:
            raise FormatError(
                f"{self._path}: OME-Zarr volumes are 3-D (z, y, x) and non-empty, got shape {tuple(shape)}"
            )
        self._dtype = np.dtype(dtype)
        if self._dtype.kind not in "uif":
            raise FormatError(f"{self._path}: unsupported voxel type {self._dtype}")
        if self._dtype.kind in "ui" and self._dtype.itemsize > 4 and pyramid_levels:
            raise FormatError(f"{self._path}: pyramid levels of {self._dtype} volumes are not supported")
        if len(voxel_size_um) != 3 or min(voxel_size_um) <= 0:
            raise FormatError(f"{self._path}: voxel size must be 3 positive values (z, y, x), got {voxel_size_um}")
        if pyramid_levels < 0:
            raise FormatError(f"{self._path}: pyramid_levels must be >= 0, got {pyramid_levels}")
        if label_name is not None and (not label_name or "/" in label_name or label_name.startswith(".")):
            raise FormatError(f"{self._path}: invalid label name {label_name!r}")
        self._shape = (int(shape[0]), int(shape[1]), int(shape[2]))
        self._voxel_size = tuple(float(v) for v in voxel_size_um)
        self._codec = codec or CodecConfig()
        self._levels = pyramid_levels
        self._label_name = label_name
        self._attributes = json_ready(attributes or {}, str(self._path))
        self._overwrite = overwrite
        self._written = np.zeros(self._shape[0], dtype=bool)
        self._exit_stack: ExitStack | None = None
        self._loop: _PrivateLoop | None = None
        self._images: list[zarr.AsyncArray[Any]] = []
        self._labels: list[zarr.AsyncArray[Any]] = []
        self._shard_writers: list[PlaneShardWriter] | None = None

    @property
    def path(self) -> Path:
        """Final output folder."""
        return self._path

    @property
    def shape(self) -> tuple[int, int, int]:
        """Level-0 shape ``(z, y, x)``."""
        return self._shape

    @property
    def slab_depth(self) -> int:
        """Planes per shard: slabs of this depth, aligned on it, are written fastest."""
        return self._codec.resolved_shards(self._shape)[0]

    def level_shape(self, level: int) -> tuple[int, int, int]:
        """Shape ``(z, y, x)`` of pyramid `level` (y and x halved per level, rounded up)."""
        z, y, x = self._shape
        return z, math.ceil(y / 2**level), math.ceil(x / 2**level)

    def __enter__(self) -> Self:
        if self._exit_stack is not None:
            raise RuntimeError(f"{self._path}: OmeZarrWriter is not reentrant")
        self._written[:] = False
        with ExitStack() as stack:
            tmp = stack.enter_context(atomic_output(self._path, overwrite=self._overwrite))
            paths = self._create_hierarchy(tmp)
            self._loop = _PrivateLoop(self._codec.threads)
            stack.callback(self._loop.close)
            arrays = self._loop.run(_open_arrays(tmp, paths))
            self._images, self._labels = arrays[: self._levels + 1], arrays[self._levels + 1 :]
            shard_writers = [PlaneShardWriter.for_array(tmp / path, self._codec.threads) for path in paths]
            for shard_writer in filter(None, shard_writers):
                stack.callback(shard_writer.close)
            self._shard_writers = shard_writers if all(shard_writers) else None
            self._exit_stack = stack.pop_all()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._exit_stack = self._exit_stack, None
        assert stack is not None
        if exc is None:
            for shard_writer in self._shard_writers or ():
                shard_writer.flush()
        if exc is None and not self._written.all():
            missing = np.flatnonzero(~self._written)
            exc = FormatError(
                f"{self._path}: {missing.size} of {self._shape[0]} planes never written "
                f"(first: {missing[0]}); output discarded"
            )
            stack.__exit__(FormatError, exc, None)
            raise exc
        stack.__exit__(exc_type, exc, tb)

    def _create_hierarchy(self, root_path: Path) -> list[str]:
        """Write all group metadata and create the (empty) arrays; return the array paths."""
        name = self._path.name.removesuffix(".zarr").removesuffix(".ome")
        root = zarr.create_group(
            store=root_path,
            zarr_format=3,
            attributes={
                "ome": ome_json(image_attributes(name, self._voxel_size, self._levels)),
                ATTRIBUTES_KEY: self._attributes,
            },
        )
        paths = [self._create_level_arrays(root, self._dtype, self._codec)]
        if self._label_name is not None:
            labels = root.create_group("labels", attributes={"ome": ome_json(labels_attributes([self._label_name]))})
            image_label = labels.create_group(
                self._label_name,
                attributes={"ome": ome_json(image_label_attributes(self._label_name, self._voxel_size, self._levels))},
            )
            label_codec = LABEL_CODEC.model_copy(update={"chunk_shape": self._codec.chunk_shape, "shard_shape": self._codec.shard_shape})
            paths.append(self._create_level_arrays(image_label, np.dtype(np.uint8), label_codec))
        return [path for level_paths in paths for path in level_paths]

    def _create_level_arrays(self, group: zarr.Group, dtype: np.dtype[Any], codec: CodecConfig) -> list[str]:
        paths = []
        for level in range(self._levels + 1):
            shape = self.level_shape(level)
            array = group.create_array(
                str(level),
                shape=shape,
                dtype=dtype,
                chunks=codec.resolved_chunks(shape),
                shards=codec.resolved_shards(shape),
                serializer=codec.zarr_serializer(),
                compressors=codec.zarr_compressors(),
                fill_value=0,
                dimension_names=AXES,
            )
            paths.append(array.path)
        return paths

    def _checked(self, z_start: int, slab: npt.ArrayLike, dtype: np.dtype[Any], what: str) -> np.ndarray:
        array = np.asarray(slab)
        if array.ndim != 3 or array.shape[1:] != self._shape[1:]:
            raise FormatError(
                f"{self._path}: {what} must have shape (n, {self._shape[1]}, {self._shape[2]}), got {array.shape}"
            )
        if not 0 <= z_start <= z_start + len(array) <= self._shape[0]:
            raise FormatError(f"{self._path}: planes [{z_start}, {z_start + len(array)}) outside [0, {self._shape[0]})")
        if not np.can_cast(array.dtype, dtype, casting="safe"):
            raise FormatError(f"{self._path}: {what} of type {array.dtype} cannot be stored as {dtype} without loss")
        return np.ascontiguousarray(array, dtype=dtype)

    def write(self, z_start: int, slab: npt.ArrayLike, labels: npt.ArrayLike | None = None) -> None:
        """Write planes ``[z_start, z_start + len(slab))`` of every level.

        Parameters
        ----------
        z_start : int
            First plane of the slab.
        slab : array_like
            ``(n, Y, X)`` image planes, of a type that converts to the writer's
            dtype without loss.
        labels : array_like, optional
            ``(n, Y, X)`` label planes (``bool`` or ``uint8``); required exactly
            when the writer has a `label_name`.

        Raises
        ------
        FormatError
            Wrong shape, plane range or type, or labels missing or unexpected.
        """
        if self._exit_stack is None or self._loop is None:
            raise RuntimeError(f"{self._path}: OmeZarrWriter.write() called outside its with-block")
        image = self._checked(z_start, slab, self._dtype, "slab")
        if (labels is None) != (self._label_name is None):
            raise FormatError(
                f"{self._path}: labels must be given with every slab exactly when label_name is set "
                f"(label_name={self._label_name!r})"
            )
        pyramids = [pyramid(image, self._levels, mean_2x2)]
        if labels is not None:
            label_planes = self._checked(z_start, labels, np.dtype(np.uint8), "labels")
            if len(label_planes) != len(image):
                raise FormatError(f"{self._path}: {len(label_planes)} label planes for {len(image)} image planes")
            pyramids.append(pyramid(label_planes, self._levels, nearest_2x2))
        region = slice(z_start, z_start + len(image))
        levels = [level for pyramid in pyramids for level in pyramid]
        if self._streams(region):
            for shard_writer, data in zip(self._shard_writers, levels, strict=True):
                shard_writer.write(z_start, data)
        else:
            for shard_writer in self._shard_writers or ():
                shard_writer.flush()  # before zarr reads and rewrites any shard
            self._loop.run(_store_all([*self._images, *self._labels], region, levels))
        self._written[region] = True

    def _streams(self, region: slice) -> bool:
        """Whether the planes of `region` go to the shard writers: they continue the shards in progress (or start
        one), and every shard they start is untouched so far (else zarr merges them into what is stored)."""
        if self._shard_writers is None or not self._shard_writers[0].continues(region.start):
            return False
        shard = self._shard_writers[0].shard_planes
        first_started = -(-region.start // shard) * shard
        return not self._written[first_started : -(-region.stop // shard) * shard].any()


async def _open_arrays(root: Path, paths: Sequence[str]) -> list[zarr.AsyncArray[Any]]:
    return [
        # write_empty_chunks: an all-zero plane compresses to a few bytes anyway, and checking every
        # chunk and shard for it costs more than writing it (~20 % of a correction run).
        # (open_array ignores a config argument, hence with_config.)
        (await zarr.api.asynchronous.open_array(store=str(root), path=path, mode="r+", zarr_format=3)).with_config(
            {"write_empty_chunks": True}
        )
        for path in paths
    ]


async def _store_all(arrays: Sequence[zarr.AsyncArray[Any]], region: slice, data: Sequence[np.ndarray]) -> None:
    await asyncio.gather(*(array.setitem(region, values) for array, values in zip(arrays, data, strict=True)))


def write_ome_zarr(
    path: str | os.PathLike[str],
    array: npt.ArrayLike,
    *,
    labels: npt.ArrayLike | None = None,
    label_name: str = "segmentation",
    voxel_size_um: Sequence[float] = (1.0, 1.0, 1.0),
    codec: CodecConfig | None = None,
    pyramid_levels: int = 0,
    attributes: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a whole volume (and optionally its labels) as OME-Zarr, slab by slab.

    Parameters
    ----------
    path : str or os.PathLike
        Output folder.
    array : array_like
        ``(z, y, x)`` volume; numpy arrays, memmaps and zarr arrays are read
        one shard-deep slab at a time.
    labels : array_like, optional
        ``(z, y, x)`` label volume (``bool`` or ``uint8``), stored as ``labels/<label_name>``.
    label_name : str, optional
        Name of the label image; used only with `labels`.
    voxel_size_um, codec, pyramid_levels, attributes, overwrite
        As for :class:`OmeZarrWriter`.

    Returns
    -------
    pathlib.Path
        The complete output folder.
    """
    volume = array if hasattr(array, "dtype") else np.asarray(array)
    label_volume = labels if labels is None or hasattr(labels, "dtype") else np.asarray(labels)
    with OmeZarrWriter(
        path,
        volume.shape,
        volume.dtype,
        voxel_size_um=voxel_size_um,
        codec=codec,
        pyramid_levels=pyramid_levels,
        label_name=label_name if labels is not None else None,
        attributes=attributes,
        overwrite=overwrite,
    ) as writer:
        step = writer.slab_depth
        for z in range(0, writer.shape[0], step):
            region = slice(z, z + step)
            writer.write(z, volume[region], None if label_volume is None else label_volume[region])
    return writer.path
