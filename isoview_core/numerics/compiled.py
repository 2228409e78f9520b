"""Compiled loops: numba's ``njit``, applied at a kernel's first call so that importing its module costs nothing.

Numba is used only where a measurement showed that one compiled pass over the data costs much less than the
several numpy passes it replaces (each kernel's module says which benchmark). Kernels are compiled once per
machine and cached beside their module (or under ``NUMBA_CACHE_DIR``), and release the GIL, so that the
worker threads of a command run them in parallel.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, TypeVar

__all__ = ["compiled"]

Function = TypeVar("Function", bound=Callable[..., Any])

_compile_lock = threading.Lock()


def compiled(function: Function) -> Function:
    """Compile ``function`` with ``numba.njit(cache=True, nogil=True)`` at its first call.

    Parameters
    ----------
    function : callable
        A module-level function written in numba's subset of Python and numpy.

    Returns
    -------
    callable
        Calls the compiled kernel; ``.python`` is the plain Python function (a reference for tests).
    """
    kernel: Callable[..., Any] | None = None

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        nonlocal kernel
        if kernel is None:
            with _compile_lock:
                if kernel is None:
                    import numba

                    kernel = numba.njit(cache=True, nogil=True)(function)
        return kernel(*args)

    call.python = function  # type: ignore[attr-defined]
    return call  # type: ignore[return-value]
