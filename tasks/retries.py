"""Which task failures Prefect retries: transient ones only (I/O, memory), never bad input.

A truncated stack, a malformed XML or an all-zero stack (the :mod:`isoview_core.errors` that describe the data)
fails the same way every time, so a retry only delays its report. An ``OSError`` (a network share that dropped
out, a full disk, a file busy on Windows) or a ``MemoryError`` may pass; so may an :class:`~isoview_core.errors.IsoviewError`
raised from one (``cannot read raw stack (...)``).
"""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import TaskRun
from prefect.states import State

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OSError, MemoryError)
"""Failures worth one more try; ``OSError`` includes disk-full, connection and timeout errors."""


def is_transient(error: BaseException) -> bool:
    """Whether `error`, or an error it was raised from or while handling, is one of :data:`TRANSIENT_ERRORS`."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, TRANSIENT_ERRORS):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def retry_if_transient(task: Any, task_run: TaskRun, state: State) -> bool:
    """Prefect's ``retry_condition_fn``: retry a task run only when it failed with a transient error."""
    return isinstance(state.data, BaseException) and is_transient(state.data)


TRANSIENT_RETRIES: dict[str, Any] = {"retries": 1, "retry_delay_seconds": 5, "retry_condition_fn": retry_if_transient}
"""The retry settings of the tasks that read or write files: ``@task(**TRANSIENT_RETRIES, ...)``."""
