"""Raw-data guard of the test suite: no isoview code path may modify or delete raw data.

Raw data is sacred: only :func:`isoview_core.archive._delete_verified_raw` may delete a raw
stack (after its archive has been verified). This module watches every file operation of the
test process through a CPython audit hook (PEP 578) while the session runs, and the
session fixture ``raw_data_guard`` of ``conftest.py`` fails the run with the list of
violations.

What counts as raw (by name, so the check is cheap)
---------------------------------------------------
* any file whose name ends in ``.stack``;
* a dark frame ``Background_<n>.tif`` / ``.tiff``;
* a channel XML ``ch<N>.xml`` / ``ch<NN>_spec<SS>.xml`` in a folder that holds raw data
  (a ``*.stack`` file or an ``ANG###`` folder), i.e. a nested ``TM#####`` folder or a
  flat acquisition root. The folder is looked at only for operations already found suspect.

What counts as modifying or deleting it
---------------------------------------
Audit events ``open`` with any of ``O_WRONLY``, ``O_RDWR``, ``O_APPEND``, ``O_CREAT`` or
``O_TRUNC`` in its flags (covers ``open(.., "w"/"a"/"r+"/"x")``, ``os.open``, numpy
``tofile`` and ``memmap(mode="r+")``, tifffile...), ``os.remove`` (``os.unlink`` and
``Path.unlink`` raise it too), ``os.rename`` (also raised by ``os.replace``; raw as source or
destination) and ``os.truncate`` (also ``os.ftruncate``, by file descriptor).
``shutil.rmtree`` and ``os.rmdir`` are not needed: a folder can only be removed once empty,
and ``rmtree`` raises ``os.remove`` for every file it deletes, which is checked by name.

Who is to blame
---------------
The Python call stack of the operation is walked from the innermost frame outwards, and the
first *deciding* frame gives the verdict:

* a frame in ``tests/`` (tests damage private raw copies on purpose), in
  ``isoview_core/synthetic/`` (the simulator writes raw data on purpose) or in
  ``isoview_core.archive._delete_verified_raw``: allowed;
* a frame anywhere else in ``isoview_core/``, ``flows/``, ``tasks/`` or ``deployments/``: a
  violation.

Frames outside this repository (the standard library, numpy, tifffile, prefect...) do not
decide, and neither do the writers that put raw-format files wherever their caller says,
:data:`PASS_THROUGH_WRITERS` (``write_stack``, ``write_channel_xml``): their caller decides.
An operation with no deciding frame (pytest's own temporary-folder cleanup) is allowed.

Limits: only the test process is watched (not subprocesses or Dask worker processes), and
only operations that go through Python's audited calls.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Literal

import isoview_core

Verdict = Literal["allowed", "violation", "pass"]

REPOSITORY = os.path.dirname(os.path.dirname(os.path.realpath(isoview_core.__file__)))
"""The checkout whose code is judged (the package is installed editable)."""
TESTS = os.path.dirname(os.path.realpath(__file__))

GUARDED_PACKAGES = ("isoview_core", "flows", "tasks", "deployments")
"""Folders of the repository whose code must never modify or delete raw data."""
ALLOWED_FOLDERS = (os.path.join("isoview_core", "synthetic"),)
"""Folders of those packages that write raw data on purpose (the simulated microscope)."""
ALLOWED_FUNCTIONS = frozenset({(os.path.join("isoview_core", "archive.py"), "_delete_verified_raw")})
"""(file, function) allowed to delete raw data: the verified-archive deletion, nothing else."""
PASS_THROUGH_WRITERS = frozenset(
    {
        (os.path.join("isoview_core", "formats", "stack.py"), "write_stack"),
        (os.path.join("isoview_core", "metadata.py"), "write_channel_xml"),
    }
)
"""(file, function) that write raw-format files wherever their caller says: the caller decides."""

WATCHED_EVENTS = frozenset({"open", "os.remove", "os.rename", "os.truncate"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

_BACKGROUND = re.compile(r"^Background_\d+\.tiff?$")
_CHANNEL_XML = re.compile(r"^ch\d+(?:_spec\d+)?\.xml$")
_ANGLE_DIR = re.compile(r"^ANG\d{3}$")


def _folder_holds_raw(folder: str) -> bool:
    """Whether a folder holds raw stacks or ``ANG###`` folders (a raw timepoint folder or flat root)."""
    try:
        with os.scandir(folder or ".") as entries:
            return any(entry.name.endswith(".stack") or (_ANGLE_DIR.match(entry.name) and entry.is_dir()) for entry in entries)
    except OSError:
        return False


def _fd_path(fd: int) -> str | None:
    """The path behind an open file or folder descriptor (Linux ``/proc``), or ``None``."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def raw_kind(path: object, dir_fd: int | None = None) -> str | None:
    """What raw file `path` is (``"raw stack"``, ``"dark frame"``, ``"channel XML"``), or ``None``.

    Parameters
    ----------
    path : str, bytes, os.PathLike or int
        As given to the audited call; an ``int`` is a file descriptor.
    dir_fd : int, optional
        Folder descriptor a relative `path` is relative to (``shutil.rmtree`` uses them).
    """
    if isinstance(path, int):
        path = _fd_path(path)
        if path is None:
            return None
    elif isinstance(path, bytes):
        path = os.fsdecode(path)
    elif not isinstance(path, str):
        try:
            path = os.fspath(path)  # type: ignore[arg-type]
        except TypeError:
            return None
        if isinstance(path, bytes):
            path = os.fsdecode(path)
    name = os.path.basename(path)
    if name.endswith(".stack"):
        return "raw stack"
    if name.startswith("Background_") and _BACKGROUND.match(name):
        return "dark frame"
    if name.startswith("ch") and _CHANNEL_XML.match(name):
        folder = os.path.dirname(path)
        if dir_fd is not None and dir_fd >= 0 and not os.path.isabs(path):
            base = _fd_path(dir_fd)
            if base is None:
                return "channel XML"  # cannot tell where it is: assume the worst
            folder = os.path.join(base, folder)
        return "channel XML" if _folder_holds_raw(folder) else None
    return None


def suspect_paths(event: str, args: tuple[object, ...]) -> list[object]:
    """Paths an audited operation modifies or deletes, before the raw-name check (cheap, no I/O)."""
    if event == "open":
        path, _mode, flags = args
        return [path] if isinstance(flags, int) and flags & _WRITE_FLAGS else []
    if event in ("os.remove", "os.truncate"):
        return [args[0]]
    if event == "os.rename":
        return [args[0], args[1]]
    return []


_categories: dict[str, tuple[str, str]] = {}


def _file_category(filename: str) -> tuple[str, str]:
    """(``"tests"``, ``"allowed"``, ``"guarded"`` or ``"outside"``, path relative to the repository) of a code object's file, cached."""
    cached = _categories.get(filename)
    if cached is not None:
        return cached
    path = os.path.realpath(filename) if not filename.startswith("<") else filename
    relative = os.path.relpath(path, REPOSITORY) if path.startswith(REPOSITORY + os.sep) else path
    if path == os.path.realpath(__file__):
        category = "outside"  # the guard itself
    elif path.startswith(TESTS + os.sep):
        category = "tests"
    elif path.startswith(REPOSITORY + os.sep):
        if any(relative.startswith(folder + os.sep) for folder in ALLOWED_FOLDERS):
            category = "allowed"
        elif relative.split(os.sep, 1)[0] in GUARDED_PACKAGES:
            category = "guarded"
        else:
            category = "outside"  # benchmarks, scripts
    else:
        category = "outside"
    _categories[filename] = category, relative
    return category, relative


def frame_verdict(filename: str, function: str) -> Verdict:
    """Verdict of one stack frame: ``"allowed"`` or ``"violation"`` when it decides, else ``"pass"``.

    Parameters
    ----------
    filename : str
        The frame's ``co_filename``.
    function : str
        The frame's ``co_name``.
    """
    category, relative = _file_category(filename)
    if category == "outside":
        return "pass"
    if category in ("tests", "allowed"):
        return "allowed"
    if (relative, function) in PASS_THROUGH_WRITERS:
        return "pass"
    if (relative, function) in ALLOWED_FUNCTIONS:
        return "allowed"
    return "violation"


def judge(frames: Iterable[tuple[str, str, int]]) -> tuple[Verdict, tuple[str, str, int] | None]:
    """Verdict of an operation from its call stack, innermost frame first.

    Parameters
    ----------
    frames : iterable of (filename, function, line)
        The call stack, innermost first.

    Returns
    -------
    verdict : {"allowed", "violation", "pass"}
        Of the first deciding frame; ``"pass"`` when no frame decides (the operation is allowed).
    frame : tuple or None
        The deciding frame.
    """
    for frame in frames:
        verdict = frame_verdict(frame[0], frame[1])
        if verdict != "pass":
            return verdict, frame
    return "pass", None


def _frames(frame: FrameType | None) -> Iterator[tuple[str, str, int]]:
    while frame is not None:
        yield frame.f_code.co_filename, frame.f_code.co_name, frame.f_lineno
        frame = frame.f_back


def _repository_stack(frame: FrameType | None) -> str:
    """The call stack's frames from this repository, outermost first, for the report."""
    entries = [
        f"{os.path.relpath(filename, REPOSITORY)}:{line} {function}"
        for filename, function, line in _frames(frame)
        if _file_category(filename)[0] != "outside"
    ]
    return " <- ".join(entries[:8])


class RawGuard:
    """Collects raw-data violations of the running test session (see the module docstring).

    The audit hook is installed once per process (audit hooks cannot be removed) and does
    nothing unless the guard is started; it never raises into the audited code.
    """

    def __init__(self) -> None:
        self.violations: list[str] = []
        self._active = False
        self._installed = False
        self._captured: list[str] | None = None

    def start(self) -> None:
        """Install the hook (first time only) and start watching."""
        if not self._installed:
            sys.addaudithook(self._hook)
            self._installed = True
        self._active = True

    def stop(self) -> None:
        """Stop watching (the hook stays installed but returns at once)."""
        self._active = False

    @property
    def active(self) -> bool:
        """Whether operations are being watched."""
        return self._active

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        """Divert violations into the yielded list instead of the session's (to test the guard itself)."""
        previous, self._captured = self._captured, []
        try:
            yield self._captured
        finally:
            self._captured = previous

    def report(self) -> str:
        """The session's violations, one per line, for the failure message."""
        lines = [f"{len(self.violations)} raw-data violation(s): isoview code modified or deleted raw data"]
        return "\n".join([*lines, *(f"  {violation}" for violation in self.violations)])

    def _hook(self, event: str, args: tuple[object, ...]) -> None:
        if not self._active or event not in WATCHED_EVENTS:
            return
        try:
            self._check(event, args)
        except Exception as exc:  # noqa: BLE001 - never break the audited operation; report instead
            self._record(f"raw guard failed on {event} {args!r}: {exc!r}")

    def _check(self, event: str, args: tuple[object, ...]) -> None:
        suspects = suspect_paths(event, args)
        if not suspects:
            return
        dir_fds: list[int | None]
        if event == "os.rename":
            dir_fds = [args[2], args[3]]  # type: ignore[list-item]
        elif event == "os.remove":
            dir_fds = [args[1]]  # type: ignore[list-item]
        else:
            dir_fds = [None]
        for path, dir_fd in zip(suspects, dir_fds, strict=True):
            if isinstance(path, (str, bytes)) and not _could_be_raw(os.fsdecode(path)):
                continue  # fast path: most operations end here
            caller = sys._getframe(2)  # the frame that made the audited call (1 is _hook)
            verdict, decider = judge(_frames(caller))
            if verdict != "violation":
                return
            kind = raw_kind(path, dir_fd)
            if kind is None:
                continue
            filename, function, line = decider  # type: ignore[misc]
            shown = f"file descriptor {path}" if isinstance(path, int) else os.fsdecode(os.fspath(path))  # type: ignore[arg-type]
            self._record(
                f"{event} of {kind} {shown} by {os.path.relpath(filename, REPOSITORY)}:{line} {function}() "
                f"[{_repository_stack(caller)}]"
            )
            return  # one report per operation (a rename has two paths)

    def _record(self, message: str) -> None:
        (self._captured if self._captured is not None else self.violations).append(message)


def _could_be_raw(path: str) -> bool:
    """Cheap name test that every raw file passes (no regular expression, no I/O)."""
    name = path.rsplit("/", 1)[-1]
    return name.endswith((".stack", ".tif", ".tiff", ".xml"))


GUARD = RawGuard()
"""The guard of this test process, started and checked by the ``raw_data_guard`` session fixture."""
