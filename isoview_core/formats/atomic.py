"""Atomic, durable publication of output files and folders.

Every writer in :mod:`isoview_core.formats` builds its output under a temporary
sibling name ``<name>.partial-<random>`` and renames it to the final name only
once it is complete. Hence, for every output written here, *the final path
exists if and only if the output is complete*, and a crashed writer leaves at
most a ``.partial-*`` sibling, which :func:`remove_stale_partials` cleans up.

A rename alone only orders names, not data: after a power cut a renamed file can
be empty or truncated. So, before the rename, every file and folder of the
output is fsync'ed, and after it the folder that now holds the final name (and
the folders the writer created above it). Since every record of finished work
is itself published this way, after the data it describes, a record on disk
means its outputs are on disk too. Scratch runs may turn this off
(:func:`set_fsync`, ``--no-fsync``); nothing changes then but durability.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "FSYNC_VARIABLE",
    "PARTIAL_MARKER",
    "append_text",
    "atomic_output",
    "fsync_enabled",
    "is_complete",
    "make_durable",
    "remove_stale_partials",
    "set_fsync",
    "write_text_atomically",
]

logger = logging.getLogger(__name__)

PARTIAL_MARKER = ".partial-"
"""Infix of the temporary name of an output being written (``<name>.partial-<random>``)."""

FSYNC_VARIABLE = "ISOVIEW_FSYNC"
"""Environment variable that holds the process's fsync setting (``0``: off); see :func:`set_fsync`."""

# Windows flushes a file only through a handle open for writing, and cannot open folders with
# os.open (their entries are kept by NTFS's metadata journal): folders are not fsync'ed there.
_FILE_FLAGS = os.O_RDWR if os.name == "nt" else os.O_RDONLY
_SYNC_FOLDERS = os.name != "nt"


def fsync_enabled() -> bool:
    """Whether outputs are fsync'ed before they are published (the default; see :func:`set_fsync`)."""
    return os.environ.get(FSYNC_VARIABLE, "1") != "0"


def set_fsync(enabled: bool) -> None:
    """Turn fsync before publication on (the default) or off, for this process and those it starts.

    Parameters
    ----------
    enabled : bool
        False only for scratch runs: a power cut may then leave published outputs, and the
        records that say they are finished, empty or truncated.

    Notes
    -----
    The setting is kept in the environment variable :data:`FSYNC_VARIABLE`, so that worker
    processes started afterwards (a local Dask cluster, Prefect subprocesses) inherit it. The
    command line applies ``OutputConfig.fsync`` (``--no-fsync``) here before running anything.
    """
    os.environ[FSYNC_VARIABLE] = "1" if enabled else "0"


def _fsync(path: str | os.PathLike[str], flags: int) -> None:
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_folder(path: str | os.PathLike[str]) -> None:
    if _SYNC_FOLDERS:
        _fsync(path, os.O_RDONLY | os.O_DIRECTORY)


def _fsync_tree(path: Path) -> None:
    """fsync a file, or every file and folder of a folder (each folder after what it holds)."""
    if not path.is_dir():
        _fsync(path, _FILE_FLAGS)
        return
    for folder, _, files in os.walk(path, topdown=False):
        for name in files:
            _fsync(os.path.join(folder, name), _FILE_FLAGS)
        _fsync_folder(folder)


def make_durable(path: str | os.PathLike[str], *, root: str | os.PathLike[str]) -> None:
    """fsync an existing output, whatever the fsync setting it was written with.

    Parameters
    ----------
    path : str or os.PathLike
        A file, or a folder (every file and folder below it is fsync'ed).
    root : str or os.PathLike
        A folder above `path`: every folder from the parent of `path` up to `root`, included,
        is fsync'ed too, so that the path itself survives a power cut.

    Raises
    ------
    ValueError
        `root` is not above `path`.
    """
    path, root = Path(path), Path(root)
    if root not in path.parents:
        raise ValueError(f"{path}: not below {root}")
    _fsync_tree(path)
    for folder in path.parents:
        _fsync_folder(folder)
        if folder == root:
            return


def _partial_sibling(path: Path) -> Path:
    return path.with_name(f"{path.name}{PARTIAL_MARKER}{secrets.token_hex(4)}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _refuse_existing(path: Path) -> None:
    raise FileExistsError(f"{path}: output already exists (pass overwrite=True to replace it)")


def _create_folder(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; return the folders that gained an entry."""
    missing = []
    existing = folder
    while not existing.is_dir():
        missing.append(existing)
        existing = existing.parent
    folder.mkdir(parents=True, exist_ok=True)
    return [created.parent for created in missing]


def _publish(tmp: Path, final: Path, *, overwrite: bool, changed_folders: list[Path]) -> None:
    """Rename `tmp` to `final`; with fsync on, `tmp` is on disk before and its name after.

    `changed_folders` are the folders above `final` that the writer created, fsync'ed after the
    rename with the parent of `final`.
    """
    durable = fsync_enabled()
    if durable:
        _fsync_tree(tmp)
    old = None
    if final.exists() or final.is_symlink():
        if not overwrite:
            _refuse_existing(final)
        if final.is_dir():
            # rename() cannot replace a non-empty folder: move the old one aside first.
            old = _partial_sibling(final)
            os.rename(final, old)
    os.replace(tmp, final)
    if durable:
        for folder in [final.parent, *changed_folders]:
            _fsync_folder(folder)
    if old is not None:
        _remove(old)


@contextmanager
def atomic_output(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Give a temporary sibling path to write to, published at `path` on success.

    Parameters
    ----------
    path : str or os.PathLike
        Final path of the output (a file or a folder). Missing parent folders
        are created.
    overwrite : bool, optional
        Replace an existing output at `path`. The old output is replaced only
        after the new one is complete.

    Yields
    ------
    pathlib.Path
        ``<path>.partial-<random>``: the body writes the complete output there
        (as a file or a folder).

    Raises
    ------
    FileExistsError
        `path` exists and `overwrite` is false (checked before and after the body).

    Notes
    -----
    If the body raises, the temporary output is removed and the exception
    propagates; `path` is left untouched.

    With fsync on (:func:`fsync_enabled`, the default), every file and folder
    of the temporary output is fsync'ed before the rename, and the folder
    holding `path` (with any folder created for it) after it: once published,
    the output survives a power cut complete.
    """
    final = Path(path)
    if not overwrite and (final.exists() or final.is_symlink()):
        _refuse_existing(final)
    changed_folders = _create_folder(final.parent)
    tmp = _partial_sibling(final)
    try:
        yield tmp
        _publish(tmp, final, overwrite=overwrite, changed_folders=changed_folders)
    except BaseException:
        _remove(tmp)
        raise


def write_text_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write a small text file (a JSON record) atomically and durably, replacing an existing one."""
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")


def append_text(path: str | os.PathLike[str], text: str) -> None:
    """Append `text` to a log file with a single ``write`` (whole when appending), durably.

    Parameters
    ----------
    path : str or os.PathLike
        The log file; created if missing (its folder must exist).
    text : str
        Whole lines, newline-terminated.

    Notes
    -----
    With fsync on, the file is fsync'ed after the write, and its folder too when this write
    created the file, so an appended line that says some work is done survives a power cut.
    """
    data = text.encode("utf-8")
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, data)
        if fsync_enabled():
            os.fsync(descriptor)
            if os.fstat(descriptor).st_size == len(data):  # this write created the file
                _fsync_folder(Path(path).parent)
    finally:
        os.close(descriptor)


def is_complete(path: str | os.PathLike[str]) -> bool:
    """Whether a complete output exists at `path`.

    Parameters
    ----------
    path : str or os.PathLike
        A volume written by :mod:`isoview_core.formats` (file or ``.zarr`` folder).

    Returns
    -------
    bool
        True for an existing file, or for a folder holding a Zarr v3 root
        (``zarr.json``). Outputs are published atomically, so existence means
        completeness; temporary ``.partial-*`` siblings are never reported.
    """
    p = Path(path)
    if PARTIAL_MARKER in p.name:
        return False
    if p.is_dir():
        return (p / "zarr.json").is_file()
    return p.is_file()


def _newest_mtime(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in (*dirs, *files):
                try:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
                except FileNotFoundError:
                    continue
    return newest


def remove_stale_partials(folder: str | os.PathLike[str], *, older_than_s: float = 3600.0) -> list[Path]:
    """Remove temporary outputs left in `folder` by writers that crashed.

    Parameters
    ----------
    folder : str or os.PathLike
        Folder to clean (not recursive). A missing folder is ignored.
    older_than_s : float, optional
        Only remove a ``*.partial-*`` entry when nothing inside it was modified
        for this many seconds, so that outputs still being written by another
        process survive. Use 0 when no writer can be running.

    Returns
    -------
    list of pathlib.Path
        The entries removed.
    """
    base = Path(folder)
    if not base.is_dir():
        return []
    now = time.time()
    removed = []
    for entry in sorted(base.iterdir()):
        if PARTIAL_MARKER not in entry.name:
            continue
        try:
            age = now - _newest_mtime(entry)
        except FileNotFoundError:  # finished or removed meanwhile
            continue
        if age >= older_than_s:
            logger.info("removing stale partial output %s (untouched for %.0f s)", entry, age)
            _remove(entry)
            removed.append(entry)
    return removed
