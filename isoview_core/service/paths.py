"""Paths given to the service (from the UI, the API or a config file) must lie under its data roots.

The roots come from the environment variable ``ISOVIEW_DATA_ROOTS``: absolute folders separated by
:data:`os.pathsep` (``:`` on Linux and macOS, ``;`` on Windows), e.g.
``ISOVIEW_DATA_ROOTS=/data:/archive``. Unset or empty, every path is allowed (a microscope PC
whose only user is the person at the microscope); set it on any machine whose flows can be
started by others (a Prefect server's UI, a shared worker).

A path is checked after :meth:`pathlib.Path.resolve`: relative paths are taken from the current
folder, ``..`` is removed and every symlink that exists is followed, so ``/data/../etc`` and a
link under ``/data`` pointing to ``/etc`` are both rejected. Roots are compared component by
component: ``/data2`` is not under ``/data``. Use the returned, resolved path from then on: a
path re-read later could meanwhile have become a different symlink.
"""

from __future__ import annotations

import os
from pathlib import Path

from isoview_core.config import ProcessingConfig
from isoview_core.errors import IsoviewError

__all__ = ["DATA_ROOTS_VARIABLE", "allowed_data_roots", "check_config_paths", "require_under_data_roots", "require_watchable_acquisition"]

DATA_ROOTS_VARIABLE = "ISOVIEW_DATA_ROOTS"
"""Environment variable listing the allowed data roots (``os.pathsep``-separated absolute folders)."""


def allowed_data_roots() -> list[Path] | None:
    """The data roots from ``ISOVIEW_DATA_ROOTS``, resolved; ``None`` (no restriction) when unset or empty.

    Returns
    -------
    list of Path or None
        Resolved roots, in the order given, without duplicates.

    Raises
    ------
    IsoviewError
        If an entry is not an absolute path (a relative root would depend on the service's
        current folder).
    """
    value = os.environ.get(DATA_ROOTS_VARIABLE, "")
    roots: list[Path] = []
    for entry in value.split(os.pathsep):
        entry = entry.strip()
        if not entry:
            continue
        if not Path(entry).is_absolute():
            raise IsoviewError(f"{DATA_ROOTS_VARIABLE}: data root {entry!r} is not an absolute path")
        root = _resolve(Path(entry), what="data root")
        if root not in roots:
            roots.append(root)
    return roots or None


def require_under_data_roots(path: Path, roots: list[Path] | None, *, what: str) -> Path:
    """Resolve a path and require it to lie under one of the data roots.

    Parameters
    ----------
    path : Path
        Path as given (absolute or relative to the current folder; it need not exist yet).
    roots : list of Path or None
        Allowed roots (:func:`allowed_data_roots`); ``None`` allows every path.
    what : str
        What the path is, for the message: ``"acquisition folder"``, ``"fused output folder"``.

    Returns
    -------
    Path
        The resolved path (absolute, symlinks followed, no ``..``): use it instead of ``path``.

    Raises
    ------
    IsoviewError
        ``"<path>: <what> lies outside the allowed data roots (...)"``, or when the path cannot be
        resolved (a symlink loop, a NUL character).
    """
    resolved = _resolve(Path(path), what=what)
    if roots is None:
        return resolved
    resolved_roots = [_resolve(Path(root), what="data root") for root in roots]
    if any(resolved.is_relative_to(root) for root in resolved_roots):
        return resolved
    allowed = ", ".join(str(root) for root in resolved_roots) or "none configured"
    through = f"resolves to {resolved}; " if str(resolved) != str(path) else ""
    raise IsoviewError(f"{path}: {what} lies outside the allowed data roots ({through}allowed: {allowed}; see {DATA_ROOTS_VARIABLE})")


def check_config_paths(config: ProcessingConfig, roots: list[Path] | None) -> None:
    """Require the acquisition and both output roots of a config to lie under the data roots.

    The output roots are the resolved ones (``<acquisition>.corrected`` / ``.fused`` beside the
    acquisition unless the config names others), so a default output beside an allowed
    acquisition is checked too: it may lie outside a root that is the acquisition itself.

    Raises
    ------
    IsoviewError
        For the first path outside every root.
    """
    require_under_data_roots(Path(config.acquisition), roots, what="acquisition folder")
    require_under_data_roots(config.resolved_corrected_dir(), roots, what="corrected output folder")
    require_under_data_roots(config.resolved_fused_dir(), roots, what="fused output folder")


def require_watchable_acquisition(path: Path) -> None:
    """Require a folder the watcher can follow: an existing folder, or one the microscope has yet to create.

    A folder that does not exist yet is legitimate (the watcher waits for the microscope to start), but only
    beside existing folders: a path whose parent is missing is a typo, and a file is not an acquisition.

    Raises
    ------
    IsoviewError
        ``"<path>: not a folder"`` or ``"<path>: its parent folder <parent> does not exist"``.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise IsoviewError(f"{path}: not a folder")
    if not path.exists() and not path.absolute().parent.is_dir():
        raise IsoviewError(f"{path}: its parent folder {path.absolute().parent} does not exist")


def _resolve(path: Path, *, what: str) -> Path:
    """``path.resolve()`` with its failures (symlink loops, NUL characters) as one-line errors."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError) as error:
        shown = os.fspath(path).replace("\0", "\\0")
        raise IsoviewError(f"{shown}: {what} cannot be resolved ({error})") from None
