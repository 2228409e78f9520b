"""Lossless, verified archive of raw camera stacks, and the only code allowed to delete raw data.

One module of about 500 lines on purpose: writing, verifying and the one deletion of raw data are
one guarded sequence, and the raw-data guard (``tests/raw_guard.py``) allows deletion only from
this file's :func:`_delete_verified_raw`.

Opt-in and off by default (``--archive-raw``). Each raw ``.stack`` is copied plane-slab by
plane-slab into an OME-Zarr volume under the archive root, which mirrors the acquisition's
folders::

    ACQ/SPM00/TM00012/ANG000/SPC00_TM00012_ANG000_CM1_CHN00_PH0.stack          raw (kept by default)
    ACQ.archive/SPM00/TM00012/ANG000/SPC00_TM00012_ANG000_CM1_CHN00_PH0.ome.zarr  the archive
    ACQ.archive/SPM00/TM00012/ANG000/SPC00_TM00012_ANG000_CM1_CHN00_PH0.archive.json  its record

The SHA-256 of the raw bytes is computed while they are copied. The archive is then verified:
it is decoded again by zarr itself (not by the shard fast path that wrote it, so a bug shared
by isoview's writer and reader cannot hide) and compared plane by plane with a second read of
the raw file; the two SHA-256 digests, the sizes and the raw file's size and modification time
must all agree. The outcome is written to ``<stem>.archive.json`` (an :class:`ArchiveRecord`),
atomically. Only a verified archive, and only with ``delete_raw_after_verify``, lets
:func:`_delete_verified_raw` remove the raw stack, once the archive and its record are fsync'ed
(even with ``--no-fsync``) and after checking once more that the file is the one that was
verified. Nothing else in isoview deletes or modifies raw data (the test suite's raw-data
guard, ``tests/raw_guard.py``, asserts it).
"""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from isoview_core.acquisition import CameraStack
from isoview_core.errors import FormatError, IsoviewError
from isoview_core.formats.atomic import is_complete, make_durable, write_text_atomically
from isoview_core.formats.codecs import CodecConfig
from isoview_core.formats.omezarr import OmeZarrWriter, read_ome_zarr
from isoview_core.formats.stack import STACK_DTYPE, StackFile
from isoview_core.layout import ArchivePaths, default_archive_root, raw_archive_paths

__all__ = [
    "ArchiveConfig",
    "ArchiveRecord",
    "ArchiveVerificationError",
    "archive_paths",
    "archive_stack",
    "finished_archive_record",
    "load_archive_record",
]

logger = logging.getLogger(__name__)

class ArchiveVerificationError(IsoviewError):
    """An archive does not reproduce its raw stack bit for bit, or the raw stack changed; the raw stack was kept."""


def _default_archive_codec() -> CodecConfig:
    # Lossless for any bytes and decodable by every Zarr v3 reader (no isoview JPEG-LS plug-in for what may become the only copy); on raw stacks 2.6 % larger than jpegls but 9x faster to read back for verification (benchmarks/results/codecs.json).
    return CodecConfig(name="blosc-zstd", level=3, shuffle="shuffle")


class ArchiveConfig(BaseModel):
    """Whether and how raw stacks are archived, and whether verified raw stacks are deleted.

    Attributes
    ----------
    enabled : bool
        Archive raw stacks (``--archive-raw``). Off by default. Read by the flows that decide
        whether to call :func:`archive_stack`; the function itself archives when called.
    codec : CodecConfig
        Compression of the archive; must be lossless (every :class:`CodecConfig` codec is).
        Default: blosc-zstd level 3 with byte shuffle.
    root : Path or None
        Archive root; ``None``: ``<acquisition>.archive`` beside the acquisition folder.
    delete_raw_after_verify : bool
        Delete each raw stack once its archive is verified (``--delete-raw-after-verify``).
        Off by default, and only allowed together with `enabled`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(False, description="Archive raw stacks losslessly to Zarr, with a verified checksum.")
    codec: CodecConfig = Field(default_factory=_default_archive_codec, description="Lossless codec of the archive.")
    root: Path | None = Field(None, description="Archive root; default <acquisition>.archive beside it.")
    delete_raw_after_verify: bool = Field(
        False, description="Delete each raw stack after its archive has been read back and verified bit for bit."
    )

    @model_validator(mode="after")
    def _deletion_needs_archive(self) -> ArchiveConfig:
        if self.delete_raw_after_verify and not self.enabled:
            raise ValueError("delete_raw_after_verify needs enabled=True (--delete-raw-after-verify needs --archive-raw)")
        return self

    def resolved_root(self, acquisition_root: Path) -> Path:
        """The archive root: `root`, or ``<acquisition>.archive`` beside the acquisition folder."""
        return Path(self.root) if self.root else default_archive_root(acquisition_root)


class ArchiveRecord(BaseModel):
    """What was archived, its checksum, and the outcome of its verification (``<stem>.archive.json``).

    Attributes
    ----------
    raw_path : Path
        The raw stack.
    raw_size : int
        Its size in bytes when it was archived.
    raw_mtime_ns : int
        Its modification time (ns since the epoch) when it was archived; with `raw_size`, what
        :func:`_delete_verified_raw` and reruns check to know the raw file is still the same.
    sha256 : str
        SHA-256 (hex) of the raw file's bytes, computed while copying them.
    archive_path : Path
        The OME-Zarr archive.
    codec : CodecConfig
        Its compression.
    shape_zyx : tuple of int
        Archived volume shape ``(z, y, x)``, ``uint16`` (the raw file is its little-endian bytes).
    verified : bool
        Whether the decoded archive equals a second read of the raw file, bit for bit.
    verified_at : datetime or None
        When the verification ended (UTC), successful or not.
    deleted_raw : bool
        Whether the raw stack was deleted after verification.
    message : str
        One line: the outcome, or the file and the mismatch when verification failed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    specimen: int
    timepoint: int
    angle: int
    camera: int
    channel: int
    raw_path: Path
    raw_size: int
    raw_mtime_ns: int
    sha256: str
    archive_path: Path
    codec: CodecConfig
    shape_zyx: tuple[int, int, int]
    verified: bool
    verified_at: datetime | None = None
    deleted_raw: bool = False
    message: str = ""


def archive_paths(stack: CameraStack, acquisition_root: Path, config: ArchiveConfig) -> ArchivePaths:
    """Archive and record paths of a raw stack, mirroring its place in the acquisition.

    Parameters
    ----------
    stack : CameraStack
        The raw stack.
    acquisition_root : Path
        Root of the acquisition that holds it.
    config : ArchiveConfig
        Gives the archive root.

    Returns
    -------
    ArchivePaths
        ``<archive root>/<folders of the stack>/<stem>.ome.zarr`` and ``.../<stem>.archive.json``.

    Raises
    ------
    ValueError
        If the stack is not inside `acquisition_root`.
    """
    acquisition_root = Path(acquisition_root)
    try:
        relative = Path(stack.path).relative_to(acquisition_root)
    except ValueError:
        raise ValueError(f"{stack.path}: not inside the acquisition {acquisition_root}") from None
    return raw_archive_paths(config.resolved_root(acquisition_root), relative)


def load_archive_record(path: Path) -> ArchiveRecord | None:
    """The record at `path`, or ``None`` when it is absent or unreadable (then the stack is archived anew)."""
    try:
        return ArchiveRecord.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, ValidationError) as exc:
        logger.warning("%s: unreadable archive record, archiving again (%s)", path, exc)
        return None


def archive_stack(stack: CameraStack, acquisition_root: Path, config: ArchiveConfig) -> ArchiveRecord:
    """Archive one raw stack losslessly, verify the archive, and optionally delete the raw stack.

    Parameters
    ----------
    stack : CameraStack
        The raw stack (from :meth:`Acquisition.timepoint`).
    acquisition_root : Path
        Root of its acquisition; the archive mirrors the stack's folders below it.
    config : ArchiveConfig
        Codec, archive root, and whether to delete the raw stack once verified.

    Returns
    -------
    ArchiveRecord
        The record written beside the archive (also when the stack had already been archived:
        an existing verified record whose raw size and modification time still match is
        returned without archiving again).

    Raises
    ------
    ArchiveVerificationError
        The decoded archive differs from the raw file, or the raw file changed while it was
        archived or before it could be deleted. The raw stack is kept and the record (with
        ``verified=False`` for a mismatch) is written before raising; a rerun archives again.
    StackSizeError
        The raw file is not a whole number of planes, or smaller than its XML declares.
    FormatError
        The raw file is missing and no verified archive of it exists, or cannot be read.

    Notes
    -----
    Memory is bounded by one slab of planes (one shard of the archive, 16 planes by default)
    for the copy and two slabs for the verification, whatever the stack's depth. The raw file
    is only ever opened read-only, except by :func:`_delete_verified_raw`.
    """
    paths = archive_paths(stack, acquisition_root, config)
    finished = finished_archive_record(stack, acquisition_root, config)
    if finished is not None:
        logger.info("%s: already archived and verified in %s", stack.path, finished.archive_path)
        return finished
    existing = load_archive_record(paths.record)
    try:
        raw_stat = os.stat(stack.path)
    except FileNotFoundError:
        raise FormatError(f"{stack.path}: raw stack not found and never archived") from None
    if existing is not None and existing.verified and _same_file(existing, raw_stat) and is_complete(paths.archive):
        # Deletion newly asked for on a rerun: verify the existing archive again first (it may
        # have been damaged since), so a raw stack is never deleted on the strength of an old check.
        record = _verified_record(stack, existing, raw_stat)
    else:
        record = _write_and_verify(stack, paths, config, raw_stat)

    write_text_atomically(paths.record, record.model_dump_json(indent=2))
    if not record.verified:
        logger.error("%s", record.message)
        raise ArchiveVerificationError(record.message)
    logger.info("%s", record.message)
    if config.delete_raw_after_verify:
        # The archive is about to become the only copy: on disk for good first, with its record,
        # whether this run fsyncs or an earlier one wrote them without.
        archive_root = config.resolved_root(acquisition_root)
        for path in paths:
            make_durable(path, root=archive_root.parent)
        record = _delete_verified_raw(stack.path, record)
        write_text_atomically(paths.record, record.model_dump_json(indent=2))
        if not record.deleted_raw:
            logger.error("%s", record.message)
            raise ArchiveVerificationError(record.message)
        logger.info("%s", record.message)
    return record


def finished_archive_record(stack: CameraStack, acquisition_root: Path, config: ArchiveConfig) -> ArchiveRecord | None:
    """The record of a stack that needs no more work, else ``None``: what :func:`archive_stack` skips.

    A stack needs no more work when its record says verified, its archive is complete, and
    either the raw stack is gone (deleted after verification, or by someone else: the
    archive is then the copy) or it still has the recorded size and modification time and
    `config` does not ask for its deletion.

    Parameters
    ----------
    stack : CameraStack
        The raw stack.
    acquisition_root : Path
        Root of its acquisition.
    config : ArchiveConfig
        Archive root and deletion setting.

    Returns
    -------
    ArchiveRecord or None
        The existing record, or ``None`` when the stack must be archived, verified or deleted.
    """
    paths = archive_paths(stack, acquisition_root, config)
    record = load_archive_record(paths.record)
    if record is None or not record.verified or not is_complete(paths.archive):
        return None
    try:
        raw_stat = os.stat(stack.path)
    except FileNotFoundError:
        return record
    if _same_file(record, raw_stat) and not (config.delete_raw_after_verify and not record.deleted_raw):
        return record
    return None


def _same_file(record: ArchiveRecord, raw_stat: os.stat_result) -> bool:
    """Whether a raw file's size and modification time are the ones the record was made from."""
    return raw_stat.st_size == record.raw_size and raw_stat.st_mtime_ns == record.raw_mtime_ns


def _stack_file(stack: CameraStack) -> StackFile:
    """The raw file, size-checked against its XML (extra planes beyond the XML's depth are kept)."""
    dimensions = stack.dimensions
    return StackFile(
        stack.path, dimensions.width, dimensions.height, expected_depth=dimensions.depth, xml_name=stack.xml_name
    )


def _write_and_verify(
    stack: CameraStack, paths: ArchivePaths, config: ArchiveConfig, raw_stat: os.stat_result
) -> ArchiveRecord:
    """Copy the raw stack into a new archive (replacing any earlier one), hashing it, then verify it."""
    raw = _stack_file(stack)
    try:
        voxel_size = stack.metadata.voxel_size_um
    except IsoviewError:  # an XML without a z step: the archive is still exact, only unscaled
        voxel_size = (1.0, 1.0, 1.0)
    attributes = {
        "archive_of": stack.path.name,
        "channel_xml": stack.xml_name,
        "specimen": stack.specimen,
        "timepoint": stack.timepoint,
        "angle": stack.angle,
        "camera": stack.camera,
        "channel": stack.channel,
        "raw_size": raw_stat.st_size,
        "raw_dtype": STACK_DTYPE.str,
    }
    digest = hashlib.sha256()
    with OmeZarrWriter(
        paths.archive,
        raw.shape,
        STACK_DTYPE,
        voxel_size_um=voxel_size,
        codec=config.codec,
        attributes=attributes,
        overwrite=True,
    ) as writer:
        step = writer.slab_depth
        buffer = np.empty((min(step, raw.depth), *raw.shape[1:]), dtype=STACK_DTYPE)
        for start in range(0, raw.depth, step):
            stop = min(start + step, raw.depth)
            slab = raw.read_planes(start, stop, out=buffer[: stop - start])
            digest.update(slab)
            writer.write(start, slab)
    record = ArchiveRecord(
        specimen=stack.specimen,
        timepoint=stack.timepoint,
        angle=stack.angle,
        camera=stack.camera,
        channel=stack.channel,
        raw_path=stack.path,
        raw_size=raw_stat.st_size,
        raw_mtime_ns=raw_stat.st_mtime_ns,
        sha256=digest.hexdigest(),
        archive_path=paths.archive,
        codec=config.codec,
        shape_zyx=raw.shape,
        verified=False,
        message="",
    )
    return _verified_record(stack, record, raw_stat)


def _read_archive_planes(archive: object, start: int, stop: int) -> np.ndarray:
    """Planes ``[start, stop)`` of the archive as decoded by zarr, little-endian ``uint16``."""
    return np.ascontiguousarray(archive[start:stop], dtype=STACK_DTYPE)  # type: ignore[index]


def _verified_record(stack: CameraStack, record: ArchiveRecord, raw_stat: os.stat_result) -> ArchiveRecord:
    """`record` updated with the outcome of comparing its archive with a second read of the raw file."""
    problem = _compare_archive(stack, record, raw_stat)
    when = datetime.now(UTC)
    if problem is None:
        message = f"{record.raw_path}: archived to {record.archive_path}, verified bit for bit (sha256 {record.sha256})"
        return record.model_copy(update={"verified": True, "verified_at": when, "message": message})
    message = f"{record.raw_path}: archive {record.archive_path} failed verification: {problem}; raw stack kept"
    return record.model_copy(update={"verified": False, "verified_at": when, "message": message})


def _compare_archive(stack: CameraStack, record: ArchiveRecord, raw_stat: os.stat_result) -> str | None:
    """The first disagreement between archive, record and raw file (``None``: none), in a few words."""
    try:
        archive = read_ome_zarr(record.archive_path)
    except FormatError as exc:
        return f"cannot be read back ({exc})"
    shape = tuple(int(n) for n in archive.shape)
    archived_bytes = STACK_DTYPE.itemsize * int(np.prod(shape))
    if shape != tuple(record.shape_zyx) or archived_bytes != record.raw_size:
        return f"holds {shape} uint16 = {archived_bytes} bytes, raw stack is {record.raw_size} bytes"
    if archive.dtype != np.uint16:
        return f"holds {archive.dtype} voxels, raw stacks are uint16"
    try:
        raw = _stack_file(stack)
    except IsoviewError as exc:
        return f"raw stack cannot be read again ({exc})"
    if raw.nbytes != record.raw_size:
        return f"raw stack is now {raw.nbytes} bytes, {record.raw_size} when archived"

    archive_digest, raw_digest = hashlib.sha256(), hashlib.sha256()
    first_difference: int | None = None
    depth = shape[0]
    step = max(1, min(depth, _slab_depth(archive)))
    buffer = np.empty((step, *shape[1:]), dtype=STACK_DTYPE)
    for start in range(0, depth, step):
        stop = min(start + step, depth)
        decoded = _read_archive_planes(archive, start, stop)
        raw_slab = raw.read_planes(start, stop, out=buffer[: stop - start])
        archive_digest.update(decoded)
        raw_digest.update(raw_slab)
        if first_difference is None and not np.array_equal(decoded, raw_slab):
            differing = np.flatnonzero((decoded != raw_slab).reshape(stop - start, -1).any(axis=1))
            first_difference = start + int(differing[0])

    after = os.stat(stack.path)
    if (after.st_size, after.st_mtime_ns) != (raw_stat.st_size, raw_stat.st_mtime_ns):
        return (
            f"raw stack changed while it was archived (size {raw_stat.st_size} -> {after.st_size} bytes, "
            f"mtime {raw_stat.st_mtime_ns} -> {after.st_mtime_ns} ns)"
        )
    if raw_digest.hexdigest() != record.sha256:
        return f"raw stack reads differently the second time (sha256 {raw_digest.hexdigest()} != {record.sha256})"
    if first_difference is not None or archive_digest.hexdigest() != record.sha256:
        where = f"plane {first_difference} differs" if first_difference is not None else "content differs"
        return f"{where} (sha256 of archive {archive_digest.hexdigest()} != raw {record.sha256})"
    return None


def _slab_depth(archive: object) -> int:
    """Planes per shard of a zarr array (its natural read unit), or per chunk when unsharded."""
    shards = getattr(archive, "shards", None)
    chunks = getattr(archive, "chunks", (1,))
    return int((shards or chunks)[0])


def _delete_verified_raw(stack_path: Path, record: ArchiveRecord) -> ArchiveRecord:
    """Delete a raw stack whose archive has been verified: the only deletion of raw data in isoview.

    Parameters
    ----------
    stack_path : Path
        The raw stack to delete.
    record : ArchiveRecord
        Its archive record; must say ``verified`` and name `stack_path`.

    Returns
    -------
    ArchiveRecord
        `record` with ``deleted_raw=True``, or, when the deletion is refused, unchanged but for a
        message that says why (the raw stack is then kept).

    Notes
    -----
    Right before unlinking, the file's size and modification time are compared with those the
    record was verified against; any difference (the file was rewritten or touched since) keeps
    the raw stack. The raw-data guard of the test suite allows raw deletions from this function
    only: keep it small and keep every other code path away from raw files.
    """
    stack_path = Path(stack_path)
    if not record.verified:
        return record.model_copy(update={"message": f"{stack_path}: archive not verified, raw stack kept"})
    if Path(record.raw_path) != stack_path:
        return record.model_copy(update={"message": f"{stack_path}: the record is of {record.raw_path}, raw stack kept"})
    try:
        now = os.stat(stack_path)
    except FileNotFoundError:
        return record.model_copy(update={"message": f"{stack_path}: raw stack already gone, nothing deleted"})
    if (now.st_size, now.st_mtime_ns) != (record.raw_size, record.raw_mtime_ns):
        return record.model_copy(
            update={
                "message": (
                    f"{stack_path}: changed since its archive was verified (size {record.raw_size} -> {now.st_size} "
                    f"bytes, mtime {record.raw_mtime_ns} -> {now.st_mtime_ns} ns); raw stack kept, rerun to archive it again"
                )
            }
        )
    os.unlink(stack_path)
    return record.model_copy(
        update={"deleted_raw": True, "message": f"{stack_path}: deleted after verified archive to {record.archive_path} (sha256 {record.sha256})"}
    )
