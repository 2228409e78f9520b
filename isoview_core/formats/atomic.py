"""Atomic publication of output files and folders.

Every writer in :mod:`isoview_core.formats` builds its output under a temporary
sibling name ``<name>.partial-<random>`` and renames it to the final name only
once it is complete. Hence, for every output written here, *the final path
exists if and only if the output is complete*, and a crashed writer leaves at
most a ``.partial-*`` sibling, which :func:`remove_stale_partials` cleans up.
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

__all__ = ["PARTIAL_MARKER", "atomic_output", "is_complete", "remove_stale_partials", "write_text_atomically"]

logger = logging.getLogger(__name__)

PARTIAL_MARKER = ".partial-"
"""Infix of the temporary name of an output being written (``<name>.partial-<random>``)."""


def _partial_sibling(path: Path) -> Path:
    return path.with_name(f"{path.name}{PARTIAL_MARKER}{secrets.token_hex(4)}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _refuse_existing(path: Path) -> None:
    raise FileExistsError(f"{path}: output already exists (pass overwrite=True to replace it)")


def _publish(tmp: Path, final: Path, *, overwrite: bool) -> None:
    if final.exists() or final.is_symlink():
        if not overwrite:
            _refuse_existing(final)
        if final.is_dir():
            # rename() cannot replace a non-empty folder: move the old one aside first.
            old = _partial_sibling(final)
            os.rename(final, old)
            os.rename(tmp, final)
            _remove(old)
            return
    os.replace(tmp, final)


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
    """
    final = Path(path)
    if not overwrite and (final.exists() or final.is_symlink()):
        _refuse_existing(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial_sibling(final)
    try:
        yield tmp
        _publish(tmp, final, overwrite=overwrite)
    except BaseException:
        _remove(tmp)
        raise


def write_text_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write a small text file (a JSON record) atomically, replacing an existing one."""
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(text)


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
