"""Prefect cache keys from the identity of a task's inputs and finished output: (path, size, mtime)
of each, plus the config. No key (no caching) while the output is incomplete or ``overwrite`` is
set, so a deleted or half-written output is always recomputed; the task body checks the disk too."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect.context import TaskRunContext

from isoview_core.config import ProcessingConfig
from isoview_core.formats.atomic import is_complete

Describe = Callable[..., tuple[list[Path], list[Path]]]
"""Called with a task's parameters as keywords: (input paths, output paths whose last one is the record written last)."""


def _identity(path: Path) -> list[Any]:
    status = os.stat(path)
    return [str(path), status.st_size, status.st_mtime_ns]


def finished_output_cache_key(describe: Describe) -> Callable[[TaskRunContext, dict[str, Any]], str | None]:
    """A ``cache_key_fn`` for tasks that turn input files into output files under a ``config``.

    Parameters
    ----------
    describe : Describe
        Takes the task's parameters (``config`` among them) as keywords and names its input and output files.

    Returns
    -------
    Callable
        The key function: None (no caching) with ``config.overwrite``, an incomplete output or a file gone.
    """

    def cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str | None:
        config: ProcessingConfig = parameters["config"]
        if config.overwrite:
            return None
        inputs, outputs = describe(**parameters)
        if not outputs or not all(is_complete(path) for path in outputs):
            return None
        try:
            identity = [_identity(path) for path in [*inputs, *outputs]]
        except OSError:
            return None
        payload = json.dumps([context.task.name, identity, config.model_dump(mode="json")], sort_keys=True)
        return f"isoview-{context.task.name}-{hashlib.sha256(payload.encode()).hexdigest()[:32]}"

    return cache_key
